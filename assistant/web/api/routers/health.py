"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from assistant.warmup import WarmUp
from assistant.web.api.deps import AssistantDep
from assistant.web.api.schemas import ErrorBody, Health, Ready

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    return Health(status="ok")


@router.get("/readyz", response_model=Ready, responses={503: {"model": ErrorBody}})
def readyz(request: Request, assistant: AssistantDep) -> Ready | JSONResponse:
    """Ready once the index is loaded, the chat model (if any) answers and the warm-up
    (embedder, tokenizers, one search end to end) is done; else 503 saying what is loading."""
    status = assistant.status()
    warm: WarmUp | None = getattr(request.app.state, "warm_up", None)
    warming = warm.problem() if warm is not None else None
    if warming:
        reason = status.get("reason")
        status = {**status, "ready": False, "reason": f"{reason}; {warming}" if reason else warming}
    if not status["ready"]:
        loading = warm.pending() if warm is not None else []
        if status.get("backend") == "local" and str(status.get("reason", "")).startswith("chat model not ready"):
            loading.append("chat model")
        return JSONResponse(
            {"status": "not ready", "detail": status.get("reason", "not ready"), **{
                k: v for k, v in status.items() if k in ("chunks", "backend")
            }, "loading": loading},
            status_code=503,
            headers={"Retry-After": "5"},
        )
    return Ready(status="ready", chunks=status["chunks"], backend=status["backend"])
