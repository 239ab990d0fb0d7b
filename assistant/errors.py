"""The assistant's exceptions: each knows the HTTP status it becomes and says what to do.

Every face turns an `AssistantError` into its own shape with the same status and words:
`{"detail": …}` on `/v1/chat` and the widget, OpenAI's `{"error": {…}}` on the
compatible API, a message in the UI, an exit code on the CLI. A message names the fix
("run `assistant ingest`", "shorten the message to N characters") rather than the cause
alone.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from assistant.settings import Settings


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


class Conflict(AssistantError):
    """The request clashes with what exists (an id in use, a document that is not the library's)."""

    status = 409


class UnsupportedType(AssistantError):
    """A file of a type no reader takes; the message lists the types that are."""

    status = 415


class Unavailable(AssistantError, RuntimeError):
    """The assistant cannot serve this request now (no index, …); the message says how to fix it."""

    status = 503
    retry_after = 30


class Busy(Unavailable):
    """Every place in the model's queue is taken; try again after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


# Absolute paths under the usual roots of a server's file system, for what `without_paths`
# does not know by name (an OS error quoting a file of a library, …). API routes such as
# /v1/chat are not under these roots and stay as they are.
_ROOTS = "home|root|Users|tmp|var|opt|srv|usr|mnt|media|data|work|app|private|proc|run|etc|nix|snap"
_ABSOLUTE = re.compile(rf"""(?<![\w.:/~-])/(?:{_ROOTS})(?:/[^\s'"`<>|;,()\[\]{{}}]+)+|\b[A-Za-z]:\\[^\s'"`<>|;,()]+""")


def without_paths(text: str, settings: Settings) -> str:
    """`text` with no absolute file-system path, for a message anyone may read (503s, /readyz).

    A path inside a configured folder becomes the setting's name plus the rest
    (`ASSISTANT_INDEX_DIR/docs/x.json`), so the message still says where to look; any
    other absolute path becomes `…/` and its last part.
    """
    known: list[tuple[str, str]] = []
    for name, field in type(settings).model_fields.items():
        value = getattr(settings, name, None)
        if isinstance(value, Path) and value.is_absolute():
            label = field.alias or name.upper()
            known += [(str(value), label), (str(value.resolve()), label)]
    known.append((tempfile.gettempdir(), "<temp>"))
    for path, label in sorted(set(known), key=lambda pair: -len(pair[0])):
        if len(path) > 1:
            text = re.sub(r"(?<![\w.:/~-])" + re.escape(path) + r"(?![\w-]|\.\w)", label.replace("\\", "\\\\"), text)
    return _ABSOLUTE.sub(lambda m: "…/" + re.split(r"[/\\]", m.group(0).rstrip("/\\"))[-1], text)
