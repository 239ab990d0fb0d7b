"""Citations: quotes checked against their document, numbered and rendered after each claim.

The sentences of a chunk (`QuoteFinder.sentences`, embedded once and cached) are what the
evidence stage chooses from; a citation is built only for an exact slice of its document
(`verify_quote`). The number checks and the `[n]` parsing of free-text answers live here
too, shared by the claim checks.
"""

from __future__ import annotations

import dataclasses
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass

from assistant.pipeline.embedding import Embedder, Vectors
from assistant.text import han_ratio, normalize, split_sentences, to_simplified
from assistant.types import Chunk, Citation, Document

_MARKER = re.compile(r"\[(\d{1,2})\]")
_LEADING_MARKERS = re.compile(r"^(\s*\[\d{1,2}\])+")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


class QuoteFinder:
    """The quotable sentences of a chunk with their embeddings, cached per chunk."""

    def __init__(self, embedder: Embedder, cache_size: int = 2048) -> None:
        self.embedder = embedder
        self._cache: OrderedDict[str, tuple[list[tuple[int, int]], Vectors]] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def sentences(self, chunk: Chunk) -> tuple[list[tuple[int, int]], Vectors]:
        with self._lock:
            if chunk.chunk_id in self._cache:
                self._cache.move_to_end(chunk.chunk_id)
                return self._cache[chunk.chunk_id]
        spans = [
            s
            for s in split_sentences(chunk.text)
            if _substantial(chunk.text[s[0] : s[1]]) and chunk.text[s[0] : s[1]] != chunk.heading
        ]
        if not spans:
            spans = [(0, len(chunk.text))]
        vectors = self.embedder.embed_documents(
            [to_simplified(chunk.text[a:b]) for a, b in spans]
        )
        with self._lock:
            self._cache[chunk.chunk_id] = (spans, vectors)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return spans, vectors


def _substantial(sentence: str) -> bool:
    # Headings, table-cell fragments and page-break stubs make poor quotes.
    return len(sentence.strip()) >= 8


def _bigrams(text: str) -> set[str]:
    t = re.sub(r"\s+", "", normalize(text))
    return {t[i : i + 2] for i in range(len(t) - 1)}


def _bigram_overlap(claim: str, sentence: str) -> float:
    a, b = _bigrams(claim), _bigrams(sentence)
    if not a or not b:
        return 0.0
    return len(a & b) / min(len(a), len(b))


@dataclass
class CitedSentence:
    text: str  # without markers
    citations: list[Citation]


@dataclass
class CitationResult:
    sentences: list[CitedSentence]
    citations: list[Citation]
    dropped: list[str]

    @property
    def grounded(self) -> bool:
        return bool(self.sentences)


def split_answer(raw: str) -> list[tuple[str, list[int]]]:
    """Sentences of an answer with the passage numbers cited in each.

    Markers written after the full stop (`…中心。[1]`) belong to the sentence before.
    """
    spans = list(split_sentences(raw))
    pieces: list[list[str]] = []
    for a, b in spans:
        seg = raw[a:b]
        lead = _LEADING_MARKERS.match(seg)
        if lead and pieces:
            pieces[-1].append(lead.group(0))
            seg = seg[lead.end() :]
        if seg.strip():
            pieces.append([seg])
    out = []
    for parts in pieces:
        joined = "".join(parts)
        nums = [int(n) for n in _MARKER.findall(joined)]
        text = _MARKER.sub("", joined).strip()
        text = re.sub(r"\s+([。！？；.!?;，,])", r"\1", text)
        if text:
            out.append((text, nums))
    return out


def verify_quote(document: Document, chunk: Chunk, start: int, end: int) -> Citation | None:
    """A citation for chunk.text[start:end], or None if it is not an exact document slice."""
    quote = chunk.text[start:end]
    doc_start, doc_end = chunk.start + start, chunk.start + end
    if not quote.strip() or document.text[doc_start:doc_end] != quote:
        return None
    return Citation(
        n=0,
        chunk_id=chunk.chunk_id,
        doc_id=document.doc_id,
        title=document.title,
        quote=quote,
        start=doc_start,
        end=doc_end,
        kind=document.kind,
        published=document.published,
        page=document.page_at(doc_start),
    )


def _tidy_markers(raw: str) -> str:
    # "[1], [2] and [3]" → "[1][2][3]"; a literal "[n]" copied from the prompt goes.
    raw = re.sub(r"\[n\]", "", raw)
    # The paper's own reference marks (^[8]) teach the model a footnote style.
    raw = re.sub(r"\^\s*\[(?=\d)", "[", raw)
    return re.sub(r"\]\s*(?:[,，、;；]|and|和|及)?\s*\[(?=\d)", "][", raw)


def _numbers(text: str) -> set[str]:
    return {n.replace(",", "") for n in _NUMBER.findall(text)}


def _plain(text: str) -> str:
    return normalize(text).replace(",", "")


# Magnitude words, longest first: "2000万" is 20 million, not 2000 million.
_MAGNITUDES = {
    "hundred million": 1e8, "trillion": 1e12, "billion": 1e9, "million": 1e6, "thousand": 1e3,
    "万亿": 1e12, "千万": 1e7, "百万": 1e6, "亿": 1e8, "万": 1e4, "千": 1e3,
}
_AMOUNT = re.compile(
    r"(\d+(?:[.,]\d+)*)\s*(?:[余多]\s*)?(" + "|".join(_MAGNITUDES) + r")(?![a-z])", re.IGNORECASE
)


def _amounts(text: str) -> list[tuple[float, tuple[int, int]]]:
    """Numbers with a magnitude word as values, with their spans: "3000余万" → 3e7."""
    out = []
    for m in _AMOUNT.finditer(text):
        digits = m.group(1).replace(",", "")
        try:
            out.append((float(digits) * _MAGNITUDES[m.group(2).lower()], m.span()))
        except ValueError:
            continue
    return out


def _numbers_supported(text: str, question: str, quotes: list[str]) -> bool:
    """Every number in the sentence stands in one of the quotes shown for it, or in the question.

    The quote, not the whole passage: "100045 employees" must not pass because a postcode
    of 100045 appears in an affiliation line elsewhere in the passage. A number with a
    magnitude word ("20 million", "5亿") must equal an amount there by value, in either
    language's magnitudes: "2000 million" over "2000万元" is wrong, "20 million" is right.
    """
    source = _plain(question + " " + " ".join(quotes))
    plain = _plain(text)
    amounts = _amounts(plain)
    if amounts:
        values = [v for v, _ in _amounts(source)] + [float(n) for n in _numbers(source) if n.count(".") <= 1]
        for value, _ in amounts:
            if not any(abs(value - v) <= 0.005 * max(value, v) for v in values):
                return False
        for _, (a, b) in reversed(amounts):
            plain = plain[:a] + " " + plain[b:]
    numbers = _numbers(plain)
    return all(n in source for n in numbers)


def misread_amounts(text: str, question: str, quotes: list[str]) -> bool:
    """Whether the sentence's amounts misread the quotes' magnitudes and nothing else: it
    has an amount ("5 billion"), and every number it adds to the question stands in the
    quotes with the same digits (5亿元). The figure was found, not made up."""
    plain = _plain(text)
    asked = _numbers(_plain(question))
    added = {n for n in _numbers(plain) if n not in asked}
    return bool(_amounts(plain)) and bool(added) and added <= _numbers(_plain(" ".join(quotes)))


def _renumber(kept: list[CitedSentence], dropped: list[str]) -> CitationResult:
    numbering: dict[tuple[str, int], int] = {}
    ordered: list[Citation] = []
    for sentence in kept:
        renumbered = []
        for c in sentence.citations:
            key = (c.chunk_id, c.start)
            if key not in numbering:
                numbering[key] = len(numbering) + 1
                ordered.append(_with_n(c, numbering[key]))
            renumbered.append(_with_n(c, numbering[key]))
        # One marker per quote, in order, no repeats within a sentence.
        seen: set[int] = set()
        sentence.citations = [c for c in renumbered if not (c.n in seen or seen.add(c.n))]  # type: ignore[func-returns-value]
    return CitationResult(kept, ordered, dropped)


def _with_n(c: Citation, n: int) -> Citation:
    return dataclasses.replace(c, n=n)


def render(sentences: list[CitedSentence]) -> str:
    """The answer text with `[n]` after each sentence."""
    parts = []
    for s in sentences:
        marks = "".join(f"[{c.n}]" for c in s.citations)
        body = s.text
        # Put the marker before the final full stop in Chinese, after it in English.
        if body and body[-1] in "。！？；" :
            parts.append(f"{body[:-1]}{marks}{body[-1]}")
        elif body and body[-1] in ".!?;":
            parts.append(f"{body[:-1]} {marks}{body[-1]}".replace("  ", " "))
        else:
            parts.append(f"{body} {marks}" if han_ratio(body) < 0.3 else f"{body}{marks}")
    out = ""
    for part in parts:
        # English sentences take a space between them, Chinese ones none.
        out += (" " if out and (out[-1] in ".!?;" or han_ratio(part[:20]) < 0.3) else "") + part
    return out
