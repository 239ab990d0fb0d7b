"""A bounded, first-come-first-served queue in front of a chat model.

A model answers `concurrency` chats at once (the local llama server: one); `ChatQueue`
lets `max_waiting` more wait, served in the order they were admitted (a chat takes its
place when it first needs the model), and refuses the next one at once
(`ChatQueueFull`, with a `retry_after` estimate) instead of letting requests pile up.
`assistant.admission` admits every chat turn before it starts, whatever face it came
through, and the turn holds its place for all its model calls.
"""

from __future__ import annotations

import bisect
import contextlib
import itertools
import math
import threading
import time
from collections.abc import Iterator

from assistant.errors import Busy
from assistant.llm.base import ChatModelError
from assistant.settings import Settings


class ChatQueueFull(Busy, ChatModelError):
    """No room to wait for the model; `retry_after` estimates when there will be (seconds)."""


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
        self.model_seconds = 0.0  # time inside its model calls, slot held (the metrics' model time)

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
            started = time.monotonic()
            try:
                yield
            finally:
                bound.model_seconds += time.monotonic() - started
            return
        ticket = self.admit()
        try:
            ticket.acquire()
            yield
        finally:
            ticket.release()

    def current(self) -> Ticket | None:
        """The chat ticket this thread is serving (`serving`), if any."""
        return getattr(self._local, "ticket", None)

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



def queue_for(settings: Settings, backend: str) -> ChatQueue:
    """The queue the settings ask for, in front of `backend` (local: one chat at a time)."""
    concurrency = settings.llm_concurrency or (1 if backend == "local" else 8)
    return ChatQueue(
        concurrency, settings.max_queue, settings.queue_timeout, name=f"{backend} chat model"
    )


