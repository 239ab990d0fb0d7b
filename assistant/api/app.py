"""The FastAPI application factory: routers, error handlers, Gradio at /ui."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..index import IndexProblem
from ..service import Assistant, NotFound, Unavailable
from ..settings import Settings
from .auth import api_key_dependencies
from .routers import chat, documents, health, openai_compat, search, widget

log = logging.getLogger(__name__)


def create_app(
    settings: Settings | None = None,
    assistant: Assistant | None = None,
    *,
    with_ui: bool = True,
) -> FastAPI:
    """Build the app around `assistant`, or around one built from `settings`."""
    owned = assistant is None
    if assistant is None:
        assistant = Assistant.from_settings(settings or Settings(), start_model=False)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The local model takes seconds to a minute to load: warm it up in the
        # background so /healthz answers at once and /readyz says when it is ready.
        _warm_up(app.state.assistant)
        try:
            yield
        finally:
            if owned:
                app.state.assistant.close()

    app = FastAPI(
        title="Technology Transfer Assistant",
        summary="Cited answers about China's international technology transfer centers.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.assistant = assistant
    app.include_router(health.router)  # /healthz, /readyz: always open
    # Server-to-server routes: open until ASSISTANT_API_KEYS is set, then Bearer keys.
    for router in (search.router, chat.router, documents.router):
        app.include_router(router, dependencies=api_key_dependencies())
    app.include_router(openai_compat.router)  # checks keys itself, answers in OpenAI's error shape
    # The widget checks its own partner key and Origin (and answers CORS for allowed
    # origins only), so no Bearer keys and no global CORS middleware.
    app.include_router(widget.router)
    widget.security_headers(app)  # CSP frame-ancestors 'self' on the API and UI
    _add_error_handlers(app)

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/ui/" if with_ui else "/docs")

    if with_ui:
        from ..ui import mount_ui

        mount_ui(app, assistant)
    return app


def _warm_up(assistant: Assistant) -> None:
    model = assistant.chat_model
    start = getattr(model, "start", None)
    if start is None:
        return

    def run() -> None:
        try:
            start()
        except Exception as exc:  # reported by /readyz and in answers' notice
            assistant.chat_error = str(exc)
            log.error("local model failed to start: %s", exc)

    threading.Thread(target=run, name="model-warm-up", daemon=True).start()


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            if err.get("type") == "json_invalid":
                problems.append("body: not valid JSON; send a UTF-8 JSON object.")
                continue
            loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
            msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
            problems.append(f"{loc}: {msg}")
        return JSONResponse(
            {"detail": "; ".join(problems) or "Invalid request.", "errors": _plain(exc.errors())},
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail
        if exc.status_code == 400 and detail == "There was an error parsing the body":
            # FastAPI's answer for a body that is not UTF-8 or nests too deep.
            return JSONResponse(
                {"detail": "body: not valid JSON; send a UTF-8 JSON object."}, status_code=422
            )
        return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Unavailable)
    async def unavailable(request: Request, exc: Unavailable) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "30"})

    @app.exception_handler(IndexProblem)
    async def index_problem(request: Request, exc: IndexProblem) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "30"})

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)


def _plain(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Validation errors without the offending input.

    Echoing the input back is useless for a 4,000-character message and unsafe for a
    lone surrogate or a NaN, which cannot be encoded as JSON: only type, field and message.
    """
    return [
        {"type": str(e.get("type")), "loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg"))}
        for e in errors
    ]
