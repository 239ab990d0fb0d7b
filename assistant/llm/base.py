"""What every chat model backend shares: the protocol, the message type, the error.

Every failure of a model call is a `ChatModelError`; the answer stage then falls back to
extractive. Error messages name the endpoint without credentials and never carry the key.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from assistant.errors import AssistantError

Message = dict[str, str]


class ChatModelError(AssistantError, RuntimeError):
    """The chat model failed or timed out; the answer falls back to extractive."""



class ChatModel(Protocol):
    """What the answer stage needs from a chat model."""

    @property
    def backend(self) -> str: ...

    def stream(
        self,
        messages: list[Message],
        *,
        max_tokens: int,
        schema: dict[str, Any] | None = None,
        token_bias: Mapping[str, float] | None = None,
        prefix: str = "",
    ) -> Iterator[str]:
        """The answer's text as it arrives; with `schema`, JSON following it where the
        backend can constrain its output (otherwise free text, which callers handle).

        `token_bias` adds to the logits of the tokens spelled by its keys (" false": 4.6)
        where the backend can (a llama-cpp-python server); others ignore it.

        `prefix` is how the reply should start. A backend that can write it for the model
        (the bundled model) does, and the stream then begins with `prefix`; others ignore
        it and the model writes its own start."""
        ...

    def complete(self, messages: list[Message], *, max_tokens: int) -> str: ...

    def ready(self) -> tuple[bool, str]: ...

    def close(self) -> None: ...


def _safe_url(base_url: str | None) -> str:
    """The endpoint for messages: without user:password or a query string."""
    if not base_url:
        return "the OpenAI API"
    try:
        parts = urlsplit(base_url)
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    except ValueError:
        return "the configured endpoint"


def _redact(text: str, *secrets: str | None) -> str:
    for secret in secrets:
        if secret and len(secret) >= 8:
            text = text.replace(secret, "***")
    return text


def _describe(exc: Exception, where: str, *, midway: bool = False) -> str:
    name = type(exc).__name__
    cause = type(exc.__cause__).__name__ if exc.__cause__ is not None else name
    if "Timeout" in name:
        return f"The chat model at {where} did not answer in time ({name})."
    if "Connection" in name or "Protocol" in cause:
        if midway:
            return f"The chat model at {where} stopped mid-answer: the connection broke ({cause})."
        return f"The chat model at {where} cannot be reached ({name})."
    if "Authentication" in name or "PermissionDenied" in name:
        return f"The chat model at {where} refused the API key ({name}). Check OPENAI_API_KEY."
    return f"The chat model at {where} failed: {name}: {exc}"[:500]

