"""App-wide ASGI middleware: body limits counted while reading, closed upload routes, headers.

Pure ASGI, so streams pass straight through.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

FRAME_ANCESTORS = "frame-ancestors 'self'"
WIDGET_PREFIX = "/v1/widget"
UI_PREFIX = "/ui"
# Gradio's routes that write request files to its temporary folder. The UI has no file
# input, so nothing legitimate posts there; open, they stored and served back any file.
UI_UPLOAD_PATHS = frozenset({"/upload", "/gradio_api/upload", "/gradio_api/process_recording"})

ExtraHeaders = Callable[[Scope], Awaitable[dict[str, str]]]


class BodyLimitMiddleware:
    """413 (JSON `detail`) for a body over its route's limit, counted as the bytes arrive.

    A declared Content-Length over the limit is refused before anything is read; every
    other body (chunked, or under a Content-Length that could lie) is counted message by
    message and refused as soon as the count passes the limit, so a client that keeps
    sending is never read to its end (the server stops reading once the app does). A body
    within the limit is held and handed to the app as one message.

    `/v1/widget/…` has its own, smaller limit (`widget_limit`), and its 413 carries what
    `widget_headers(scope)` returns (CORS for a partner's page, so the widget can read
    it); Gradio under `/ui` has the API's limit. A document upload gets the larger limit
    `upload_limit(scope)` returns, and only when that says the request may upload (the
    admin token), so nobody else can make the server hold a large body.
    """

    def __init__(
        self,
        app: ASGIApp,
        limit: Callable[[], int],
        widget_limit: Callable[[], int] | None = None,
        widget_headers: ExtraHeaders | None = None,
        upload_limit: Callable[[Scope], int | None] | None = None,
    ) -> None:
        self.app = app
        self.limit = limit
        self.widget_limit = widget_limit or limit
        self.widget_headers = widget_headers
        self.upload_limit = upload_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        widget = _under(scope.get("path", ""), WIDGET_PREFIX)
        limit = self.widget_limit() if widget else self.limit()
        setting = "ASSISTANT_WIDGET_MAX_BODY_BYTES" if widget else "ASSISTANT_MAX_BODY_BYTES"
        upload = self.upload_limit(scope) if self.upload_limit and not widget else None
        if upload is not None:
            limit, setting = upload, "ASSISTANT_MAX_UPLOAD_BYTES"
        declared = _header(scope, b"content-length").strip()
        if declared and (not declared.isdigit() or int(declared) > limit):
            await self._too_large(scope, send, limit, setting, declared.decode("latin-1"), widget)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left: nobody to answer
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._too_large(scope, send, limit, setting, f"more than {limit}", widget)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replay: list[Message] = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def receive_again() -> Message:
            return replay.pop() if replay else await receive()

        await self.app(scope, receive_again, send)

    async def _too_large(self, scope: Scope, send: Send, limit: int, setting: str, got: str, widget: bool) -> None:
        message = f"body: at most {limit} bytes (got {got}); send a smaller request ({setting})."
        data: dict[str, Any] = {"detail": message}
        if scope.get("path", "").endswith("/chat/completions"):  # OpenAI clients read this shape
            data = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": "request_too_large"}}
        extra = await self.widget_headers(scope) if widget and self.widget_headers is not None else {}
        await _send_json(send, 413, data, extra)


class ClosedUploadsMiddleware:
    """404 (JSON `detail`) for Gradio's upload routes under `/ui`, and 415 for any file form there.

    The chat UI takes no files; left open, Gradio stored any upload from anyone in its
    temporary folder and served it back.
    """

    def __init__(self, app: ASGIApp, prefix: str = UI_PREFIX) -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not _under(path, self.prefix):
            await self.app(scope, receive, send)
            return
        # Compared without empty segments, so that `//` or a trailing slash cannot slip past.
        rest = "/" + "/".join(part for part in path[len(self.prefix) :].split("/") if part)
        if rest in UI_UPLOAD_PATHS:
            await _send_json(send, 404, {"detail": "File uploads are closed: the assistant's UI takes no files."})
            return
        if _header(scope, b"content-type").lower().startswith(b"multipart/"):
            await _send_json(send, 415, {"detail": "The assistant's UI takes no files; send JSON."})
            return
        await self.app(scope, receive, send)


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def _header(scope: Scope, name: bytes) -> bytes:
    for key, value in scope.get("headers") or []:
        if key.lower() == name:
            return bytes(value)
    return b""


async def _send_json(send: Send, status: int, data: dict[str, Any], extra: dict[str, str] | None = None) -> None:
    """Answer at once and close the connection (whatever body is still coming is not read)."""
    body = json.dumps(data).encode()
    headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (extra or {}).items()]
    headers += [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
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
                setting = "ASSISTANT_WIDGET_MAX_BODY_BYTES" if _under(path, WIDGET_PREFIX) else "ASSISTANT_MAX_BODY_BYTES"
                ref = {"$ref": "#/components/schemas/ErrorBody"}
                content = {} if path.endswith("/chat/completions") else {"schema": ref}
                operation.setdefault("responses", {}).setdefault(
                    "413",
                    {"description": f"The body is over {setting}.", "content": {"application/json": content}},
                )
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


class SecurityHeadersMiddleware:
    """Headers on every response, and no redirect to a host the client named.

    Every response gets `X-Content-Type-Options: nosniff` and `Referrer-Policy:
    strict-origin-when-cross-origin`; all but /widget.js (partners load it cross-origin)
    get `Content-Security-Policy: frame-ancestors 'self'` (an existing CSP keeps its
    directives) and `X-Frame-Options: SAMEORIGIN`. A redirect whose `Location` points at
    the request's own `Host` (Starlette's trailing-slash redirect builds it from that
    header, which a client can forge) is made relative. Pure ASGI: streams pass through.
    """

    def __init__(self, app: ASGIApp, exempt: tuple[str, ...] = ("/widget.js",)) -> None:
        self.app = app
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        framed = not scope.get("path", "").endswith(self.exempt)
        host = _header(scope, b"host").decode("latin-1").strip().lower()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
                if framed:
                    csp = headers.get("content-security-policy")
                    if csp is None:
                        headers["Content-Security-Policy"] = FRAME_ANCESTORS
                    elif "frame-ancestors" not in csp:
                        headers["Content-Security-Policy"] = f"{csp.rstrip('; ')}; {FRAME_ANCESTORS}"
                    headers.setdefault("X-Frame-Options", "SAMEORIGIN")
                location = headers.get("location")
                if location and 300 <= message["status"] < 400:
                    headers["Location"] = _relative_to(location, host)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _relative_to(location: str, host: str) -> str:
    """`location` without scheme and host when its host is `host` (the request's own)."""
    parts = urlsplit(location)
    if not parts.netloc or parts.netloc.lower() != host:
        return location
    path = parts.path if parts.path.startswith("/") else "/" + parts.path
    if path.startswith("//"):  # would read as another host
        path = "/" + path.lstrip("/")
    return path + (f"?{parts.query}" if parts.query else "") + (f"#{parts.fragment}" if parts.fragment else "")


def security_headers(app: FastAPI) -> FastAPI:
    """Install `SecurityHeadersMiddleware` on `app` (once; calling again does nothing)."""
    if not any(m.cls is SecurityHeadersMiddleware for m in app.user_middleware):
        app.add_middleware(SecurityHeadersMiddleware)
    return app
