"""Server-sent events for every streaming face, through `sse-starlette`.

`/v1/chat` and the widget send named events (`sources`, `token`, `done`, `error`) whose
data is one JSON line; the OpenAI-compatible API sends unnamed `data:` events and
`data: [DONE]`. Idle streams carry `: keep-alive` comments so proxies keep them open.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, Iterator, Mapping

from sse_starlette import EventSourceResponse, ServerSentEvent

KEEPALIVE_SECONDS = 10.0
# "\n" rather than sse-starlette's "\r\n": simple line readers split events on blank lines.
SEP = "\n"

# Characters many line readers split on (str.splitlines, httpx's iter_lines) though
# SSE does not: sent as JSON escapes, so a quote or question holding one cannot split
# an event's data line.
_LINE_BREAKERS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def json_line(data: object) -> str:
    """`data` as one line of JSON, non-ASCII kept, line separators escaped."""
    return json.dumps(data, ensure_ascii=False).translate(_LINE_BREAKERS)


def event(name: str | None, data: object) -> ServerSentEvent:
    """One event; `name` None for OpenAI's unnamed `data:` events; a str `data` is sent as is."""
    return ServerSentEvent(data=data if isinstance(data, str) else json_line(data), event=name, sep=SEP)


def stream(
    events: AsyncIterable[ServerSentEvent] | Iterator[ServerSentEvent],
    *,
    headers: Mapping[str, str] | None = None,
    keepalive: float = KEEPALIVE_SECONDS,
) -> EventSourceResponse:
    """The response for `events`, with keep-alive comments every `keepalive` seconds (0: none)."""
    return EventSourceResponse(
        events,
        sep=SEP,
        ping=keepalive,
        ping_message_factory=lambda: ServerSentEvent(comment="keep-alive", sep=SEP),
        headers={"Cache-Control": "no-cache", **(headers or {})},
    )
