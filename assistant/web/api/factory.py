"""The FastAPI application factory: state built once, routers, middleware, Gradio at /ui.

Outside `ASSISTANT_ENV=development` the app refuses to start without a real admin token,
which `POST /v1/admin/reindex` requires as `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import RedirectResponse

from assistant.errors import Unavailable
from assistant.service import Assistant
from assistant.settings import Settings
from assistant.web.api.auth import api_key_dependencies
from assistant.web.api.errors import add_error_handlers
from assistant.web.api.middleware import BodyLimitMiddleware, document_body_limit, security_headers
from assistant.web.api.routers import admin, centers, chat, documents, health, openai_compat, search, widget

log = logging.getLogger(__name__)

PLACEHOLDER_TOKENS = {"changeme", "admin", "secret", "password", "token", "example", "placeholder", "default"}
MIN_ADMIN_TOKEN_CHARS = 16


class InsecureSettings(Unavailable):
    """The settings are not safe outside development; the message says what to set."""


def check_admin_token(settings: Settings) -> None:
    """Outside development, refuse an empty, placeholder or short admin token (never echoed)."""
    if settings.env == "development":
        return
    token = settings.admin_token.get_secret_value().strip() if settings.admin_token else ""
    squashed = "".join(ch for ch in token.lower() if ch.isalnum())
    if not token:
        problem = "is not set"
    elif (
        squashed in PLACEHOLDER_TOKENS
        or "changeme" in squashed
        or "replace" in squashed
        or (token.startswith("<") and token.endswith(">"))
        or len(set(token)) < 6
    ):
        problem = "is a placeholder"
    elif len(token) < MIN_ADMIN_TOKEN_CHARS:
        problem = f"is shorter than {MIN_ADMIN_TOKEN_CHARS} characters"
    else:
        return
    raise InsecureSettings(
        f"ASSISTANT_ENV={settings.env} but ASSISTANT_ADMIN_TOKEN {problem}: set it to a long random "
        "secret (python -c 'import secrets; print(secrets.token_urlsafe(32))'), or use "
        "ASSISTANT_ENV=development on a machine of your own."
    )


def create_app(
    settings: Settings | None = None,
    assistant: Assistant | None = None,
    *,
    with_ui: bool = True,
) -> FastAPI:
    """Build the app around `assistant`, or around one built from `settings`."""
    owned = assistant is None
    if assistant is None:
        settings = settings or Settings()
        check_admin_token(settings)  # before anything is loaded
        assistant = Assistant.from_settings(settings, start_model=False)
    else:
        check_admin_token(assistant.settings)

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
    for router in (search.router, chat.router, documents.router, centers.router):
        app.include_router(router, dependencies=api_key_dependencies())
    app.include_router(openai_compat.router)  # checks keys itself, answers in OpenAI's error shape
    # The widget checks its own partner key and Origin (and answers CORS for allowed
    # origins only), so no Bearer keys and no global CORS middleware.
    app.include_router(widget.router)
    app.include_router(admin.router)  # Bearer admin token only (not an API key)
    app.add_middleware(BodyLimitMiddleware, limit=lambda: app.state.assistant.settings.max_body_bytes)
    document_body_limit(app)
    security_headers(app)  # CSP frame-ancestors 'self' on the API and UI
    add_error_handlers(app)

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/ui/" if with_ui else "/docs")

    if with_ui:
        from assistant.web.ui.chat import mount_ui

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


