"""Chat model backends behind one small protocol.

- `openai`: any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, DeepSeek, …).
- `local`: the bundled Qwen2.5 GGUF, served by llama-cpp-python's OpenAI-compatible
  server, which this module starts, warms up, restarts and stops; reached through the
  same client as `openai`.
- `extractive` has no chat model at all (`build_chat_model` returns None).

Clients are built lazily: constructing a backend does no network I/O.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

from .settings import Settings

if TYPE_CHECKING:
    from .llm_server import LocalModelServer

Message = dict[str, str]


class ChatModelError(RuntimeError):
    """The chat model failed or timed out; the answer falls back to extractive."""


class ChatModel(Protocol):
    """What the answer stage needs from a chat model."""

    @property
    def backend(self) -> str: ...

    def stream(self, messages: list[Message], *, max_tokens: int) -> Iterator[str]: ...

    def complete(self, messages: list[Message], *, max_tokens: int) -> str: ...

    def ready(self) -> tuple[bool, str]: ...

    def close(self) -> None: ...


class OpenAIChatModel:
    """An OpenAI-compatible endpoint through LangChain's `ChatOpenAI`."""

    def __init__(
        self,
        *,
        base_url: str | None,
        api_key: str,
        model: str,
        timeout: float,
        backend: str = "openai",
    ) -> None:
        self._base_url = base_url
        self._api_key = api_key
        self._model = model
        self._timeout = timeout
        self._backend = backend
        self._client: Any = None
        self._lock = threading.Lock()

    @property
    def backend(self) -> str:
        return self._backend

    def _llm(self, max_tokens: int):  # type: ignore[no-untyped-def]
        from langchain_openai import ChatOpenAI

        with self._lock:
            if self._client is None:
                self._client = ChatOpenAI(
                    base_url=self._base_url,
                    api_key=self._api_key,  # type: ignore[arg-type]
                    model=self._model,
                    temperature=0,
                    timeout=self._timeout,
                    max_retries=0,
                    streaming=True,
                )
        return self._client.bind(max_tokens=max_tokens)  # type: ignore[attr-defined]

    def stream(self, messages: list[Message], *, max_tokens: int) -> Iterator[str]:
        try:
            for chunk in self._llm(max_tokens).stream(_to_lc(messages)):
                text = chunk.content if isinstance(chunk.content, str) else ""
                if text:
                    yield text
        except ChatModelError:
            raise
        except Exception as exc:  # any client/transport error means "no model answer"
            raise ChatModelError(_describe(exc, self._base_url)) from exc

    def complete(self, messages: list[Message], *, max_tokens: int) -> str:
        return "".join(self.stream(messages, max_tokens=max_tokens))

    def ready(self) -> tuple[bool, str]:
        return True, f"{self._backend} model {self._model}"

    def close(self) -> None:
        self._client = None


class LocalChatModel:
    """The bundled GGUF model, run as a local OpenAI-compatible server."""

    def __init__(self, settings: Settings, *, start: bool = True) -> None:
        self._settings = settings
        self._server: LocalModelServer | None = None
        self._client: OpenAIChatModel | None = None
        self._error: str | None = None
        self._lock = threading.Lock()
        if start:
            self.start()

    @property
    def backend(self) -> str:
        return "local"

    def start(self) -> None:
        from .llm_server import LocalModelError, LocalModelServer
        from .local_model import ModelFileError, ensure_model_file

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

    def stream(self, messages: list[Message], *, max_tokens: int) -> Iterator[str]:
        yield from self._ready_client().stream(messages, max_tokens=max_tokens)

    def complete(self, messages: list[Message], *, max_tokens: int) -> str:
        return self._ready_client().complete(messages, max_tokens=max_tokens)

    def ready(self) -> tuple[bool, str]:
        if self._server is not None and self._server.is_running():
            return True, "local model server running"
        return False, self._error or "local model server is not running"

    def close(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None


def build_chat_model(settings: Settings, *, start_local: bool = True) -> ChatModel | None:
    """The configured chat model, or None for the extractive backend."""
    if settings.llm == "extractive":
        return None
    if settings.llm == "openai":
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else ""
        if not key and not settings.openai_base_url:
            raise ChatModelError(
                "ASSISTANT_LLM=openai needs OPENAI_API_KEY (and OPENAI_BASE_URL for a "
                "self-hosted endpoint). Set them, or use ASSISTANT_LLM=local or extractive."
            )
        return OpenAIChatModel(
            base_url=settings.openai_base_url,
            api_key=key or "not-needed",
            model=settings.model,
            timeout=settings.llm_timeout,
        )
    return LocalChatModel(settings, start=start_local)


def _to_lc(messages: list[Message]):  # type: ignore[no-untyped-def]
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

    kinds = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
    return [kinds[m["role"]](content=m["content"]) for m in messages]


def _describe(exc: Exception, base_url: str | None) -> str:
    name = type(exc).__name__
    where = base_url or "the OpenAI API"
    if "Timeout" in name:
        return f"The chat model at {where} did not answer in time ({name})."
    if "Connection" in name:
        return f"The chat model at {where} cannot be reached ({name})."
    if "Authentication" in name or "PermissionDenied" in name:
        return f"The chat model at {where} refused the API key ({name}). Check OPENAI_API_KEY."
    return f"The chat model at {where} failed: {name}: {exc}"[:500]

