"""App-wide ASGI middleware: body limits counted while reading, framing headers.

Pure ASGI, so streams pass straight through.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

FRAME_ANCESTORS = "frame-ancestors 'self'"


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


def document_body_limit(app: FastAPI) -> None:
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


class SecurityHeadersMiddleware:
    """Adds `Content-Security-Policy: frame-ancestors 'self'` and `X-Frame-Options`.

    Pure ASGI (streams pass straight through). An existing CSP keeps its directives and
    gains frame-ancestors. /widget.js is exempt: partners load it cross-origin.
    """

    def __init__(self, app: ASGIApp, exempt: tuple[str, ...] = ("/widget.js",)) -> None:
        self.app = app
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path", "").endswith(self.exempt):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                csp = headers.get("content-security-policy")
                if csp is None:
                    headers["Content-Security-Policy"] = FRAME_ANCESTORS
                elif "frame-ancestors" not in csp:
                    headers["Content-Security-Policy"] = f"{csp.rstrip('; ')}; {FRAME_ANCESTORS}"
                if "x-frame-options" not in headers:
                    headers["X-Frame-Options"] = "SAMEORIGIN"
            await send(message)

        await self.app(scope, receive, send_with_headers)


def security_headers(app: FastAPI) -> FastAPI:
    """Install `SecurityHeadersMiddleware` on `app` (once; calling again does nothing)."""
    if not any(m.cls is SecurityHeadersMiddleware for m in app.user_middleware):
        app.add_middleware(SecurityHeadersMiddleware)
    return app
