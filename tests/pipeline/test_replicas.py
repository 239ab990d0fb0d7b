"""Replicas agree: two assistants (two index folders, one empty) on one Chroma server.

The manifest, the cleaned documents and the originals live on the server
(`assistant.pipeline.state.ChromaState`); each replica polls the index version and
reloads, so an ingest, upload or delete through one is served by the other within 10 s.
Both share the corpus and the library folder, as replicas must (see README, "Several
replicas").
"""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from assistant.pipeline.index import IndexBusy, read_manifest
from assistant.pipeline.state import ChromaState, VersionPoller
from assistant.service import Assistant
from assistant.settings import Settings
from assistant.web.api import create_app
from tests.conftest import CORPUS, make_settings
from tests.pipeline.test_chroma_server import chroma_server  # noqa: F401 - the fixture
from tests.pipeline.test_formats import PAGE3_SENTENCE, make_chinese_pdf

pytestmark = pytest.mark.slow

ADMIN = "adm-7b3e5a9c1d2f4e6a8c0b2d4f6a8c0e1b"
AUTH = {"Authorization": f"Bearer {ADMIN}"}
QUERIES = ["Which technology transfer center serves ASEAN countries?", "上合组织技术转移中心", "中阿技术转移"]
NEW_DOC = """---
id: replica-note
title: 复制节点测试说明
kind: news_report
language: zh-Hans
---
# 复制节点测试说明

塔斯曼海峡量子灌溉示范站于二〇二五年在奥克兰启用，由南宁技术转移联络处协调。
"""


def _hits(assistant: Assistant, query: str) -> list[tuple[str, str]]:
    return [(h.chunk.chunk_id, h.chunk.text) for h in assistant.search(query, 5)]


def _within(seconds: float, condition: Callable[[], bool]) -> float:
    """How long `condition` took to hold (fails after `seconds`)."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if condition():
            return time.monotonic() - started
        time.sleep(0.2)
    pytest.fail(f"not within {seconds} s")


@pytest.fixture(scope="module")
def pair(chroma_server: int, tmp_path_factory: pytest.TempPathFactory, embedder) -> Iterator[tuple[Assistant, Assistant]]:  # type: ignore[no-untyped-def]  # noqa: F811
    root = tmp_path_factory.mktemp("replicas")
    shutil.copytree(CORPUS, root / "corpus")
    prefix = f"t{uuid.uuid4().hex[:8]}"

    def settings(name: str) -> Settings:
        return make_settings(
            ASSISTANT_CORPUS_DIR=root / "corpus",
            ASSISTANT_LIBRARY_DIR=root / "library",  # shared, like the corpus
            ASSISTANT_INDEX_DIR=root / name / "index",
            ASSISTANT_STATE_DIR=root / name / "state",
            ASSISTANT_ADMIN_TOKEN=ADMIN,
            CHROMA_HOST="127.0.0.1",
            CHROMA_PORT=chroma_server,
            ASSISTANT_CHROMA_PREFIX=prefix,
            ASSISTANT_INDEX_POLL=1,
            ASSISTANT_WARM_START_WAIT=0,
        )

    a = Assistant(settings("a"), embedder, None)
    a.reindex()
    b = Assistant(settings("b"), embedder, None)  # an empty index folder
    yield a, b
    a.close()
    b.close()


def test_a_replica_with_an_empty_folder_serves_the_same(pair: tuple[Assistant, Assistant]) -> None:
    a, b = pair
    assert b.status()["chunks"] == a.status()["chunks"] > 100
    assert [d.document.doc_id for d in b.documents()] == [d.document.doc_id for d in a.documents()]
    for query in QUERIES:
        assert _hits(b, query) == _hits(a, query)
    # Nothing was written to B's folder but the cached documents: no manifest, no vectors.
    folder = b.settings.index_dir
    assert read_manifest(folder) is None and not (folder / "chroma").exists()
    assert len(list((folder / "docs").glob("*.json"))) == len(b.documents())


def test_an_ingest_through_one_replica_is_served_by_the_other(pair: tuple[Assistant, Assistant]) -> None:
    a, b = pair
    note = a.settings.corpus_dir / "replica-note.md"
    note.write_text(NEW_DOC, "utf-8")
    try:
        a.reindex()
        assert b.refresh_if_changed()  # what the poller does
        assert _hits(b, "量子灌溉示范站")[0][1] == _hits(a, "量子灌溉示范站")[0][1]
        assert "量子灌溉" in _hits(b, "量子灌溉示范站")[0][1]
        assert not b.refresh_if_changed()  # nothing new: no reload
    finally:
        note.unlink()
        a.reindex()
    b.refresh_if_changed()
    assert "replica-note" not in {d.document.doc_id for d in b.documents()}


def test_upload_and_delete_through_one_app_reach_the_other_within_10_s(
    pair: tuple[Assistant, Assistant], tmp_path: Path
) -> None:
    a, b = pair
    pdf = make_chinese_pdf(tmp_path / "replica report.pdf")
    with (
        TestClient(create_app(assistant=a, with_ui=False)) as api_a,
        TestClient(create_app(assistant=b, with_ui=False)) as api_b,  # its lifespan polls every 1 s
    ):
        with pdf.open("rb") as fh:
            r = api_a.post("/v1/documents", headers=AUTH, files={"file": (pdf.name, fh)})
        assert r.status_code == 201, r.text
        doc_id = r.json()["doc_id"]

        def b_finds_it() -> bool:
            hits = api_b.post("/v1/search", json={"query": PAGE3_SENTENCE, "k": 3}).json()["results"]
            return bool(hits) and hits[0]["doc_id"] == doc_id

        assert _within(10, b_finds_it) < 10
        # The original comes from the server into B's folder (a cache) on first use.
        original = api_b.get(f"/sources/{doc_id}/original")
        assert original.status_code == 200 and original.content == pdf.read_bytes()

        assert api_a.delete(f"/v1/documents/{doc_id}", headers=AUTH).status_code in (200, 204)
        _within(10, lambda: api_b.get(f"/v1/documents/{doc_id}").status_code == 404)


def test_one_ingest_at_a_time_across_replicas(pair: tuple[Assistant, Assistant]) -> None:
    a, b = pair
    state = a.index_state
    assert isinstance(state, ChromaState)
    entered, release = threading.Event(), threading.Event()

    def hold() -> None:
        with state.lock():
            entered.set()
            release.wait(20)

    t = threading.Thread(target=hold)
    t.start()
    try:
        assert entered.wait(10)
        with pytest.raises(IndexBusy, match="Another ingest is running on the Chroma server"):
            b.reindex()  # another folder, another machine as far as the flock knows
    finally:
        release.set()
        t.join()
    b.reindex()  # and works once the first is done
    assert b.status()["chunks"] == a.status()["chunks"]


def test_a_commit_over_a_version_it_did_not_start_from_is_refused(pair: tuple[Assistant, Assistant]) -> None:
    a, _b = pair
    state = a.index_state
    current = state.read_manifest()
    assert current is not None
    with pytest.raises(IndexBusy, match="changed the index"):
        state.write_manifest(current.text, expect="0:stale")
    assert state.version() == current.version


def test_the_poller_reloads_and_stops(pair: tuple[Assistant, Assistant]) -> None:
    calls: list[Any] = []
    poller = VersionPoller(lambda: calls.append(1), 0.1).start()
    _within(5, lambda: len(calls) >= 2)
    poller.stop()
    seen = len(calls)
    time.sleep(0.3)
    assert len(calls) == seen


def test_a_rebuild_keeps_the_collection_others_serve_until_the_next_ingest(
    pair: tuple[Assistant, Assistant], chroma_server: int, embedder  # type: ignore[no-untyped-def]  # noqa: F811
) -> None:
    import chromadb

    from assistant.pipeline.index import ingest, store_factory_for
    from assistant.service import chunker_config

    a, b = pair
    s = a.settings
    served = b.engine.retriever.snapshot.manifest.collection
    open_store = store_factory_for(s.index_dir, s.chroma_host, s.chroma_port)
    report = ingest(s.document_folders, s.index_dir, embedder, open_store, chunker_config(s), rebuild=True, state=a.index_state)
    assert report.rebuilt and report.collection != served
    assert _hits(b, QUERIES[0])  # B has not reloaded yet: what it serves is still there
    assert b.refresh_if_changed() and b.engine.retriever.snapshot.manifest.collection == report.collection
    client = chromadb.HttpClient(host="127.0.0.1", port=chroma_server)
    assert served in {c.name for c in client.list_collections()}
    a.reindex()  # the next ingest drops it
    assert served not in {c.name for c in client.list_collections()}
    assert _hits(b, QUERIES[0]) == _hits(a, QUERIES[0])


def test_another_replica_lock_can_replace_the_lock_record(tmp_path: Path, chroma_server: int) -> None:  # noqa: F811
    import contextlib

    from assistant.pipeline.state import state_for

    held: list[str] = []

    @contextlib.contextmanager
    def advisory() -> Iterator[None]:  # what a PostgreSQL advisory lock would be
        held.append("in")
        yield
        held.append("out")

    state = state_for(tmp_path, "127.0.0.1", chroma_server, f"t{uuid.uuid4().hex[:8]}", lock=advisory)
    with state.lock():
        assert held == ["in"]
        assert state.version() is None  # no lock record, no manifest: nothing written
    assert held == ["in", "out"]
