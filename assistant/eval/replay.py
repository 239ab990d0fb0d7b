"""Recorded model replies for the dev-set evaluation: the same request gets the same reply.

`assistant eval --answers --replies DIR` records every chat-model request and its reply in
DIR (one JSON file per request, named by a hash of the messages, the schema and the token
limit) and replays them on the next run. A change to what happens after the model (claim
checks, answerability, refusals) is then measured on the whole dev set in seconds instead
of a quarter of an hour; a request DIR has not seen (a changed prompt, other evidence) goes
to the model and is recorded. The bundled model decodes greedily, so on the same machine a
replay gives what a live run gives; another machine's arithmetic may not.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from assistant.llm.base import ChatModel, Message


class RecordedChatModel:
    """A `ChatModel` that answers from `directory` when it can and records what it cannot."""

    def __init__(self, inner: ChatModel, directory: Path) -> None:
        self.inner = inner
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.replayed = 0
        self.recorded = 0

    @property
    def backend(self) -> str:
        return self.inner.backend

    @property
    def queue(self) -> Any:
        """The inner model's chat queue, which turns are admitted to (None without one)."""
        return getattr(self.inner, "queue", None)

    def stream(
        self,
        messages: list[Message],
        *,
        max_tokens: int,
        schema: dict[str, Any] | None = None,
        token_bias: Mapping[str, float] | None = None,
        prefix: str = "",
    ) -> Iterator[str]:
        path = self._path("stream", messages, max_tokens, schema, token_bias, prefix)
        recorded = self._read(path)
        if recorded is not None:
            self.replayed += 1
            yield recorded
            return
        parts: list[str] = []
        for token in self.inner.stream(
            messages, max_tokens=max_tokens, schema=schema, token_bias=token_bias, prefix=prefix
        ):
            parts.append(token)
            yield token
        self._write(path, "".join(parts))  # only a reply that ended: a failure records nothing

    def complete(self, messages: list[Message], *, max_tokens: int) -> str:
        path = self._path("complete", messages, max_tokens, None)
        recorded = self._read(path)
        if recorded is not None:
            self.replayed += 1
            return recorded
        reply = self.inner.complete(messages, max_tokens=max_tokens)
        self._write(path, reply)
        return reply

    def ready(self) -> tuple[bool, str]:
        return self.inner.ready()

    def close(self) -> None:
        self.inner.close()

    def _path(
        self,
        call: str,
        messages: list[Message],
        max_tokens: int,
        schema: dict[str, Any] | None,
        token_bias: Mapping[str, float] | None = None,
        prefix: str = "",
    ) -> Path:
        # A bias or a reply start joins the key only when there is one: replies recorded
        # without stay valid.
        fields: list[Any] = [call, self.inner.backend, messages, max_tokens, schema]
        if token_bias:
            fields.append(dict(token_bias))
        if prefix:
            fields.append({"prefix": prefix})
        key = json.dumps(fields, ensure_ascii=False, sort_keys=True)
        return self.directory / f"{hashlib.sha256(key.encode('utf-8')).hexdigest()[:32]}.json"

    @staticmethod
    def _read(path: Path) -> str | None:
        try:
            reply = json.loads(path.read_text("utf-8")).get("reply")
        except (OSError, ValueError, AttributeError):
            return None  # absent or unreadable: ask the model again
        return reply if isinstance(reply, str) else None

    def _write(self, path: Path, reply: str) -> None:
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"reply": reply}, ensure_ascii=False), "utf-8")
        os.replace(tmp, path)  # whole or not at all
        self.recorded += 1
