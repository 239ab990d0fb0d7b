"""OpenAI-compatible API: `POST /v1/chat/completions` and `GET /v1/models`.

Any OpenAI client or tool can use the assistant as the model `techtransfer-assistant`
(`base_url=http://HOST:PORT/v1`). Behind it is the same chain as `POST /v1/chat`
(rewrite → hybrid retrieval → answer → citation check).

Request
    The OpenAI request shape. Unknown fields are ignored, as OpenAI-compatible servers
    do; `temperature`, `top_p`, `max_tokens`, `max_completion_tokens`, `user`, `tools`…
    are accepted and ignored (the assistant's own settings govern generation).
    Validated: `model` must be `techtransfer-assistant` (else 404 `model_not_found`);
    `messages` must hold at least one user message and end with one, whose text is the
    question (non-empty, at most `ASSISTANT_MAX_MESSAGE_CHARS`, 4,000 by default);
    `n` must be 1. Content is a string or a list of parts; `text` parts are joined with
    newlines (other part types are rejected in the question and skipped in history).
    Earlier `user`/`assistant` messages become the conversation history (the last
    `ASSISTANT_MAX_HISTORY_TURNS` of them). `system`/`developer` messages are ignored:
    the assistant's own prompt governs how it answers and cites, so a client's system
    prompt cannot switch the grounding off. `tool`/`function` messages are ignored too.

Response
    A standard `chat.completion`: `choices[0].message.content` is the checked answer
    text, `finish_reason` is "stop", `usage` holds estimates (the client's messages and
    the answer counted with tiktoken's cl100k_base; the passages the assistant adds to
    its own prompt are not counted). The documented extra field

        "techtransfer": {"citations": [...], "grounded": bool, "backend": str,
                         "notice": str | null, "query": str | null}

    carries the citations, in the same shape as `/v1/chat` (`n`, `chunk_id`, `doc_id`,
    `title`, `quote`, `start`, `end`, `kind`, `published`; `quote ==
    document.text[start:end]`, the `[n]` markers in the text refer to `n`). With the
    official Python client it is `completion.model_extra["techtransfer"]`.

Streaming (`stream: true`) — the design choice
    The final, checked answer can differ from the tokens a model streams: sentences
    whose citations fail the check are removed, and a reply with none left becomes "not
    covered". OpenAI's protocol has no way to take streamed text back, and a plain client
    simply concatenates `delta.content`. So this endpoint buffers: it streams the
    *checked* answer only, never the draft. The first chunk (`delta: {"role":
    "assistant", "content": ""}`) is sent at once; while the answer is being produced,
    SSE comment lines (`: keep-alive`) keep proxies and clients from timing out; then
    the checked answer follows as content deltas (one per sentence or line), and the
    chunk with `finish_reason: "stop"` carries the `techtransfer` extra (it is the last
    chunk, unless `stream_options.include_usage` asks for OpenAI's usage chunk after
    it). The stream ends with `data: [DONE]`. The concatenated deltas are exactly the
    non-streaming `message.content`, so every client shows only checked, cited text.
    Live draft tokens remain available from `POST /v1/chat` (`stream: true`), whose
    final `done` event replaces them.

Errors
    Always OpenAI's body `{"error": {"message", "type", "param", "code"}}`: 400 for an
    invalid request (as OpenAI answers), 401 `invalid_api_key` (see `assistant.api.auth`;
    with `WWW-Authenticate: Bearer`), 404 `model_not_found`, 503 when the index is not
    loaded (the message says how to fix it). A failure after a stream has started is
    sent as a `data: {"error": {...}}` event (the OpenAI client raises it), then `[DONE]`.

Access: the router carries `require_api_key`: open when no keys are configured, else
every request needs `Authorization: Bearer <key>` (the OpenAI client's `api_key`).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from ...answer import Turn
from ...index import IndexProblem
from ...service import NotFound, Unavailable
from ...types import Answer
from ..auth import ApiKeyError, api_key_dependencies, require_api_key
from ..deps import AssistantDep
from ..schemas import MAX_MESSAGE_CHARS, CitationOut

log = logging.getLogger(__name__)

MODEL_ID = "techtransfer-assistant"
MODEL_CREATED = 1735689600  # 2025-01-01T00:00:00Z: fixed, so /v1/models is stable
OWNED_BY = "techtransfer"
MAX_MESSAGES = 500
KEEPALIVE_SECONDS = 10.0
STREAM_FAILED = "The answer failed on the server; try again."


# --------------------------------------------------------------------------- errors


class OpenAIError(Exception):
    """An error answered in OpenAI's shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",  # noqa: A002 - OpenAI's field name
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = dict(headers) if headers else None

    def body(self) -> dict[str, Any]:
        return {
            "error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}
        }

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def _param(loc: Sequence[Any]) -> str | None:
    out = ""
    for part in loc:
        if part == "body":
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or None


def _from_validation(exc: RequestValidationError) -> OpenAIError:
    problems: list[str] = []
    param: str | None = None
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            return OpenAIError(
                400, "We could not parse the JSON body of your request: send a UTF-8 JSON object."
            )
        loc = [p for p in err.get("loc", ()) if p != "body"]
        where = _param(loc)
        param = param or where
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        problems.append(f"{where or 'body'}: {msg}")
    return OpenAIError(400, "; ".join(problems) or "Invalid request.", param=param)


def _from_exception(exc: Exception) -> OpenAIError | None:
    """The OpenAI-shaped error for an exception, or None to let it propagate."""
    if isinstance(exc, OpenAIError):
        return exc
    if isinstance(exc, RequestValidationError):
        return _from_validation(exc)
    if isinstance(exc, ApiKeyError):
        return OpenAIError(401, str(exc.detail), code=exc.code, headers=exc.headers)
    if isinstance(exc, StarletteHTTPException):
        detail = str(exc.detail)
        if exc.status_code == 400 and detail == "There was an error parsing the body":
            return OpenAIError(
                400, "We could not parse the JSON body of your request: send a UTF-8 JSON object."
            )
        kind = "invalid_request_error" if exc.status_code < 500 else "server_error"
        return OpenAIError(exc.status_code, detail, type=kind, headers=exc.headers)
    if isinstance(exc, (Unavailable, IndexProblem)):
        return OpenAIError(
            503, str(exc), type="server_error", code="service_unavailable", headers={"Retry-After": "30"}
        )
    if isinstance(exc, NotFound):
        return OpenAIError(404, str(exc), code="not_found")
    return None


class OpenAIRoute(APIRoute):
    """A route whose errors, from its dependencies (the API key) included, are OpenAI-shaped.

    The app's own handlers answer `{"detail": …}`; OpenAI clients read `{"error": {…}}`.
    Converting here keeps the app's handlers untouched for every other router. The API
    key is checked before the body is parsed (and again, as the router's dependency,
    which costs nothing and keeps the rule visible where the routes are declared).
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                # FastAPI parses the body before it runs dependencies: check the key
                # first, so that a caller without one learns nothing but "401".
                require_api_key(request)
                return await handler(request)
            except Exception as exc:
                error = _from_exception(exc)
                if error is None:
                    log.exception("OpenAI-compatible request failed")
                    error = OpenAIError(500, STREAM_FAILED, type="server_error")
                return error.response()

        return route


router = APIRouter(
    prefix="/v1",
    tags=["openai"],
    route_class=OpenAIRoute,
    dependencies=api_key_dependencies(),
)


# --------------------------------------------------------------------------- request


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: StrictBool | None = None


class ChatCompletionRequest(BaseModel):
    """OpenAI's request; fields not listed here are ignored."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(..., description=f"Must be `{MODEL_ID}`.")
    messages: list[ChatMessage] = Field(
        ...,
        min_length=1,
        max_length=MAX_MESSAGES,
        description="The last message is the question (role user); earlier user/assistant "
        "messages are the history; system/developer/tool messages are ignored.",
    )
    stream: StrictBool | None = Field(False, description="Server-sent chat.completion.chunk events.")
    stream_options: StreamOptions | None = None
    n: StrictInt | None = Field(None, description="Only 1 is supported.")
    temperature: float | None = Field(None, description="Accepted and ignored.")
    top_p: float | None = Field(None, description="Accepted and ignored.")
    max_tokens: int | None = Field(None, description="Accepted and ignored.")
    max_completion_tokens: int | None = Field(None, description="Accepted and ignored.")
    user: str | None = Field(None, description="Accepted and ignored.")


@dataclass
class ParsedChat:
    question: str
    history: list[Turn]
    texts: list[str] = field(default_factory=list)  # every message's text, for usage


def _text(message: ChatMessage, index: int, *, strict: bool) -> str:
    content = message.content
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    texts: list[str] = []
    for j, part in enumerate(content):
        if part.type == "text" and part.text is not None:
            texts.append(part.text)
        elif strict:
            raise OpenAIError(
                400,
                f"messages[{index}].content[{j}]: only text content parts are supported (got {part.type!r}).",
                param=f"messages[{index}].content[{j}].type",
            )
    return "\n".join(texts)


def parse_chat_request(
    body: ChatCompletionRequest,
    *,
    max_message_chars: int = MAX_MESSAGE_CHARS,
    max_history_turns: int = 20,
) -> ParsedChat:
    """The question and the history from an OpenAI request; `OpenAIError` when unusable."""
    if body.model != MODEL_ID:
        raise OpenAIError(
            404,
            f"The model {body.model!r} does not exist; this server serves {MODEL_ID!r} (GET /v1/models).",
            param="model",
            code="model_not_found",
        )
    if body.n not in (None, 1):
        raise OpenAIError(400, f"n: only 1 choice is supported (got {body.n}).", param="n")
    messages = body.messages
    if not any(m.role == "user" for m in messages):
        raise OpenAIError(400, "messages: at least one message with role 'user' is required.", param="messages")
    last = len(messages) - 1
    if messages[last].role != "user":
        raise OpenAIError(
            400,
            f"messages[{last}]: the last message must have role 'user' (the question), not {messages[last].role!r}.",
            param=f"messages[{last}].role",
        )
    question = _text(messages[last], last, strict=True)
    where = f"messages[{last}].content"
    if not question.strip():
        raise OpenAIError(400, f"{where}: the question must not be empty or only whitespace.", param=where)
    if "\x00" in question:
        raise OpenAIError(400, f"{where}: must not contain NUL characters.", param=where)
    if len(question) > max_message_chars:
        raise OpenAIError(
            400,
            f"{where}: at most {max_message_chars} characters (got {len(question)}).",
            param=where,
            code="string_above_max_length",
        )
    texts = [_text(m, i, strict=False) for i, m in enumerate(messages[:last])]
    turns = [
        (i, Turn(m.role, t))
        for i, (m, t) in enumerate(zip(messages[:last], texts, strict=True))
        if m.role in ("user", "assistant") and t.strip()
    ]
    turns = turns[-max_history_turns:] if max_history_turns else []
    for i, turn in turns:
        if len(turn.content) > max_message_chars * 4:
            raise OpenAIError(
                400,
                f"messages[{i}].content: at most {max_message_chars * 4} characters in an earlier message "
                f"(got {len(turn.content)}).",
                param=f"messages[{i}].content",
                code="string_above_max_length",
            )
        if "\x00" in turn.content:
            raise OpenAIError(400, f"messages[{i}].content: must not contain NUL characters.",
                              param=f"messages[{i}].content")
    return ParsedChat(question, [t for _, t in turns], [*texts, question])


# --------------------------------------------------------------------------- response


class TechTransferExtra(BaseModel):
    """The extra field: what `/v1/chat` returns besides the answer text."""

    citations: list[CitationOut]
    grounded: bool
    backend: str
    notice: str | None = None
    query: str | None = None


class CompletionMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class CompletionChoice(BaseModel):
    index: int = 0
    message: CompletionMessage
    logprobs: None = None
    finish_reason: Literal["stop"] = "stop"


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str = MODEL_ID
    choices: list[CompletionChoice]
    usage: Usage
    techtransfer: TechTransferExtra = Field(
        ..., description="Citations and grounding: the same fields as POST /v1/chat."
    )


class ModelCard(BaseModel):
    id: str = MODEL_ID
    object: Literal["model"] = "model"
    created: int = MODEL_CREATED
    owned_by: str = OWNED_BY


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class OpenAIErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class OpenAIErrorBody(BaseModel):
    error: OpenAIErrorDetail


ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": OpenAIErrorBody} for status in (400, 401, 404, 503)
}


def extra(answer: Answer) -> dict[str, Any]:
    return TechTransferExtra(
        citations=[CitationOut(**c.as_dict()) for c in answer.citations],
        grounded=answer.grounded,
        backend=answer.backend,
        notice=answer.notice or None,
        query=answer.query,
    ).model_dump()


@functools.lru_cache(maxsize=1)
def _counter() -> Callable[[str], int]:
    try:
        from ...chunking import tiktoken_counter

        count = tiktoken_counter()
        count("probe")
        return count
    except Exception as exc:  # no tiktoken cache offline: a rough estimate will do
        log.warning("tiktoken unavailable, usage is estimated from characters: %s", exc)
        return lambda text: (len(text.encode("utf-8")) + 3) // 4


def usage(parsed: ParsedChat, answer_text: str) -> Usage:
    count = _counter()
    prompt = sum(count(t) for t in parsed.texts if t)
    completion = count(answer_text) if answer_text else 0
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


_PIECE_END = re.compile(r"(?<=[。！？；!?\n])|(?<=[.;:])(?=\s)")


def pieces(text: str) -> list[str]:
    """The answer cut after sentences and lines; `"".join(pieces(t)) == t`."""
    return [p for p in _PIECE_END.split(text) if p]


# --------------------------------------------------------------------------- routes


@router.get("/models", response_model=ModelList, responses=ERRORS)
def list_models() -> ModelList:
    return ModelList(data=[ModelCard()])


@router.get("/models/{model_id}", response_model=ModelCard, responses=ERRORS)
def get_model(model_id: str) -> ModelCard:
    if model_id != MODEL_ID:
        raise OpenAIError(
            404, f"The model {model_id!r} does not exist.", param="model", code="model_not_found"
        )
    return ModelCard()


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    responses={
        **ERRORS,
        200: {
            "content": {"text/event-stream": {}},
            "description": "A chat.completion, or with stream=true chat.completion.chunk events "
            "(the checked answer; the finish chunk carries `techtransfer`) then `data: [DONE]`.",
        },
    },
)
async def chat_completions(
    body: ChatCompletionRequest, assistant: AssistantDep
) -> ChatCompletion | StreamingResponse:
    settings = assistant.settings
    parsed = parse_chat_request(
        body,
        max_message_chars=settings.max_message_chars,
        max_history_turns=settings.max_history_turns,
    )
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    if not body.stream:
        answer = await run_in_threadpool(assistant.chat, parsed.question, parsed.history)
        return ChatCompletion(
            id=completion_id,
            created=created,
            choices=[CompletionChoice(message=CompletionMessage(content=answer.answer))],
            usage=usage(parsed, answer.answer),
            techtransfer=TechTransferExtra(**extra(answer)),
        )
    # Fail before the stream starts when the index is missing, so the client gets a 503.
    assistant.engine  # noqa: B018 - raises Unavailable
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    return StreamingResponse(
        _chunks(assistant, parsed, completion_id, created, include_usage),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


# Line separators that line readers split on though SSE does not (see routers/chat.py).
_LINE_BREAKERS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def _data(payload: object) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False).translate(_LINE_BREAKERS)}\n\n"


async def _chunks(
    assistant: AssistantDep,
    parsed: ParsedChat,
    completion_id: str,
    created: int,
    include_usage: bool,
) -> AsyncIterator[str]:
    def chunk(delta: dict[str, Any], finish: str | None = None, **more: Any) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": MODEL_ID,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if include_usage:
            data["usage"] = None
        data.update(more)
        return data

    yield _data(chunk({"role": "assistant", "content": ""}))
    task = asyncio.ensure_future(run_in_threadpool(assistant.chat, parsed.question, parsed.history))
    # If the client goes away, the answer still finishes in its thread: retrieve its error.
    task.add_done_callback(lambda t: t.cancelled() or t.exception())
    try:
        while not task.done():
            await asyncio.wait({task}, timeout=KEEPALIVE_SECONDS)
            if not task.done():
                yield ": keep-alive\n\n"
        answer = task.result()
    except Exception as exc:  # the stream has started: report, never leave the client hanging
        error = _from_exception(exc) if isinstance(exc, (Unavailable, IndexProblem)) else None
        if error is None:
            log.exception("chat completion stream failed")
            error = OpenAIError(500, STREAM_FAILED, type="server_error")
        yield _data(error.body())
        yield "data: [DONE]\n\n"
        return
    for piece in pieces(answer.answer):
        yield _data(chunk({"content": piece}))
    yield _data(chunk({}, "stop", techtransfer=extra(answer)))
    if include_usage:
        final = chunk({}, usage=usage(parsed, answer.answer).model_dump())
        final["choices"] = []
        yield _data(final)
    yield "data: [DONE]\n\n"
