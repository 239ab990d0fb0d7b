"""What the service tells a listener about each chat turn and search (no metrics library here).

`Assistant.observer` is None, or an `Observer` (the web app's `assistant.web.api.metrics.Metrics`),
told for every chat turn that went through the answer engine:

- `retrieval(seconds, "chat")`: from the turn's start to its passages (`SourcesEvent`),
  less any model call before them (a follow-up's rewrite);
- `model(seconds)`: the time the turn spent inside chat model calls (`Ticket.model_seconds`,
  counted by the `ChatQueue` while the turn holds its slot), when it called the model;
- `answered(grounded, fallback)`: every answer, `fallback` the reason an answer that
  should have come from the chat model came from the documents' sentences instead
  (`no_model`: the model did not start; `queue_timeout`: the turn waited too long for
  it; `model_error`: the model call failed), else None;

and `retrieval(seconds, "search")` for every `POST /v1/search` (`timed_search`; not the
warm-up's searches). An observer that fails is logged, never
lets an answer fail.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

from assistant.llm.queue import ChatQueue, ChatQueueTimeout
from assistant.pipeline.answer import DoneEvent, Event, SourcesEvent
from assistant.types import Answer

log = logging.getLogger(__name__)


class Observer(Protocol):
    def retrieval(self, seconds: float, kind: str) -> None: ...

    def model(self, seconds: float) -> None: ...

    def answered(self, grounded: bool, fallback: str | None) -> None: ...


def final_answer(events: Iterable[Event]) -> Answer:
    """The answer of a turn's `done` event."""
    final: Answer | None = None
    for event in events:
        if isinstance(event, DoneEvent):
            final = event.answer
    if final is None:
        raise RuntimeError("the chat turn ended without an answer")
    return final


@contextlib.contextmanager
def timed_search(observer: Observer | None) -> Iterator[None]:
    started = time.perf_counter()
    yield
    if observer is not None:
        _tell(observer.retrieval, time.perf_counter() - started, "search")


def watch(
    events: Iterator[Event],
    observer: Observer | None,
    queue: ChatQueue | None,
    *,
    model_expected: bool,
    has_model: bool,
) -> Iterator[Event]:
    """`events` as they are, telling `observer` about the turn (run on the turn's thread)."""
    if observer is None:
        yield from events
        return
    started = time.perf_counter()
    ticket = queue.current() if queue is not None else None
    model_before = ticket.model_seconds if ticket is not None else 0.0
    retrieved = False
    for event in events:
        if isinstance(event, SourcesEvent) and not retrieved:
            retrieved = True
            in_model = ticket.model_seconds - model_before if ticket is not None else 0.0
            _tell(observer.retrieval, max(0.0, time.perf_counter() - started - in_model), "chat")
        elif isinstance(event, DoneEvent):
            in_model = ticket.model_seconds - model_before if ticket is not None else 0.0
            if in_model > 0:
                _tell(observer.model, in_model)
            fallback = None
            # Only an engine answer (after passages; the centers directory's are extractive by design).
            if retrieved and model_expected and event.answer.backend == "extractive":
                if not has_model:
                    fallback = "no_model"
                elif ticket is not None and isinstance(ticket.failed, ChatQueueTimeout):
                    fallback = "queue_timeout"
                else:
                    fallback = "model_error"
            _tell(observer.answered, event.answer.grounded, fallback)
        yield event


def _tell(method: Callable[..., None], *args: object) -> None:
    try:
        method(*args)
    except Exception:
        log.exception("an observer failed; the answer goes on")
