"""The same code path against a real Chroma server (`chroma run` on loopback)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.pipeline.index import ingest, load_snapshot, read_manifest, store_factory_for
from assistant.pipeline.retrieve import HybridRetriever
from assistant.service import chunker_config
from deploy.local import chroma, free_port
from tests.conftest import CORPUS, make_settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """`chroma run` on a free loopback port (`deploy.local.chroma`); its port."""
    service = chroma(tmp_path_factory.mktemp("chroma-server"))
    try:
        yield int(service.url.rsplit(":", 1)[1])
    finally:
        service.stop()


def test_ingest_and_search_through_a_chroma_server(chroma_server: int, tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(ASSISTANT_INDEX_DIR=tmp_path / "index", CHROMA_HOST="127.0.0.1", CHROMA_PORT=chroma_server)
    open_store = store_factory_for(settings.index_dir, settings.chroma_host, settings.chroma_port)
    report = ingest(CORPUS, settings.index_dir, embedder, open_store, chunker_config(settings))
    assert report.added == report.chunks > 100
    assert not (settings.index_dir / "chroma").exists()  # vectors live on the server
    again = ingest(CORPUS, settings.index_dir, embedder, open_store, chunker_config(settings))
    assert again.added == 0
    snapshot = load_snapshot(settings.index_dir, open_store, embedder)
    hits = HybridRetriever(snapshot, embedder).search("Which technology transfer center serves ASEAN countries?", k=3)
    assert any("东盟" in h.chunk.text for h in hits)
    manifest = read_manifest(settings.index_dir)
    assert manifest is not None and snapshot.store.count() == len(manifest.chunk_ids)


def test_the_api_serves_from_a_chroma_server(chroma_server: int, tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from assistant.service import Assistant
    from assistant.web.api import create_app

    shutil.copytree(CORPUS, tmp_path / "corpus")
    settings = make_settings(
        ASSISTANT_CORPUS_DIR=tmp_path / "corpus",
        ASSISTANT_INDEX_DIR=tmp_path / "index",
        CHROMA_HOST="127.0.0.1",
        CHROMA_PORT=chroma_server,
    )
    open_store = store_factory_for(settings.index_dir, settings.chroma_host, settings.chroma_port)
    ingest(settings.corpus_dir, settings.index_dir, embedder, open_store, chunker_config(settings), rebuild=True)
    with TestClient(create_app(assistant=Assistant(settings, embedder, None), with_ui=False)) as client:
        body = client.post("/v1/search", json={"query": "上合组织技术转移中心", "k": 3}).json()
        assert body["results"] and "上合" in body["results"][0]["text"]


def test_unreachable_chroma_server_is_a_clear_error(tmp_path: Path) -> None:
    from assistant.pipeline.store import ChromaStore, StoreError

    with pytest.raises(StoreError, match="CHROMA_HOST"):
        ChromaStore("x", host="127.0.0.1", port=free_port())
