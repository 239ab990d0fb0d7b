"""POST /v1/chat: a cited answer, as JSON or as a server-sent event stream.

With a chat model that has a queue (`assistant.llm.ChatQueue`: the local model answers
one chat at a time), a chat is admitted before anything starts: when the queue is full
the answer is 503 with `Retry-After` and a JSON `detail`, also for `stream: true` (the
stream has not started). An admitted chat runs on one worker thread holding its place,
so its model calls (rewrite, answer) are served in admission order; it gives its place
back when it ends, or when the client goes away (at the next event).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from typing import Any, TypeVar

from fastapi import APIRouter, HTTPException
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from ...answer import DoneEvent, Turn
from ...llm import ChatQueue, ChatQueueFull, Ticket
from ...service import Assistant, Unavailable
from ..deps import AssistantDep
from ..schemas import ChatRequest, ChatResponse, ErrorBody

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["chat"])
T = TypeVar("T")
_producers: set[asyncio.Future[Any]] = set()  # keeps running stream producers referenced


# Characters many line readers split on (str.splitlines, httpx's iter_lines) though
# SSE does not: sent as JSON escapes, so a quote or question holding one cannot split
# an event's data line.
_LINE_BREAKERS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def _sse(event: str, data: object) -> str:
    payload = json.dumps(data, ensure_ascii=False).translate(_LINE_BREAKERS)
    return f"event: {event}\ndata: {payload}\n\n"


@router.post(
    "/chat",
    response_model=ChatResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "JSON, or with stream=true an event stream: `token` events "
            '(`{"text": …}`) then one `done` event whose data is the full JSON answer.',
        },
        422: {"model": ErrorBody},
        503: {
            "model": ErrorBody,
            "description": "No index (the detail names the command that fixes it), or the chat "
            "model's queue is full (`Retry-After` says when to try again).",
        },
    },
)
async def chat(body: ChatRequest, assistant: AssistantDep) -> ChatResponse | StreamingResponse:
    limit = assistant.settings.max_message_chars
    if len(body.message) > limit:
        raise HTTPException(422, f"message: at most {limit} characters (got {len(body.message)}).")
    max_turns = assistant.settings.max_history_turns
    history = [Turn(t.role, t.content) for t in body.history][-max_turns:] if max_turns else []
    # Fail before anything starts when the index is missing, so the client gets a 503.
    assistant.engine  # noqa: B018 - raises Unavailable
    queue = _queue(assistant)
    ticket = _admit(queue) if queue is not None else None
    if not body.stream:
        if queue is None or ticket is None:
            answer = await run_in_threadpool(assistant.chat, body.message, history)
        else:
            answer = await _run_admitted(queue, ticket, assistant.chat, body.message, history)
        return ChatResponse(**answer.as_dict())
    events: Iterator[str] | AsyncIterator[str]
    if queue is None or ticket is None:
        events = _events(assistant, body.message, history)
    else:
        events = _admitted_events(queue, ticket, assistant, body.message, history)
    return StreamingResponse(
        events,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _queue(assistant: Assistant) -> ChatQueue | None:
    queue = getattr(assistant.chat_model, "queue", None)
    return queue if isinstance(queue, ChatQueue) else None


def _admit(queue: ChatQueue) -> Ticket:
    try:
        return queue.admit()
    except ChatQueueFull as exc:
        log.info("chat refused, queue full: %s", queue.snapshot())
        raise HTTPException(503, str(exc), headers={"Retry-After": str(exc.retry_after)}) from exc


async def _run_admitted(queue: ChatQueue, ticket: Ticket, fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` on a worker thread holding `ticket`, which is given back in every case."""
    started = threading.Event()

    def run() -> T:
        started.set()
        with queue.serving(ticket):
            return fn(*args)

    try:
        return await run_in_threadpool(run)
    finally:
        if not started.is_set():  # cancelled before it ran: nobody else will give it back
            ticket.release()


async def _admitted_events(
    queue: ChatQueue, ticket: Ticket, assistant: Assistant, message: str, history: list[Turn]
) -> AsyncIterator[str]:
    """The SSE events of `_events`, produced on one worker thread that holds `ticket`."""
    loop = asyncio.get_running_loop()
    out: asyncio.Queue[str | None] = asyncio.Queue()
    stop = threading.Event()

    def put(item: str | None) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is listening
            loop.call_soon_threadsafe(out.put_nowait, item)

    def produce() -> None:
        try:
            with queue.serving(ticket):  # gives the ticket back however this ends
                if stop.is_set():
                    return
                events = _events(assistant, message, history)
                try:
                    for chunk in events:
                        if stop.is_set():  # the client went away: stop the model too
                            break
                        put(chunk)
                finally:
                    events.close()
        finally:
            put(None)

    producer = asyncio.ensure_future(run_in_threadpool(produce))
    _producers.add(producer)
    producer.add_done_callback(_producers.discard)
    try:
        while (chunk := await out.get()) is not None:
            yield chunk
    finally:
        stop.set()


def _events(assistant: AssistantDep, message: str, history: list[Turn]) -> Generator[str, None, None]:
    try:
        for event in assistant.chat_stream(message, history):
            if isinstance(event, DoneEvent):
                yield _sse("done", ChatResponse(**event.answer.as_dict()).model_dump())
            else:
                yield _sse("token", {"text": event.text})
    except Unavailable as exc:
        yield _sse("error", {"detail": str(exc)})
    except Exception:  # the stream has started: report, never leave the client hanging
        log.exception("chat stream failed")
        yield _sse("error", {"detail": "The answer failed on the server; try again."})
