"""Plain-text documents (`.md`, `.txt`) and what every reader shares: the metadata rules.

A `.md` or `.txt` file is read as it is. It may start with a YAML front-matter block
(`---` … `---`) holding the metadata; the rest of the file, as is, is the document text
that is indexed, shown and quoted. A file without front matter is accepted too: its title
comes from the file name and its kind and date are unknown. `document_from` applies the
same metadata rules (id, kind, date, title, language) to every format's reader.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from assistant.errors import AssistantError
from assistant.text import detect_language
from assistant.types import Document

CORPUS_SUFFIXES = (".md", ".txt")  # read as they are; other formats: assistant.pipeline.formats
KINDS = ("policy_paper", "news_report", "unknown")
_ID_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*\r?\n", re.DOTALL)


class CorpusError(AssistantError, ValueError):
    status = 409

    """A corpus file that cannot be read; the message names the file and the fix."""


def load_document(path: Path) -> Document:
    try:
        raw = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{path.name}: not UTF-8 text ({exc.reason}). Save it as UTF-8.") from exc
    except OSError as exc:
        raise CorpusError(f"{path.name}: cannot be read ({exc.strerror}).") from exc
    raw = raw.lstrip("\ufeff").replace("\r\n", "\n")
    meta, text = split_front_matter(raw, path.name)
    if not text.strip():
        raise CorpusError(f"{path.name}: the document has no text.")
    return document_from(meta, text, path)


def split_front_matter(raw: str, name: str = "<text>") -> tuple[dict[str, Any], str]:
    match = _FRONT_MATTER.match(raw)
    if not match:
        return {}, raw
    try:
        meta = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError as exc:
        raise CorpusError(f"{name}: the front matter is not valid YAML ({exc}).") from exc
    if not isinstance(meta, dict):
        raise CorpusError(f"{name}: the front matter must be a mapping of key: value lines.")
    return meta, raw[match.end() :]


def document_from(
    meta: dict[str, Any], text: str, path: Path, *, pages: tuple[int, ...] | None = None
) -> Document:
    doc_id = str(meta.get("id") or path.stem)
    if not _ID_OK.match(doc_id):
        raise CorpusError(
            f"{path.name}: id {doc_id!r} may use only letters, digits, '.', '_' and '-'."
        )
    kind = str(meta.get("kind") or "unknown")
    if kind not in KINDS:
        raise CorpusError(f"{path.name}: kind {kind!r} is not one of {', '.join(KINDS)}.")
    published = meta.get("published")
    if published is not None:
        published = str(published)
        if not re.fullmatch(r"\d{4}(-\d{2}(-\d{2})?)?", published):
            raise CorpusError(
                f"{path.name}: published {published!r} must be YYYY, YYYY-MM or YYYY-MM-DD."
            )
    title = str(meta.get("title") or _title_from_name(path.stem))
    language = str(meta.get("language") or detect_language(text[:2000]))
    return Document(
        doc_id=doc_id,
        title=title,
        text=text,
        kind=kind,
        publisher=_opt_str(meta.get("publisher")),
        published=published,
        language=language,
        source_notes=_opt_str(meta.get("source_notes")),
        source_file=path.name,
        pages=pages,
    )


def _opt_str(value: object) -> str | None:
    return None if value is None or value == "" else str(value)


def _title_from_name(stem: str) -> str:
    return re.sub(r"[_-]+", " ", stem).strip() or stem
