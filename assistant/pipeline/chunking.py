"""Stage 2, chunk: split a document into sentence-aware, token-bounded slices.

Every chunk is a contiguous slice of the cleaned document (`text == doc.text[start:end]`),
so a quote found in a chunk maps back to exact document offsets. Chunks never cross a
section heading; tables (a caption such as `表 1 …` and tab-separated rows) are kept
whole when they fit in `table_max_tokens`, else split between rows.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from assistant.text import detect_language, split_sentences, to_simplified
from assistant.types import Chunk, Document

log = logging.getLogger(__name__)

CHUNKER_VERSION = "3"

TokenCounter = Callable[[str], int]

_BLOCK_SPLIT = re.compile(r"\n[ \t\u3000\xa0]*\n")
_TERMINAL = re.compile(r"[。！？；!?;]|\.(\s|$)")
_TABLE_CAPTION = re.compile(r"^\s*表\s*\d+\s*\S")
_NUMBERED_HEADING = re.compile(r"^\s*\d+(\.\d+)*\s+\S")
_COLON = re.compile(r"[:：]")
_MARKDOWN_HEADING = re.compile(r"^#{1,6}[ \t]+(?=\S)")
_SOFT_BREAK = re.compile(r"[，,、：:]")


@dataclass(frozen=True)
class ChunkerConfig:
    max_tokens: int = 256
    overlap_sentences: int = 1
    table_max_tokens: int = 1200

    def as_dict(self) -> dict[str, object]:
        return {
            "version": CHUNKER_VERSION,
            "max_tokens": self.max_tokens,
            "overlap_sentences": self.overlap_sentences,
            "table_max_tokens": self.table_max_tokens,
            "tokenizer": "tiktoken:cl100k_base",
        }


@dataclass
class _Unit:
    start: int
    end: int
    tokens: int
    kind: str  # "heading" | "text" | "table"
    heading: str | None


@lru_cache(maxsize=1)
def tiktoken_counter() -> TokenCounter:
    """Token counter with tiktoken's cl100k_base (needs the offline cache seeded)."""
    import tiktoken

    encoding = tiktoken.get_encoding("cl100k_base")
    return lambda text: len(encoding.encode_ordinary(text))


def tiktoken_or(estimate: TokenCounter, what: str) -> TokenCounter:
    """tiktoken's counter when its encoding is available offline; otherwise `estimate`.

    `what` says in the warning what the estimate is used for.
    """
    try:
        count = tiktoken_counter()
        count("probe")
        return count
    except Exception as exc:  # no tiktoken cache offline: an estimate will do
        log.warning("tiktoken unavailable, %s estimated from characters: %s", what, exc)
        return estimate


def chunk_document(
    doc: Document, config: ChunkerConfig, count_tokens: TokenCounter | None = None
) -> list[Chunk]:
    """Split `doc` into chunks that respect sentences, sections and tables."""
    count = count_tokens or tiktoken_counter()
    units = list(_units(doc.text, config, count))
    chunks: list[Chunk] = []
    current: list[_Unit] = []

    def flush() -> None:
        if current and any(u.kind != "heading" for u in current):
            chunks.append(_make_chunk(doc, current[0].start, current[-1].end, current))

    for unit in units:
        only_headings = all(u.kind == "heading" for u in current)
        total = sum(u.tokens for u in current)
        if unit.kind == "heading":
            if not only_headings:
                flush()
                current = []
            current.append(unit)
            continue
        if unit.kind == "table" or (current and current[-1].kind == "table"):
            # Tables are chunks of their own; their caption heading stays with them.
            if not only_headings:
                flush()
                current = [u for u in current if u.kind == "heading"] if only_headings else []
            current.append(unit)
            continue
        if current and not only_headings and total + unit.tokens > config.max_tokens:
            flush()
            current = _overlap(current, config)
            if sum(u.tokens for u in current) + unit.tokens > config.max_tokens:
                current = []
        current.append(unit)
    flush()
    if not chunks and current:  # a document that is nothing but a heading line
        chunks.append(_make_chunk(doc, current[0].start, current[-1].end, current))
    return chunks


def _overlap(previous: list[_Unit], config: ChunkerConfig) -> list[_Unit]:
    if config.overlap_sentences <= 0:
        return []
    tail = [u for u in previous if u.kind == "text"][-config.overlap_sentences :]
    if sum(u.tokens for u in tail) > config.max_tokens // 2:
        return []
    return tail


def _make_chunk(doc: Document, start: int, end: int, units: list[_Unit]) -> Chunk:
    text = doc.text[start:end]
    # The section of the passage's own text, not of a heading it happens to start with.
    body = [u for u in units if u.kind != "heading"]
    heading = (body or units)[0].heading
    is_table = any(u.kind == "table" for u in units)
    digest = hashlib.sha1(
        f"{CHUNKER_VERSION}\x00{doc.title}\x00{heading}\x00{start}:{end}\x00{text}".encode()
    ).hexdigest()[:12]
    return Chunk(
        chunk_id=f"{doc.doc_id}#{digest}",
        doc_id=doc.doc_id,
        start=start,
        end=end,
        text=text,
        heading=heading,
        language=detect_language(text),
        is_table=is_table,
    )


def _units(text: str, config: ChunkerConfig, count: TokenCounter) -> list[_Unit]:
    units: list[_Unit] = []
    heading: str | None = None
    pending_caption: str | None = None
    blocks = _blocks(text)
    # A paper with numbered sections ("3.1 …") has page breaks that leave short
    # unpunctuated fragments; only its numbered lines and table captions are headings.
    numbered = sum(bool(_NUMBERED_HEADING.match(text[a:b])) for a, b in blocks) >= 3
    for i, (b_start, b_end) in enumerate(blocks):
        block = text[b_start:b_end]
        if _is_table(block):
            caption = pending_caption or heading
            units.extend(_table_units(text, b_start, b_end, caption, config, count))
            pending_caption = None
            continue
        if _is_heading(block, numbered=numbered, first=i == 0):
            heading = _MARKDOWN_HEADING.sub("", block.strip())
            if _TABLE_CAPTION.match(block):
                pending_caption = heading
            units.append(_Unit(b_start, b_end, count(block), "heading", heading))
            continue
        pending_caption = None
        for s_start, s_end in split_sentences(block, b_start):
            units.extend(_bounded(text, s_start, s_end, config.max_tokens, count, heading))
    return units


def _blocks(text: str) -> list[tuple[int, int]]:
    spans = []
    pos = 0
    for match in _BLOCK_SPLIT.finditer(text):
        spans.append((pos, match.start()))
        pos = match.end()
    spans.append((pos, len(text)))
    out = []
    for start, end in spans:
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if end > start:
            out.append((start, end))
    return out


def _is_heading(block: str, *, numbered: bool, first: bool) -> bool:
    if "\n" in block or "\t" in block:
        return False
    stripped = block.strip()
    if _MARKDOWN_HEADING.match(stripped):  # `# …` lines: the DOCX and HTML readers write them
        return len(stripped) <= 200

    if _TABLE_CAPTION.match(stripped) or _NUMBERED_HEADING.match(stripped):
        return len(stripped) <= 60 and not _TERMINAL.search(stripped)
    if first:
        return len(stripped) <= 80 and not _TERMINAL.search(stripped)
    if numbered or _COLON.search(stripped):
        return False
    return len(stripped) <= 30 and not _TERMINAL.search(stripped)


def _is_table(block: str) -> bool:
    """Rows of tab-separated cells, or of `cell | cell` (how the DOCX and HTML readers write tables)."""
    lines = [ln for ln in block.split("\n") if ln.strip()]
    return len(lines) >= 2 and sum("\t" in ln or " | " in ln for ln in lines) >= max(2, len(lines) // 2)


def _table_units(
    text: str,
    start: int,
    end: int,
    caption: str | None,
    config: ChunkerConfig,
    count: TokenCounter,
) -> list[_Unit]:
    tokens = count(text[start:end])
    if tokens <= config.table_max_tokens:
        return [_Unit(start, end, tokens, "table", caption)]
    # Too big to keep whole: one unit per group of rows, each group within the limit.
    units: list[_Unit] = []
    row_start = start
    group_start = start
    group_tokens = 0
    for line in text[start:end].split("\n"):
        row_end = row_start + len(line)
        row_tokens = count(line)
        if group_tokens and group_tokens + row_tokens > config.max_tokens:
            units.append(_Unit(group_start, row_start - 1, group_tokens, "table", caption))
            group_start, group_tokens = row_start, 0
        group_tokens += row_tokens
        row_start = row_end + 1
    units.append(_Unit(group_start, end, group_tokens, "table", caption))
    return [u for u in units if text[u.start : u.end].strip()]


def _bounded(
    text: str, start: int, end: int, max_tokens: int, count: TokenCounter, heading: str | None
) -> list[_Unit]:
    """A sentence as one unit, or split at commas (then characters) if it is too long."""

    def unit(a: int, b: int) -> _Unit:
        return _Unit(a, b, count(text[a:b]), "text", heading)

    if count(text[start:end]) <= max_tokens:
        return [unit(start, end)]
    bounds = [m.end() + start for m in _SOFT_BREAK.finditer(text[start:end])] + [end]
    out: list[_Unit] = []
    piece_start = prev = start
    for bound in bounds:
        if count(text[piece_start:bound]) > max_tokens:
            if prev > piece_start:
                out.append(unit(piece_start, prev))
                piece_start = prev
            while (n := count(text[piece_start:bound])) > max_tokens:
                # No comma within the limit: cut by characters, a little under it.
                cut = piece_start + max(1, (bound - piece_start) * max_tokens * 9 // (10 * n))
                out.append(unit(piece_start, cut))
                piece_start = cut
        prev = bound
    if piece_start < end:
        out.append(unit(piece_start, end))
    return out


def embedding_text(doc: Document, chunk: Chunk) -> str:
    """What the embedding model sees: title and section, then the passage (Simplified)."""
    parts = [doc.title]
    if chunk.heading and chunk.heading != doc.title:
        parts.append(chunk.heading)
    parts.append(chunk.text)
    return to_simplified("\n".join(parts))
