"""How an admitted chat turn goes back over HTTP, for `/v1/chat` and the widget alike.

Without `stream` the answer is one JSON `ChatResponse`. With it, an event stream: one
`sources` event as soon as retrieval is done (`{"sources": [{"n", "chunk_id", "doc_id",
"title", "kind", "published", "page", "text"}]}`), `token` events (`{"text": …}`, the draft
as the model writes it), then one `done` event whose data is the full checked answer, or
one `error` event (`{"detail": …}`) when the turn fails after the stream has started.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from fastapi.responses import JSONResponse, Response
from sse_starlette import ServerSentEvent

from assistant.admission import AdmittedTurn
from assistant.errors import AssistantError
from assistant.pipeline.answer import DoneEvent, SourcesEvent
from assistant.web.api import sse
from assistant.web.api.schemas import ChatResponse

log = logging.getLogger(__name__)
FAILED = "The answer failed on the server; try again."
Link = Callable[[dict[str, Any]], str]  # a citation -> the URL of its passage page


async def respond(
    turn: AdmittedTurn,
    *,
    stream: bool,
    headers: Mapping[str, str] | None = None,
    on_end: Callable[[int], None] | None = None,
    link: Link | None = None,
) -> Response:
    """The answer to `turn` as JSON or as events; `on_end(status)` runs when it is over.

    With `link`, every citation (and related passage) also gets `url`: `link(citation)`,
    the page that shows it (the widget's signed passage links).
    """
    if not stream:
        try:
            answer = await turn.aanswer()
        except AssistantError as exc:
            if on_end:
                on_end(exc.status)
            raise
        except Exception:
            if on_end:
                on_end(500)
            raise
        if on_end:
            on_end(200)
        return JSONResponse(_answer_data(answer.as_dict(), link), headers=dict(headers or {}))
    # No keep-alive comments: `token` events flow as the model writes, and line readers of
    # this stream (the widget, scripts) expect only events.
    return sse.stream(_events(turn, on_end, link), headers=headers, keepalive=0)


def _answer_data(answer: dict[str, Any], link: Link | None) -> dict[str, Any]:
    data = ChatResponse(**answer).model_dump()
    if link is not None:
        for citation in [*data["citations"], *data["related"]]:
            citation["url"] = link(citation)
    return data


async def _events(
    turn: AdmittedTurn, on_end: Callable[[int], None] | None, link: Link | None = None
) -> AsyncIterator[ServerSentEvent]:
    status = 499  # the client went away before the end
    try:
        async for event in turn.aevents():
            if isinstance(event, DoneEvent):
                status = 200
                yield sse.event("done", _answer_data(event.answer.as_dict(), link))
            elif isinstance(event, SourcesEvent):
                yield sse.event("sources", event.as_dict())
            else:
                yield sse.event("token", {"text": event.text})
    except AssistantError as exc:
        status = exc.status
        yield sse.event("error", {"detail": str(exc)})
    except Exception:  # the stream has started: report, never leave the client hanging
        log.exception("chat stream failed")
        status = 500
        yield sse.event("error", {"detail": FAILED})
    finally:
        if on_end:
            try:
                on_end(status)
            except Exception:
                log.exception("could not record the end of a chat turn")
