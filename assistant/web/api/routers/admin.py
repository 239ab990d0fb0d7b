"""Admin operations over HTTP: `Authorization: Bearer <ASSISTANT_ADMIN_TOKEN>` only (not an API key)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from assistant.service import Assistant
from assistant.settings import Settings
from assistant.web.api.auth import _bearer, key_matches
from assistant.web.api.schemas import ErrorBody

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/admin", tags=["admin"])


def require_admin(request: Request) -> None:
    settings: Settings = request.app.state.assistant.settings
    token = settings.admin_token.get_secret_value() if settings.admin_token else ""
    if not token:
        raise HTTPException(403, "Admin operations over HTTP are disabled: set ASSISTANT_ADMIN_TOKEN.")
    given = _bearer(request)
    if given is None or not key_matches(given, [token]):
        challenge = "Bearer" if given is None else 'Bearer error="invalid_token"'
        raise HTTPException(
            401,
            "Admin operations need `Authorization: Bearer <ASSISTANT_ADMIN_TOKEN>`.",
            headers={"WWW-Authenticate": challenge},
        )


@router.post(
    "/reindex",
    responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}, 409: {"model": ErrorBody}, 503: {"model": ErrorBody}},
)
async def reindex(request: Request) -> dict[str, Any]:
    """Bring the index up to date with the corpus (like `assistant ingest`), then serve it."""
    require_admin(request)
    assistant: Assistant = request.app.state.assistant
    report = await run_in_threadpool(assistant.reindex)
    log.info("admin reindex done: %s", report)
    return report
