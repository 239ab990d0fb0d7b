"""OpenAI-compatible API: `POST /v1/chat/completions` and `GET /v1/models`.

The request is parsed into a question and a history (OpenAI's 400 for what cannot be a
chat), then admitted like every other face (`assistant.admission`: 422 over the
message limit, 503 + `Retry-After` when the model's queue is full or no index is
loaded). Responses are `openai.types.chat` models; the citations ride in the documented
extra field `techtransfer`. Errors are always OpenAI's `{"error": {…}}` shape. README.md
("OpenAI-compatible API") describes the contract, streaming included.
"""

from __future__ import annotations

import functools
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from openai.types import CompletionUsage, Model
from openai.types.chat import ChatCompletion, ChatCompletionChunk, ChatCompletionMessage
from openai.types.chat.chat_completion import Choice
from openai.types.chat.chat_completion_chunk import Choice as ChunkChoice
from openai.types.chat.chat_completion_chunk import ChoiceDelta
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt
from sse_starlette import ServerSentEvent
from starlette.exceptions import HTTPException as StarletteHTTPException

from assistant.admission import AdmittedTurn, admit
from assistant.errors import AssistantError, InvalidInput
from assistant.pipeline.answer import DoneEvent, SourcesEvent, Turn
from assistant.types import Answer
from assistant.web.api import sse
from assistant.web.api.auth import ApiKeyError, api_key_dependencies, require_api_key
from assistant.web.api.deps import AssistantDep
from assistant.web.api.schemas import CitationOut

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
    if isinstance(exc, AssistantError):
        kind = "invalid_request_error" if exc.status < 500 else "server_error"
        code = {404: "not_found", 422: "invalid_value", 503: "service_unavailable"}.get(exc.status)
        return OpenAIError(exc.status, str(exc), type=kind, code=code, headers=exc.headers() or None)
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
    # For each history turn, the index of the message it came from (for error params).
    history_index: list[int] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)  # every message's text, for usage

    @property
    def last(self) -> int:
        return len(self.texts) - 1


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


def parse_chat_request(body: ChatCompletionRequest) -> ParsedChat:
    """The question and the history from an OpenAI request; `OpenAIError` when it is no chat.

    Lengths are not checked here: admission checks them, the same way for every face.
    """
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
    texts = [_text(m, i, strict=False) for i, m in enumerate(messages[:last])]
    turns = [
        (i, Turn(m.role, t))
        for i, (m, t) in enumerate(zip(messages[:last], texts, strict=True))
        if m.role in ("user", "assistant") and t.strip()
    ]
    return ParsedChat(question, [t for _, t in turns], [i for i, _ in turns], [*texts, question])


def admit_parsed(assistant: AssistantDep, parsed: ParsedChat) -> AdmittedTurn:
    """`admission.admit`, with an invalid field named as the OpenAI message it came from."""
    try:
        return admit(assistant, parsed.question, parsed.history)
    except InvalidInput as exc:
        param = exc.field or "messages"
        if param == "message":
            param = f"messages[{parsed.last}].content"
        elif (found := re.match(r"history\.(\d+)\.", param)) is not None:
            param = f"messages[{parsed.history_index[int(found.group(1))]}].content"
        message = str(exc).replace(exc.field or "\0", param, 1)
        raise OpenAIError(422, message, param=param, code="string_above_max_length") from exc


# --------------------------------------------------------------------------- response


class TechTransferExtra(BaseModel):
    """The extra field: what `/v1/chat` returns besides the answer text."""

    citations: list[CitationOut]
    grounded: bool
    backend: str
    notice: str | None = None
    query: str | None = None
    related: list[CitationOut] = Field(default_factory=list)


class TechTransferCompletion(ChatCompletion):
    """OpenAI's `chat.completion` with the documented extra field."""

    techtransfer: TechTransferExtra = Field(
        ..., description="Citations and grounding: the same fields as POST /v1/chat."
    )


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Model]


class OpenAIErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class OpenAIErrorBody(BaseModel):
    error: OpenAIErrorDetail


ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": OpenAIErrorBody} for status in (400, 401, 404, 422, 503)
}


def _model_card() -> Model:
    return Model(id=MODEL_ID, object="model", created=MODEL_CREATED, owned_by=OWNED_BY)


def extra(answer: Answer) -> TechTransferExtra:
    return TechTransferExtra(
        citations=[CitationOut(**c.as_dict()) for c in answer.citations],
        grounded=answer.grounded,
        backend=answer.backend,
        notice=answer.notice or None,
        query=answer.query,
        related=[CitationOut(**c.as_dict()) for c in answer.related],
    )


@functools.lru_cache(maxsize=1)
def _counter() -> Callable[[str], int]:
    from assistant.pipeline.chunking import tiktoken_or

    return tiktoken_or(lambda text: (len(text.encode("utf-8")) + 3) // 4, "usage is")


def usage(parsed: ParsedChat, answer_text: str) -> CompletionUsage:
    """Estimates: the client's messages and the answer (the passages we add are not counted)."""
    count = _counter()
    prompt = sum(count(t) for t in parsed.texts if t)
    completion = count(answer_text) if answer_text else 0
    return CompletionUsage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


_PIECE_END = re.compile(r"(?<=[。！？；!?\n])|(?<=[.;:])(?=\s)")


def pieces(text: str) -> list[str]:
    """The answer cut after sentences and lines; `"".join(pieces(t)) == t`."""
    return [p for p in _PIECE_END.split(text) if p]


# --------------------------------------------------------------------------- routes


@router.get("/models", response_model=ModelList, response_model_exclude_unset=True, responses=ERRORS)
def list_models() -> ModelList:
    return ModelList(object="list", data=[_model_card()])


@router.get("/models/{model_id}", response_model=Model, response_model_exclude_unset=True, responses=ERRORS)
def get_model(model_id: str) -> Model:
    if model_id != MODEL_ID:
        raise OpenAIError(
            404, f"The model {model_id!r} does not exist.", param="model", code="model_not_found"
        )
    return _model_card()


@router.post(
    "/chat/completions",
    response_model=TechTransferCompletion,
    response_model_exclude_unset=True,
    responses={
        **ERRORS,
        200: {
            "content": {"text/event-stream": {}},
            "description": "A chat.completion, or with stream=true chat.completion.chunk events "
            "(the checked answer; the finish chunk carries `techtransfer`) then `data: [DONE]`.",
        },
    },
)
async def chat_completions(body: ChatCompletionRequest, assistant: AssistantDep) -> Response | TechTransferCompletion:
    parsed = parse_chat_request(body)
    turn = admit_parsed(assistant, parsed)
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    if not body.stream:
        answer = await turn.aanswer()
        return TechTransferCompletion(
            id=completion_id,
            object="chat.completion",
            created=created,
            model=MODEL_ID,
            choices=[
                Choice(
                    index=0,
                    message=ChatCompletionMessage(role="assistant", content=answer.answer),
                    logprobs=None,
                    finish_reason="stop",
                )
            ],
            usage=usage(parsed, answer.answer),
            techtransfer=extra(answer),
        )
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    return sse.stream(_chunks(turn, parsed, completion_id, created, include_usage), keepalive=KEEPALIVE_SECONDS)


async def _chunks(
    turn: AdmittedTurn, parsed: ParsedChat, completion_id: str, created: int, include_usage: bool
) -> AsyncIterator[ServerSentEvent]:
    """The checked answer as chunks: OpenAI's protocol cannot take streamed text back.

    So the draft is never sent: the first chunk goes as soon as retrieval is done and
    carries the passages as `techtransfer.sources`, keep-alive comments while the answer
    is produced, then the checked answer in pieces and a finish chunk with `techtransfer`;
    the concatenated deltas equal the non-streaming `message.content`.
    """

    def chunk(delta: ChoiceDelta, finish: Literal["stop"] | None = None, **more: Any) -> ServerSentEvent:
        data = ChatCompletionChunk(
            id=completion_id,
            object="chat.completion.chunk",
            created=created,
            model=MODEL_ID,
            choices=[ChunkChoice(index=0, delta=delta, logprobs=None, finish_reason=finish)],
        ).model_dump(exclude_unset=True)
        if include_usage:
            data["usage"] = None
        data.update(more)
        return sse.event(None, data)

    answer: Answer | None = None
    first = True
    try:
        async for event in turn.aevents():
            if isinstance(event, SourcesEvent) and first:
                first = False
                yield chunk(ChoiceDelta(role="assistant", content=""), techtransfer=event.as_dict())
            elif isinstance(event, DoneEvent):
                answer = event.answer
        if answer is None:
            raise RuntimeError("the answer stream ended without an answer")
    except Exception as exc:  # the stream has started: report, never leave the client hanging
        error = _from_exception(exc) if isinstance(exc, AssistantError) else None
        if error is None:
            log.exception("chat completion stream failed")
            error = OpenAIError(500, STREAM_FAILED, type="server_error")
        yield sse.event(None, error.body())
        yield sse.event(None, "[DONE]")
        return
    if first:  # no retrieval ran (a recommendation): the role chunk still goes first
        yield chunk(ChoiceDelta(role="assistant", content=""), techtransfer={"sources": []})
    for piece in pieces(answer.answer):
        yield chunk(ChoiceDelta(content=piece))
    yield chunk(ChoiceDelta(), "stop", techtransfer=extra(answer).model_dump())
    if include_usage:
        final = ChatCompletionChunk(
            id=completion_id, object="chat.completion.chunk", created=created, model=MODEL_ID, choices=[],
            usage=usage(parsed, answer.answer),
        ).model_dump(exclude_unset=True)
        yield sse.event(None, final)
    yield sse.event(None, "[DONE]")
