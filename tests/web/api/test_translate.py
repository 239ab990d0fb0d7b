"""POST /v1/translate: machine translation of evidence quotes (and script conversion without a model)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from assistant.llm import build_chat_model
from assistant.llm.queue import ChatQueue
from assistant.pipeline.translation import Translation, TranslationCache, clean_output
from assistant.service import Assistant
from assistant.text import han_ratio, to_traditional
from assistant.web.api import create_app
from tests.conftest import make_settings
from tests.fake_llm_server import FakeLLMServer, closed_port_url, fake_llm

SIMPLIFIED = "中国—东盟技术转移中心是目前中国唯一一家经国家批准的面向东盟国家的国际级技术转移机构。"
TRADITIONAL = "中國—東盟技術轉移中心是目前中國唯一一家經國家批准的面向東盟國家的國際級技術轉移機構。"
ENGLISH = "The China–ASEAN Technology Transfer Center was founded in 2014."
KEYS = {"translation", "target", "source_language", "machine_translation", "backend"}
SECRET_KEY = "sk-test-0123456789abcdefSECRET"


def _client(assistant: Assistant) -> TestClient:
    return TestClient(create_app(assistant=assistant, with_ui=False), raise_server_exceptions=False)


@pytest.fixture(scope="module")
def api(embedder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    """The extractive backend (no chat model), no index: translation needs neither for scripts."""
    index = tmp_path_factory.mktemp("api-translate") / "no-index"
    a = Assistant(make_settings(ASSISTANT_INDEX_DIR=index), embedder, None)
    with _client(a) as c:
        yield c
    a.close()


def _openai_assistant(embedder: Any, tmp_path: Path, base_url: str, **extra: object) -> Assistant:
    values: dict[str, object] = {
        "ASSISTANT_INDEX_DIR": tmp_path / "no-index",
        "ASSISTANT_LLM": "openai",
        "OPENAI_BASE_URL": base_url,
        "OPENAI_API_KEY": SECRET_KEY,
        "ASSISTANT_MODEL": "fake-model",
        "ASSISTANT_LLM_TIMEOUT": 5.0,
        "ASSISTANT_LLM_DEADLINE": 10.0,
    }
    settings = make_settings(**(values | extra))
    return Assistant(settings, embedder, build_chat_model(settings))


@pytest.fixture
def fake() -> Iterator[FakeLLMServer]:
    with fake_llm("ok", answer=ENGLISH) as server:
        yield server


# ---------------------------------------------------------------------- validation


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_blank_text_is_422_naming_the_field(api: TestClient, text: str) -> None:
    r = api.post("/v1/translate", json={"text": text, "target": "en"})
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith("text:"), r.json()
    assert "empty" in r.json()["detail"]


def test_text_over_the_limit_is_422_with_the_limit(api: TestClient) -> None:
    r = api.post("/v1/translate", json={"text": "字" * 4001, "target": "en"})
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert detail.startswith("text:") and "4000" in detail and "4001" in detail
    assert "字字字" not in r.text  # the input is not echoed


def test_text_at_the_limit_is_accepted(api: TestClient) -> None:
    r = api.post("/v1/translate", json={"text": "字" * 4000, "target": "zh-Hant"})
    assert r.status_code == 200, r.text


def test_nul_and_lone_surrogate_are_422(api: TestClient) -> None:
    r = api.post("/v1/translate", json={"text": "a\x00b", "target": "en"})
    assert r.status_code == 422 and "text" in r.json()["detail"] and "NUL" in r.json()["detail"], r.text
    raw = b'{"text": "abc \\ud800 def", "target": "zh-Hans"}'
    r = api.post("/v1/translate", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert "text" in r.json()["detail"]


@pytest.mark.parametrize("target", ["fr", "zh", "ZH-HANS", "", None, 1])
def test_bad_target_is_422_naming_the_field(api: TestClient, target: object) -> None:
    r = api.post("/v1/translate", json={"text": SIMPLIFIED, "target": target})
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert detail.startswith("target:"), detail
    assert "'en'" in detail and "'zh-Hans'" in detail and "'zh-Hant'" in detail


def test_missing_fields_and_unknown_fields_are_422(api: TestClient) -> None:
    r = api.post("/v1/translate", json={"text": SIMPLIFIED})
    assert r.status_code == 422 and "target" in r.json()["detail"], r.text
    r = api.post("/v1/translate", json={"target": "en"})
    assert r.status_code == 422 and "text" in r.json()["detail"], r.text
    r = api.post("/v1/translate", json={"text": SIMPLIFIED, "target": "en", "source": "zh"})
    assert r.status_code == 422 and "source" in r.json()["detail"], r.text


def test_the_service_checks_its_arguments_too(embedder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from assistant.errors import InvalidInput

    a = Assistant(make_settings(ASSISTANT_INDEX_DIR=tmp_path / "none"), embedder, None)
    with pytest.raises(InvalidInput) as err:
        a.translate(SIMPLIFIED, "fr")
    assert err.value.field == "target"
    with pytest.raises(InvalidInput) as err:
        a.translate(" ", "en")
    assert err.value.field == "text"


# ---------------------------------------------------------------------- without a model


def test_extractive_backend_is_503_saying_a_chat_model_is_needed(api: TestClient) -> None:
    for text, target in ((SIMPLIFIED, "en"), (ENGLISH, "zh-Hans"), (ENGLISH, "zh-Hant")):
        r = api.post("/v1/translate", json={"text": text, "target": target})
        assert r.status_code == 503, r.text
        detail = r.json()["detail"]
        assert "translation needs a chat model" in detail.lower()
        assert "ASSISTANT_LLM=local" in detail and "ASSISTANT_LLM=openai" in detail


def test_simplified_to_traditional_is_converted_without_a_model(api: TestClient) -> None:
    r = api.post("/v1/translate", json={"text": SIMPLIFIED, "target": "zh-Hant"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body.keys() == KEYS
    assert body == {
        "translation": TRADITIONAL,
        "target": "zh-Hant",
        "source_language": "zh-Hans",
        "machine_translation": True,
        "backend": "opencc",
    }


def test_traditional_to_simplified_and_same_script_are_converted(api: TestClient) -> None:
    r = api.post("/v1/translate", json={"text": TRADITIONAL, "target": "zh-Hans"})
    assert r.status_code == 200, r.text
    assert r.json()["translation"] == SIMPLIFIED
    assert r.json()["source_language"] == "zh-Hant"
    r = api.post("/v1/translate", json={"text": TRADITIONAL, "target": "zh-Hant"})
    assert r.status_code == 200 and r.json()["translation"] == TRADITIONAL, r.text


def test_english_to_english_is_the_text_itself(api: TestClient) -> None:
    r = api.post("/v1/translate", json={"text": ENGLISH, "target": "en"})
    assert r.status_code == 200, r.text
    assert r.json() == {
        "translation": ENGLISH,
        "target": "en",
        "source_language": "en",
        "machine_translation": True,
        "backend": "none",
    }


def test_api_keys_guard_translate_like_search(embedder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    key = "k3y-" + "abcdefghijklmnopqrstuvwxyz0123456789"
    settings = make_settings(ASSISTANT_INDEX_DIR=tmp_path / "none", ASSISTANT_API_KEYS=key)
    a = Assistant(settings, embedder, None)
    with _client(a) as c:
        body = {"text": SIMPLIFIED, "target": "zh-Hant"}
        r = c.post("/v1/translate", json=body)
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer"), r.text
        r = c.post("/v1/translate", json=body, headers={"Authorization": "Bearer wrong-key"})
        assert r.status_code == 401, r.text
        r = c.post("/v1/translate", json=body, headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 200 and r.json()["translation"] == TRADITIONAL, r.text
    a.close()


# ---------------------------------------------------------------------- through a model


def test_chinese_to_english_through_an_openai_compatible_model(
    embedder, tmp_path: Path, fake: FakeLLMServer  # type: ignore[no-untyped-def]
) -> None:
    a = _openai_assistant(embedder, tmp_path, fake.base_url)
    with _client(a) as c:
        r = c.post("/v1/translate", json={"text": SIMPLIFIED, "target": "en"})
        assert r.status_code == 200, r.text
        assert r.json() == {
            "translation": ENGLISH,
            "target": "en",
            "source_language": "zh-Hans",
            "machine_translation": True,
            "backend": "openai",
        }
        sent = fake.chat_requests()
        assert len(sent) == 1
        prompt = sent[0]["json"]["messages"][-1]["content"]
        assert SIMPLIFIED in prompt and "English" in prompt
        limit = sent[0]["json"].get("max_completion_tokens", sent[0]["json"].get("max_tokens"))
        assert limit is not None and limit >= 128
        # The same text and target again: from the cache, no second model call.
        again = c.post("/v1/translate", json={"text": SIMPLIFIED, "target": "en"})
        assert again.status_code == 200 and again.json() == r.json()
        assert len(fake.chat_requests()) == 1
        # Another target is another entry.
        fake.answer = "中国—东盟技术转移中心于2014年成立。"
        r = c.post("/v1/translate", json={"text": ENGLISH, "target": "zh-Hant"})
        assert r.status_code == 200, r.text
        assert r.json()["translation"] == to_traditional(fake.answer) == "中國—東盟技術轉移中心於2014年成立。"
        assert r.json()["source_language"] == "en"
        assert "Traditional Chinese" in fake.chat_requests()[-1]["json"]["messages"][-1]["content"]
        r = c.post("/v1/translate", json={"text": ENGLISH, "target": "zh-Hans"})
        assert r.status_code == 200 and r.json()["translation"] == fake.answer, r.text
        assert len(fake.chat_requests()) == 3
        # Script conversion never asks the model.
        r = c.post("/v1/translate", json={"text": SIMPLIFIED, "target": "zh-Hant"})
        assert r.status_code == 200 and r.json()["backend"] == "opencc"
        assert len(fake.chat_requests()) == 3
    a.close()


def test_a_label_before_the_translation_is_dropped(
    embedder, tmp_path: Path, fake: FakeLLMServer  # type: ignore[no-untyped-def]
) -> None:
    fake.answer = f"Translation: {ENGLISH}"
    a = _openai_assistant(embedder, tmp_path, fake.base_url)
    with _client(a) as c:
        r = c.post("/v1/translate", json={"text": SIMPLIFIED, "target": "en"})
        assert r.status_code == 200 and r.json()["translation"] == ENGLISH, r.text
    a.close()


def test_a_model_that_cannot_be_reached_is_503_with_its_message(embedder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a = _openai_assistant(embedder, tmp_path, closed_port_url())
    with _client(a) as c:
        r = c.post("/v1/translate", json={"text": SIMPLIFIED, "target": "en"})
        assert r.status_code == 503, r.text
        detail = r.json()["detail"]
        assert detail.startswith("The translation failed: ") and "cannot be reached" in detail, detail
    a.close()


def test_a_failing_model_is_503_without_the_key_and_is_not_cached(
    embedder, tmp_path: Path, fake: FakeLLMServer  # type: ignore[no-untyped-def]
) -> None:
    fake.mode = "error500"  # echoes the Authorization header in its error
    a = _openai_assistant(embedder, tmp_path, fake.base_url)
    with _client(a) as c:
        r = c.post("/v1/translate", json={"text": SIMPLIFIED, "target": "en"})
        assert r.status_code == 503, r.text
        assert "The translation failed" in r.json()["detail"]
        assert SECRET_KEY not in r.text
        fake.mode = "ok"
        r = c.post("/v1/translate", json={"text": SIMPLIFIED, "target": "en"})
        assert r.status_code == 200 and r.json()["translation"] == ENGLISH, r.text
    a.close()


def test_a_full_model_queue_is_503_with_retry_after(
    embedder, tmp_path: Path, fake: FakeLLMServer  # type: ignore[no-untyped-def]
) -> None:
    a = _openai_assistant(embedder, tmp_path, fake.base_url, ASSISTANT_LLM_CONCURRENCY=1, ASSISTANT_MAX_QUEUE=0)
    queue = a.queue
    assert isinstance(queue, ChatQueue)
    held = queue.admit()  # another chat holds the only place
    try:
        with _client(a) as c:
            r = c.post("/v1/translate", json={"text": SIMPLIFIED, "target": "en"})
            assert r.status_code == 503, r.text
            assert int(r.headers["retry-after"]) >= 1
            assert "busy" in r.json()["detail"]
            assert not fake.chat_requests()
    finally:
        held.release()
    a.close()


# ---------------------------------------------------------------------- the cache


def test_the_cache_is_a_bounded_lru() -> None:
    cache = TranslationCache(size=2)

    def entry(text: str) -> Translation:
        return Translation(text.upper(), "en", "zh-Hans", "openai")

    cache.put("a", "en", entry("a"))
    cache.put("b", "en", entry("b"))
    assert cache.get("a", "en") == entry("a")  # a is now the most recent
    cache.put("c", "en", entry("c"))
    assert len(cache) == 2
    assert cache.get("b", "en") is None
    assert cache.get("a", "en") == entry("a") and cache.get("c", "en") == entry("c")
    assert cache.get("a", "zh-Hant") is None  # keyed by (text, target)


def test_the_cache_is_safe_across_threads() -> None:
    cache = TranslationCache(size=64)

    def work(n: int) -> None:
        for i in range(500):
            key = f"{n}-{i % 100}"
            cache.put(key, "en", Translation(key, "en", "zh-Hans", "openai"))
            found = cache.get(key, "en")
            assert found is None or found.translation == key

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(cache) == 64


def test_clean_output_drops_a_label_and_converts_the_script() -> None:
    assert clean_output("  Translation: Hello.\n", "en") == "Hello."
    assert clean_output("译文：该中心成立于2014年。", "zh-Hant") == "該中心成立於2014年。"
    assert clean_output("該中心成立於2014年。", "zh-Hans") == "该中心成立于2014年。"


# ---------------------------------------------------------------------- the real local model


@pytest.mark.slow
def test_the_local_model_translates_a_chinese_sentence(tmp_path: Path) -> None:
    settings = make_settings(ASSISTANT_INDEX_DIR=tmp_path / "no-index", ASSISTANT_LLM="local")
    a = Assistant.from_settings(settings, start_model=True)
    assert a.chat_model is not None and a.chat_error is None, a.chat_error
    try:
        source = "中国科技部重点布局了一批区域性国际技术转移中心，如中国—东盟技术转移中心（2014年，广西）。"
        with _client(a) as c:
            r = c.post("/v1/translate", json={"text": source, "target": "en"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["backend"] == "local" and body["source_language"] == "zh-Hans"
        assert body["machine_translation"] is True
        assert "2014" in body["translation"], body
        assert han_ratio(body["translation"]) < 0.3, body
    finally:
        a.close()


# ---------------------------------------------------------------------- questions searched in Chinese


def test_an_english_chat_question_is_translated_once_for_retrieval(embedder, built_index: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with fake_llm("ok", answer=SIMPLIFIED) as server:
        a = _openai_assistant(
            embedder, tmp_path, server.base_url, ASSISTANT_INDEX_DIR=built_index, ASSISTANT_QUERY_TRANSLATION=True
        )
        try:
            engine = a.engine
            assert engine.search_text(ENGLISH) == f"{SIMPLIFIED} {ENGLISH}"
            assert engine.search_text(ENGLISH) == f"{SIMPLIFIED} {ENGLISH}"  # cached: one model call
            asked = [r for r in server.chat_requests() if ENGLISH in str(r["json"])]
            assert len(asked) == 1
            assert engine.search_text(SIMPLIFIED) == SIMPLIFIED  # Chinese: no call
        finally:
            a.close()


def test_no_translation_when_it_is_off_or_the_model_is_down(embedder, built_index: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    off = _openai_assistant(embedder, tmp_path, closed_port_url(), ASSISTANT_INDEX_DIR=built_index,
                            ASSISTANT_QUERY_TRANSLATION=False)
    down = _openai_assistant(
        embedder, tmp_path, closed_port_url(), ASSISTANT_INDEX_DIR=built_index, ASSISTANT_QUERY_TRANSLATION=True
    )
    try:
        assert off.engine.query_translator is None
        assert down.engine.search_text(ENGLISH) == ENGLISH  # a failed call: searched as it is, no error
    finally:
        off.close()
        down.close()
