"""Model faults and the model queue, through the real API.

A fake OpenAI-compatible server on loopback (`tests/fake_llm_server.py`) plays a chat
model that is down, slow, stalls mid-answer, talks past any deadline, answers garbage,
cuts the stream, or fails with 500. For each: `/v1/chat` (JSON and SSE) answers with
the extractive fallback, a visible `notice` and verbatim citations; the stream ends
with exactly one `done` (whose answer replaces the tokens already streamed); it all
takes a bounded time; and the server stays healthy.

The queue (`assistant.llm.ChatQueue`): chats wait in arrival order, one more than the
queue holds gets 503 with `Retry-After` at once (also for a stream, before it starts),
and the model never sees more chats at once than it may answer.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from assistant.llm import build_chat_model
from assistant.llm.base import ChatModelError
from assistant.llm.queue import ChatQueue, ChatQueueFull, ChatQueueTimeout
from assistant.pipeline.answer import EXTRACTIVE_INTRO
from assistant.service import Assistant
from assistant.web.api import create_app
from tests.conftest import make_settings
from tests.fake_llm_server import FakeLLMServer, closed_port_url, fake_llm
from tests.live_server import live_server
from tests.web.api.test_chat import parse_sse

QUESTION = "Which technology transfer center serves ASEAN countries?"
TIMEOUT = 1.0  # ASSISTANT_LLM_TIMEOUT and ASSISTANT_LLM_DEADLINE for the fault tests
SECRET_KEY = "sk-test-0123456789abcdefSECRET"
FAULTS = ["down", "slow", "stall", "trickle", "garbage", "malformed", "cut", "cut_clean", "error500"]


def _assistant(index_dir: Path, embedder: Any, base_url: str, **extra: object) -> Assistant:
    values: dict[str, object] = {
        "ASSISTANT_INDEX_DIR": index_dir,
        "ASSISTANT_LLM": "openai",
        "OPENAI_BASE_URL": base_url,
        "OPENAI_API_KEY": SECRET_KEY,
        "ASSISTANT_MODEL": "fake-model",
        "ASSISTANT_LLM_TIMEOUT": TIMEOUT,
        "ASSISTANT_LLM_DEADLINE": TIMEOUT,
    }
    settings = make_settings(**(values | extra))
    return Assistant(settings, embedder, build_chat_model(settings))


@pytest.fixture
def fake() -> Iterator[FakeLLMServer]:
    with fake_llm("ok", delay=3 * TIMEOUT) as server:
        server.interval = 0.3 * TIMEOUT
        yield server


def _client_for(mode: str, fake: FakeLLMServer, index_dir: Path, embedder: Any) -> Iterator[TestClient]:
    fake.mode = mode
    url = closed_port_url() if mode == "down" else fake.base_url
    a = _assistant(index_dir, embedder, url)
    with TestClient(create_app(assistant=a, with_ui=False), raise_server_exceptions=False) as c:
        yield c
    a.close()


@pytest.fixture
def faulty(request: pytest.FixtureRequest, fake: FakeLLMServer, index_dir: Path, embedder) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    yield from _client_for(request.param, fake, index_dir, embedder)


def _check_fallback(client: TestClient, answer: dict[str, Any]) -> None:
    assert answer["backend"] == "extractive", answer
    assert answer["notice"], answer
    assert answer["grounded"] is True
    assert answer["answer"].startswith(EXTRACTIVE_INTRO["en"])
    assert answer["citations"]
    for c in answer["citations"]:
        text = client.get(f"/v1/documents/{c['doc_id']}").json()["text"]
        assert text[c["start"] : c["end"]] == c["quote"]
        assert f"[{c['n']}]" in answer["answer"]
    assert SECRET_KEY not in answer["notice"]


def _healthy(client: TestClient) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200


@pytest.mark.parametrize("faulty", FAULTS, indirect=True)
def test_json_chat_falls_back_with_a_notice(faulty: TestClient, fake: FakeLLMServer) -> None:
    started = time.monotonic()
    r = faulty.post("/v1/chat", json={"message": QUESTION})
    elapsed = time.monotonic() - started
    assert r.status_code == 200, r.text
    _check_fallback(faulty, r.json())
    # Bounded: one model timeout (plus retrieval and the fallback's own work), never a hang.
    assert elapsed < 2 * TIMEOUT + 6, elapsed
    if fake.mode != "down":
        assert fake.chat_requests(), "the fake model was never asked"
    _healthy(faulty)


@pytest.mark.parametrize("faulty", FAULTS, indirect=True)
def test_stream_ends_with_one_done_carrying_the_fallback(faulty: TestClient, fake: FakeLLMServer) -> None:
    started = time.monotonic()
    r = faulty.post("/v1/chat", json={"message": QUESTION, "stream": True})
    elapsed = time.monotonic() - started
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(r.text)
    names = [n for n, _ in events]
    assert names[-1] == "done" and names.count("done") == 1, names
    assert names[0] == "sources" and set(names) <= {"sources", "token", "done"}, names  # no error event: the fallback is an answer
    done = events[-1][1]
    assert isinstance(done, dict)
    _check_fallback(faulty, done)
    streamed = "".join(d["text"] for n, d in events if n == "token")  # type: ignore[index]
    if fake.mode in ("stall", "trickle", "cut", "cut_clean"):
        # The model's words went out before it failed; the done answer replaces them.
        expected = "The" if fake.mode == "stall" else "The China–ASEAN"
        assert streamed.startswith(expected), streamed
        assert not done["answer"].startswith("The")
    assert elapsed < 2 * TIMEOUT + 6, elapsed
    _healthy(faulty)


@pytest.mark.parametrize("faulty", ["slow"], indirect=True)
def test_a_follow_up_with_a_slow_model_is_bounded(faulty: TestClient) -> None:
    """Rewrite and answer each time out once: two timeouts, not a hang."""
    history = [
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": "The China–ASEAN Technology Transfer Center [1]."},
    ]
    started = time.monotonic()
    r = faulty.post("/v1/chat", json={"message": "Where is it based?", "history": history})
    assert r.status_code == 200
    assert r.json()["backend"] == "extractive" and r.json()["notice"]
    assert time.monotonic() - started < 3 * TIMEOUT + 6


@pytest.mark.parametrize("faulty", ["ok"], indirect=True)
def test_a_working_model_answers_without_a_notice(faulty: TestClient) -> None:
    answer = faulty.post("/v1/chat", json={"message": QUESTION}).json()
    assert answer["backend"] == "openai" and answer["notice"] is None, answer


def test_a_model_that_recovers_is_used_again(fake: FakeLLMServer, index_dir: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    clients = _client_for("error500", fake, index_dir, embedder)
    client = next(clients)
    assert client.post("/v1/chat", json={"message": QUESTION}).json()["backend"] == "extractive"
    fake.mode = "ok"
    assert client.post("/v1/chat", json={"message": QUESTION}).json()["backend"] == "openai"
    for _ in clients:
        pass


@pytest.mark.parametrize("mode", ["stall", "trickle"])
def test_model_timeouts_cover_the_whole_stream(fake: FakeLLMServer, mode: str) -> None:
    """Not only the connection: a stalled stream and one that never ends both fail in time."""
    from assistant.llm.endpoint import OpenAIChatModel

    fake.mode = mode
    model = OpenAIChatModel(base_url=fake.base_url, api_key="x", model="m", timeout=TIMEOUT, deadline=TIMEOUT)
    started = time.monotonic()
    tokens: list[str] = []
    with pytest.raises(ChatModelError, match=r"in time|within"):
        for t in model.stream([{"role": "user", "content": "hi"}], max_tokens=50):
            tokens.append(t)
    assert tokens  # it had started talking
    assert time.monotonic() - started < 2 * TIMEOUT + 0.5


# ------------------------------------------------------------------------ the queue


def test_queue_serves_in_arrival_order() -> None:
    queue = ChatQueue(concurrency=1, max_waiting=5, wait_timeout=10)
    holder = queue.admit()
    holder.acquire()
    order: list[int] = []
    threads = []
    for i in range(4):
        ticket = queue.admit()

        def run(t=ticket, i=i) -> None:  # type: ignore[no-untyped-def]
            t.acquire()
            order.append(i)
            time.sleep(0.02)
            t.release()

        th = threading.Thread(target=run)
        th.start()
        threads.append(th)
        deadline = time.monotonic() + 5
        while queue.snapshot()["waiting"] < i + 1 and time.monotonic() < deadline:
            time.sleep(0.005)
    assert queue.snapshot()["waiting"] == 4
    holder.release()
    for th in threads:
        th.join(5)
    assert order == [0, 1, 2, 3]
    assert queue.snapshot() | {"served": 0} == {
        "running": 0, "waiting": 0, "admitted": 0, "capacity": 6, "served": 0, "refused": 0
    }


def test_queue_serves_in_admission_order_whoever_asks_first() -> None:
    """Chats admitted 1, 2, 3 that reach the model 3, 2, 1 (retrieval jitter) run 1, 2, 3."""
    queue = ChatQueue(concurrency=1, max_waiting=5, wait_timeout=10)
    holder = queue.admit()
    holder.acquire()
    tickets = [queue.admit() for _ in range(3)]
    order: list[int] = []
    threads = []
    for i in (2, 1, 0):

        def run(t=tickets[i], i=i) -> None:  # type: ignore[no-untyped-def]
            t.acquire()
            order.append(i)
            t.release()

        th = threading.Thread(target=run)
        th.start()
        threads.append(th)
        deadline = time.monotonic() + 5
        while queue.snapshot()["waiting"] < len(threads) and time.monotonic() < deadline:
            time.sleep(0.005)
    holder.release()
    for th in threads:
        th.join(5)
    assert order == [0, 1, 2]


def test_a_full_queue_refuses_at_once_with_a_retry_estimate() -> None:
    queue = ChatQueue(concurrency=1, max_waiting=1, wait_timeout=10)
    a, b = queue.admit(), queue.admit()
    started = time.monotonic()
    with pytest.raises(ChatQueueFull, match="ASSISTANT_MAX_QUEUE=1") as info:
        queue.admit()
    assert time.monotonic() - started < 0.1
    assert info.value.retry_after >= 1
    a.release()
    b.release()
    queue.admit().release()  # room again


def test_waiting_too_long_is_a_model_error_and_stays_one() -> None:
    queue = ChatQueue(concurrency=1, max_waiting=1, wait_timeout=0.3)
    holder = queue.admit()
    holder.acquire()
    waiter = queue.admit()
    started = time.monotonic()
    with pytest.raises(ChatQueueTimeout):
        waiter.acquire()
    assert 0.25 < time.monotonic() - started < 2
    with pytest.raises(ChatQueueTimeout):  # a chat that gave up does not wait again
        waiter.acquire()
    waiter.release()
    holder.release()
    assert queue.snapshot()["admitted"] == 0


def test_a_model_call_outside_a_chat_gives_its_place_back() -> None:
    queue = ChatQueue(concurrency=1, max_waiting=0, wait_timeout=1)

    def tokens() -> Iterator[str]:
        with queue.turn():
            yield "a"
            yield "b"

    gen = tokens()
    assert next(gen) == "a"
    assert queue.snapshot()["running"] == 1
    with pytest.raises(ChatQueueFull), queue.turn():
        pass
    gen.close()
    assert queue.snapshot()["admitted"] == 0


class ScriptedSlowModel:
    """A chat model that takes `seconds` per call, behind a one-at-a-time queue."""

    backend = "openai"

    def __init__(self, seconds: float, max_waiting: int) -> None:
        self.seconds = seconds
        self.queue = ChatQueue(concurrency=1, max_waiting=max_waiting, wait_timeout=30)
        self.inside = 0
        self.most_inside = 0
        self.order: list[str] = []
        self._lock = threading.Lock()

    def stream(self, messages: list[dict[str, str]], *, max_tokens: int, schema: object = None, token_bias: object = None, prefix: str = "") -> Iterator[str]:
        with self.queue.turn():
            with self._lock:
                self.inside += 1
                self.most_inside = max(self.most_inside, self.inside)
                self.order.append(messages[-1]["content"])
            try:
                time.sleep(self.seconds)
                yield "The China–ASEAN Technology Transfer Center serves ASEAN countries [1]."
            finally:
                with self._lock:
                    self.inside -= 1

    def complete(self, messages: list[dict[str, str]], *, max_tokens: int) -> str:
        return "".join(self.stream(messages, max_tokens=max_tokens))

    def ready(self) -> tuple[bool, str]:
        return True, "scripted"

    def close(self) -> None:
        pass


def _post_all(base: str, bodies: list[dict[str, Any]], gap: float = 0.0) -> list[tuple[httpx.Response, float]]:
    """POST /v1/chat concurrently (`gap` seconds apart); (response, seconds) in sending order."""

    def one(body: dict[str, Any]) -> tuple[httpx.Response, float]:
        started = time.monotonic()
        with httpx.Client(timeout=60, trust_env=False) as c:
            r = c.post(f"{base}/v1/chat", json=body)
        return r, time.monotonic() - started

    with concurrent.futures.ThreadPoolExecutor(len(bodies)) as pool:
        futures = []
        for body in bodies:
            futures.append(pool.submit(one, body))
            time.sleep(gap)
        return [f.result() for f in futures]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_api_queues_chats_and_refuses_one_too_many(settings, embedder, stream: bool) -> None:  # type: ignore[no-untyped-def]
    model = ScriptedSlowModel(seconds=1.0, max_waiting=1)
    assistant = Assistant(settings, embedder, model)  # type: ignore[arg-type]
    body = {"message": QUESTION, "stream": stream}
    with live_server(create_app(assistant=assistant, with_ui=False)) as base:
        results = _post_all(base, [body, body, body], gap=0.15)
        statuses = [r.status_code for r, _ in results]
        assert statuses == [200, 200, 503], statuses
        refused, seconds = results[2]
        assert seconds < 0.5  # at once, not after a wait
        assert refused.headers["content-type"].startswith("application/json")
        assert int(refused.headers["retry-after"]) >= 1
        assert "busy" in refused.json()["detail"] and "ASSISTANT_MAX_QUEUE" in refused.json()["detail"]
        assert results[1][1] > 1.5  # the second waited for the first
        for r, _ in results[:2]:
            answer = parse_sse(r.text)[-1][1] if stream else r.json()
            assert isinstance(answer, dict) and answer["backend"] == "openai"
        assert model.most_inside == 1
        assert model.queue.snapshot()["admitted"] == 0  # every place given back
        with httpx.Client(trust_env=False) as c:
            assert c.get(f"{base}/healthz").status_code == 200


def test_api_serves_queued_chats_in_arrival_order(settings, embedder) -> None:  # type: ignore[no-untyped-def]
    model = ScriptedSlowModel(seconds=0.4, max_waiting=4)
    assistant = Assistant(settings, embedder, model)  # type: ignore[arg-type]
    questions = [f"{QUESTION} ({i})" for i in range(5)]
    with live_server(create_app(assistant=assistant, with_ui=False)) as base:
        results = _post_all(base, [{"message": q} for q in questions], gap=0.1)
    assert [r.status_code for r, _ in results] == [200] * 5
    served = [next(q for q in questions if q in prompt) for prompt in model.order]
    assert served == questions
    assert model.most_inside == 1


def test_fake_model_slow_within_timeout_is_queued_not_failed(index_dir: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    """The real OpenAI client against a slow (1 s) model: one at a time, one refused."""
    with fake_llm("slow", delay=1.0) as server:
        assistant = _assistant(
            index_dir,
            embedder,
            server.base_url,
            ASSISTANT_LLM_TIMEOUT=10,
            ASSISTANT_LLM_DEADLINE=10,
            ASSISTANT_LLM_CONCURRENCY=1,
            ASSISTANT_MAX_QUEUE=1,
        )
        with live_server(create_app(assistant=assistant, with_ui=False)) as base:
            results = _post_all(base, [{"message": QUESTION}] * 3, gap=0.15)
        assert [r.status_code for r, _ in results] == [200, 200, 503]
        assert "retry-after" in results[2][0].headers
        for r, _ in results[:2]:
            assert r.json()["backend"] == "openai" and r.json()["notice"] is None, r.json()
        assert server.max_in_flight == 1
        assert len(server.chat_requests()) == 2


# ------------------------------------------------------------------------ index faults

KILLED_INGEST = r"""
import sys, time
from pathlib import Path
from assistant.offline import apply_offline_env
apply_offline_env(Path(sys.argv[3]))
from assistant.pipeline.embedding import USEEmbedder
from assistant.pipeline.index import ingest, store_factory_for
from assistant.pipeline.chunking import ChunkerConfig

class Slow:
    def __init__(self, inner):
        self.inner, self.name, self.dim, self.batches = inner, inner.name, inner.dim, 0
    def embed_documents(self, texts):
        if self.batches == 1:
            Path(sys.argv[4]).write_text("half-way")  # one batch is in the store
            time.sleep(60)  # ... and here it is killed
        self.batches += 1
        return self.inner.embed_documents(texts)
    def embed_query(self, text):
        return self.inner.embed_query(text)

index = Path(sys.argv[2])
ingest(Path(sys.argv[1]), index, Slow(USEEmbedder()), store_factory_for(index, None, 0), ChunkerConfig())
"""


def test_an_ingest_killed_half_way_leaves_the_previous_index_served(
    index_dir: Path, embedder, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    """SIGKILL, not an exception: the manifest, the lock and the store survive a real kill."""
    import os
    import shutil
    import signal
    import subprocess
    import sys

    from assistant.pipeline.index import read_manifest
    from assistant.settings import PROJECT_ROOT
    from tests.conftest import CACHE, CORPUS

    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus, ignore=shutil.ignore_patterns("*.yaml"))
    for path in corpus.glob("*.md"):  # every document changed: many chunks to embed
        path.write_text(path.read_text("utf-8").replace("技术", "技術", 3), "utf-8")
    manifest_before = (index_dir / "manifest.json").read_text("utf-8")
    marker = tmp_path / "half-way"
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_INGEST, str(corpus), str(index_dir), str(CACHE), str(marker)],
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "the ingest never got half-way"
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    # The next start serves the previous complete index ...
    assert (index_dir / "manifest.json").read_text("utf-8") == manifest_before
    a = Assistant(make_settings(ASSISTANT_INDEX_DIR=index_dir), embedder, None)
    with TestClient(create_app(assistant=a, with_ui=False)) as c:
        assert c.get("/readyz").status_code == 200
        r = c.post("/v1/search", json={"query": "技術轉移", "k": 50})
        assert r.status_code == 200
        served = {cid for d in read_manifest(index_dir).documents.values() for cid in d["chunks"]}  # type: ignore[union-attr]
        assert {h["chunk_id"] for h in r.json()["results"]} <= served
    a.close()
    # ... the dead ingest's lock is gone, and the next ingest finishes the job.
    from assistant.pipeline.chunking import ChunkerConfig
    from assistant.pipeline.index import ingest, store_factory_for

    report = ingest(corpus, index_dir, embedder, store_factory_for(index_dir, None, 0), ChunkerConfig())
    assert report.added > 0
    assert (index_dir / "manifest.json").read_text("utf-8") != manifest_before
