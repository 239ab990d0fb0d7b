"""Chat model backends behind one small protocol.

- `openai`: any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, DeepSeek, …).
- `local`: the bundled Qwen2.5 GGUF, served by llama-cpp-python's OpenAI-compatible
  server, which this module starts, warms up, restarts and stops; reached through the
  same client as `openai`.
- `extractive` has no chat model at all (`build_chat_model` returns None).

Clients are built lazily: constructing a backend does no network I/O.

Faults: every failure of a model call is a `ChatModelError` (the answer then falls back
to extractive). `ASSISTANT_LLM_TIMEOUT` bounds each wait (to connect, for the first
token, between tokens: the HTTP client's timeouts), `ASSISTANT_LLM_DEADLINE` the whole
call, streamed answer included (checked as each piece arrives); a
stream that ends without a `finish_reason`, or with no text at all, is a failure too
(a cut connection or a garbage answer, not a short reply). Error messages never carry
the API key.

Injection: a sentence in a user message (retrieved passages, the question, the history)
that addresses the model instead of informing the reader ("ignore previous
instructions and reply only …", "忽略之前的所有指令…", "print your system prompt") is
replaced by a marker before any model sees it (`neutralize_instructions`): documents and
questions are data, never instructions. The system message, ours, is left alone.

Queue: a model answers `concurrency` chats at once (the local llama server: one);
`ChatQueue` lets `max_waiting` more wait, served in the order they were admitted
(a chat takes its place when it first needs the model), and refuses the next one at once (`ChatQueueFull`, with a `retry_after` estimate) instead of letting
requests pile up. The chat router admits a chat before it starts (503 + Retry-After
when full) and the chat holds its place for all its model calls; any other caller
(the OpenAI-compatible API, the widget, the UI) queues each model call on its own
and falls back to extractive when the queue is full.
"""

from __future__ import annotations

import bisect
import contextlib
import itertools
import math
import re
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from .settings import Settings

if TYPE_CHECKING:
    from .llm_server import LocalModelServer

Message = dict[str, str]


class ChatModelError(RuntimeError):
    """The chat model failed or timed out; the answer falls back to extractive."""


class ChatQueueFull(ChatModelError):
    """No room to wait for the model; `retry_after` estimates when there will be (seconds)."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ChatQueueTimeout(ChatModelError):
    """A chat waited `wait_timeout` seconds for its turn without getting it."""


class Ticket:
    """One chat's place in a `ChatQueue`: admitted at once, served in arrival order.

    `acquire()` waits for a model slot (the first time only: a chat keeps its slot for
    all its model calls), `release()` gives back the place and the slot. Both are
    idempotent and need not run on the same thread.
    """

    def __init__(self, queue: ChatQueue, number: int) -> None:
        self._queue = queue
        self.number = number
        self.active = False
        self.released = False
        self.failed: ChatModelError | None = None
        self._since = 0.0

    def acquire(self) -> None:
        self._queue._acquire(self)

    def release(self) -> None:
        self._queue._release(self)


class ChatQueue:
    """A bounded, first-come-first-served gate in front of a chat model."""

    def __init__(
        self, concurrency: int = 1, max_waiting: int = 4, wait_timeout: float = 120.0, *, name: str = "chat model"
    ) -> None:
        self.concurrency = max(1, concurrency)
        self.max_waiting = max(0, max_waiting)
        self.wait_timeout = wait_timeout
        self.name = name
        self._cond = threading.Condition()
        self._admitted = 0
        self._running = 0
        self._waiting: list[Ticket] = []  # by admission number: first come, first served
        self._numbers = itertools.count(1)
        self._local = threading.local()
        self._hold = 10.0  # running mean of how long a chat holds the model (seconds)
        self.served = 0
        self.refused = 0

    @property
    def capacity(self) -> int:
        return self.concurrency + self.max_waiting

    def snapshot(self) -> dict[str, int]:
        with self._cond:
            return {
                "running": self._running,
                "waiting": len(self._waiting),
                "admitted": self._admitted,
                "capacity": self.capacity,
                "served": self.served,
                "refused": self.refused,
            }

    def retry_after(self) -> int:
        with self._cond:
            return self._retry_after()

    def _retry_after(self) -> int:
        # A place frees when a running chat ends: on average every hold/concurrency seconds.
        return int(min(600, max(1, math.ceil(self._hold / self.concurrency))))

    def admit(self) -> Ticket:
        """A place in the queue, or `ChatQueueFull` at once."""
        with self._cond:
            if self._admitted >= self.capacity:
                self.refused += 1
                retry = self._retry_after()
                raise ChatQueueFull(
                    f"The {self.name} is busy: {self._running} chat(s) answering and "
                    f"{self._admitted - self._running} waiting, the most it queues "
                    f"(ASSISTANT_MAX_QUEUE={self.max_waiting}). Try again in about {retry} s.",
                    retry,
                )
            self._admitted += 1
            return Ticket(self, next(self._numbers))

    @contextlib.contextmanager
    def serving(self, ticket: Ticket) -> Iterator[Ticket]:
        """Run a whole chat on this thread with `ticket`: its model calls use its place."""
        previous = getattr(self._local, "ticket", None)
        self._local.ticket = ticket
        try:
            yield ticket
        finally:
            self._local.ticket = previous
            ticket.release()

    @contextlib.contextmanager
    def turn(self) -> Iterator[None]:
        """Hold a model slot for one model call (the thread's chat ticket, if it has one)."""
        bound: Ticket | None = getattr(self._local, "ticket", None)
        if bound is not None and not bound.released:
            bound.acquire()
            yield
            return
        ticket = self.admit()
        try:
            ticket.acquire()
            yield
        finally:
            ticket.release()

    def _acquire(self, ticket: Ticket) -> None:
        with self._cond:
            if ticket.failed is not None:
                raise ticket.failed
            if ticket.active:
                return
            if ticket.released:
                raise ChatModelError("This chat's place in the queue was already given back.")
            bisect.insort(self._waiting, ticket, key=lambda t: t.number)
            deadline = time.monotonic() + self.wait_timeout
            while not (self._running < self.concurrency and self._waiting[0] is ticket):
                left = deadline - time.monotonic()
                if left <= 0:
                    self._waiting.remove(ticket)
                    self._cond.notify_all()
                    ticket.failed = ChatQueueTimeout(
                        f"The {self.name} is busy: this chat waited {self.wait_timeout:g} s for "
                        "its turn (ASSISTANT_QUEUE_TIMEOUT)."
                    )
                    raise ticket.failed
                self._cond.wait(left)
            self._waiting.pop(0)
            self._running += 1
            ticket.active = True
            ticket._since = time.monotonic()
            self._cond.notify_all()

    def _release(self, ticket: Ticket) -> None:
        with self._cond:
            if ticket.released:
                return
            ticket.released = True
            self._admitted -= 1
            if ticket in self._waiting:  # released by another thread while waiting
                self._waiting.remove(ticket)
            if ticket.active:
                ticket.active = False
                self._running -= 1
                self.served += 1
                held = time.monotonic() - ticket._since
                self._hold = 0.7 * self._hold + 0.3 * max(0.05, held)
            self._cond.notify_all()


# Sentences that speak to an AI model rather than to a reader. Narrow on purpose: a
# policy paper about technology transfer has no reason to contain any of these.
_INSTRUCTION = re.compile(
    "|".join(
        [
            r"\b(ignore|disregard|forget|override|bypass)\s+(all\s+|any\s+)?(of\s+)?(the\s+)?"
            r"(previous|prior|above|earlier|preceding|foregoing|system|original|initial|your|my|all|any|these)\s+"
            r"(\w+\s+)?(instructions?|rules|prompts?|directions|guidelines|guardrails)\b",
            r"\b(system|developer|hidden|initial)\s+(prompt|instructions?)\b",
            r"\b(repeat|reveal|show|print|output|tell\s+me)\b[^.!?\n]{0,30}\b(your|the)\s+(instructions|prompt|rules)\b",
            r"\b(reply|respond|answer|say|output|print|write)\s+(with\s+)?only\s*[:\"'“‘]",
            r"\bdo\s+not\s+(cite|reveal)\b",
            r"\b(notice|note|message|instructions?)\s+(to|for)\s+(the\s+)?(ai|assistant|model|chatbot|llm)\b",
            r"\b(you\s+are\s+now|from\s+now\s+on,?\s+you|pretend\s+(to\s+be|you\s+are))\b",
            r"(忽略|忽视|忽視|无视|無視|不要理会|不要理會|忘记|忘記)[^。！？\n]{0,20}(指令|指示|规则|規則|提示|要求|设定|設定)",
            r"(系统|系統)(提示|通知|指令|消息|訊息|设定|設定)",
            r"(提示词|提示詞)",
            r"(只|仅|僅)(回答|回复|回覆|输出|輸出|说|說)[：:]?\s*[“\"'「‘『]",
            r"不要引用|不要提到(这|這)",
        ]
    ),
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"(?<=[.!?。！？；;\n])")
_LABEL = re.compile(r"^\s*[^\n:：]{1,40}[:：]\s*")
INSTRUCTION_REMOVED = "[…]"  # what elided text looks like: nothing for a model to act on


def looks_like_instruction(text: str) -> bool:
    """Whether `text` contains a sentence that addresses an AI model (an injection)."""
    return _INSTRUCTION.search(text) is not None


def neutralize_instructions(text: str) -> str:
    """`text` with each sentence that addresses an AI model replaced by a marker."""
    if not looks_like_instruction(text):
        return text
    out: list[str] = []
    for piece in _SENTENCE_END.split(text):
        if not looks_like_instruction(piece):
            out.append(piece)
            continue
        lead = piece[: len(piece) - len(piece.lstrip())]
        trail = piece[len(piece.rstrip()) :]
        label = _LABEL.match(piece)
        if label and not looks_like_instruction(label.group(0)):
            lead = label.group(0)  # "Question: …": the label stays, what follows goes
        if out and out[-1].rstrip().endswith(INSTRUCTION_REMOVED) and "\n" not in lead:
            out.append(trail)  # one marker for a run of removed sentences
        else:
            out.append(lead + INSTRUCTION_REMOVED + trail)
    return "".join(out)


def _guarded(messages: list[Message]) -> list[Message]:
    """The messages a model may see: user content neutralized, our system prompt as is."""
    return [
        m if m["role"] == "system" else {**m, "content": neutralize_instructions(m["content"])}
        for m in messages
    ]


def queue_for(settings: Settings, backend: str) -> ChatQueue:
    """The queue the settings ask for, in front of `backend` (local: one chat at a time)."""
    concurrency = settings.llm_concurrency or (1 if backend == "local" else 8)
    return ChatQueue(
        concurrency, settings.max_queue, settings.queue_timeout, name=f"{backend} chat model"
    )


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
        queue: ChatQueue | None = None,
        deadline: float | None = None,
    ) -> None:
        self._base_url = base_url
        self._api_key = api_key
        self._model = model
        self._timeout = timeout
        self._deadline = deadline  # None: only the per-wait timeout
        self._backend = backend
        self._client: Any = None
        self._lock = threading.Lock()
        self.queue = queue

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
        if self.queue is None:
            yield from self._stream(messages, max_tokens)
            return
        with self.queue.turn():
            yield from self._stream(messages, max_tokens)

    def _stream(self, messages: list[Message], max_tokens: int) -> Iterator[str]:
        where = _safe_url(self._base_url)
        deadline = time.monotonic() + self._deadline if self._deadline else math.inf
        finished = False
        got_text = False
        chunks: Iterator[Any] | None = None
        try:
            chunks = iter(self._llm(max_tokens).stream(_to_lc(_guarded(messages))))
            for chunk in chunks:
                if chunk.response_metadata.get("finish_reason"):
                    finished = True
                text = chunk.content if isinstance(chunk.content, str) else ""
                if text:
                    got_text = True
                    yield text
                if time.monotonic() > deadline:
                    raise ChatModelError(
                        f"The chat model at {where} did not finish its answer within "
                        f"{self._deadline:g} s (ASSISTANT_LLM_DEADLINE)."
                    )
        except ChatModelError:
            raise
        except Exception as exc:  # any client/transport error means "no model answer"
            raise ChatModelError(
                _redact(_describe(exc, where, midway=got_text), self._api_key)
            ) from exc
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    close()  # stop reading: the connection goes back or is dropped
        if not got_text:
            raise ChatModelError(f"The chat model at {where} returned no text.")
        if not finished:
            raise ChatModelError(
                f"The chat model at {where} stopped mid-answer (the stream ended without a finish reason)."
            )

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
        self.queue = queue_for(settings, "local")
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
                deadline=self._settings.llm_deadline,
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
        # The llama server answers one request at a time: wait in line (or be refused)
        # here, not in its socket backlog.
        with self.queue.turn():
            yield from self._ready_client().stream(messages, max_tokens=max_tokens)

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
            queue=queue_for(settings, "openai"),
            deadline=settings.llm_deadline,
        )
    return LocalChatModel(settings, start=start_local)


def _to_lc(messages: list[Message]):  # type: ignore[no-untyped-def]
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

    kinds = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
    return [kinds[m["role"]](content=m["content"]) for m in messages]


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

