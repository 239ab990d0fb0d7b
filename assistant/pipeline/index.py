"""Stage 4, index: build and update the Chroma index incrementally and crash-safely.

Layout of the index folder:

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
is never embedded twice.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from assistant.errors import Unavailable
from assistant.pipeline.chunking import ChunkerConfig, chunk_document, embedding_text
from assistant.pipeline.corpus import Folders, Skipped, document_hash, folder_list, scan_corpus
from assistant.pipeline.embedding import Embedder
from assistant.pipeline.keyword import tokenize
from assistant.pipeline.store import ChromaStore, StoreError, VectorStore
from assistant.types import Chunk, Document

MANIFEST = "manifest.json"
COLLECTIONS = "collections.json"  # every collection this folder created and not yet dropped
ORIGINALS = "originals"
FORMAT = 1

StoreFactory = Callable[[str], VectorStore]


class IndexProblem(Unavailable):
    """Base for index problems; the message always names the command that fixes it."""


class IndexMissing(IndexProblem):
    pass


class IndexMismatch(IndexProblem):
    pass


class IndexBusy(IndexProblem):
    pass


class IndexCorrupt(IndexProblem):
    pass


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


def read_manifest(index_dir: Path) -> Manifest | None:
    path = index_dir / MANIFEST
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text("utf-8"))
        return Manifest(**data)
    except (OSError, ValueError, TypeError) as exc:
        raise IndexCorrupt(
            f"The index manifest {path} is unreadable ({exc}). "
            "Rebuild the index with `assistant ingest --rebuild`."
        ) from exc


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    with contextlib.suppress(OSError):  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


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


@contextlib.contextmanager
def ingest_lock(index_dir: Path) -> Iterator[None]:
    index_dir.mkdir(parents=True, exist_ok=True)
    lock_path = index_dir / ".ingest.lock"
    fh = open(lock_path, "a+")  # noqa: SIM115 - held for the duration of the ingest
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            raise IndexBusy(
                f"Another ingest is running on {index_dir} ({holder}). "
                "Wait for it to finish, then run `assistant ingest` again."
            ) from exc
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}")
        fh.flush()
        yield
    finally:
        fh.close()


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
) -> IngestReport:
    """Bring the index in `index_dir` up to date with the documents in `corpus_dir` (a
    folder, or several indexed together: the corpus and the uploads' library)."""
    started = time.perf_counter()
    # Files that cannot be read are skipped (and reported); only a missing folder raises.
    scan = scan_corpus(corpus_dir, progress=progress)
    docs = scan.documents
    skipped = [s.as_dict() for s in scan.skipped]  # the caller reports them (IngestReport)
    if not docs:
        raise IndexMissing(_nothing_to_index(folder_list(corpus_dir)[0], scan.skipped))
    with ingest_lock(index_dir):
        old = None if rebuild else _readable_manifest(index_dir)
        if old is not None:
            _check_compatible(old, embedder, config)
        if old is None:
            collection = f"chunks_{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}_{uuid.uuid4().hex[:6]}"
            # Recorded before it is created: if this ingest is killed, the next one that
            # finishes drops the half-filled collection instead of leaving it on disk.
            _remember_collection(index_dir, collection)
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

        docs_dir = index_dir / "docs"
        docs_dir.mkdir(parents=True, exist_ok=True)
        entries: dict[str, dict[str, Any]] = {}
        for doc in docs:
            digest = hashes[doc.doc_id]
            doc_file = docs_dir / f"{digest}.json"
            if not doc_file.exists():
                _write_atomic(doc_file, json.dumps(asdict(doc), ensure_ascii=False))
            chunk_ids = kept.get(doc.doc_id) or [c.chunk_id for c in planned[doc.doc_id][1]]
            entries[doc.doc_id] = {"hash": digest, "file": f"docs/{digest}.json", "chunks": chunk_ids}
            original = _keep_original(scan.paths.get(doc.doc_id), index_dir)
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
        _write_atomic(index_dir / MANIFEST, json.dumps(asdict(manifest), ensure_ascii=False, indent=1))

        # Only now is it safe to remove what the new manifest no longer names.
        stale = sorted(existing - all_ids)
        if stale:
            store.delete(stale)
        _drop_other_collections(index_dir, open_store, keep=collection)
        referenced = {e["file"].split("/", 1)[1] for e in entries.values()}
        for f in docs_dir.glob("*.json"):
            if f.name not in referenced:
                f.unlink(missing_ok=True)
        kept_originals = {e["original"].split("/", 1)[1] for e in entries.values() if e.get("original")}
        for f in (index_dir / ORIGINALS).glob("*"):
            if f.name not in kept_originals:
                f.unlink(missing_ok=True)
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


def _keep_original(source: Path | None, index_dir: Path) -> str | None:
    """Copy a PDF/DOCX/HTML original to `originals/<content-hash><suffix>`; its manifest name."""
    from assistant.pipeline.formats import ORIGINAL_SUFFIXES

    if source is None:
        return None
    suffix = source.suffix.lower()
    if suffix not in ORIGINAL_SUFFIXES:
        return None
    h = hashlib.sha256()
    try:
        with source.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    except OSError:
        return None  # gone since it was read: the text is indexed, the original is not kept
    name = f"{h.hexdigest()}{suffix}"
    target = index_dir / ORIGINALS / name
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{name}.{uuid.uuid4().hex}.tmp")
        try:
            shutil.copyfile(source, tmp)
            os.replace(tmp, target)
        except OSError:
            tmp.unlink(missing_ok=True)
            return None
    return f"{ORIGINALS}/{name}"


def _readable_manifest(index_dir: Path) -> Manifest | None:
    try:
        return read_manifest(index_dir)
    except IndexCorrupt:
        # A broken manifest cannot be trusted for an incremental update: start afresh.
        return None


def _known_collections(index_dir: Path) -> set[str]:
    try:
        known = json.loads((index_dir / COLLECTIONS).read_text("utf-8"))
    except (OSError, ValueError):
        return set()
    return {str(name) for name in known} if isinstance(known, list) else set()


def _remember_collection(index_dir: Path, name: str) -> None:
    _write_atomic(index_dir / COLLECTIONS, json.dumps(sorted(_known_collections(index_dir) | {name})))


def _drop_other_collections(
    index_dir: Path, open_store: StoreFactory, *, keep: str
) -> None:
    """After an ingest, remove every collection this index folder created but its manifest
    no longer names: older rebuilds' and those of a rebuild that was killed half-way."""
    record = index_dir / COLLECTIONS
    known = _known_collections(index_dir)
    known.add(keep)
    for name in sorted(known - {keep}):
        with contextlib.suppress(Exception):
            open_store(name).drop()
    _write_atomic(record, json.dumps([keep]))


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
    try:
        for i in range(0, len(items), batch):
            part = items[i : i + batch]
            vectors = embedder.embed_documents([embedding_text(d, c) for d, c in part])
            store.upsert(
                [c.chunk_id for _, c in part],
                vectors,
                [c.text for _, c in part],
                [chunk_metadata(d, c) for d, c in part],
            )
            bar.update(len(part))
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

    @property
    def chunk_by_id(self) -> dict[str, int]:
        return {c.chunk_id: i for i, c in enumerate(self.chunks)}


def load_snapshot(index_dir: Path, open_store: StoreFactory, embedder: Embedder) -> IndexSnapshot:
    """Load the index for serving, or raise an `IndexProblem` that says how to fix it."""
    manifest = read_manifest(index_dir)
    if manifest is None:
        raise IndexMissing(
            f"No index found in {index_dir}. Build it with `assistant ingest` (or `make run`)."
        )
    if manifest.embedding_model != embedder.name:
        raise IndexMismatch(
            f"The index was built with {manifest.embedding_model!r}, but the configured "
            f"embedding model is {embedder.name!r}. Run `assistant ingest --rebuild`."
        )
    documents: dict[str, Document] = {}
    for doc_id, entry in manifest.documents.items():
        path = index_dir / entry["file"]
        try:
            documents[doc_id] = Document(**json.loads(path.read_text("utf-8")))
        except (OSError, ValueError, TypeError) as exc:
            raise IndexCorrupt(
                f"Index file {path} for document {doc_id!r} is missing or unreadable. "
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
    return IndexSnapshot(manifest, documents, chunks, tokens, store)


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
) -> IndexStatus:
    """Whether the index matches the corpus and settings, why not, and what is skipped.

    Besides comparing hashes, the index's own files are checked: every cleaned document
    it names must load and hash as recorded, and (given `open_store`) the vector store
    must open and hold every chunk the manifest names, so a damaged `docs/*.json` or
    `chroma.sqlite3` is reported instead of "up to date".
    """
    try:
        manifest = read_manifest(index_dir)
    except IndexCorrupt as exc:
        return IndexStatus(False, str(exc))
    if manifest is None:
        return IndexStatus(False, "no index yet")
    if manifest.embedding_model != embedder_name or manifest.chunker != config.as_dict():
        return IndexStatus(False, "settings changed (needs --rebuild)")
    damage = _damage(index_dir, manifest, open_store)
    if damage:
        return IndexStatus(False, f"{damage} Repair it with `assistant ingest --rebuild`.")
    scan = scan_corpus(corpus_dir)
    current = {d.doc_id: document_hash(d) for d in scan.documents}
    indexed = {k: v["hash"] for k, v in manifest.documents.items()}
    if current != indexed:
        return IndexStatus(False, "corpus changed", scan.skipped)
    return IndexStatus(True, "up to date", scan.skipped)


def _damage(index_dir: Path, manifest: Manifest, open_store: StoreFactory | None) -> str | None:
    """What is broken in the index's files (None: nothing found)."""
    for doc_id, entry in manifest.documents.items():
        path = index_dir / str(entry.get("file", ""))
        try:
            doc = Document(**json.loads(path.read_text("utf-8")))
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
