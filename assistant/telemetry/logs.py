"""Logging for the server: the request id of the request being served, and JSON lines.

`request_id` holds the id of the HTTP request being served (set by
`assistant.web.api.request_id.RequestIdMiddleware`, copied into the threads that serve
it); every log record made while serving it carries it. `configure(style)` (called by
`assistant serve`, `ASSISTANT_LOG_FORMAT`) writes one line per record to stderr: text,
or one JSON object per line (`JsonFormatter`) with time, level, logger, message,
request_id, the exception if any, and the fields a record was given through `extra=`
(the access log's method, route, path, status and duration_ms).
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(levelname)s %(name)s: %(message)s"
# The server's own per-request line (method, route, status, duration), see RequestIdMiddleware.
ACCESS_LOGGER = "assistant.access"
HANDLER_NAME = "assistant-stderr"

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


def current_request_id() -> str | None:
    """The id of the request being served on this task or thread, if any."""
    return request_id.get()


class RequestIdFilter(logging.Filter):
    """Puts `request_id` on every record (None outside a request), for any formatter."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id.get(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key != "request_id" and not key.startswith("_"):
                data.setdefault(key, value)
        if record.exc_info:
            data["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            data["exc_info"] = record.exc_text
        if record.stack_info:
            data["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(data, ensure_ascii=False, default=str)


def formatter(style: LogFormat) -> logging.Formatter:
    return JsonFormatter() if style == "json" else logging.Formatter(TEXT_FORMAT)


class StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is when a record comes (the server's one handler)."""

    def __init__(self) -> None:
        super().__init__()
        self.set_name(HANDLER_NAME)

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def configure(style: LogFormat, *, access: bool = True) -> logging.Handler:
    """Log to stderr in `style` through one root handler (replacing `logging.basicConfig`'s).

    Other handlers (a test runner's) are left alone. With `access`, the server's access
    lines (`assistant.access`) and uvicorn's own messages are logged at INFO whatever the
    root level. Returns the handler.
    """
    root = logging.getLogger()
    handler = next((h for h in root.handlers if h.get_name() == HANDLER_NAME), None)
    for plain in [h for h in root.handlers if type(h) is logging.StreamHandler]:
        root.removeHandler(plain)  # basicConfig's: the same lines, twice
    if handler is None:
        handler = StderrHandler()
        handler.addFilter(RequestIdFilter())
        root.addHandler(handler)
    handler.setFormatter(formatter(style))
    if access:
        for name in (ACCESS_LOGGER, "uvicorn", "uvicorn.error"):
            logging.getLogger(name).setLevel(logging.INFO)
    return handler
