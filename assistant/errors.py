"""The assistant's exceptions: each knows the HTTP status it becomes and says what to do.

Every face turns an `AssistantError` into its own shape with the same status and words:
`{"detail": …}` on `/v1/chat` and the widget, OpenAI's `{"error": {…}}` on the
compatible API, a message in the UI, an exit code on the CLI. A message names the fix
("run `assistant ingest`", "shorten the message to N characters") rather than the cause
alone.
"""

from __future__ import annotations


class AssistantError(Exception):
    """Base class. `status` is the HTTP status; `retry_after` (seconds) goes into `Retry-After`."""

    status: int = 500
    retry_after: int | None = None

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}


class InvalidInput(AssistantError, ValueError):
    """The request is unusable as sent; the message names the field and the limit."""

    status = 422

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotFound(AssistantError, LookupError):
    status = 404


class Unavailable(AssistantError, RuntimeError):
    """The assistant cannot serve this request now (no index, …); the message says how to fix it."""

    status = 503
    retry_after = 30


class Busy(Unavailable):
    """Every place in the model's queue is taken; try again after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
