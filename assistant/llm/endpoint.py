"""Any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, llama.cpp's server, …).

The client is the chat model `langchain.chat_models.init_chat_model` builds for the
"openai" provider (langchain-openai's `ChatOpenAI`) pointed at the configured base URL; it
is built on first use, so constructing a backend does no network I/O. The messages, already
rendered by the answer stage, go in as LangChain messages and the text is read straight off
the model's stream: there is no prompt template or output parser at this level.
`continue_stream` sends a text already in the model's chat format to the completions
endpoint (through the `openai` client), for a server that runs a known model file.

`ASSISTANT_LLM_TIMEOUT` bounds each wait (to connect, for the first token, between tokens),
`ASSISTANT_LLM_DEADLINE` the whole call, streamed answer included; a stream that ends
without a `finish_reason`, or with no text at all, is a failure too (a cut connection or a
garbage answer, not a short reply).
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Literal

from assistant.llm.base import ChatModelError, Message, _describe, _redact, _safe_url
from assistant.llm.guard import _guarded
from assistant.llm.queue import ChatQueue

JsonMode = Literal["json_schema", "json_object", "llama", "none"]


class OpenAIChatModel:
    """An OpenAI-compatible endpoint, through the chat model `init_chat_model` builds."""

    def __init__(
        self,
        *,
        base_url: str | None,
        api_key: str,
        model: str,
        timeout: float,
        backend: str = "openai",
        queue: ChatQueue | None = None,
        deadline: float | None = None,
        json_mode: JsonMode = "json_schema",
        bias_by_text: bool | None = None,
    ) -> None:
        self._base_url = base_url
        self._api_key = api_key
        self._model = model
        self._timeout = timeout
        self._deadline = deadline  # None: only the per-wait timeout
        self._backend = backend
        self._client: Any = None
        self._raw: Any = None  # the `openai` client, for `continue_stream`
        self._lock = threading.Lock()
        self.queue = queue
        self.json_mode = json_mode
        # Whether the server takes `logit_bias` keyed by token text (llama-cpp-python's
        # `logit_bias_type: tokens`); by default only a server named as llama-cpp-python.
        self.bias_by_text = json_mode == "llama" if bias_by_text is None else bias_by_text

    @property
    def backend(self) -> str:
        return self._backend

    def response_format(self, schema: dict[str, Any] | None) -> dict[str, Any] | None:
        """What to send as `response_format` for `schema` (None: ask for free text).

        `json_schema` is OpenAI's structured output (vLLM and recent servers take it too);
        `llama` is llama-cpp-python's server, which takes a schema inside `json_object`
        and turns it into a grammar; `json_object` is plain JSON mode; `none` sends
        nothing and the prompt alone asks for JSON.
        """
        if schema is None or self.json_mode == "none":
            return None
        if self.json_mode == "llama":
            return {"type": "json_object", "schema": schema}
        if self.json_mode == "json_object":
            return {"type": "json_object"}
        return {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": True}}

    def _llm(  # type: ignore[no-untyped-def]
        self,
        max_tokens: int,
        schema: dict[str, Any] | None = None,
        token_bias: Mapping[str, float] | None = None,
    ):
        from langchain.chat_models import init_chat_model

        if not self._model:
            # init_chat_model takes an empty name to mean "choose the model at call time"
            # and would only fail once asked; say what is wrong instead.
            raise ChatModelError("No chat model name to ask the endpoint for; set ASSISTANT_MODEL.")
        with self._lock:
            if self._client is None:
                self._client = init_chat_model(
                    self._model,
                    model_provider="openai",
                    base_url=self._base_url,
                    api_key=self._api_key,
                    temperature=0,
                    timeout=self._timeout,
                    # No retries: a failed call falls back to extractive at once instead of
                    # waiting out more timeouts.
                    max_retries=0,
                    streaming=True,
                )
        extra: dict[str, Any] = {}
        response_format = self.response_format(schema)
        if response_format is not None:
            # Through `extra_body`: LangChain would route a `response_format` argument to the
            # SDK's parse helper, which does not know llama.cpp's schema-in-json_object form.
            extra["response_format"] = response_format
        extra.update(self._bias_fields(token_bias))
        if not extra:
            return self._client.bind(max_tokens=max_tokens)
        return self._client.bind(max_tokens=max_tokens, extra_body=extra)

    def stream(
        self,
        messages: list[Message],
        *,
        max_tokens: int,
        schema: dict[str, Any] | None = None,
        token_bias: Mapping[str, float] | None = None,
        prefix: str = "",
    ) -> Iterator[str]:
        # `prefix` is ignored: the chat API has no way to write the start of the model's
        # reply, and a trailing assistant message would make most servers start a new one.
        if self.queue is None:
            yield from self._stream(messages, max_tokens, schema, token_bias)
            return
        with self.queue.turn():
            yield from self._stream(messages, max_tokens, schema, token_bias)

    def _stream(
        self,
        messages: list[Message],
        max_tokens: int,
        schema: dict[str, Any] | None = None,
        token_bias: Mapping[str, float] | None = None,
    ) -> Iterator[str]:
        def pieces() -> Iterator[tuple[str, bool]]:
            for chunk in self._llm(max_tokens, schema, token_bias).stream(_to_lc(_guarded(messages))):
                text = chunk.content if isinstance(chunk.content, str) else ""
                yield text, bool(chunk.response_metadata.get("finish_reason"))

        yield from self._read(pieces)

    def continue_stream(
        self,
        prompt: str,
        *,
        max_tokens: int,
        stop: Sequence[str] = (),
        token_bias: Mapping[str, float] | None = None,
    ) -> Iterator[str]:
        """The model's continuation of `prompt`, a text already in the model's chat format
        (the completions endpoint: the server applies no template), so the prompt may end
        inside the assistant's reply. Same timeouts, errors and checks as `stream`."""

        def pieces() -> Iterator[tuple[str, bool]]:
            extra = self._bias_fields(token_bias)
            chunks = self._completions().create(
                model=self._model,
                prompt=prompt,
                max_tokens=max_tokens,
                temperature=0,
                stop=list(stop) or None,
                stream=True,
                extra_body=extra or None,
            )
            try:
                for chunk in chunks:
                    choice = chunk.choices[0] if chunk.choices else None
                    if choice is not None:
                        yield choice.text or "", bool(choice.finish_reason)
            finally:
                chunks.close()

        yield from self._read(pieces)

    def _bias_fields(self, token_bias: Mapping[str, float] | None) -> dict[str, Any]:
        """The request fields that carry `token_bias`, where this server reads them."""
        if not token_bias or not self.bias_by_text:
            return {}
        # llama-cpp-python's server tokenizes the keys itself (`logit_bias_type`); other
        # endpoints take token ids of a vocabulary this client does not know.
        return {"logit_bias": dict(token_bias), "logit_bias_type": "tokens"}

    def _completions(self) -> Any:
        """The `openai` client's completions resource, built on first use."""
        with self._lock:
            if self._raw is None:
                import openai

                self._raw = openai.OpenAI(
                    base_url=self._base_url, api_key=self._api_key, timeout=self._timeout, max_retries=0
                )
        return self._raw.completions

    def _read(self, pieces: Callable[[], Iterator[tuple[str, bool]]]) -> Iterator[str]:
        """The text of `pieces()` ((text, finished) per chunk) with the deadline applied and
        every failure turned into a `ChatModelError`."""
        where = _safe_url(self._base_url)
        deadline = time.monotonic() + self._deadline if self._deadline else math.inf
        finished = False
        got_text = False
        chunks: Iterator[tuple[str, bool]] | None = None
        try:
            chunks = pieces()
            for text, done in chunks:
                finished = finished or done
                if text:
                    got_text = True
                    yield text
                if time.monotonic() > deadline:
                    raise ChatModelError(
                        f"The chat model at {where} did not finish its answer within "
                        f"{self._deadline:g} s (ASSISTANT_LLM_DEADLINE)."
                    )
        except ChatModelError:
            raise
        except Exception as exc:  # any client/transport error means "no model answer"
            raise ChatModelError(
                _redact(_describe(exc, where, midway=got_text), self._api_key)
            ) from exc
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    close()  # stop reading: the connection goes back or is dropped
        if not got_text:
            raise ChatModelError(f"The chat model at {where} returned no text.")
        if not finished:
            raise ChatModelError(
                f"The chat model at {where} stopped mid-answer (the stream ended without a finish reason)."
            )

    def complete(self, messages: list[Message], *, max_tokens: int) -> str:
        return "".join(self.stream(messages, max_tokens=max_tokens))

    def ready(self) -> tuple[bool, str]:
        return True, f"{self._backend} model {self._model}"

    def close(self) -> None:
        self._client = self._raw = None


def _to_lc(messages: list[Message]):  # type: ignore[no-untyped-def]
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

    kinds = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
    return [kinds[m["role"]](content=m["content"]) for m in messages]


