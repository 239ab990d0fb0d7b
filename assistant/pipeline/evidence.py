"""Evidence-first context: the question's best sentences, numbered, within a token budget.

Instead of whole passages the model reads the few sentences of the retrieved passages that
best match the question (multilingual embeddings plus shared words, with a small bonus for
a sentence holding the kind of thing the question asks for). A sentence that leans on the
one before it ("It was set up in…", "该中心…") or is very short is shown with that
neighbour, as one contiguous span, so every evidence item is an exact slice of its chunk
and a citation built from it is verbatim by construction.

Sentences that address a model (planted instructions, role-play lines) never become
evidence; links inside evidence are shown to the model as "[link]" (the quote the reader
sees is the exact document text, rendered inert by the faces).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from assistant.llm.guard import looks_like_instruction
from assistant.pipeline.answerability import AnswerKinds, Kind
from assistant.pipeline.citations import QuoteFinder, _bigram_overlap
from assistant.pipeline.embedding import cosine
from assistant.text import han_ratio, is_reference, to_simplified
from assistant.types import SearchHit

_URL = re.compile(r"(https?://|www\.)[^\s)）\]>\"'“”]+", re.IGNORECASE)
_MD_LINK = re.compile(r"\[([^\]\n]{1,200})\]\([^)\s]{1,500}\)")
# A sentence this short rarely stands alone ("2014年，广西。"): show it with its neighbour.
SHORT_SENTENCE = 18
# Sentences scoring below the best by more than this many standard deviations are not
# worth the model's time.
SCORE_MARGIN = 2.0
# A line that does not end like a sentence (a title, an affiliation, a caption) loses this
# many deviations.
FRAGMENT_PENALTY = 1.5
_ENDS = re.compile(r"[。！？!?.…；”\"’」』]\s*$")
# Holding the kind of thing asked for (a date for "when") counts this many deviations.
KIND_BONUS = 0.75


@dataclass(frozen=True)
class EvidenceItem:
    """Evidence sentence `n`: `hit.chunk.text[start:end]`, with its score."""

    n: int
    hit_index: int
    hit: SearchHit
    start: int
    end: int
    score: float

    @property
    def text(self) -> str:
        return self.hit.chunk.text[self.start : self.end]


def for_model(text: str) -> str:
    """Evidence text as a model sees it: links inert, whitespace folded."""
    text = _MD_LINK.sub(r"\1", text)
    text = _URL.sub("[link]", text)
    return re.sub(r"\s+", " ", text).strip()


def select_evidence(
    query: str,
    hits: Sequence[SearchHit],
    finder: QuoteFinder,
    kinds: AnswerKinds,
    asked: Sequence[Kind],
    *,
    budget_tokens: int,
    count_tokens: Callable[[str], int],
    max_items: int = 8,
    parts: Sequence[str] = (),
) -> list[EvidenceItem]:
    """The best sentences of `hits` for `query`, numbered from 1, within `budget_tokens`.

    With `parts` (the sub-questions of a question asking several things), a sentence
    scores as well as it matches its best part: the sentence answering the second part
    competes with the first part's best, instead of being one weak match of the whole.
    """
    if not hits:
        return []
    queries = list(parts) if len(parts) > 1 else [query]
    qvecs = np.atleast_2d(np.array([finder.embedder.embed_query(to_simplified(q)) for q in queries]))
    raws: list[list[tuple[float, bool, bool, bool, int, int, int]]] = [[] for _ in queries]
    for i, hit in enumerate(hits):
        spans, vectors = finder.sentences(hit.chunk)
        sims = cosine(qvecs, vectors)
        for j, (a, b) in enumerate(spans):
            sentence = hit.chunk.text[a:b]
            if looks_like_instruction(sentence) or is_reference(sentence):
                continue  # planted text addressing a model, or a source list, is never evidence
            holds = bool(asked) and any(k.evidence and k.held_by(sentence) for k in asked)
            # A title, affiliation or caption line is not a statement: last resort only.
            fragment = _fragment(hit, sentence)
            han = han_ratio(sentence) >= 0.3
            for raw, q, sim in zip(raws, queries, sims[:, j], strict=True):
                score = float(sim) + 0.3 * _bigram_overlap(q, sentence) - 0.02 * i
                raw.append((score, han, holds, fragment, i, a, b))
    if not raws[0]:
        return []
    best: dict[tuple[int, int, int], float] = {}
    for raw in raws:
        for z, i, a, b in _calibrated(raw):
            best[(i, a, b)] = max(z, best.get((i, a, b), z))
    candidates = [(z, i, a, b) for (i, a, b), z in best.items()]
    candidates.sort(key=lambda c: -c[0])
    top = candidates[0][0]
    chosen: list[tuple[float, int, int, int]] = []
    docs: set[str] = set()
    used = 0

    def cost(i: int, a: int, b: int) -> int:
        return count_tokens(f"[{len(chosen) + 1}] " + for_model(hits[i].chunk.text[a:b])) + 1

    for score, i, a, b in candidates:
        if len(chosen) >= max_items or score < top - SCORE_MARGIN:
            break
        a = _with_neighbour(hits[i], finder, kinds, a, b)
        text = hits[i].chunk.text[a:b].strip()
        if any(text in hits[c[1]].chunk.text[c[2] : c[3]] for c in chosen):
            continue  # the same sentence again (chunks overlap by a sentence)
        overlapping = [c for c in chosen if c[1] == i and not (b <= c[2] or a >= c[3])]
        if overlapping:
            # Overlaps an item already chosen: widen that one instead of repeating text.
            old = overlapping[0]
            wider = (old[0], i, min(old[2], a), max(old[3], b))
            extra = cost(i, wider[2], wider[3]) - cost(i, old[2], old[3])
            if used + extra <= budget_tokens:
                used += extra
                chosen[chosen.index(old)] = wider
            continue
        doc = hits[i].document
        title = 0 if doc.doc_id in docs else count_tokens(_source_line(hits[i])) + 1
        need = cost(i, a, b) + title
        if chosen and used + need > budget_tokens:
            continue
        used += need
        docs.add(doc.doc_id)
        chosen.append((score, i, a, b))
    # Document order reads better than score order, and keeps one source's lines together.
    chosen.sort(key=lambda c: (c[1], c[2]))
    return [
        EvidenceItem(n=n, hit_index=i, hit=hits[i], start=a, end=b, score=s)
        for n, (s, i, a, b) in enumerate(chosen, start=1)
    ]


def _calibrated(raw: list[tuple[float, bool, bool, bool, int, int, int]]) -> list[tuple[float, int, int, int]]:
    """Scores made comparable across scripts: each relative to its own script's spread.

    A multilingual embedding rates any sentence in the question's own language higher
    than a sentence in another language that answers it (an English affiliation line beats
    the Chinese sentence with the date for an English question). Standardizing within each
    script lets the best sentences of both compete on equal terms.
    """
    groups: dict[bool, list[float]] = {}
    for score, han, *_ in raw:
        groups.setdefault(han, []).append(score)
    everything = [r[0] for r in raw]
    stats = {}
    for han, scores in groups.items():
        pool = scores if len(scores) >= 4 else everything
        stats[han] = (float(np.mean(pool)), float(np.std(pool)) or 1.0)
    out = []
    for score, han, holds, fragment, i, a, b in raw:
        mean, std = stats[han]
        z = (score - mean) / std + (KIND_BONUS if holds else 0.0) - (FRAGMENT_PENALTY if fragment else 0.0)
        out.append((z, i, a, b))
    return out


def _with_neighbour(hit: SearchHit, finder: QuoteFinder, kinds: AnswerKinds, a: int, b: int) -> int:
    """The start of the span to show: the sentence before too when this one needs it."""
    sentence = hit.chunk.text[a:b]
    if len(sentence.strip()) >= SHORT_SENTENCE and not kinds.refers_back(sentence):
        return a
    spans, _ = finder.sentences(hit.chunk)
    before = [s for s in spans if s[1] <= a]
    if not before:
        return a
    start = before[-1][0]
    if looks_like_instruction(hit.chunk.text[start:a]) or is_reference(hit.chunk.text[start:a]):
        return a
    return start


def _fragment(hit: SearchHit, sentence: str) -> bool:
    return not hit.chunk.is_table and not _ENDS.search(sentence)


def is_fragment(item: EvidenceItem) -> bool:
    """Whether the item is a title, affiliation or caption line rather than a statement."""
    return _fragment(item.hit, item.text.strip())


def _source_line(hit: SearchHit) -> str:
    doc = hit.document
    when = f", {doc.published}" if doc.published else ""
    return f"From “{for_model(doc.title)}”{when}:"


def render_evidence(items: Sequence[EvidenceItem]) -> str:
    """The numbered evidence, grouped under the document each line comes from."""
    lines: list[str] = []
    current: str | None = None
    for item in items:
        if item.hit.document.doc_id != current:
            current = item.hit.document.doc_id
            lines.append(_source_line(item.hit))
        lines.append(f"[{item.n}] {for_model(item.text)}")
    return "\n".join(lines)
