"""Readers for the corpus's file formats: one `read_document(path)` for all of them.

`.md` and `.txt` are read as they are (with optional YAML front matter, see
`assistant.pipeline.corpus`); `.pdf` (pypdf), `.docx` (python-docx) and `.html`/`.htm`
(lxml) are turned into plain text — headings as Markdown `#` lines, table rows as
`cell | cell` — and that text is the document's `text`: what is indexed, shown and quoted.

Metadata: the file's own (PDF /Title /Author /CreationDate, DOCX core properties, HTML
`<title>` and `<meta>`), else the first heading, else the file name; a sidecar
`<file>.meta.yaml` (keys as in front matter: id, title, kind, publisher, published,
language, source_notes) overrides it. A file's author goes to `publisher`.

A file that cannot be read raises `CorpusError` with the reason and the fix; the corpus
scan records it as skipped and goes on with the rest.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from assistant.pipeline.formats.text import CorpusError, document_from, load_document
from assistant.types import Document

TEXT_SUFFIXES = (".md", ".txt")
ORIGINAL_SUFFIXES = (".pdf", ".docx", ".html", ".htm")
SUFFIXES = TEXT_SUFFIXES + ORIGINAL_SUFFIXES
SIDECAR_SUFFIX = ".meta.yaml"
MEDIA_TYPES = {
    ".pdf": "application/pdf",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
}
_META_KEYS = ("id", "title", "kind", "publisher", "published", "language", "source_notes")
_HEADING_LINE = re.compile(r"^#{1,6}[ \t]+(\S.*)$", re.MULTILINE)


@dataclass
class Extracted:
    """What a reader got out of a file: the text, metadata it found, and page starts."""

    text: str
    meta: dict[str, Any] = field(default_factory=dict)
    pages: tuple[int, ...] | None = None


def read_document(path: Path, *, progress: bool = False) -> Document:
    """The document in `path`, by its suffix; `CorpusError` if it cannot be read."""
    suffix = path.suffix.lower()
    if suffix in TEXT_SUFFIXES:
        doc = load_document(path)
        sidecar = read_sidecar(path)
        if not sidecar:
            return doc
        meta = {k: v for k, v in doc.meta().items() if v is not None}
        meta["id"] = meta.pop("doc_id")
        meta.pop("source_file", None)
        meta.pop("pages", None)
        if "language" not in sidecar:
            meta.pop("language", None)  # detected again below, as for any document
        return document_from({**meta, **sidecar}, doc.text, path)
    if suffix not in ORIGINAL_SUFFIXES:
        raise CorpusError(
            f"{path.name}: unknown type {suffix or '(no suffix)'!r}; "
            f"supported: {', '.join(SUFFIXES)}."
        )
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise CorpusError(f"{path.name}: cannot be read ({exc.strerror}).") from exc
    if size == 0:
        raise CorpusError(f"{path.name}: the file is empty.")
    extracted = _extract(path, suffix, progress)
    if not extracted.text.strip():
        raise CorpusError(f"{path.name}: the document has no text.")
    meta = {k: v for k, v in extracted.meta.items() if v not in (None, "")}
    if not meta.get("title"):
        heading = first_heading(extracted.text)
        if heading:
            meta["title"] = heading
    meta.update(read_sidecar(path))
    return document_from(meta, extracted.text, path, pages=extracted.pages)


def _extract(path: Path, suffix: str, progress: bool) -> Extracted:
    if suffix == ".pdf":
        from assistant.pipeline.formats.pdf import read_pdf

        return read_pdf(path, progress=progress)
    if suffix == ".docx":
        from assistant.pipeline.formats.docx import read_docx

        return read_docx(path)
    from assistant.pipeline.formats.html import read_html

    return read_html(path)


def read_head(path: Path, size: int) -> bytes:
    """The first `size` bytes of `path` (to tell a file's real type); `CorpusError` if unreadable."""
    try:
        with path.open("rb") as fh:
            return fh.read(size)
    except OSError as exc:
        raise CorpusError(f"{path.name}: cannot be read ({exc.strerror}).") from exc


def read_sidecar(path: Path) -> dict[str, Any]:
    """The metadata in `<file>.meta.yaml` next to `path` ({} when there is none)."""
    sidecar = path.with_name(path.name + SIDECAR_SUFFIX)
    if not sidecar.is_file():
        return {}
    try:
        data = yaml.safe_load(sidecar.read_text("utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise CorpusError(f"{sidecar.name}: cannot be read as YAML ({exc}).") from exc
    if not isinstance(data, dict):
        raise CorpusError(f"{sidecar.name}: must be a mapping of key: value lines.")
    unknown = sorted(str(k) for k in data if k not in _META_KEYS)
    if unknown:
        raise CorpusError(
            f"{sidecar.name}: unknown keys {', '.join(unknown)} (allowed: {', '.join(_META_KEYS)})."
        )
    return {k: v for k, v in data.items() if v not in (None, "")}


def first_heading(text: str) -> str | None:
    """The first `#` heading line, else a short first line that reads like a title."""
    match = _HEADING_LINE.search(text)
    if match:
        return match.group(1).strip()[:200]
    for line in text.splitlines():
        line = line.strip()
        if line:
            if len(line) <= 80 and not re.search(r"[。！？；!?;]|\.$", line):
                return line
            return None
    return None


def date_string(value: object) -> str | None:
    """YYYY-MM-DD from a datetime or a date-like string ('2021-01-22T…', 'D:20210122…')."""
    if isinstance(value, dt.datetime | dt.date):
        return f"{value.year:04d}-{value.month:02d}-{value.day:02d}"
    if not isinstance(value, str):
        return None
    match = re.search(r"(\d{4})[-/.年]?(\d{1,2})[-/.月]?(\d{1,2})", value)
    if match:
        y, m, d = (int(g) for g in match.groups())
        if 1900 <= y <= 2100 and 1 <= m <= 12 and 1 <= d <= 31:
            return f"{y:04d}-{m:02d}-{d:02d}"
    match = re.fullmatch(r"\s*(\d{4})\s*", value)
    return match.group(1) if match else None


# Placeholder metadata that tools write when nobody filled it in.
_PLACEHOLDERS = {"untitled", "anonymous", "unspecified", "unknown", "author", "title", "user", "admin", "none"}


def clean_meta_value(value: object) -> str | None:
    if value is None:
        return None
    text = re.sub(r"\s+", " ", str(value)).strip()
    text = re.sub(r"^Microsoft (Word|PowerPoint) - ", "", text)
    if not text or text.lower() in _PLACEHOLDERS:
        return None
    return text
