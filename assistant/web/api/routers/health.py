"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from assistant.web.api.deps import AssistantDep
from assistant.web.api.schemas import ErrorBody, Health, Ready

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    return Health(status="ok")


@router.get("/readyz", response_model=Ready, responses={503: {"model": ErrorBody}})
def readyz(assistant: AssistantDep) -> Ready | JSONResponse:
    status = assistant.status()
    if not status["ready"]:
        return JSONResponse(
            {"status": "not ready", "detail": status.get("reason", "not ready"), **{
                k: v for k, v in status.items() if k in ("chunks", "backend")
            }},
            status_code=503,
            headers={"Retry-After": "5"},
        )
    return Ready(status="ready", chunks=status["chunks"], backend=status["backend"])
