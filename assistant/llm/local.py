"""The bundled GGUF model, served by llama-cpp-python's OpenAI-compatible server.

This backend starts the server (`assistant.llm.server`), warms it up, restarts it when it
dies and stops it; requests go through the same client as any other endpoint.

Answers (`stream`) and short side tasks (`complete`: a follow-up's rewrite, a query's or a
quote's translation) go to two server processes over the same memory-mapped weights
(`ASSISTANT_LOCAL_SIDE_SERVER`, on by default). llama.cpp keeps one prompt's tokens in
its cache per process: a side task run in the answering process would push out the
answer prompt's fixed instructions, which the next answer then reads again (about 3 s on
2 cores). The two share one queue, so they never compete for the cores.

An answer whose start is given (`stream(..., prefix=...)`, the opening of the JSON answer)
goes to the server's completions endpoint as the model file's own chat template rendered
here (the template llama-cpp-python's server applies to chat requests) followed by that
start: the model continues the reply instead of generating the opening itself, so its
first claim's text comes sooner. With the grammar (`ASSISTANT_LOCAL_JSON=grammar`) or a
file without a template, answers go to the chat endpoint.
"""

from __future__ import annotations

import contextlib
import io
import logging
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.llm.base import ChatModelError, Message
from assistant.llm.endpoint import OpenAIChatModel
from assistant.llm.guard import _guarded
from assistant.llm.queue import queue_for
from assistant.settings import Settings

if TYPE_CHECKING:
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    from assistant.llm.server import LocalModelServer

log = logging.getLogger(__name__)


class LocalChatModel:
    """The bundled GGUF model, run as a local OpenAI-compatible server (two with the side server)."""

    def __init__(self, settings: Settings, *, start: bool = True) -> None:
        self._settings = settings
        self._server: LocalModelServer | None = None
        self._client: OpenAIChatModel | None = None
        self._side_server: LocalModelServer | None = None
        self._side_client: OpenAIChatModel | None = None
        self._error: str | None = None
        self._template: Jinja2ChatFormatter | None = None
        self._lock = threading.Lock()
        self.queue = queue_for(settings, "local")
        if start:
            self.start()

    @property
    def backend(self) -> str:
        return "local"

    def start(self) -> None:
        from assistant.llm.model_file import ModelFileError, ensure_model_file
        from assistant.llm.server import LocalModelError

        with self._lock:
            if self._server is not None:
                return
            server: LocalModelServer | None = None
            try:
                path = ensure_model_file(
                    self._settings.models_dir,
                    custom_path=self._settings.local_model_path,
                    progress=True,
                )
                server, client = self._serve(path, "llama-server.log")
                side = self._serve(path, "llama-side-server.log") if self._settings.local_side_server else None
            except (ModelFileError, LocalModelError) as exc:
                if server is not None:  # the side server failed: stop the first too
                    server.stop()
                self._error = str(exc)
                raise ChatModelError(str(exc)) from exc
            self._server, self._client = server, client
            if self._settings.local_json == "prompt" and self._template is None:
                self._template = chat_template(path)
            if side is not None:
                self._side_server, self._side_client = side
            self._error = None

    def _serve(self, path: Path, log_name: str) -> tuple[LocalModelServer, OpenAIChatModel]:
        """A started, warmed-up server for the model file at `path`, and its client."""
        from assistant.llm.server import LocalModelServer

        server = LocalModelServer(
            path,
            threads=self._settings.local_threads,
            n_ctx=self._settings.local_ctx,
            log_path=self._settings.cache_dir / log_name,
            start_timeout=self._settings.local_start_timeout,
        )
        server.start()
        client = OpenAIChatModel(
            base_url=server.base_url,
            api_key="local",
            model=server.model_name,
            timeout=self._settings.llm_timeout,
            backend="local",
            deadline=self._settings.llm_deadline,
            json_mode="llama" if self._settings.local_json == "grammar" else "none",
            bias_by_text=True,
        )
        return server, client

    def _ready_client(self, *, side: bool = False) -> OpenAIChatModel:
        if self._server is None or self._client is None:
            self.start()
        assert self._server is not None and self._client is not None
        server, client = self._server, self._client
        if side and self._side_server is not None and self._side_client is not None:
            server, client = self._side_server, self._side_client
        try:
            server.ensure_running()
        except Exception as exc:
            raise ChatModelError(f"The local model server could not be restarted: {exc}") from exc
        return client

    def stream(
        self,
        messages: list[Message],
        *,
        max_tokens: int,
        schema: dict[str, Any] | None = None,
        token_bias: Mapping[str, float] | None = None,
        prefix: str = "",
    ) -> Iterator[str]:
        # The llama server answers one request at a time: wait in line (or be refused)
        # here, not in its socket backlog.
        with self.queue.turn():
            client = self._ready_client()
            template = self._template
            if not prefix or template is None:
                yield from client.stream(messages, max_tokens=max_tokens, schema=schema, token_bias=token_bias)
                return
            rendered = template(messages=_guarded(messages))  # type: ignore[arg-type]  # plain role/content dicts
            yield prefix
            yield from client.continue_stream(
                rendered.prompt + prefix,
                max_tokens=max_tokens,
                stop=_stops(rendered.stop),
                token_bias=token_bias,
            )

    def complete(self, messages: list[Message], *, max_tokens: int) -> str:
        """A side task's whole reply, from the side server when there is one."""
        with self.queue.turn():
            return "".join(self._ready_client(side=True).stream(messages, max_tokens=max_tokens))

    def ready(self) -> tuple[bool, str]:
        if self._server is not None and self._server.is_running():
            if self._side_server is not None and not self._side_server.is_running():
                return True, "local model server running (side server restarts on its next task)"
            return True, "local model server running"
        return False, self._error or "local model server is not running"

    def close(self) -> None:
        for server in (self._server, self._side_server):
            if server is not None:
                server.stop()
        self._server = self._side_server = None
        self._client = self._side_client = None


def chat_template(path: Path) -> Jinja2ChatFormatter | None:
    """The chat template of the GGUF file at `path` as llama-cpp-python's server applies it
    to chat requests (its `tokenizer.chat_template`, with the file's own end and start
    tokens), or None when the file has none or cannot be read. Loads the vocabulary only
    (under a second)."""
    try:
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        # llama.cpp warns through Python's stderr that a vocabulary has no training
        # context; that says nothing to a user, so it goes to the debug log.
        noise = io.StringIO()
        with contextlib.redirect_stderr(noise):
            vocab = Llama(str(path), vocab_only=True, verbose=False)
        if noise.getvalue().strip():
            log.debug("llama.cpp while reading %s: %s", path.name, noise.getvalue().strip())
        template = vocab.metadata.get("tokenizer.chat_template")
        if not template:
            return None
        eos, bos = vocab.token_eos(), vocab.token_bos()
        return Jinja2ChatFormatter(
            template=template,
            eos_token=_token_text(vocab, eos),
            bos_token=_token_text(vocab, bos),
            stop_token_ids=[eos],
        )
    except Exception as exc:  # the chat endpoint still answers; only the reply start is lost
        log.warning("no chat template read from %s (answers use the chat endpoint): %s", path, exc)
        return None


def _token_text(vocab: Any, token: int) -> str:
    return vocab.detokenize([token], special=True).decode("utf-8", "replace") if token != -1 else ""


def _stops(stop: str | list[str] | None) -> list[str]:
    if stop is None:
        return []
    return [stop] if isinstance(stop, str) else list(stop)
