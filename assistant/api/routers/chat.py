"""POST /v1/chat: a cited answer, as JSON or as a server-sent event stream."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

from fastapi import APIRouter, HTTPException
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from ...answer import DoneEvent, Turn
from ...service import Unavailable
from ..deps import AssistantDep
from ..schemas import ChatRequest, ChatResponse, ErrorBody

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["chat"])


def _sse(event: str, data: object) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


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
        503: {"model": ErrorBody},
    },
)
async def chat(body: ChatRequest, assistant: AssistantDep) -> ChatResponse | StreamingResponse:
    limit = assistant.settings.max_message_chars
    if len(body.message) > limit:
        raise HTTPException(422, f"message: at most {limit} characters (got {len(body.message)}).")
    max_turns = assistant.settings.max_history_turns
    history = [Turn(t.role, t.content) for t in body.history][-max_turns:] if max_turns else []
    if not body.stream:
        answer = await run_in_threadpool(assistant.chat, body.message, history)
        return ChatResponse(**answer.as_dict())
    # Fail before the stream starts when the index is missing, so the client gets a 503.
    assistant.engine  # noqa: B018 - raises Unavailable
    return StreamingResponse(
        _events(assistant, body.message, history),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _events(assistant: AssistantDep, message: str, history: list[Turn]) -> Iterator[str]:
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
