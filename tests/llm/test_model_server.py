"""`assistant model-server`: the chat model on its own, behind the bounded queue.

The upstream is the fake OpenAI-compatible server (`tests/fake_llm_server.py`); the
proxy is the real app (`assistant.llm.proxy.create_proxy`) on a live uvicorn, and the
client is the one replicas use (`ASSISTANT_LLM=openai`).
"""

from __future__ import annotations

import concurrent.futures
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from assistant.llm import build_chat_model
from assistant.llm.proxy import create_proxy
from assistant.llm.queue import ChatQueue
from tests.conftest import make_settings
from tests.fake_llm_server import DEFAULT_ANSWER, FakeLLMServer, fake_llm
from tests.live_server import free_port, live_server

MESSAGES = [{"role": "user", "content": "Which center serves ASEAN countries?"}]
KEY = "model-server-key-0123456789abcdef"


@pytest.fixture
def fake() -> Iterator[FakeLLMServer]:
    with fake_llm("ok") as server:
        yield server


def _replica_model(base: str, **extra: object):  # type: ignore[no-untyped-def]
    settings = make_settings(
        ASSISTANT_LLM="openai", OPENAI_BASE_URL=f"{base}/v1", ASSISTANT_MODEL="any-name", ASSISTANT_LLM_JSON="none", **extra
    )
    return build_chat_model(settings)


def _stream(base: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
    body = {"model": "x", "messages": MESSAGES, "stream": True}
    with (
        httpx.Client(timeout=30) as client,
        client.stream("POST", f"{base}/v1/chat/completions", json=body, headers=headers or {}) as r,
    ):
        return r.status_code, dict(r.headers), r.read().decode()


def test_a_replica_streams_through_it_and_the_model_name_is_the_upstreams(fake: FakeLLMServer) -> None:
    queue = ChatQueue(1, 2, 10)
    with live_server(create_proxy(fake.base_url, queue, model="bundled-gguf")) as base:
        model = _replica_model(base)
        assert model is not None
        assert model.complete(MESSAGES, max_tokens=50) == DEFAULT_ANSWER
        assert fake.chat_requests()[-1]["json"]["model"] == "bundled-gguf"
        # Not streamed: the JSON body as the upstream sent it.
        r = httpx.post(f"{base}/v1/chat/completions", json={"model": "x", "messages": MESSAGES}, timeout=10)
        assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == DEFAULT_ANSWER
        assert httpx.get(f"{base}/v1/models").json()["data"][0]["id"] == "fake-model"
        assert httpx.get(f"{base}/readyz").status_code == 200
    assert queue.snapshot()["admitted"] == 0 and queue.snapshot()["served"] == 2


def test_one_more_than_the_queue_holds_gets_503_with_retry_after(fake: FakeLLMServer) -> None:
    fake.mode, fake.delay = "slow", 1.5
    queue = ChatQueue(1, 1, 30)
    with live_server(create_proxy(fake.base_url, queue)) as base:
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            futures = []
            for _ in range(3):
                futures.append(pool.submit(_stream, base))
                time.sleep(0.2)  # in arrival order
            results = [f.result() for f in futures]
        statuses = sorted(status for status, _h, _t in results)
        assert statuses == [200, 200, 503]
        refused = next(r for r in results if r[0] == 503)
        assert int(refused[1]["retry-after"]) >= 1 and "busy" in refused[2]
        done = [text for status, _h, text in results if status == 200]
        assert all("[DONE]" in text and "ASEAN" in text for text in done)
    assert fake.max_in_flight == 1  # the upstream never answered two at once


def test_a_client_that_goes_away_gives_its_place_back(fake: FakeLLMServer) -> None:
    fake.mode, fake.interval = "trickle", 0.2
    queue = ChatQueue(1, 0, 10)
    with live_server(create_proxy(fake.base_url, queue)) as base:
        body = {"model": "x", "messages": MESSAGES, "stream": True}
        with (
            httpx.Client(timeout=10) as client,
            client.stream("POST", f"{base}/v1/chat/completions", json=body) as r,
        ):
            assert r.status_code == 200
            next(r.iter_bytes())  # one token, then hang up
        deadline = time.monotonic() + 5
        while queue.snapshot()["admitted"] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert queue.snapshot()["admitted"] == 0
        fake.mode = "ok"
        assert _stream(base)[0] == 200


def test_the_key_is_required_when_set(fake: FakeLLMServer) -> None:
    with live_server(create_proxy(fake.base_url, ChatQueue(1, 1, 10), api_key=KEY)) as base:
        assert _stream(base)[0] == 401
        assert httpx.get(f"{base}/v1/models").status_code == 401
        assert _stream(base, {"Authorization": f"Bearer {KEY}"})[0] == 200
        model = _replica_model(base, OPENAI_API_KEY=KEY)
        assert model is not None and model.complete(MESSAGES, max_tokens=50) == DEFAULT_ANSWER
    assert "authorization" not in {k.lower() for k in fake.chat_requests()[-1]["headers"]}  # not passed on


def test_an_upstream_that_is_down_is_a_502_and_frees_the_place() -> None:
    from tests.fake_llm_server import closed_port_url

    queue = ChatQueue(1, 0, 10)
    with live_server(create_proxy(closed_port_url(), queue)) as base:
        status, _h, text = _stream(base)
        assert status == 502 and "upstream" in text
        assert httpx.get(f"{base}/readyz").status_code == 503
    assert queue.snapshot()["admitted"] == 0


def test_the_cli_command_fronts_an_upstream(fake: FakeLLMServer, tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "ASSISTANT_MODEL_SERVER_PORT": str(port),
        "ASSISTANT_MAX_QUEUE": "3",
        "ASSISTANT_LLM_CONCURRENCY": "1",
        "OPENAI_API_KEY": "",
    }
    cli = Path(sys.executable).parent / "assistant"
    proc = subprocess.Popen(
        [str(cli), "model-server", "--upstream", fake.base_url],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
                assert time.monotonic() < deadline, "model-server did not start"
                time.sleep(0.2)
        assert health.json()["queue"]["capacity"] == 4
        model = _replica_model(base)
        assert model is not None and model.complete(MESSAGES, max_tokens=50) == DEFAULT_ANSWER
    finally:
        proc.terminate()
        proc.wait(15)


@pytest.mark.slow
def test_the_bundled_model_served_apart_answers_a_replica(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "ASSISTANT_MODEL_SERVER_PORT": str(port), "ASSISTANT_MODEL_SERVER_KEY": KEY}
    cli = Path(sys.executable).parent / "assistant"
    proc = subprocess.Popen(
        [str(cli), "model-server"], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            assert proc.poll() is None, "model-server exited"
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the bundled model did not come up"
            time.sleep(0.5)
        model = _replica_model(base, OPENAI_API_KEY=KEY, ASSISTANT_LLM_TIMEOUT=120)
        assert model is not None
        text = model.complete([{"role": "user", "content": "Reply with the word: ready"}], max_tokens=8)
        assert text.strip()
    finally:
        proc.terminate()
        proc.wait(30)
