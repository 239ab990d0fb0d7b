"""Stage 4, index: build and update the Chroma index incrementally and crash-safely.

Layout of the index folder (`state.FolderState`; with a Chroma server the same records
live on the server, `state.ChromaState`, and the folder is a cache):

- `manifest.json` — the one source of truth for readers: embedding model, chunker
  settings, the Chroma collection, and for each document its content hash, the file
  holding its cleaned text, and its chunk ids. It is replaced atomically, last.
- `docs/<hash>.json` — the cleaned documents, content-addressed.
- `originals/<hash><suffix>` — the original of each PDF, DOCX or HTML document (the
  manifest entry's `original`), content-addressed, to open it at the cited page.
- `chroma/` — Chroma's own files (absent when a Chroma server is configured).

An ingest adds new chunks first, then swaps the manifest, then deletes what is stale.
A crash at any point leaves the previous manifest in force, and everything it names is
still in the store; leftovers are never served (readers only use manifest ids) and the
next ingest reuses or removes them. Chunk ids are content hashes, so an unchanged chunk
is never embedded twice. The manifest's version (`IndexState.version`) changes with it:
replicas poll it and reload.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from assistant.pipeline.chunking import ChunkerConfig, chunk_document, embedding_text
from assistant.pipeline.corpus import Folders, Skipped, document_hash, folder_list, scan_corpus
from assistant.pipeline.embedding import Embedder, Vectors
from assistant.pipeline.keyword import tokenize
from assistant.pipeline.state import (  # re-exported: the index's errors and lock live there
    MANIFEST,
    FolderState,
    IndexBusy,
    IndexCorrupt,
    IndexMismatch,
    IndexMissing,
    IndexProblem,
    IndexState,
    ingest_lock,
    state_for,
)
from assistant.pipeline.store import ChromaStore, StoreError, VectorStore
from assistant.types import Chunk, Document

FORMAT = 1

StoreFactory = Callable[[str], VectorStore]
__all__ = [
    "MANIFEST",
    "IndexBusy",
    "IndexCorrupt",
    "IndexMismatch",
    "IndexMissing",
    "IndexProblem",
    "IndexState",
    "ingest_lock",
    "state_for",
]


@dataclass
class Manifest:
    collection: str
    embedding_model: str
    embedding_dim: int
    chunker: dict[str, Any]
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)
    created_at: str = ""
    updated_at: str = ""
    format: int = FORMAT
    # Corpus files not indexed, with the reason: [{"file", "reason"}] (absent in older manifests).
    skipped: list[dict[str, str]] = field(default_factory=list)

    @property
    def chunk_ids(self) -> list[str]:
        return [cid for d in self.documents.values() for cid in d["chunks"]]


@dataclass
class IngestReport:
    documents: int
    chunks: int
    added: int
    removed: int
    unchanged: int
    seconds: float
    rebuilt: bool
    collection: str
    skipped: list[dict[str, str]] = field(default_factory=list)  # [{"file", "reason"}]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def store_factory_for(index_dir: Path, chroma_host: str | None, chroma_port: int) -> StoreFactory:
    """A function that opens a collection in the configured Chroma (embedded or server)."""

    def open_store(collection: str) -> VectorStore:
        if chroma_host:
            return ChromaStore(collection, host=chroma_host, port=chroma_port)
        return ChromaStore(collection, path=index_dir / "chroma")

    return open_store


# ----------------------------------------------------------------------------- manifest


def read_manifest(index_dir: Path | IndexState) -> Manifest | None:
    """The manifest in an index folder (or an `IndexState`), None when there is none."""
    return _read_stamped(index_dir)[0]


def _read_stamped(where: Path | IndexState) -> tuple[Manifest | None, str | None]:
    state = FolderState(where) if isinstance(where, Path) else where
    try:
        stamped = state.read_manifest()
        if stamped is None:
            return None, None
        return Manifest(**json.loads(stamped.text)), stamped.version
    except StoreError as exc:
        raise IndexCorrupt(str(exc)) from exc
    except (OSError, ValueError, TypeError) as exc:
        name = f"{state.where}/{MANIFEST}" if isinstance(state, FolderState) else f"on {state.where}"
        raise IndexCorrupt(
            f"The index manifest {name} is unreadable ({exc}). "
            "Rebuild the index with `assistant ingest --rebuild`."
        ) from exc
    except Exception as exc:  # the Chroma server's own errors: unreachable means unusable
        raise IndexCorrupt(
            f"The index manifest on {state.where} could not be read ({type(exc).__name__}: "
            f"{str(exc)[:200]}). Check that the Chroma server is up."
        ) from exc


def _check_compatible(manifest: Manifest, embedder: Embedder, config: ChunkerConfig) -> None:
    problems = []
    if manifest.format != FORMAT:
        problems.append(f"index format {manifest.format} (this version writes {FORMAT})")
    if manifest.embedding_model != embedder.name:
        problems.append(
            f"embedding model {manifest.embedding_model!r} (configured: {embedder.name!r})"
        )
    if manifest.chunker != config.as_dict():
        problems.append(f"chunker settings {manifest.chunker} (configured: {config.as_dict()})")
    if problems:
        raise IndexMismatch(
            "The index was built with "
            + "; ".join(problems)
            + ". Run `assistant ingest --rebuild` to rebuild it with the current settings."
        )


# ------------------------------------------------------------------------------- ingest


def ingest(
    corpus_dir: Folders,
    index_dir: Path,
    embedder: Embedder,
    open_store: StoreFactory,
    config: ChunkerConfig,
    *,
    rebuild: bool = False,
    progress: bool = False,
    log: Callable[[str], None] = lambda _msg: None,
    state: IndexState | None = None,
) -> IngestReport:
    """Bring the index in `index_dir` up to date with the documents in `corpus_dir` (a
    folder, or several indexed together: the corpus and the uploads' library).

    `state` keeps the manifest and documents (default: the folder itself)."""
    state = state or FolderState(index_dir)
    started = time.perf_counter()
    # Files that cannot be read are skipped (and reported); only a missing folder raises.
    scan = scan_corpus(corpus_dir, progress=progress)
    docs = scan.documents
    skipped = [s.as_dict() for s in scan.skipped]  # the caller reports them (IngestReport)
    if not docs:
        raise IndexMissing(_nothing_to_index(folder_list(corpus_dir)[0], scan.skipped))
    with state.lock():
        base = state.version()  # the commit refuses to replace any other version
        old = None if rebuild else _readable_manifest(state)
        # Shared by replicas: the collection they may still be serving from (a rebuild's
        # predecessor) is dropped by the next ingest, once they have reloaded.
        serving = _readable_manifest(state) if rebuild and state.shared else None
        if old is not None:
            _check_compatible(old, embedder, config)
        if old is None:
            collection = f"chunks_{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}_{uuid.uuid4().hex[:6]}"
            # Recorded before it is created: if this ingest is killed, the next one that
            # finishes drops the half-filled collection instead of leaving it on disk.
            state.set_known_collections(state.known_collections() | {collection})
        else:
            collection = old.collection
        store = open_store(collection)
        existing = store.all_ids()
        hashes = {d.doc_id: document_hash(d) for d in docs}
        # An unchanged document (same hash, same settings, all its chunks stored) keeps
        # its manifest entry without being chunked again.
        kept: dict[str, list[str]] = {}
        planned: dict[str, tuple[Document, list[Chunk]]] = {}
        for d in docs:
            entry = old.documents.get(d.doc_id) if old else None
            if entry and entry["hash"] == hashes[d.doc_id] and set(entry["chunks"]) <= existing:
                kept[d.doc_id] = list(entry["chunks"])
            else:
                planned[d.doc_id] = (d, chunk_document(d, config))
        log(f"{len(docs)} documents: {len(planned)} new or changed, {len(kept)} unchanged.")
        wanted = {c.chunk_id: (d, c) for d, chunks in planned.values() for c in chunks}
        to_add = [cid for cid in wanted if cid not in existing]
        _embed_and_store(store, embedder, [wanted[cid] for cid in to_add], progress)

        stored_docs = state.stored_docs()
        entries: dict[str, dict[str, Any]] = {}
        for doc in docs:
            digest = hashes[doc.doc_id]
            doc_file = f"docs/{digest}.json"
            if doc_file not in stored_docs:
                state.write_doc(doc_file, json.dumps(asdict(doc), ensure_ascii=False))
            chunk_ids = kept.get(doc.doc_id) or [c.chunk_id for c in planned[doc.doc_id][1]]
            entries[doc.doc_id] = {"hash": digest, "file": doc_file, "chunks": chunk_ids}
            original = state.keep_original(scan.paths.get(doc.doc_id))
            if original:
                entries[doc.doc_id]["original"] = original
        all_ids = {cid for e in entries.values() for cid in e["chunks"]}
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        manifest = Manifest(
            collection=collection,
            embedding_model=embedder.name,
            embedding_dim=embedder.dim,
            chunker=config.as_dict(),
            documents=entries,
            created_at=old.created_at if old else now,
            updated_at=now,
            skipped=skipped,
        )
        # The commit point: the new manifest and its version, in one write.
        state.write_manifest(json.dumps(asdict(manifest), ensure_ascii=False, indent=1), expect=base)

        # Only now is it safe to remove what the new manifest no longer names.
        stale = sorted(existing - all_ids)
        if stale:
            store.delete(stale)
        spare = {serving.collection} if serving is not None else set()
        _drop_other_collections(state, open_store, keep=collection, spare=spare)
        state.prune_docs({e["file"] for e in entries.values()})
        state.prune_originals({e["original"] for e in entries.values() if e.get("original")})
        return IngestReport(
            documents=len(docs),
            chunks=len(all_ids),
            added=len(to_add),
            removed=len(stale),
            unchanged=len(all_ids) - len(to_add),
            seconds=round(time.perf_counter() - started, 2),
            rebuilt=old is None,
            collection=collection,
            skipped=skipped,
        )


def _nothing_to_index(corpus_dir: Path, skipped: list[Skipped]) -> str:
    from assistant.pipeline.formats import SUFFIXES

    if not skipped:
        return (
            f"No documents in {corpus_dir} (supported: {', '.join(SUFFIXES)}); nothing to index."
        )
    reasons = "; ".join(f"{s.file}: {s.reason}" for s in skipped)
    return f"No readable documents in {corpus_dir}; nothing to index. Skipped: {reasons}"


def _readable_manifest(state: IndexState) -> Manifest | None:
    try:
        return read_manifest(state)
    except IndexCorrupt:
        # A broken manifest cannot be trusted for an incremental update: start afresh.
        return None


def _drop_other_collections(
    state: IndexState, open_store: StoreFactory, *, keep: str, spare: set[str] | None = None
) -> None:
    """After an ingest, remove every collection this index created but its manifest no
    longer names: older rebuilds' and those of a rebuild that was killed half-way
    (except `spare`, kept until the next ingest)."""
    kept = {keep} | (spare or set())
    known = state.known_collections() | kept
    for name in sorted(known - kept):
        with contextlib.suppress(Exception):
            open_store(name).drop()
    state.set_known_collections(kept)


# Chunks written to the store per upsert. Chroma's upsert has a large cost per call (about
# 0.3 s embedded): 40 calls of 32 took 14-20 s for 1,280 chunks, 3 calls of 512 took 2.6 s.
STORE_BATCH = 512


def chunk_metadata(doc: Document, chunk: Chunk) -> dict[str, Any]:
    return {
        "doc_id": doc.doc_id,
        "start": chunk.start,
        "end": chunk.end,
        "heading": chunk.heading,
        "language": chunk.language,
        "is_table": chunk.is_table,
        "kind": doc.kind,
        # The title makes "which organization…" questions find the document's chunks.
        "tokens": " ".join(tokenize(f"{doc.title}\n{chunk.heading or ''}\n{chunk.text}")),
    }


def _embed_and_store(
    store: VectorStore,
    embedder: Embedder,
    items: list[tuple[Document, Chunk]],
    progress: bool,
    batch: int = 32,
) -> None:
    if not items:
        return
    from tqdm import tqdm

    bar = tqdm(total=len(items), desc="Embedding", unit="chunk", disable=not progress)
    import numpy as np

    pending: list[tuple[Document, Chunk]] = []
    vectors: list[Vectors] = []

    def flush() -> None:
        store.upsert(
            [c.chunk_id for _, c in pending],
            np.concatenate(vectors),
            [c.text for _, c in pending],
            [chunk_metadata(d, c) for d, c in pending],
        )
        pending.clear()
        vectors.clear()

    try:
        for i in range(0, len(items), batch):
            part = items[i : i + batch]
            vectors.append(embedder.embed_documents([embedding_text(d, c) for d, c in part]))
            pending.extend(part)
            if len(pending) >= STORE_BATCH:
                flush()
            bar.update(len(part))
        if pending:
            flush()
    finally:
        bar.close()


# ------------------------------------------------------------------------------ reading


@dataclass
class IndexSnapshot:
    """What one manifest names, loaded for serving: documents, chunks, the store."""

    manifest: Manifest
    documents: dict[str, Document]
    chunks: list[Chunk]
    tokens: list[list[str]]
    store: VectorStore
    version: str | None = None  # the manifest version it was loaded from (IndexState.version)

    @property
    def chunk_by_id(self) -> dict[str, int]:
        return {c.chunk_id: i for i, c in enumerate(self.chunks)}


def load_snapshot(
    index_dir: Path, open_store: StoreFactory, embedder: Embedder, state: IndexState | None = None
) -> IndexSnapshot:
    """Load the index for serving, or raise an `IndexProblem` that says how to fix it."""
    state = state or FolderState(index_dir)
    manifest, version = _read_stamped(state)
    if manifest is None:
        raise IndexMissing(
            f"No index found in {state.where}. Build it with `assistant ingest` (or `make run`)."
        )
    if manifest.embedding_model != embedder.name:
        raise IndexMismatch(
            f"The index was built with {manifest.embedding_model!r}, but the configured "
            f"embedding model is {embedder.name!r}. Run `assistant ingest --rebuild`."
        )
    documents: dict[str, Document] = {}
    for doc_id, entry in manifest.documents.items():
        try:
            documents[doc_id] = Document(**json.loads(state.read_doc(entry["file"])))
        except Exception as exc:  # unreadable, or the Chroma server went away: unusable
            raise IndexCorrupt(
                f"Index file {entry['file']} ({state.where}) for document {doc_id!r} is missing or unreadable. "
                "Repair the index with `assistant ingest --rebuild`."
            ) from exc
    try:
        store = open_store(manifest.collection)
        ids = manifest.chunk_ids
        records = {r.chunk_id: r for r in store.get(ids)}
    except StoreError as exc:
        raise IndexCorrupt(str(exc)) from exc
    except Exception as exc:  # the store's own errors: unreadable means unusable
        raise IndexCorrupt(
            f"The vector store could not be read ({exc}). "
            "Repair the index with `assistant ingest --rebuild`."
        ) from exc
    missing = [cid for cid in ids if cid not in records]
    if missing:
        raise IndexCorrupt(
            f"{len(missing)} chunks named in the manifest are not in the vector store "
            f"(e.g. {missing[0]}). Repair the index with `assistant ingest --rebuild`."
        )
    chunks: list[Chunk] = []
    tokens: list[list[str]] = []
    for cid in ids:
        rec = records[cid]
        meta = rec.metadata
        doc = documents[str(meta["doc_id"])]
        start, end = int(meta["start"]), int(meta["end"])
        if doc.text[start:end] != rec.text:
            raise IndexCorrupt(
                f"Chunk {cid} does not match its document text. "
                "Repair the index with `assistant ingest --rebuild`."
            )
        chunks.append(
            Chunk(
                chunk_id=cid,
                doc_id=doc.doc_id,
                start=start,
                end=end,
                text=rec.text,
                heading=meta.get("heading"),
                language=str(meta.get("language", "zh-Hans")),
                is_table=bool(meta.get("is_table", False)),
            )
        )
        tokens.append(str(meta.get("tokens", "")).split())
    return IndexSnapshot(manifest, documents, chunks, tokens, store, version)


@dataclass
class IndexStatus:
    current: bool
    why: str
    skipped: list[Skipped] = field(default_factory=list)  # corpus files that are not indexed


def index_status(
    corpus_dir: Folders,
    index_dir: Path,
    embedder_name: str,
    config: ChunkerConfig,
    open_store: StoreFactory | None = None,
    state: IndexState | None = None,
) -> IndexStatus:
    """Whether the index matches the corpus and settings, why not, and what is skipped.

    Besides comparing hashes, the index's own files are checked: every cleaned document
    it names must load and hash as recorded, and (given `open_store`) the vector store
    must open and hold every chunk the manifest names, so a damaged `docs/*.json` or
    `chroma.sqlite3` is reported instead of "up to date".
    """
    state = state or FolderState(index_dir)
    try:
        manifest = read_manifest(state)
    except IndexCorrupt as exc:
        return IndexStatus(False, str(exc))
    if manifest is None:
        return IndexStatus(False, "no index yet")
    if manifest.embedding_model != embedder_name or manifest.chunker != config.as_dict():
        return IndexStatus(False, "settings changed (needs --rebuild)")
    damage = _damage(state, manifest, open_store)
    if damage:
        return IndexStatus(False, f"{damage} Repair it with `assistant ingest --rebuild`.")
    scan = scan_corpus(corpus_dir)
    current = {d.doc_id: document_hash(d) for d in scan.documents}
    indexed = {k: v["hash"] for k, v in manifest.documents.items()}
    if current != indexed:
        return IndexStatus(False, "corpus changed", scan.skipped)
    return IndexStatus(True, "up to date", scan.skipped)


def _damage(state: IndexState, manifest: Manifest, open_store: StoreFactory | None) -> str | None:
    """What is broken in the index's files (None: nothing found)."""
    for doc_id, entry in manifest.documents.items():
        try:
            doc = Document(**json.loads(state.read_doc(str(entry.get("file", "")))))
        except (OSError, ValueError, TypeError):
            return f"The cleaned text of {doc_id!r} ({entry.get('file')}) is missing or unreadable."
        if document_hash(doc) != entry.get("hash"):
            return f"The cleaned text of {doc_id!r} ({entry.get('file')}) does not match its recorded hash."
    if open_store is None:
        return None
    try:
        stored = open_store(manifest.collection).all_ids()
    except Exception as exc:  # chromadb raises many types; all mean "unusable"
        return f"The vector store cannot be read ({type(exc).__name__}: {str(exc)[:200]})."
    missing = [cid for cid in manifest.chunk_ids if cid not in stored]
    if missing:
        return f"{len(missing)} chunks named in the manifest are not in the vector store."
    return None


def index_is_current(
    corpus_dir: Folders, index_dir: Path, embedder_name: str, config: ChunkerConfig
) -> tuple[bool, str]:
    """Whether the index matches the corpus and settings, and if not, why."""
    status = index_status(corpus_dir, index_dir, embedder_name, config)
    return status.current, status.why
