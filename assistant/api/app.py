"""The FastAPI application factory: routers, error handlers, Gradio at /ui.

Also the app-wide guards: request bodies over `ASSISTANT_MAX_BODY_BYTES` get 413 before
they are read (the widget keeps its own limit, Gradio its own), and outside
`ASSISTANT_ENV=development` the app refuses to start without a real admin token, which
`POST /v1/admin/reindex` requires as `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..index import IndexProblem
from ..service import Assistant, NotFound, Unavailable
from ..settings import Settings
from .auth import _bearer, api_key_dependencies, key_matches
from .routers import centers, chat, documents, health, openai_compat, search, widget
from .schemas import ErrorBody

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
    _admin_routes(app)  # Bearer admin token only (not an API key)
    app.add_middleware(BodyLimitMiddleware, limit=lambda: app.state.assistant.settings.max_body_bytes)
    _document_body_limit(app)
    widget.security_headers(app)  # CSP frame-ancestors 'self' on the API and UI
    _add_error_handlers(app)

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/ui/" if with_ui else "/docs")

    if with_ui:
        from ..ui import mount_ui

        mount_ui(app, assistant)
    return app


class BodyLimitMiddleware:
    """413 for a body over `limit()` bytes, before the app reads it (JSON `detail`).

    A declared Content-Length is checked at once; a chunked body is buffered up to the
    limit. The widget (`/v1/widget/…`, with CORS-aware errors) and Gradio (`/ui`) keep
    their own limits.
    """

    def __init__(self, app: ASGIApp, limit: Callable[[], int], exempt: tuple[str, ...] = ("/ui", "/v1/widget")) -> None:
        self.app = app
        self.limit = limit
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(self.exempt):
            await self.app(scope, receive, send)
            return
        limit = self.limit()
        declared = dict(scope.get("headers") or []).get(b"content-length", b"").strip()
        if declared:
            if not declared.isdigit() or int(declared) > limit:
                await self._too_large(scope, send, limit, declared.decode("latin-1"))
                return
            await self.app(scope, receive, send)  # the server holds the body to its length
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > limit:
                await self._too_large(scope, send, limit, f"more than {limit}")
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        replay: list[Message] = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def receive_again() -> Message:
            return replay.pop() if replay else await receive()

        await self.app(scope, receive_again, send)

    @staticmethod
    async def _too_large(scope: Scope, send: Send, limit: int, got: str) -> None:
        message = f"body: at most {limit} bytes (got {got}); send a smaller request (ASSISTANT_MAX_BODY_BYTES)."
        data: dict[str, Any] = {"detail": message}
        if scope.get("path", "").endswith("/chat/completions"):  # OpenAI clients read this shape
            data = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": "request_too_large"}}
        body = json.dumps(data).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _document_body_limit(app: FastAPI) -> None:
    """List the middleware's 413 in the OpenAPI schema of every operation that takes a body."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        for path, item in schema.get("paths", {}).items():
            for operation in item.values():
                if not isinstance(operation, dict) or "requestBody" not in operation:
                    continue
                if path.startswith("/v1/widget"):
                    continue
                ref = {"$ref": "#/components/schemas/ErrorBody"}
                content = {} if path.endswith("/chat/completions") else {"schema": ref}
                operation.setdefault("responses", {}).setdefault(
                    "413",
                    {"description": "The body is over ASSISTANT_MAX_BODY_BYTES.", "content": {"application/json": content}},
                )
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _admin_routes(app: FastAPI) -> None:
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

    @app.post(
        "/v1/admin/reindex",
        tags=["admin"],
        responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}, 503: {"model": ErrorBody}},
    )
    async def reindex(request: Request) -> dict[str, Any]:
        """Bring the index up to date with the corpus (like `assistant ingest`), then serve it."""
        require_admin(request)
        assistant: Assistant = request.app.state.assistant

        def run() -> dict[str, Any]:
            from ..corpus import CorpusError
            from ..index import ingest, store_factory_for
            from ..service import chunker_config

            s = assistant.settings
            try:
                report = ingest(
                    s.corpus_dir,
                    s.index_dir,
                    assistant.embedder,
                    store_factory_for(s.index_dir, s.chroma_host, s.chroma_port),
                    chunker_config(s),
                )
            except CorpusError as exc:
                raise HTTPException(409, f"The corpus cannot be indexed: {exc}") from exc
            assistant.reload()  # IndexBusy and other IndexProblems: 503 with what to do
            log.info("admin reindex done: %s", report.as_dict())
            return report.as_dict()

        return await run_in_threadpool(run)


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
