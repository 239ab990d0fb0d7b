"""`X-Request-ID` on every response, and the id in every log record made while serving it.

An incoming `X-Request-ID` of 1–64 characters of `[A-Za-z0-9._-]` (what a proxy or a
client sets to follow one request through) is kept; anything else is replaced by a new
id (uuid4, hex). The id is set in `assistant.telemetry.logs.request_id` for the whole request
(streams included) and put on the response's headers. Installed outside every other
middleware, Starlette's error middleware included (`operations.install`), so 413s, 401s
and 500s carry it too. Pure ASGI.
"""

from __future__ import annotations

import re
import uuid

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant.telemetry.logs import request_id

HEADER = "X-Request-ID"
VALID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def incoming_id(scope: Scope) -> str | None:
    """The client's `X-Request-ID` when it is a sane one, else None."""
    for key, value in scope.get("headers") or []:
        if key.lower() == b"x-request-id":
            text = bytes(value).decode("latin-1").strip()
            return text if VALID.fullmatch(text) else None
    return None


def new_id() -> str:
    return uuid.uuid4().hex


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        rid = incoming_id(scope) or new_id()
        token = request_id.set(rid)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[HEADER] = rid
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id.reset(token)
