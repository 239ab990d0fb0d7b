"""The bundled GGUF model, served by llama-cpp-python's OpenAI-compatible server.

This backend starts the server (`assistant.llm.server`), warms it up, restarts it when it
dies and stops it; requests go through the same client as any other endpoint.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from assistant.llm.base import ChatModelError, Message
from assistant.llm.endpoint import OpenAIChatModel
from assistant.llm.queue import queue_for
from assistant.settings import Settings

if TYPE_CHECKING:
    from assistant.llm.server import LocalModelServer

class LocalChatModel:
    """The bundled GGUF model, run as a local OpenAI-compatible server."""

    def __init__(self, settings: Settings, *, start: bool = True) -> None:
        self._settings = settings
        self._server: LocalModelServer | None = None
        self._client: OpenAIChatModel | None = None
        self._error: str | None = None
        self._lock = threading.Lock()
        self.queue = queue_for(settings, "local")
        if start:
            self.start()

    @property
    def backend(self) -> str:
        return "local"

    def start(self) -> None:
        from assistant.llm.model_file import ModelFileError, ensure_model_file
        from assistant.llm.server import LocalModelError, LocalModelServer

        with self._lock:
            if self._server is not None:
                return
            try:
                path = ensure_model_file(
                    self._settings.models_dir,
                    custom_path=self._settings.local_model_path,
                    progress=True,
                )
                server = LocalModelServer(
                    path,
                    threads=self._settings.local_threads,
                    n_ctx=self._settings.local_ctx,
                    log_path=self._settings.cache_dir / "llama-server.log",
                    start_timeout=self._settings.local_start_timeout,
                )
                server.start()
            except (ModelFileError, LocalModelError) as exc:
                self._error = str(exc)
                raise ChatModelError(str(exc)) from exc
            self._server = server
            self._error = None
            self._client = OpenAIChatModel(
                base_url=server.base_url,
                api_key="local",
                model=server.model_name,
                timeout=self._settings.llm_timeout,
                backend="local",
                deadline=self._settings.llm_deadline,
                json_mode="llama" if self._settings.local_json == "grammar" else "none",
            )

    def _ready_client(self) -> OpenAIChatModel:
        if self._server is None or self._client is None:
            self.start()
        assert self._server is not None and self._client is not None
        try:
            self._server.ensure_running()
        except Exception as exc:
            raise ChatModelError(f"The local model server could not be restarted: {exc}") from exc
        return self._client

    def stream(
        self, messages: list[Message], *, max_tokens: int, schema: dict[str, Any] | None = None
    ) -> Iterator[str]:
        # The llama server answers one request at a time: wait in line (or be refused)
        # here, not in its socket backlog.
        with self.queue.turn():
            yield from self._ready_client().stream(messages, max_tokens=max_tokens, schema=schema)

    def complete(self, messages: list[Message], *, max_tokens: int) -> str:
        return "".join(self.stream(messages, max_tokens=max_tokens))

    def ready(self) -> tuple[bool, str]:
        if self._server is not None and self._server.is_running():
            return True, "local model server running"
        return False, self._error or "local model server is not running"

    def close(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None


