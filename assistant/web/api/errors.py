"""The app's error handlers: every error is JSON `{"detail": …}` with the right status.

An `AssistantError` answers with its own status and headers (503 + `Retry-After` for
`Unavailable` and a full queue, 422 for `InvalidInput`, 404 for `NotFound`, …), a 5xx's
words without the server's file paths; validation errors list each field and what is
wrong, without echoing the input. The OpenAI-compatible router renders the same errors in
OpenAI's shape itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from assistant.errors import AssistantError, without_paths

NOT_JSON = "body: not valid JSON; send a UTF-8 JSON object."


def validation_detail(errors: Sequence[Any]) -> str:
    """One line naming each invalid field and what is wrong with it."""
    problems = []
    for err in errors:
        if err.get("type") == "json_invalid":
            problems.append(NOT_JSON)
            continue
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        problems.append(f"{loc}: {msg}")
    return "; ".join(problems) or "Invalid request."


def add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(
            {"detail": validation_detail(exc.errors()), "errors": _plain(exc.errors())},
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail
        if exc.status_code == 400 and detail == "There was an error parsing the body":
            # FastAPI's answer for a body that is not UTF-8 or nests too deep.
            return JSONResponse({"detail": NOT_JSON}, status_code=422)
        return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(AssistantError)
    async def assistant_error(request: Request, exc: AssistantError) -> JSONResponse:
        # A server-side failure's words may quote a file (an index file, a model): not for clients.
        assistant = getattr(request.app.state, "assistant", None)
        detail = str(exc) if exc.status < 500 or assistant is None else without_paths(str(exc), assistant.settings)
        return JSONResponse({"detail": detail}, status_code=exc.status, headers=exc.headers())


def _plain(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Validation errors without the offending input.

    Echoing the input back is useless for a 4,000-character message and unsafe for a
    lone surrogate or a NaN, which cannot be encoded as JSON: only type, field and message.
    """
    return [
        {"type": str(e.get("type")), "loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg"))}
        for e in errors
    ]
