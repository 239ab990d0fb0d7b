"""The library: documents added, changed and removed through the API or the Library page.

Uploaded files live in their own folder (`Settings.library_folder`), which every ingest
indexes together with the corpus folder, so `assistant ingest` and the API agree on what
is indexed. Each file is stored as `<doc_id><suffix>` with its metadata in a sidecar
`<doc_id><suffix>.meta.yaml` (the format the corpus readers take).

Nothing here touches the index: `Assistant` (service.py) calls these functions, then
re-indexes, and undoes the file change when indexing fails, so a failed upload or delete
leaves both the folder and the index as they were.

Errors carry HTTP statuses: 415 a type no reader takes, 422 a file that cannot be read
(named, with the reason), 409 an id already used or a document that is not the library's.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import unicodedata
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import yaml

from assistant.errors import Conflict, InvalidInput, UnsupportedType
from assistant.pipeline.corpus import KINDS, CorpusError
from assistant.pipeline.formats import SIDECAR_SUFFIX, SUFFIXES, read_document

INCOMING = ".incoming"
TRASH = ".trash"
# What a client may set on upload or PATCH (the rest comes from the file).
EDITABLE = ("title", "kind", "published", "language", "publisher")
LANGUAGES = ("en", "zh-Hans", "zh-Hant")
_ID_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class StoredFile:
    """A library document's file and its sidecar."""

    path: Path

    @property
    def sidecar(self) -> Path:
        return self.path.with_name(self.path.name + SIDECAR_SUFFIX)

    def parts(self) -> list[Path]:
        return [p for p in (self.path, self.sidecar) if p.exists()]


def check_meta(meta: dict[str, Any]) -> dict[str, str]:
    """The editable metadata a client sent, validated; `InvalidInput` (422) says what is wrong."""
    out: dict[str, str] = {}
    for key, value in meta.items():
        if value is None or value == "":
            continue
        if key not in EDITABLE:
            raise InvalidInput(f"{key}: not a field you can set (allowed: {', '.join(EDITABLE)}).")
        text = str(value).strip()
        if "\x00" in text or len(text) > 500:
            raise InvalidInput(f"{key}: at most 500 characters of text.")
        if key == "kind" and text not in KINDS:
            raise InvalidInput(f"kind: {text!r} is not one of {', '.join(KINDS)}.")
        if key == "published" and not re.fullmatch(r"\d{4}(-\d{2}(-\d{2})?)?", text):
            raise InvalidInput(f"published: {text!r} must be YYYY, YYYY-MM or YYYY-MM-DD.")
        if key == "language" and text not in LANGUAGES:
            raise InvalidInput(f"language: {text!r} is not one of {', '.join(LANGUAGES)}.")
        out[key] = text
    return out


def doc_id_for(filename: str, data_hash: str, taken: Iterable[str]) -> str:
    """An id from the file name ("Annual report 2023.pdf" → "Annual-report-2023"); a name
    with no Latin letters or digits gets one from the content ("doc-3f2a9c1b0d")."""
    stem = unicodedata.normalize("NFKC", Path(filename).stem)
    base = _ID_CHARS.sub("-", stem).strip("-._")[:100]
    if not base or not base[0].isalnum():
        base = f"doc-{data_hash[:10]}"
    used = set(taken)
    candidate, n = base, 2
    while candidate in used:
        candidate, n = f"{base}-{n}", n + 1
    return candidate


def receive(
    folder: Path,
    filename: str,
    data: BinaryIO,
    meta: dict[str, str],
    taken: Iterable[str],
) -> StoredFile:
    """Read an uploaded file into the library folder: checked, named, with its sidecar.

    The file is written under `.incoming/` and read with the corpus readers there; only a
    file they can read is moved into the folder, so the folder never holds a half-written
    or unreadable document.
    """
    name = Path(filename or "").name
    suffix = Path(name).suffix.lower()
    if suffix not in SUFFIXES:
        raise UnsupportedType(
            f"{name or 'the file'}: type {suffix or '(no suffix)'!r} cannot be read; "
            f"send one of {', '.join(SUFFIXES)}."
        )
    incoming = folder / INCOMING / uuid.uuid4().hex
    incoming.mkdir(parents=True, exist_ok=True)
    try:
        draft = incoming / f"upload{suffix}"
        digest = hashlib.sha256()
        with draft.open("wb") as out:
            for block in iter(lambda: data.read(1 << 20), b""):
                digest.update(block)
                out.write(block)
        doc_id = doc_id_for(name, digest.hexdigest(), taken)
        stored = StoredFile(incoming / f"{doc_id}{suffix}")
        os.replace(draft, stored.path)
        _write_sidecar(stored.sidecar, {"id": doc_id, **meta})
        try:
            read_document(stored.path)
        except CorpusError as exc:
            reason = str(exc).split(": ", 1)[-1]
            raise InvalidInput(f"{name}: {reason}") from exc
        folder.mkdir(parents=True, exist_ok=True)
        final = StoredFile(folder / stored.path.name)
        if final.path.exists():
            raise Conflict(f"{name}: the library already has a file {final.path.name}; delete it first.")
        os.replace(stored.sidecar, final.sidecar)
        os.replace(stored.path, final.path)
        return final
    finally:
        shutil.rmtree(incoming, ignore_errors=True)


def find(folder: Path, doc_id: str) -> StoredFile | None:
    """The library file of `doc_id`, or None when the library does not hold it."""
    if not folder.is_dir():
        return None
    for suffix in SUFFIXES:
        path = folder / f"{doc_id}{suffix}"
        if path.is_file():
            return StoredFile(path)
    return None


def set_meta(stored: StoredFile, meta: dict[str, str]) -> bytes | None:
    """Merge `meta` into the sidecar; returns the sidecar's previous bytes (to undo)."""
    before = stored.sidecar.read_bytes() if stored.sidecar.exists() else None
    current = yaml.safe_load(before) if before else {}
    merged = {**(current if isinstance(current, dict) else {}), **meta}
    _write_sidecar(stored.sidecar, merged)
    try:
        read_document(stored.path)
    except CorpusError as exc:
        restore_sidecar(stored, before)
        raise InvalidInput(str(exc).split(": ", 1)[-1]) from exc
    return before


def restore_sidecar(stored: StoredFile, before: bytes | None) -> None:
    if before is None:
        stored.sidecar.unlink(missing_ok=True)
    else:
        _write_bytes(stored.sidecar, before)


def set_aside(folder: Path, stored: StoredFile) -> list[tuple[Path, Path]]:
    """Move a document's files to `.trash/` (kept until the index no longer names them)."""
    trash = folder / TRASH / uuid.uuid4().hex
    trash.mkdir(parents=True, exist_ok=True)
    moves = [(p, trash / p.name) for p in stored.parts()]
    for src, dst in moves:
        os.replace(src, dst)
    return moves


def put_back(moves: list[tuple[Path, Path]]) -> None:
    for src, dst in moves:
        if dst.exists():
            os.replace(dst, src)


def discard(moves: list[tuple[Path, Path]]) -> None:
    for _, dst in moves:
        dst.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            dst.parent.rmdir()


def remove(stored: StoredFile) -> None:
    for part in stored.parts():
        part.unlink(missing_ok=True)


def _write_sidecar(path: Path, meta: dict[str, Any]) -> None:
    text = yaml.safe_dump(meta, allow_unicode=True, sort_keys=False, width=1000)
    _write_bytes(path, text.encode("utf-8"))


def _write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
