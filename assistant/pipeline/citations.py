"""Citations: tie each claim of an answer to a verbatim quote from a retrieved passage.

The chat model only says *which* passage supports a sentence (`[n]`); the quote itself is
chosen here, as the passage sentence that best matches the claim (multilingual
embeddings, so an English claim finds its Chinese source), and is then checked to be an
exact slice of the document. A sentence whose citation cannot be checked, or that states
a number its passages do not contain, is dropped, never shown.
"""

from __future__ import annotations

import dataclasses
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from assistant.pipeline.embedding import Embedder, Vectors, cosine
from assistant.text import han_ratio, normalize, split_sentences, to_simplified
from assistant.types import Chunk, Citation, Document, SearchHit

_MARKER = re.compile(r"\[(\d{1,2})\]")
_LEADING_MARKERS = re.compile(r"^(\s*\[\d{1,2}\])+")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_SECTION = re.compile(r"^\s*(\d+(\.\d+)*\s|表\s*\d)")
_QUOTED = re.compile(r"[“\"「『]([^”\"」』]{4,200})[”\"」』]")

# Similarity needed to attach a citation to a sentence the model left uncited.
ATTACH_THRESHOLD = 0.55
# Below this, the passage the model cited does not support the sentence at all.
SUPPORT_THRESHOLD = 0.2
# Of several passages cited for one sentence, keep those this close to the best (≤ 3).
MULTI_CITE_MARGIN = 0.15
MAX_CITES_PER_SENTENCE = 3


@dataclass(frozen=True)
class SentenceMatch:
    """The passage sentence closest to a claim: its offsets in the chunk text and its score."""

    start: int
    end: int
    score: float


class QuoteFinder:
    """Finds the passage sentence closest to a claim; caches sentence embeddings."""

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

    def best(self, claim: str, chunk: Chunk, claim_vecs: Vectors | None = None) -> SentenceMatch:
        """The best quote for `claim`; `claim_vecs` may hold several phrasings of it."""
        spans, vectors = self.sentences(chunk)
        if claim_vecs is None:
            claim_vecs = self.embedder.embed_query(to_simplified(claim))
        sims = cosine(np.atleast_2d(claim_vecs), vectors).max(axis=0)
        overlap = np.array([_bigram_overlap(claim, chunk.text[a:b]) for a, b in spans])
        # A claim's numbers must stand in its quote (see `_numbers_supported`), so a
        # sentence holding them is the better quote.
        numbers = _numbers(claim)
        holds = np.array(
            [sum(n in _plain(chunk.text[a:b]) for n in numbers) / len(numbers) if numbers else 0.0 for a, b in spans]
        )
        support = sims + 0.5 * overlap
        # The bonus picks among sentences; the score reported is the support alone, so
        # holding a number never makes an unrelated sentence count as support.
        i = int(np.argmax(support + 0.3 * holds))
        return SentenceMatch(spans[i][0], spans[i][1], float(support[i]))


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
    )


def cite(
    raw_answer: str,
    question: str,
    passages: list[SearchHit],
    finder: QuoteFinder,
) -> CitationResult:
    """Check and attach citations to each sentence of a model's answer.

    A sentence keeps the passages the model cited when they support it (a close quote,
    and every number of the sentence in them). Otherwise the best other retrieved
    passage that does support it is cited instead (small models often cite the
    neighbouring passage); failing that, the sentence is dropped.
    """
    kept: list[CitedSentence] = []
    dropped: list[str] = []
    # A numbered section heading or a table caption echoed back is not an answer (a
    # document title can be: "where did the conference open?" → its title says).
    labels = {normalize(h.chunk.heading) for h in passages if h.chunk.heading and _SECTION.match(h.chunk.heading)}
    for text, nums in split_answer(_tidy_markers(raw_answer)):
        if not _substantive(text) or normalize(text.rstrip("。.")) in labels:
            dropped.append(text)
            continue
        # "It was founded in 2014" only makes sense with the question: embed both ways.
        claim_vecs = finder.embedder.embed_documents(
            [to_simplified(text), to_simplified(f"{question} {text}")]
        )
        cited = sorted({n for n in nums if 1 <= n <= len(passages)})
        citations = _supported(text, question, cited, passages, finder, claim_vecs, SUPPORT_THRESHOLD)
        if not citations:
            others = [n for n in range(1, len(passages) + 1) if n not in cited]
            # Re-attribution must rest on the sentence alone: with the question folded
            # in, any sentence would look like it belongs to an on-topic passage.
            citations = _supported(
                text, question, others, passages, finder, claim_vecs[:1], ATTACH_THRESHOLD, best_only=True
            )
        if not citations:
            dropped.append(text)
            continue
        kept.append(CitedSentence(text, citations))
    return _renumber(kept, dropped)


def _supported(
    text: str,
    question: str,
    candidates: list[int],
    passages: list[SearchHit],
    finder: QuoteFinder,
    claim_vecs: Vectors,
    threshold: float,
    best_only: bool = False,
) -> list[Citation]:
    scored: list[tuple[float, int, SentenceMatch]] = []
    for n in candidates:
        hit = passages[n - 1]
        quote = _quoted_in(text, hit.chunk) or finder.best(text, hit.chunk, claim_vecs)
        if quote.score >= threshold:
            scored.append((quote.score, n, quote))
    scored.sort(key=lambda x: -x[0])
    if scored:
        # A model that cites every passage is not citing: keep the few that fit best.
        top = scored[0][0]
        scored = [x for x in scored if x[0] >= top - MULTI_CITE_MARGIN][:MAX_CITES_PER_SENTENCE]
    def quote_text(n: int, q: SentenceMatch) -> str:
        return passages[n - 1].chunk.text[q.start : q.end]

    if best_only:
        # The single best passage whose quote also holds every number of the sentence.
        scored = [s for s in scored if _numbers_supported(text, question, [quote_text(s[1], s[2])])][:1]
    elif not _numbers_supported(text, question, [quote_text(n, q) for _, n, q in scored]):
        return []
    out = []
    for _score, n, quote in sorted(scored, key=lambda x: x[1]):
        citation = verify_quote(passages[n - 1].document, passages[n - 1].chunk, quote.start, quote.end)
        if citation is not None:
            out.append(citation)
    return out


def _tidy_markers(raw: str) -> str:
    # "[1], [2] and [3]" → "[1][2][3]"; a literal "[n]" copied from the prompt goes.
    raw = re.sub(r"\[n\]", "", raw)
    # The paper's own reference marks (^[8]) teach the model a footnote style.
    raw = re.sub(r"\^\s*\[(?=\d)", "[", raw)
    return re.sub(r"\]\s*(?:[,，、;；]|and|和|及)?\s*\[(?=\d)", "][", raw)


def _substantive(text: str) -> bool:
    letters = re.sub(r"[\W\d_]+", "", text)
    return len(letters) >= 4


def _quoted_in(text: str, chunk: Chunk) -> SentenceMatch | None:
    """A passage string the model quoted verbatim, if any."""
    for m in _QUOTED.finditer(text):
        i = chunk.text.find(m.group(1))
        if i >= 0:
            return SentenceMatch(i, i + len(m.group(1)), 1.0)
    return None


def _numbers(text: str) -> set[str]:
    return {n.replace(",", "") for n in _NUMBER.findall(text)}


def _plain(text: str) -> str:
    return normalize(text).replace(",", "")


def _numbers_supported(text: str, question: str, quotes: list[str]) -> bool:
    """Every number in the sentence stands in one of the quotes shown for it, or in the question.

    The quote, not the whole passage: "100045 employees" must not pass because a postcode
    of 100045 appears in an affiliation line elsewhere in the passage.
    """
    numbers = _numbers(text)
    if not numbers:
        return True
    haystack = _plain(question + " " + " ".join(quotes))
    return all(n in haystack for n in numbers)


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
    joiner = " " if sentences and han_ratio(" ".join(s.text for s in sentences)) < 0.3 else ""
    return joiner.join(parts)
