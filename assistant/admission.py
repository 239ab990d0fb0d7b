"""One way in for a chat turn, whatever face it came through.

`/v1/chat`, `/v1/chat/completions`, `/v1/widget/chat` and the Gradio UI each turn their
request into a message and a history, then call `admit(assistant, message, history)`.
Admission, in this order:

1. the message is checked against `ASSISTANT_MAX_MESSAGE_CHARS` (not blank, no NUL, not
   too long) and every history turn against four times that: `InvalidInput` (422);
2. the history is cut to the last `ASSISTANT_MAX_HISTORY_TURNS` turns;
3. the index is probed, so that a missing index is a 503 before a stream starts;
4. a place is taken in the chat model's queue (`assistant.llm.queue.ChatQueue`), or
   `ChatQueueFull` (a `Busy`: 503 with `Retry-After`) at once.

The `AdmittedTurn` holds that place for all the turn's model calls (rewrite, answer) and
gives it back when the turn ends, fails, or is abandoned by its client. Its events are
produced on one worker thread of their own, because the queue binds a place to the
thread that serves the turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import queue as thread_queue
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, TypeVar

import anyio

from assistant.errors import InvalidInput
from assistant.pipeline.answer import Event, Turn
from assistant.types import Answer

if TYPE_CHECKING:
    from assistant.llm.queue import ChatQueue, Ticket
    from assistant.settings import Settings

T = TypeVar("T")
HISTORY_FACTOR = 4  # an earlier answer may be longer than a question
_END = object()


class Answerer(Protocol):
    """What admission needs from the assistant (`assistant.service.Assistant`)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def queue(self) -> ChatQueue | None: ...

    def probe(self) -> None: ...

    def chat(self, message: str, history: list[Turn] | None = None) -> Answer: ...

    def chat_stream(self, message: str, history: list[Turn] | None = None) -> Iterator[Event]: ...


def _unusable_characters(text: str) -> str | None:
    """What makes `text` unusable as a message's characters, or None."""
    if "\x00" in text:
        return "must not contain NUL characters"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: no text can be made of it
        return "must be valid Unicode text (it holds a lone surrogate)"
    return None


def check_text(text: str, *, field: str, limit: int) -> str:
    """`text` if it is a usable message for `field`, else `InvalidInput` naming the fix."""
    if not text.strip():
        raise InvalidInput(f"{field}: must not be empty or only whitespace.", field=field)
    if (problem := _unusable_characters(text)) is not None:
        raise InvalidInput(f"{field}: {problem}.", field=field)
    if len(text) > limit:
        raise InvalidInput(
            f"{field}: at most {limit} characters (got {len(text)}); the limit is {limit}, "
            "please shorten it. · 问题过长，请缩短后再试。",
            field=field,
        )
    return text


def trim_history(history: Sequence[Turn], max_turns: int, *, limit: int) -> list[Turn]:
    """The last `max_turns` turns (none for 0), each checked against `limit` characters."""
    kept = list(history)[-max_turns:] if max_turns > 0 else []
    offset = len(history) - len(kept)
    for i, turn in enumerate(kept):
        if (problem := _unusable_characters(turn.content)) is not None:
            raise InvalidInput(f"history.{offset + i}.content: {problem}.", field=f"history.{offset + i}.content")
        if len(turn.content) > limit:
            raise InvalidInput(
                f"history.{offset + i}.content: at most {limit} characters (got {len(turn.content)}).",
                field=f"history.{offset + i}.content",
            )
    return kept


def admit(assistant: Answerer, message: str, history: Sequence[Turn] = ()) -> AdmittedTurn:
    """A turn that may run now, or the error every face reports the same way."""
    settings = assistant.settings
    limit = settings.max_message_chars
    check_text(message, field="message", limit=limit)
    turns = trim_history(history, settings.max_history_turns, limit=limit * HISTORY_FACTOR)
    assistant.probe()
    chat_queue = assistant.queue
    ticket = chat_queue.admit() if chat_queue is not None else None
    return AdmittedTurn(assistant, message, turns, chat_queue, ticket)


@dataclass
class AdmittedTurn:
    """A chat turn holding its place in the model's queue until it ends."""

    assistant: Answerer
    message: str
    history: list[Turn]
    queue: ChatQueue | None = None
    ticket: Ticket | None = None
    _started: threading.Event = field(default_factory=threading.Event, repr=False)

    def release(self) -> None:
        """Give the place back (idempotent); for a turn that will not run after all."""
        if self.ticket is not None:
            self.ticket.release()

    @contextlib.contextmanager
    def _serving(self) -> Iterator[None]:
        self._started.set()
        if self.queue is None or self.ticket is None:
            yield
            return
        with self.queue.serving(self.ticket):  # gives the ticket back however this ends
            yield

    # ------------------------------------------------------------------ blocking

    def answer(self) -> Answer:
        """The whole answer, computed on the calling thread."""
        with self._serving():
            return self.assistant.chat(self.message, self.history)

    def events(self) -> Iterator[Event]:
        """The answer's events, produced on a worker thread; closing this stops the model."""
        items: thread_queue.Queue[object] = thread_queue.Queue()
        stop = self._produce(items.put)
        try:
            while (item := items.get()) is not _END:
                if isinstance(item, BaseException):
                    raise item
                yield item  # type: ignore[misc]
        finally:
            stop.set()

    # ------------------------------------------------------------------ async

    async def aanswer(self) -> Answer:
        """`answer()` on a worker thread; the place is given back even if cancelled first."""
        try:
            return await anyio.to_thread.run_sync(self.answer)
        finally:
            if not self._started.is_set():  # cancelled before it ran: nobody else will release
                self.release()

    async def aevents(self) -> AsyncIterator[Event]:
        """`events()` for an event loop: the client going away stops the model too."""
        loop = asyncio.get_running_loop()
        items: asyncio.Queue[object] = asyncio.Queue()

        def put(item: object) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is listening
                loop.call_soon_threadsafe(items.put_nowait, item)

        stop = self._produce(put)
        try:
            while (item := await items.get()) is not _END:
                if isinstance(item, BaseException):
                    raise item
                yield item  # type: ignore[misc]
        finally:
            stop.set()

    def _produce(self, put: Callable[[object], None]) -> threading.Event:
        """Run the stream on a thread of its own, handing each event (or error) to `put`."""
        stop = threading.Event()

        def produce() -> None:
            try:
                with self._serving():
                    if stop.is_set():
                        return
                    stream = self.assistant.chat_stream(self.message, self.history)
                    try:
                        for event in stream:
                            if stop.is_set():  # the client went away: stop the model too
                                break
                            put(event)
                    finally:
                        close = getattr(stream, "close", None)
                        if close is not None:
                            close()
            except Exception as exc:  # handed to the consumer, which reports it in its shape
                put(exc)
            finally:
                put(_END)

        # In the request's context: its log records carry its request id (assistant.telemetry.logs).
        context = contextvars.copy_context()
        threading.Thread(target=context.run, args=(produce,), name="chat-turn", daemon=True).start()
        return stop
