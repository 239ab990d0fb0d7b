"""Where an index's own records live: the manifest, the cleaned documents, the originals.

`IndexState` is what `ingest()` and `load_snapshot()` (assistant.pipeline.index) need to
keep besides the vectors. Two implementations:

- `FolderState`: the index folder (`manifest.json`, `docs/<hash>.json`,
  `originals/<hash><suffix>`, `collections.json`), the default, as it always was. Its
  version is the manifest file's (mtime, size), so a process serving the folder sees an
  `assistant ingest` run beside it.
- `ChromaState` (when `CHROMA_HOST` is set): the same records on the Chroma server, so
  every replica with the same server serves the same index, even from an empty folder.
  Collection `<prefix>_meta` holds the manifest (one record: the manifest JSON as its
  document, `{version, stamp, updated_at}` as its metadata, so the manifest and its
  version change in one write), the record of chunk collections and the ingest lock;
  `<prefix>_docs` holds each cleaned document JSON (id: its content hash) and each
  original up to `ORIGINAL_MAX_BYTES` (base64; larger ones stay in the folder of the
  replica that ingested them). The index folder is a content-addressed cache of both.

The version bump is the commit point: an ingest adds chunks, writes documents, then swaps
the manifest, then deletes what is stale.

One ingest at a time: `FolderState.lock()` is an flock on `.ingest.lock` (processes on one
machine); `ChromaState.lock()` adds a lock record in `<prefix>_meta` (owner, expiry),
renewed while the ingest runs. Chroma has no compare-and-set, so the record is taken by
read (free or expired) → write → wait `LOCK_SETTLE` s → read back (still ours). Two
replicas both get it only if one stalls longer than `LOCK_SETTLE` between its read and
its write; and then the manifest write still refuses to commit over a version it did not
start from, so the loser's ingest fails (IndexBusy) instead of overwriting the other's
manifest. The expiry uses wall clocks: replicas need synchronised clocks (NTP).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from assistant.errors import Unavailable

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
COLLECTIONS = "collections.json"  # every collection this index created and not yet dropped
ORIGINALS = "originals"
DOCS = "docs"
# Originals larger than this stay in the folder of the replica that ingested them (the
# Chroma server refuses requests of some tens of MB; base64 adds a third).
ORIGINAL_MAX_BYTES = 8_000_000
LOCK_TTL = 120.0  # seconds a lock record lasts unless renewed
LOCK_RENEW = 30.0  # how often the ingest holding it renews it
LOCK_SETTLE = 0.5  # seconds between writing the lock record and reading it back
_DUMMY = [1.0]  # Chroma records need an embedding; these collections are never queried

# Another cross-replica lock in place of the lock record (e.g. a PostgreSQL advisory lock
# held for the `with` block once ASSISTANT_DATABASE_URL is there): `state_for(..., lock=…)`.
ReplicaLock = Callable[[], contextlib.AbstractContextManager[None]]


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


@dataclass(frozen=True)
class Stamped:
    """The manifest's JSON text and the version it was read at."""

    text: str
    version: str


class IndexState(Protocol):
    """What an index keeps besides its vectors (see the module docstring)."""

    where: str  # for messages: the folder, or the Chroma server and prefix
    shared: bool  # seen by every replica (True) or by this machine only

    def read_manifest(self) -> Stamped | None: ...

    def version(self) -> str | None:
        """The manifest's version (cheap: polled), None when there is none."""
        ...

    def write_manifest(self, text: str, *, expect: str | None) -> str:
        """Replace the manifest in one write and return its new version; `IndexBusy` if
        the current version is no longer `expect` (another ingest committed meanwhile)."""
        ...

    def stored_docs(self) -> set[str]: ...

    def write_doc(self, name: str, text: str) -> None: ...

    def read_doc(self, name: str) -> str:
        """A cleaned document's JSON by its manifest name (`docs/<hash>.json`); OSError if missing."""
        ...

    def prune_docs(self, keep: set[str]) -> None: ...

    def keep_original(self, source: Path | None) -> str | None: ...

    def original(self, name: str) -> Path | None: ...

    def prune_originals(self, keep: set[str]) -> None: ...

    def known_collections(self) -> set[str]: ...

    def set_known_collections(self, names: set[str]) -> None: ...

    def lock(self) -> contextlib.AbstractContextManager[None]: ...


# ------------------------------------------------------------------------------ folder


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write `path` through a temporary file and a rename, durably."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data.encode("utf-8") if isinstance(data, str) else data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    with contextlib.suppress(OSError):  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


@contextlib.contextmanager
def ingest_lock(index_dir: Path) -> Iterator[None]:
    """One ingest at a time on `index_dir` (an flock: processes on this machine)."""
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


def _sha256_file(source: Path) -> str | None:
    import hashlib

    h = hashlib.sha256()
    try:
        with source.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    except OSError:
        return None
    return h.hexdigest()


class FolderState:
    """The index folder itself (the embedded default)."""

    shared = False

    def __init__(self, index_dir: Path) -> None:
        self.index_dir = Path(index_dir)
        self.where = str(self.index_dir)

    def version(self) -> str | None:
        try:
            st = (self.index_dir / MANIFEST).stat()
        except OSError:
            return None
        return f"{st.st_mtime_ns}-{st.st_size}-{st.st_ino}"

    def read_manifest(self) -> Stamped | None:
        version = self.version()  # first: a manifest replaced meanwhile is read again later
        if version is None:
            return None
        return Stamped((self.index_dir / MANIFEST).read_text("utf-8"), version)

    def write_manifest(self, text: str, *, expect: str | None) -> str:
        if self.version() != expect:
            raise IndexBusy(
                f"The index in {self.where} changed while this ingest ran. Run `assistant ingest` again."
            )
        write_atomic(self.index_dir / MANIFEST, text)
        return self.version() or ""

    def stored_docs(self) -> set[str]:
        return {f"{DOCS}/{p.name}" for p in (self.index_dir / DOCS).glob("*.json")}

    def write_doc(self, name: str, text: str) -> None:
        path = self.index_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, text)

    def read_doc(self, name: str) -> str:
        return (self.index_dir / name).read_text("utf-8")

    def prune_docs(self, keep: set[str]) -> None:
        for f in (self.index_dir / DOCS).glob("*.json"):
            if f"{DOCS}/{f.name}" not in keep:
                f.unlink(missing_ok=True)

    def keep_original(self, source: Path | None) -> str | None:
        """Copy a PDF/DOCX/HTML original to `originals/<content-hash><suffix>`; its manifest name."""
        from assistant.pipeline.formats import ORIGINAL_SUFFIXES

        if source is None or source.suffix.lower() not in ORIGINAL_SUFFIXES:
            return None
        digest = _sha256_file(source)
        if digest is None:
            return None  # gone since it was read: the text is indexed, the original is not kept
        name = f"{digest}{source.suffix.lower()}"
        target = self.index_dir / ORIGINALS / name
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

    def original(self, name: str) -> Path | None:
        path = self.index_dir / name
        return path if path.is_file() else None

    def prune_originals(self, keep: set[str]) -> None:
        for f in (self.index_dir / ORIGINALS).glob("*"):
            if f"{ORIGINALS}/{f.name}" not in keep:
                f.unlink(missing_ok=True)

    def known_collections(self) -> set[str]:
        try:
            known = json.loads((self.index_dir / COLLECTIONS).read_text("utf-8"))
        except (OSError, ValueError):
            return set()
        return {str(name) for name in known} if isinstance(known, list) else set()

    def set_known_collections(self, names: set[str]) -> None:
        self.index_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(self.index_dir / COLLECTIONS, json.dumps(sorted(names)))

    def lock(self) -> contextlib.AbstractContextManager[None]:
        return ingest_lock(self.index_dir)


# ------------------------------------------------------------------------------ Chroma


class ChromaState:
    """The manifest, documents and originals on a Chroma server, the folder as a cache."""

    shared = True

    def __init__(
        self, index_dir: Path, host: str, port: int, prefix: str = "assistant", *, lock: ReplicaLock | None = None
    ) -> None:
        self.cache = FolderState(index_dir)
        self._replica_lock = lock
        self.where = f"the Chroma server at {host}:{port} (collections {prefix}_*)"
        self._host, self._port, self._prefix = host, port, prefix
        self._lock_owner: str | None = None
        self._collections: tuple[Any, Any] | None = None  # connected on first use
        self._connect_lock = threading.Lock()

    def _open(self) -> tuple[Any, Any]:
        with self._connect_lock:
            if self._collections is None:
                import chromadb
                from chromadb.config import Settings as ChromaSettings

                from assistant.pipeline.store import StoreError, _embedding_function

                try:
                    client = chromadb.HttpClient(
                        host=self._host,
                        port=self._port,
                        settings=ChromaSettings(anonymized_telemetry=False, allow_reset=False),
                    )
                    self._collections = (
                        client.get_or_create_collection(f"{self._prefix}_meta", embedding_function=_embedding_function()),
                        client.get_or_create_collection(f"{self._prefix}_docs", embedding_function=_embedding_function()),
                    )
                except Exception as exc:  # chromadb raises many types; all mean "unusable"
                    raise StoreError(
                        f"Cannot open the index records on the Chroma server at {self._host}:{self._port}: "
                        f"{exc}. Check that `chroma run` is up and CHROMA_HOST/CHROMA_PORT are right."
                    ) from exc
            return self._collections

    @property
    def _meta(self) -> Any:
        return self._open()[0]

    @property
    def _docs(self) -> Any:
        return self._open()[1]

    # --- manifest

    def _record(self, key: str, *, document: bool) -> tuple[str | None, dict[str, Any] | None]:
        include: list[Any] = ["metadatas", "documents"] if document else ["metadatas"]
        got = self._meta.get(ids=[key], include=include)
        if not got["ids"]:
            return None, None
        text = _first(got.get("documents")) if document else None
        return text, dict((got.get("metadatas") or [{}])[0] or {})

    def _put(self, key: str, text: str, meta: dict[str, Any]) -> None:
        self._meta.upsert(ids=[key], embeddings=[_DUMMY], documents=[text], metadatas=[meta])  # type: ignore[arg-type]

    @staticmethod
    def _version_of(meta: dict[str, Any]) -> str:
        return f"{meta.get('version')}:{meta.get('stamp')}"

    def version(self) -> str | None:
        _text, meta = self._record("manifest", document=False)
        if meta is None:
            local = self.cache.version()  # an index built before the records moved here
            return None if local is None else f"folder:{local}"
        return self._version_of(meta)

    def read_manifest(self) -> Stamped | None:
        text, meta = self._record("manifest", document=True)
        if meta is None or text is None:
            local = self.cache.read_manifest()
            return None if local is None else Stamped(local.text, f"folder:{local.version}")
        return Stamped(text, self._version_of(meta))

    def write_manifest(self, text: str, *, expect: str | None) -> str:
        _old, meta = self._record("manifest", document=False)
        current = None if meta is None else self._version_of(meta)
        if current is not None and current != expect:  # `expect` may be a folder version: first write
            raise IndexBusy(
                f"Another ingest changed the index on {self.where} while this one ran. "
                "Run `assistant ingest` again."
            )
        if self._lock_owner is not None:
            _t, holder = self._record("ingest_lock", document=False)
            if holder is None or holder.get("owner") != self._lock_owner:
                raise IndexBusy(
                    f"This ingest lost its lock on {self.where} (it ran past the lock's expiry, "
                    f"{LOCK_TTL:g} s without renewal). Run `assistant ingest` again."
                )
        number = int((meta or {}).get("version") or 0) + 1
        new = {
            "version": number,
            "stamp": uuid.uuid4().hex,
            "updated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        self._put("manifest", text, new)
        return self._version_of(new)

    # --- documents and originals

    def _ids(self, kind: str) -> set[str]:
        ids: set[str] = set()
        offset, page = 0, 5000
        while True:
            got = self._docs.get(where={"kind": kind}, include=[], limit=page, offset=offset)
            ids.update(got["ids"])
            if len(got["ids"]) < page:
                return ids
            offset += page

    @staticmethod
    def _doc_id(name: str) -> str:
        return Path(name).stem  # docs/<hash>.json → <hash>

    def stored_docs(self) -> set[str]:
        return {f"{DOCS}/{i}.json" for i in self._ids("doc")}

    def write_doc(self, name: str, text: str) -> None:
        self._docs.upsert(
            ids=[self._doc_id(name)], embeddings=[_DUMMY], documents=[text], metadatas=[{"kind": "doc"}]  # type: ignore[arg-type]
        )
        self.cache.write_doc(name, text)

    def read_doc(self, name: str) -> str:
        with contextlib.suppress(OSError):
            return self.cache.read_doc(name)  # content-addressed: a cached copy is the same
        got = self._docs.get(ids=[self._doc_id(name)], include=["documents"])
        text = _first(got.get("documents"))
        if not got["ids"] or not text:
            raise FileNotFoundError(f"{name} is not on {self.where}")
        with contextlib.suppress(OSError):
            self.cache.write_doc(name, text)
        return text

    def prune_docs(self, keep: set[str]) -> None:
        stale = sorted(self._ids("doc") - {self._doc_id(n) for n in keep})
        if stale:
            self._docs.delete(ids=stale)
        self.cache.prune_docs(keep)

    def keep_original(self, source: Path | None) -> str | None:
        name = self.cache.keep_original(source)
        if name is None:
            return None
        key = Path(name).name
        path = self.cache.index_dir / name
        size = path.stat().st_size
        if size > ORIGINAL_MAX_BYTES:
            log.warning(
                "original %s (%d bytes) is kept in %s only: other replicas serve its text but not the file",
                key, size, self.cache.where,
            )
            return name
        if not self._docs.get(ids=[key], include=[])["ids"]:
            data = base64.b64encode(path.read_bytes()).decode("ascii")
            self._docs.upsert(ids=[key], embeddings=[_DUMMY], documents=[data], metadatas=[{"kind": "original"}])  # type: ignore[arg-type]
        return name

    def original(self, name: str) -> Path | None:
        local = self.cache.original(name)
        if local is not None:
            return local
        key = Path(name).name
        try:
            got = self._docs.get(ids=[key], include=["documents"])
            if not got["ids"]:
                return None
            data = base64.b64decode(str((got["documents"] or [""])[0]), validate=True)
        except (binascii.Error, ValueError):
            return None
        target = self.cache.index_dir / ORIGINALS / key
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, data)
        return target

    def prune_originals(self, keep: set[str]) -> None:
        stale = sorted(self._ids("original") - {Path(n).name for n in keep})
        if stale:
            self._docs.delete(ids=stale)
        self.cache.prune_originals(keep)

    # --- chunk collections

    def known_collections(self) -> set[str]:
        text, _meta = self._record("collections", document=True)
        try:
            known = json.loads(text or "[]")
        except ValueError:
            return set()
        return {str(n) for n in known} if isinstance(known, list) else set()

    def set_known_collections(self, names: set[str]) -> None:
        self._put("collections", json.dumps(sorted(names)), {"kind": "collections"})

    # --- the ingest lock

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        with self.cache.lock():  # this machine first: no need to ask the server twice
            if self._replica_lock is not None:
                with self._replica_lock():
                    yield
                return
            owner = f"{socket.gethostname()} pid {os.getpid()} {uuid.uuid4().hex[:8]}"
            self._take(owner)
            self._lock_owner = owner
            stop = threading.Event()
            renewer = threading.Thread(target=self._renew, args=(owner, stop), name="ingest-lock", daemon=True)
            renewer.start()
            try:
                yield
            finally:
                stop.set()
                renewer.join(5)
                self._lock_owner = None
                with contextlib.suppress(Exception):
                    _t, meta = self._record("ingest_lock", document=False)
                    if meta is not None and meta.get("owner") == owner:
                        self._meta.delete(ids=["ingest_lock"])

    def _holder(self) -> dict[str, Any] | None:
        _t, meta = self._record("ingest_lock", document=False)
        if meta is None or float(meta.get("expires", 0)) < time.time():
            return None
        return meta

    def _claim(self, owner: str) -> None:
        self._put("ingest_lock", owner, {"owner": owner, "expires": time.time() + LOCK_TTL})

    def _take(self, owner: str) -> None:
        holder = self._holder()
        if holder is None:
            self._claim(owner)
            time.sleep(LOCK_SETTLE)
            holder = self._holder()
            if holder is not None and holder.get("owner") == owner:
                return
        who = holder.get("owner") if holder else "another replica"
        raise IndexBusy(
            f"Another ingest is running on {self.where} ({who}). "
            "Wait for it to finish, then run `assistant ingest` again."
        )

    def _renew(self, owner: str, stop: threading.Event) -> None:
        while not stop.wait(LOCK_RENEW):
            try:
                holder = self._holder()
                if holder is None or holder.get("owner") == owner:
                    self._claim(owner)
                else:
                    log.error("this ingest lost its lock on %s to %s", self.where, holder.get("owner"))
                    return
            except Exception:  # the server is away: try again at the next renewal
                log.warning("could not renew the ingest lock on %s", self.where, exc_info=True)


def _first(documents: Any) -> str | None:
    """The first document of a Chroma `get` result, if any."""
    return str(documents[0]) if documents and documents[0] is not None else None


def state_for(
    index_dir: Path,
    chroma_host: str | None,
    chroma_port: int,
    prefix: str = "assistant",
    *,
    lock: ReplicaLock | None = None,
) -> IndexState:
    """The configured state: on the Chroma server when one is set, else the index folder;
    `lock` replaces the Chroma lock record (see `ReplicaLock`)."""
    if chroma_host:
        return ChromaState(index_dir, chroma_host, chroma_port, prefix, lock=lock)
    return FolderState(index_dir)


# ------------------------------------------------------------------------------ polling


class VersionPoller:
    """Calls `check()` every `interval` seconds on a daemon thread until `stop()`.

    `check` compares the index version with the one being served and reloads; it may
    raise (the server is away) and is called again at the next tick.
    """

    def __init__(self, check: Callable[[], object], interval: float, *, name: str = "index-poller") -> None:
        self.check = check
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> VersionPoller:
        if self.interval > 0:
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        last = ""
        while not self._stop.wait(self.interval):
            try:
                self.check()
                last = ""
            except Exception as exc:  # e.g. the Chroma server is away: said once, retried
                what = f"{type(exc).__name__}: {exc}"[:300]
                if what != last:
                    log.warning("index version check failed (retrying every %g s): %s", self.interval, what)
                last = what
