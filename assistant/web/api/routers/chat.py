"""POST /v1/chat: a cited answer, as JSON or as a server-sent event stream.

The turn is admitted first (`assistant.admission.admit`): a message over the configured
limit is 422, no index or a full model queue is 503 with `Retry-After`, before any
stream starts.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from assistant.admission import admit
from assistant.pipeline.answer import Turn
from assistant.web.api.deps import AssistantDep
from assistant.web.api.schemas import ChatRequest, ChatResponse, ErrorBody
from assistant.web.api.turns import respond

router = APIRouter(prefix="/v1", tags=["chat"])


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
async def chat(body: ChatRequest, assistant: AssistantDep) -> Response:
    history = [Turn(t.role, t.content) for t in body.history]
    turn = admit(assistant, body.message, history)
    return await respond(turn, stream=body.stream)
