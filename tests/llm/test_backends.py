"""Chat model backends: configuration errors, and a dead endpoint falling back cleanly."""

from __future__ import annotations

import socket

import pytest

from assistant.llm import build_chat_model
from assistant.llm.base import ChatModelError
from assistant.llm.endpoint import OpenAIChatModel
from assistant.service import Assistant
from tests.conftest import make_settings
from tests.fake_llm_server import fake_llm


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_extractive_has_no_model() -> None:
    assert build_chat_model(make_settings(ASSISTANT_LLM="extractive")) is None


def test_openai_without_key_or_url_says_what_to_set() -> None:
    with pytest.raises(ChatModelError, match="OPENAI_API_KEY"):
        build_chat_model(make_settings(ASSISTANT_LLM="openai", OPENAI_API_KEY="", OPENAI_BASE_URL=""))


def test_building_a_client_does_no_network_io() -> None:
    model = build_chat_model(
        make_settings(ASSISTANT_LLM="openai", OPENAI_BASE_URL=f"http://127.0.0.1:{_closed_port()}/v1")
    )
    assert isinstance(model, OpenAIChatModel) and model.ready()[0]


def test_unreachable_endpoint_raises_a_clear_error() -> None:
    model = OpenAIChatModel(
        base_url=f"http://127.0.0.1:{_closed_port()}/v1", api_key="x", model="m", timeout=5
    )
    with pytest.raises(ChatModelError, match="cannot be reached"):
        list(model.stream([{"role": "user", "content": "hi"}], max_tokens=5))


def test_dead_endpoint_answer_falls_back_to_extractive(index_dir, embedder) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(
        ASSISTANT_INDEX_DIR=index_dir,
        ASSISTANT_LLM="openai",
        OPENAI_BASE_URL=f"http://127.0.0.1:{_closed_port()}/v1",
        OPENAI_API_KEY="x",
    )
    assistant = Assistant(settings, embedder, build_chat_model(settings))
    answer = assistant.chat("Which technology transfer center serves ASEAN countries?")
    assert answer.backend == "extractive" and answer.grounded and answer.citations
    assert answer.notice and "cannot be reached" in answer.notice


@pytest.mark.parametrize(("json_mode", "sent"), [("llama", True), ("json_schema", False), ("none", False)])
def test_a_token_bias_reaches_only_servers_that_read_token_text(json_mode: str, sent: bool) -> None:
    with fake_llm("ok") as server:
        model = OpenAIChatModel(
            base_url=server.base_url, api_key="x", model="fake-model", timeout=10, json_mode=json_mode  # type: ignore[arg-type]
        )
        text = "".join(model.stream([{"role": "user", "content": "hi"}], max_tokens=20, token_bias={" false": 4.6}))
        assert text
        body = server.requests[-1]["json"]
    if sent:
        assert body["logit_bias"] == {" false": 4.6} and body["logit_bias_type"] == "tokens"
    else:
        assert "logit_bias" not in body


def test_without_a_bias_nothing_extra_is_sent() -> None:
    with fake_llm("ok") as server:
        model = OpenAIChatModel(base_url=server.base_url, api_key="x", model="fake-model", timeout=10, json_mode="llama")
        "".join(model.stream([{"role": "user", "content": "hi"}], max_tokens=20))
        assert "logit_bias" not in server.requests[-1]["json"]


def test_continuing_a_prompt_streams_the_completion_with_its_stops_and_bias() -> None:
    with fake_llm("ok", answer='1], "text": "ok"}]}') as server:
        model = OpenAIChatModel(base_url=server.base_url, api_key="x", model="fake-model", timeout=10, json_mode="llama")
        text = "".join(
            model.continue_stream('<s>Q</s><a>{"evidence": [', max_tokens=30, stop=["</a>"], token_bias={" false": 3.0})
        )
        request = server.requests[-1]
    assert text == '1], "text": "ok"}]}'
    assert request["path"].endswith("/v1/completions")
    body = request["json"]
    assert body["prompt"] == '<s>Q</s><a>{"evidence": [' and body["stop"] == ["</a>"] and body["max_tokens"] == 30
    assert body["logit_bias"] == {" false": 3.0} and body["logit_bias_type"] == "tokens"


@pytest.mark.parametrize(("mode", "error"), [("cut_clean", "stopped mid-answer"), ("error500", "failed")])
def test_a_broken_continuation_is_a_chat_model_error(mode: str, error: str) -> None:
    with fake_llm(mode) as server:
        model = OpenAIChatModel(base_url=server.base_url, api_key="secret-key-123", model="fake-model", timeout=10)
        with pytest.raises(ChatModelError, match=error) as caught:
            "".join(model.continue_stream("prompt", max_tokens=10))
    assert "secret-key-123" not in str(caught.value)


def test_an_endpoint_ignores_a_reply_start() -> None:
    # The chat API cannot write the start of the model's reply: the model writes all of it.
    with fake_llm("ok", answer="whole reply") as server:
        model = OpenAIChatModel(base_url=server.base_url, api_key="x", model="fake-model", timeout=10)
        text = "".join(model.stream([{"role": "user", "content": "hi"}], max_tokens=20, prefix='{"claims": ['))
        messages = server.requests[-1]["json"]["messages"]
    assert text == "whole reply" and [m["role"] for m in messages] == ["user"]
