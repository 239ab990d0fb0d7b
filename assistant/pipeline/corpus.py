"""Stage 1, load and clean: read `corpus/` into `Document`s; clean raw web captures.

`scan_corpus` reads every supported file of the corpus folders through
`assistant.pipeline.formats` (`.md` and `.txt` as they are, with optional front matter;
`.pdf`, `.docx`, `.html` turned into text) and skips, with the reason, those that cannot
be read.

`clean_capture` turns a raw capture (a web page or journal text with boilerplate) into
such a text: it removes site chrome and the pinyin left by a machine conversion to
Traditional script, and keeps everything else exactly as published.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from assistant.pipeline.formats import SUFFIXES, read_document

# Re-exported: the plain-text reader and the metadata rules live with the other readers.
from assistant.pipeline.formats.text import (
    CORPUS_SUFFIXES,
    KINDS,
    CorpusError,
    load_document,
    split_front_matter,
)
from assistant.types import Document

__all__ = [
    "CORPUS_SUFFIXES",
    "KINDS",
    "CleanReport",
    "CorpusError",
    "CorpusScan",
    "Skipped",
    "clean_capture",
    "document_hash",
    "dump_document",
    "folder_list",
    "load_corpus",
    "load_document",
    "scan_corpus",
    "split_front_matter",
]

# --------------------------------------------------------------------------- loading


@dataclass(frozen=True)
class Skipped:
    """A corpus file that was not indexed, and why (the reason says what to do)."""

    file: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"file": self.file, "reason": self.reason}


@dataclass
class CorpusScan:
    """The readable documents of the corpus folders (sorted by id) and the files skipped."""

    documents: list[Document]
    skipped: list[Skipped]
    # Where each document's file is (doc_id → path): the originals are copied from there.
    paths: dict[str, Path] = field(default_factory=dict)


# Data files that live in the corpus folder but are not documents (`domain.py`, sidecars).
_NOT_DOCUMENTS = (".yaml", ".yml", ".json")

Folders = Path | Sequence[Path]


def folder_list(folders: Folders) -> list[Path]:
    return [folders] if isinstance(folders, Path) else list(folders)


def scan_corpus(folders: Folders, *, progress: bool = False) -> CorpusScan:
    """Every document in the corpus folder(s) (not recursive) in any supported format.

    A file that cannot be read (unknown type, empty, not UTF-8, a scanned or encrypted
    PDF, a corrupt file, a duplicate id, bad metadata) is skipped with its reason; the
    rest are read. Only a missing first folder (the corpus) raises `CorpusError`; a later
    one (the uploads' library) that does not exist yet holds nothing.
    """
    paths = folder_list(folders)
    corpus_dir = paths[0]
    if not corpus_dir.is_dir():
        raise CorpusError(
            f"Corpus folder {corpus_dir} does not exist. Create it and add documents "
            f"({', '.join(_supported())}), or set ASSISTANT_CORPUS_DIR."
        )
    docs: dict[str, Document] = {}
    where: dict[str, Path] = {}
    skipped: list[Skipped] = []
    for folder in paths:
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if path.name.startswith((".", "_")) or path.name.lower() == "readme.md":
                continue
            if path.suffix.lower() in _NOT_DOCUMENTS or not path.is_file():
                continue
            try:
                doc = read_document(path, progress=progress)
            except CorpusError as exc:
                skipped.append(Skipped(path.name, _without_name(str(exc), path.name)))
                continue
            if doc.doc_id in docs:
                skipped.append(
                    Skipped(
                        path.name,
                        f"duplicate id: document id {doc.doc_id!r} is already used by "
                        f"{docs[doc.doc_id].source_file}. Give each document its own id.",
                    )
                )
                continue
            docs[doc.doc_id] = doc
            where[doc.doc_id] = path
    return CorpusScan([docs[k] for k in sorted(docs)], skipped, where)


def load_corpus(corpus_dir: Folders, *, strict: bool = False) -> list[Document]:
    """The readable documents in `corpus_dir`, sorted by id (see `scan_corpus`).

    With `strict`, the first file that cannot be read raises `CorpusError` naming it.
    """
    scan = scan_corpus(corpus_dir)
    if strict and scan.skipped:
        first = scan.skipped[0]
        raise CorpusError(f"{first.file}: {first.reason}")
    return scan.documents


def _supported() -> tuple[str, ...]:
    return SUFFIXES


def _without_name(message: str, name: str) -> str:
    prefix = f"{name}: "
    return message[len(prefix) :] if message.startswith(prefix) else message


def document_hash(doc: Document) -> str:
    """Content hash of what the index depends on: the text and the metadata."""
    h = hashlib.sha256()
    h.update(doc.text.encode("utf-8"))
    for key, value in sorted(doc.meta().items()):
        if key == "source_file" or (key == "pages" and value is None):
            continue  # unpaged documents hash as before pages existed
        h.update(f"\x00{key}={value}".encode())
    return h.hexdigest()


def dump_document(doc: Document) -> str:
    """Serialise a document as a corpus file (front matter + text)."""
    meta = {k: v for k, v in doc.meta().items() if k not in ("source_file",) and v is not None}
    meta["id"] = meta.pop("doc_id")
    ordered = {k: meta[k] for k in _META_ORDER if k in meta}
    front = yaml.safe_dump(ordered, allow_unicode=True, sort_keys=False, width=1000)
    return f"---\n{front}---\n{doc.text}"


_META_ORDER = ("id", "title", "kind", "publisher", "published", "language", "source_notes")


# --------------------------------------------------------------------------- cleaning

# Pinyin that a Traditional-script conversion left after a character: `技術(shù)`.
# Tight on purpose: a Han character, then 1–7 lower-case pinyin letters with tone marks
# in parentheses. Acronyms such as (BTG), (KOTEC) or (IASP) are upper-case and stay.
PINYIN_ARTIFACT = re.compile(
    r"(?<=[\u4e00-\u9fff])\((?=[a-zü]*[āáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜ])"
    r"[a-zāáǎàēéěèīíǐìōóǒòūúǔùüǖǘǚǜ]{1,7}\)"
)

# Lines that are page furniture wherever they appear.
_CHROME_LINES = [
    re.compile(p)
    for p in (
        r"^选择字号[:：]?$",
        r"^微信公众号$",
        r"^.{0,20}主管\s*\|\s*.{0,30}主办$",
        r"^网站首页\s*>.*$",
        r"^(打印|分享|收藏|发E-mail给)[\s:：\w]*$",
        r"^\s*打印\s+发E-mail给[:：]?\s*$",
        r"^(鉆瓜|钻瓜)(導讀|导读)[:：].*$",
        r"^(资讯|資訊)24(小时|小時)$",
        r"^(本周热门点击|本周熱門點擊)$",
        # A navigation bar of place names: ten or more short words and nothing else.
        r"^(?:[\u4e00-\u9fff]{2,3}\s+){9,}[\u4e00-\u9fff]{2,3}$",
    )
]

# The first line that matches one of these starts the page footer: it and everything
# after it is dropped (copyright and disclaimer blocks, related links, prev/next links).
_FOOTER_STARTS = [
    re.compile(p)
    for p in (
        r"^\s*(版权声明|版權聲明|免责声明|免責聲明)[:：]",
        r"^\s*(上一篇|下一篇)[:：]",
        r"^\s*相关新闻\s",
    )
]

# Site sections glued to the end of a title line by the capture.
_TITLE_SUFFIXES = re.compile(r"(热点资讯|熱點資訊)$")


@dataclass(frozen=True)
class CleanReport:
    text: str
    removed_lines: tuple[str, ...]
    pinyin_removed: int


def clean_capture(raw: str) -> CleanReport:
    """Remove site chrome and conversion pinyin from a raw capture; keep the rest verbatim."""
    raw = raw.lstrip("\ufeff").replace("\r\n", "\n")
    text, pinyin_removed = PINYIN_ARTIFACT.subn("", raw)
    lines = text.split("\n")
    kept: list[str] = []
    removed: list[str] = []
    for i, line in enumerate(lines):
        stripped = line.strip()
        if any(p.search(stripped) for p in _FOOTER_STARTS):
            removed.extend(lines[i:])
            break
        if stripped and any(p.match(stripped) for p in _CHROME_LINES):
            removed.append(line)
            continue
        kept.append(line)
    # The title is the first non-empty line.
    for i, line in enumerate(kept):
        if line.strip():
            kept[i] = _TITLE_SUFFIXES.sub("", line.rstrip())
            break
    cleaned = _collapse_blank_runs("\n".join(kept)).strip() + "\n"
    return CleanReport(cleaned, tuple(r for r in removed if r.strip()), pinyin_removed)


def _collapse_blank_runs(text: str) -> str:
    # Removing chrome lines leaves runs of empty (or space-only) lines; two newlines
    # are enough to keep paragraphs apart.
    return re.sub(r"\n[ \t\u3000\xa0]*(?:\n[ \t\u3000\xa0]*){2,}", "\n\n", text)

