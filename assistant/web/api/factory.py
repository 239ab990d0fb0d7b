"""The FastAPI application factory: state built once, routers, middleware, Gradio at /ui.

Outside `ASSISTANT_ENV=development` the app refuses to start without a real admin token
(which `POST /v1/admin/reindex` requires as `Authorization: Bearer <token>`) and real API
keys, and serves no /docs, /redoc or /openapi.json unless `ASSISTANT_PUBLIC_DOCS=true`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import Scope

from assistant.db import Databases
from assistant.errors import Unavailable, without_paths
from assistant.partners.origins import request_origin
from assistant.pipeline.state import VersionPoller
from assistant.service import Assistant
from assistant.settings import Settings
from assistant.warmup import WarmUp
from assistant.web.api import docs as api_docs
from assistant.web.api import metrics, operations, session
from assistant.web.api.auth import api_key_dependencies
from assistant.web.api.errors import add_error_handlers
from assistant.web.api.middleware import (
    BodyLimitMiddleware,
    ClosedUploadsMiddleware,
    document_body_limit,
    security_headers,
)
from assistant.web.api.routers import (
    admin,
    centers,
    chat,
    documents,
    feedback,
    health,
    library,
    openai_compat,
    search,
    translate,
    widget,
)

log = logging.getLogger(__name__)

PLACEHOLDER_TOKENS = {"changeme", "admin", "secret", "password", "token", "example", "placeholder", "default"}
MIN_ADMIN_TOKEN_CHARS = 16
# API keys are configured, never typed: 24 characters is what token_urlsafe(18) gives (144 bits).
MIN_API_KEY_CHARS = 24
PLACEHOLDER_KEYS = PLACEHOLDER_TOKENS | {"test", "key", "apikey", "mykey", "yourkey", "demo", "dev"}
PLACEHOLDER_KEY_WORDS = ("changeme", "replace", "example", "placeholder", "password", "yourkey", "apikeyhere")
MAKE_A_KEY = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"


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
        f"secret ({MAKE_A_KEY}), or use ASSISTANT_ENV=development on a machine of your own."
    )


def check_api_keys(settings: Settings) -> None:
    """Outside development, refuse no API keys, a placeholder or short one, or one equal to the admin token.

    The message names the setting and the key's position in the list, never the key.
    """
    if settings.env == "development":
        return
    keys = settings.api_key_list
    admin = settings.admin_token.get_secret_value().strip() if settings.admin_token else ""
    problem = ""
    if not keys:
        problem = "is not set, so every /v1 route would be open to anyone"
    for number, key in enumerate(keys, start=1):
        squashed = "".join(ch for ch in key.lower() if ch.isalnum())
        which = f"key {number} of {len(keys)}" if len(keys) > 1 else "the key"
        if (
            squashed in PLACEHOLDER_KEYS
            or any(word in squashed for word in PLACEHOLDER_KEY_WORDS)
            or (key.startswith("<") and key.endswith(">"))
            or len(set(squashed)) < 8  # xxxx-xxxx-…, 000000…, abcabcabc…
        ):
            problem = f"has a placeholder ({which})"
        elif len(key) < MIN_API_KEY_CHARS:
            problem = f"has a key shorter than {MIN_API_KEY_CHARS} characters ({which})"
        elif admin and key == admin:
            problem = f"repeats ASSISTANT_ADMIN_TOKEN ({which}): an API key must not be the admin token"
        if problem:
            break
    if problem:
        raise InsecureSettings(
            f"ASSISTANT_ENV={settings.env} but ASSISTANT_API_KEYS {problem}: set it to one or more "
            f"comma-separated long random keys ({MAKE_A_KEY}, one per client), or use "
            "ASSISTANT_ENV=development on a machine of your own."
        )


def check_production(settings: Settings) -> None:
    """Every start-up check for `ASSISTANT_ENV=production`; raises `InsecureSettings`."""
    check_admin_token(settings)
    check_api_keys(settings)


def open_databases(settings: Settings) -> Databases:
    """The databases, checked at start-up: the SQLite default is brought up to date; a
    PostgreSQL database behind this version's schema stops the start (`SchemaBehind`,
    naming `assistant db upgrade`)."""
    databases = Databases.from_settings(settings)
    databases.prepare()
    return databases


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
        check_production(settings)  # before anything is loaded
        databases = open_databases(settings)
        assistant = Assistant.from_settings(settings, start_model=False)
    else:
        check_production(assistant.settings)
        databases = open_databases(assistant.settings)
    docs = assistant.settings.env == "development" or assistant.settings.public_docs

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The local model takes seconds to a minute to load: warm it up in the
        # background so /healthz answers at once and /readyz says when it is ready.
        _warm_up(app.state.assistant)
        # Everything else the first requests would load lazily (embedder, tokenizers,
        # one search end to end) loads now; connections are taken once it is done or
        # after ASSISTANT_WARM_START_WAIT s, and /readyz is 503 until it is done.
        warm = app.state.warm_up = WarmUp()
        threading.Thread(target=warm.run, args=(app.state.assistant,), name="warm-up", daemon=True).start()
        wait = app.state.assistant.settings.warm_start_wait
        if wait > 0:
            await run_in_threadpool(warm.done.wait, wait)
        # Replicas: reload when the index version changes (an ingest, upload or delete
        # through another replica; ASSISTANT_INDEX_POLL seconds apart, 0 = off).
        poller = VersionPoller(app.state.assistant.refresh_if_changed, app.state.assistant.settings.index_poll)
        poller.start()
        try:
            yield
        finally:
            poller.stop()
            app.state.databases.dispose()
            if owned:
                app.state.assistant.close()

    app = FastAPI(
        title="Technology Transfer Assistant",
        summary="Cited answers about China's international technology transfer centers.",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # /docs and /redoc: api_docs.install, from vendored assets (no CDN)
        redoc_url=None,
        openapi_url="/openapi.json" if docs else None,
    )
    if docs:
        api_docs.install(app)
    app.state.assistant = assistant
    app.state.databases = databases  # partners, quotas, usage, feedback (routers/widget, routers/feedback)
    app.include_router(health.router)  # /healthz, /readyz: always open
    # Server-to-server routes: open until ASSISTANT_API_KEYS is set, then Bearer keys.
    for router in (search.router, chat.router, documents.router, centers.router, translate.router):
        app.include_router(router, dependencies=api_key_dependencies())
    app.include_router(openai_compat.router)  # checks keys itself, answers in OpenAI's error shape
    # The widget checks its own partner key and Origin (and answers CORS for allowed
    # origins only), so no Bearer keys and no global CORS middleware.
    app.include_router(widget.router)
    app.include_router(admin.router)  # Bearer admin token only (not an API key)
    app.include_router(library.router)  # uploads, changes, deletes: the admin token too
    app.include_router(feedback.router)  # /v1/feedback (API keys), widget (partner key), admin list
    app.add_middleware(
        BodyLimitMiddleware,
        limit=lambda: app.state.assistant.settings.max_body_bytes,
        widget_limit=lambda: app.state.assistant.settings.widget_max_body_bytes,
        widget_headers=widget_cors_headers,
        upload_limit=lambda scope: library.upload_limit(app.state.assistant.settings, scope),
    )
    app.add_middleware(ClosedUploadsMiddleware)  # Gradio's upload routes: the UI takes no files
    # /login, /logout, and a login (or a signed passage link) for /ui and /sources once API keys are set.
    session.install(app)
    document_body_limit(app)
    security_headers(app)  # outermost: nosniff, Referrer-Policy, frame-ancestors, relative redirects
    add_error_handlers(app)
    operations.install(app)  # X-Request-ID, /metrics, traces: outside all the middleware above

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/ui/" if with_ui else "/docs" if docs else "/healthz")

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
            assistant.chat_error = without_paths(str(exc), assistant.settings)
            log.error("local model failed to start: %s", exc)

    threading.Thread(target=run, name="model-warm-up", daemon=True).start()




async def widget_cors_headers(scope: Scope) -> dict[str, str]:
    """The CORS headers the widget router puts on its errors, for a 413 the middleware sends.

    Like `widget._cors`: the page's origin is echoed only when some active partner allows
    it, so a page that is not allowed cannot read the answer.
    """
    request = Request(scope)
    metrics.widget_rejected(request, "body")  # only a widget 413 asks for these headers
    raw = request.headers.get("origin")
    origin = request_origin(raw)
    if raw is None or origin is None:
        return {"Vary": "Origin"}
    store = widget.get_partners(request)
    if not await run_in_threadpool(store.origin_known, origin):
        return {"Vary": "Origin"}
    return {"Access-Control-Allow-Origin": raw, "Access-Control-Expose-Headers": "Retry-After", "Vary": "Origin"}
