"""End to end with the real bundled model: llama-cpp-python's server, started by the app.

Slow (the 1.5B model reads a RAG prompt in about 10 s on 2 cores). These are the
"done when" checks of the core issue: the ASEAN question in three languages gets a
correct, cited answer in the question's language; an unanswerable one gets
grounded: false; streaming works over the API.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.service import Assistant
from assistant.settings import PROJECT_ROOT
from assistant.text import detect_language, han_ratio
from tests.conftest import make_settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_assistant(built_index) -> Iterator[Assistant]:  # type: ignore[no-untyped-def]
    settings = make_settings(ASSISTANT_INDEX_DIR=built_index, ASSISTANT_LLM="local", ASSISTANT_QUERY_TRANSLATION=True)
    assistant = Assistant.from_settings(settings, start_model=True)
    assert assistant.chat_model is not None and assistant.chat_error is None, assistant.chat_error
    assert assistant.status()["ready"], assistant.status()
    yield assistant
    assistant.close()


def _document_text(doc_id: str) -> str:
    return (PROJECT_ROOT / "corpus" / f"{doc_id}.md").read_text("utf-8").split("---\n", 2)[2]


def _assert_cited(answer) -> None:  # type: ignore[no-untyped-def]
    assert answer.grounded, answer
    assert answer.citations
    for c in answer.citations:
        assert _document_text(c.doc_id)[c.start : c.end] == c.quote
        assert f"[{c.n}]" in answer.answer
    assert not re.search(r"\[(\d+)\]", re.sub(r"\[(\d+)\]", lambda m: "" if int(m.group(1)) <= len(answer.citations) else m.group(0), answer.answer))


def test_english_asean_question(local_assistant: Assistant) -> None:
    answer = local_assistant.chat("Which technology transfer center serves ASEAN countries?")
    assert answer.backend == "local"
    _assert_cited(answer)
    assert "ASEAN" in answer.answer
    assert han_ratio(answer.answer) < 0.3, answer.answer
    assert any("东盟" in c.quote or "東盟" in c.quote for c in answer.citations)


def test_simplified_asean_question(local_assistant: Assistant) -> None:
    answer = local_assistant.chat("哪个技术转移中心面向东盟国家？")
    _assert_cited(answer)
    assert "东盟" in answer.answer
    assert detect_language(answer.answer) == "zh-Hans"


def test_traditional_asean_question(local_assistant: Assistant) -> None:
    answer = local_assistant.chat("哪個技術轉移中心面向東盟國家？")
    _assert_cited(answer)
    assert "東盟" in answer.answer
    assert detect_language(answer.answer) == "zh-Hant"


def test_unanswerable_question_is_not_grounded(local_assistant: Assistant) -> None:
    answer = local_assistant.chat("How many employees does the China–South Asia center have?")
    assert answer.grounded is False
    assert answer.citations == []
    assert answer.answer.startswith("The documents do not")


def test_streaming_over_the_api(local_assistant: Assistant) -> None:
    from fastapi.testclient import TestClient

    from assistant.web.api import create_app

    with TestClient(create_app(assistant=local_assistant, with_ui=False)) as client:
        ready = client.get("/readyz").json()
        assert ready["backend"] == "local" and ready["status"] == "ready"
        with client.stream(
            "POST", "/v1/chat", json={"message": "中国—阿拉伯国家技术转移中心建了哪些双边技术转移中心？", "stream": True}
        ) as response:
            assert response.status_code == 200
            body = "".join(response.iter_text())
    events = [
        (block.split("\n", 1)[0].removeprefix("event: "), json.loads(block.split("data: ", 1)[1]))
        for block in body.strip().split("\n\n")
    ]
    kinds = [k for k, _ in events]
    assert kinds[-1] == "done" and kinds.count("done") == 1
    assert kinds.count("token") >= 3  # really streamed, token by token
    done = events[-1][1]
    assert done["backend"] == "local" and done["grounded"]
    # The evidence sentence lists the eight centers; the model may name them or count them
    # (a near tie: the count since the server stopped keeping every token's logits).
    assert any(fact in done["answer"] for fact in ("沙特", "约旦", "阿曼", "埃及", "8个")), done["answer"]
    for c in done["citations"]:
        assert _document_text(c["doc_id"])[c["start"] : c["end"]] == c["quote"]


def test_follow_up_is_rewritten_with_the_local_model(local_assistant: Assistant) -> None:
    from assistant.pipeline.answer import Turn

    first = "Which technology transfer center serves ASEAN countries?"
    prior = local_assistant.chat(first)
    answer = local_assistant.chat("And who operates it day to day?", [Turn("user", first), Turn("assistant", prior.answer)])
    assert answer.query and answer.query != "And who operates it day to day?"
    _assert_cited(answer)
    assert any("广西东盟技术转移中心" in c.quote for c in answer.citations), answer


def _prefix_hits(log: Path, start: int) -> list[int]:
    """The cached prompt tokens llama-cpp-python reports per request logged after byte `start`."""
    with log.open("rb") as f:
        f.seek(start)
        text = f.read().decode("utf-8", errors="replace")
    return [int(n) for n in re.findall(r"Llama\.generate: (\d+) prefix-match hit", text)]


def test_translations_run_apart_and_leave_the_answer_prompt_cached(built_index, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """An English question is translated on the side server; the answering server's
    cache still holds the previous answer prompt's instructions, so it reads them once.
    (Its own cache directory, so that no other model server writes to its logs.)"""
    cache = tmp_path / "cache"
    cache.mkdir()
    shared = make_settings().cache_dir
    for name in ("models", "tiktoken", "crosslingual"):
        if (shared / name).exists():
            (cache / name).symlink_to(shared / name)
    settings = make_settings(
        ASSISTANT_INDEX_DIR=built_index, ASSISTANT_LLM="local", ASSISTANT_QUERY_TRANSLATION=True, ASSISTANT_CACHE_DIR=cache
    )
    assistant = Assistant.from_settings(settings, start_model=True)
    try:
        main_log, side_log = cache / "llama-server.log", cache / "llama-side-server.log"
        main_start, side_start = main_log.stat().st_size, side_log.stat().st_size
        assistant.chat("哪个技术转移中心面向东盟国家？")
        answer = assistant.chat("When did the China–SCO technology transfer center open?")
        assert answer.backend == "local"
        assert _prefix_hits(side_log, side_start), "the question was not translated on the side server"
        main_hits = _prefix_hits(main_log, main_start)
        assert len(main_hits) == 2, main_hits  # the two answers, nothing else
        assert main_hits[-1] >= 150, main_hits  # the fixed instructions came from the cache
    finally:
        assistant.close()


def test_the_real_server_applies_a_token_bias(local_assistant: Assistant) -> None:
    """The answerable threshold rests on llama-cpp-python reading `logit_bias` keyed by token
    text: a strong bias on " false" turns the model's certain true into false."""
    model = local_assistant.chat_model
    assert model is not None
    ask = [{"role": "user", "content": 'Is 2 + 2 equal to 4? Reply with JSON only: {"answerable": true} or {"answerable": false}'}]
    plain = "".join(model.stream(ask, max_tokens=12))
    biased = "".join(model.stream(ask, max_tokens=12, token_bias={" false": 30.0, "false": 30.0}))
    assert "true" in plain and "false" not in plain, plain
    assert "false" in biased, biased


def test_the_real_model_continues_a_given_reply_start(local_assistant: Assistant) -> None:
    """An answer's JSON opening is written for the model (the completions endpoint over the
    model file's chat template): the stream starts with it and the model goes on from it."""
    model = local_assistant.chat_model
    assert model is not None
    ask = [
        {"role": "system", "content": "Reply with one JSON object only."},
        {"role": "user", "content": 'What is the capital of France? Reply as {"city": "..."}'},
    ]
    text = "".join(model.stream(ask, max_tokens=20, prefix='{"city": "'))
    assert text.startswith('{"city": "'), text
    assert json.loads(text)["city"] == "Paris", text
