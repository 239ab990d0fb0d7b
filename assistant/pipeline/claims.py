"""Structured answers: the model's claims, each tied to evidence sentences, then checked.

The model answers in JSON (`ANSWER_SCHEMA`): a list of claims, each naming the evidence
sentences that state it, and whether the evidence answers the question. Citations come
from the chosen sentence ids, so every quote is an exact document slice by construction.

A claim survives `check_claims` only if

* it names at least one evidence sentence (or, left uncited, one sentence is close enough
  to stand for it);
* every number and date in it stands in its evidence or in the question, an amount with
  a magnitude word ("20 million", "2000万") by value, a count with a measure word ("4家")
  with the same measure word;
* its names (proper nouns in the same script as the evidence) stand in its evidence or
  the question;
* it says something beyond the question's own words ("X is [1]." says nothing);
* it is close enough in meaning to its evidence (multilingual embeddings), and a Chinese
  claim over Chinese evidence finds most of its added words there (`unstated`);

A model or endpoint without JSON output answers in free text with `[n]` markers; the same
checks run on its sentences (`parse_free_text`). JSON that does not parse gives the claims
its "text" fields hold (`parse_reply`), never its raw text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from assistant.pipeline.answerability import AnswerKinds
from assistant.pipeline.citations import (
    QuoteFinder,
    _bigram_overlap,
    _bigrams,
    _numbers,
    _numbers_supported,
    _plain,
    _tidy_markers,
    misread_amounts,
    split_answer,
)
from assistant.pipeline.embedding import cosine
from assistant.pipeline.evidence import EvidenceItem
from assistant.text import han_ratio, normalize, to_simplified

MAX_CLAIMS = 4

ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "claims": {
            "type": "array",
            "maxItems": MAX_CLAIMS,
            "items": {
                "type": "object",
                "properties": {
                    "evidence": {
                        "type": "array",
                        "items": {"type": "integer"},
                        "minItems": 1,
                        "maxItems": 3,
                    },
                    "text": {"type": "string"},
                },
                "required": ["evidence", "text"],
                "additionalProperties": False,
            },
        },
        "answerable": {"type": "boolean"},
    },
    "required": ["claims", "answerable"],
    "additionalProperties": False,
}

# Below this similarity a claim does not say what its evidence says.
SUPPORT_MIN = 0.35
# A Chinese claim over Chinese evidence must find at least this share of the character
# pairs it adds to the question in its evidence, unless fewer than STATED_ABSENT are missing
# (a short claim may rephrase a few words).
STATED_MIN = 0.35
STATED_ABSENT = 4
# A claim moves to another evidence sentence that holds this much more of its words.
BETTER_BY = 0.3
# An uncited claim takes the one evidence sentence at least this close.
ATTACH_MIN = 0.55
_PROPER_LATIN = re.compile(r"(?<![\w-])(?:[A-Z][a-zA-Z0-9]*[A-Z0-9][a-zA-Z0-9]*|[A-Z][a-z]{2,})(?![\w-])")
_NAME_TAGS = ("nr", "ns", "nt", "nz")
_ADMIN_SUFFIX = re.compile(r"(?<=..)(市|省|县|区|州|镇)$")


@dataclass
class Claim:
    text: str
    evidence: list[int] = field(default_factory=list)


@dataclass
class ModelAnswer:
    claims: list[Claim]
    answerable: bool | None  # None: the model did not say (free text)
    structured: bool


def parse_structured(raw: str) -> ModelAnswer | None:
    """The model's JSON answer, or None when `raw` is not that JSON."""
    data = _json(raw)
    if not isinstance(data, dict) or not isinstance(data.get("claims"), list):
        return None
    claims = []
    for item in data["claims"][:MAX_CLAIMS]:
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            continue
        ids = item.get("evidence")
        ids = [i for i in ids if isinstance(i, int) and not isinstance(i, bool)] if isinstance(ids, list) else []
        claims.append(Claim(item["text"].strip(), ids))
    answerable = data.get("answerable")
    return ModelAnswer(claims, answerable if isinstance(answerable, bool) else None, True)


_CLAIM_TEXT = re.compile(r'(?:"evidence"\s*:\s*\[(?P<ids>[^\]]*)\][^{}]*?)?"text"\s*:\s*"(?P<text>(?:[^"\\]|\\.)*)"')
_ANSWERABLE = re.compile(r'"answerable"\s*:\s*(true|false)')


def parse_reply(raw: str) -> ModelAnswer:
    """The model's answer: its JSON; what can be read of JSON that does not parse (a small
    model may write `"evidence":,`); free text with `[n]` markers when it wrote no JSON.
    Broken JSON is never read as prose: its claims are its "text" fields or none."""
    parsed = parse_structured(raw)
    if parsed is not None:
        return parsed
    if not raw.lstrip().startswith(("{", "`")):
        return parse_free_text(raw)
    claims = []
    for m in _CLAIM_TEXT.finditer(raw):
        try:
            text = json.loads(f'"{m.group("text")}"')
        except ValueError:
            continue
        ids = [int(n) for n in re.findall(r"\d+", m.group("ids") or "")]
        claims.append(Claim(text.strip(), ids))
    found = _ANSWERABLE.search(raw)
    return ModelAnswer(claims[:MAX_CLAIMS], None if found is None else found.group(1) == "true", True)


def parse_free_text(raw: str) -> ModelAnswer:
    """Sentences with `[n]` markers, read as claims (the fallback without JSON output)."""
    claims = [Claim(text, nums) for text, nums in split_answer(_tidy_markers(raw))]
    return ModelAnswer(claims, None, False)


def draft_text(raw: str) -> str:
    """The claims written so far in a partial JSON answer (for streaming a draft)."""
    from langchain_core.utils.json import parse_partial_json

    raw = re.sub(r"^\s*```[a-zA-Z]*\s*", "", raw)  # a code fence around the JSON
    start = raw.find("{")
    if start < 0:
        return ""
    try:
        data = parse_partial_json(raw[start:].removesuffix("```").strip())
    except (ValueError, TypeError):
        return ""
    if not isinstance(data, dict) or not isinstance(data.get("claims"), list):
        return ""
    texts = [c.get("text") for c in data["claims"] if isinstance(c, dict)]
    return " ".join(t.strip() for t in texts if isinstance(t, str) and t.strip())


# A curly quote where a JSON string must end (before `}`, `]` or the next key): a model
# writing Chinese closes the string with the quotation mark of its prose.
_CURLY_CLOSE = re.compile(r'[”“](?=\s*(?:[}\]]|,\s*"\w+"\s*:))')


def _json(raw: str) -> Any:
    text = raw.strip()
    if text.startswith("```"):
        text = re.sub(r"^```\w*\s*|\s*```$", "", text)
    start, end = text.find("{"), text.rfind("}")
    candidates = [text, text[start : end + 1]] if 0 <= start < end else [text]
    for candidate in [*candidates, *(_CURLY_CLOSE.sub('"', c) for c in candidates)]:
        try:
            return json.loads(candidate)
        except ValueError:
            continue
    return None


@dataclass
class CheckedClaim:
    text: str
    evidence: list[EvidenceItem]


@dataclass
class ClaimCheck:
    kept: list[CheckedClaim]
    dropped: list[tuple[str, str]]  # (claim, why)
    # Claims dropped because an amount misreads the magnitude of the one in the sentences
    # they cite ("5 billion" over 5亿元), with those sentences: the model found the
    # figure but misread it.
    slipped: list[CheckedClaim] = field(default_factory=list)
    # Claims dropped for saying nothing beyond the question, with the sentences they cite:
    # the model pointed at its answer but did not write it down.
    restated: list[CheckedClaim] = field(default_factory=list)


def check_claims(
    claims: Sequence[Claim],
    question: str,
    evidence: Sequence[EvidenceItem],
    finder: QuoteFinder,
    kinds: AnswerKinds,
    known_names: frozenset[str] = frozenset(),
) -> ClaimCheck:
    """The claims that stand on their evidence (see the module docstring), in order.

    `known_names`: lower-cased words of the corpus's English name renderings
    (`names.yaml`), which an English claim may use for the Chinese names they render.
    """
    kept: list[CheckedClaim] = []
    dropped: list[tuple[str, str]] = []
    slipped: list[CheckedClaim] = []
    restated: list[CheckedClaim] = []
    by_n = {e.n: e for e in evidence}
    question_terms = set(kinds.subject_terms(question)) | set(_content_words(question, kinds))
    seen: set[str] = set()
    for claim in claims:
        text = re.sub(r"\s*\[\d{1,2}\]", "", claim.text).strip()
        plain = normalize(text).rstrip("。.!！;；")
        # A claim repeating (part of) an earlier one adds nothing ("…总规模5亿元,首期2亿元。" then "首期2亿元。").
        if not plain or any(plain in earlier for earlier in seen):
            continue
        seen.add(plain)
        if not kinds.beyond(text, question).strip() or not [
            w for w in _content_words(text, kinds) if w not in question_terms and w not in normalize(question)
        ]:
            dropped.append((text, "says nothing beyond the question"))
            restated.extend(CheckedClaim(text, [by_n[n]]) for n in dict.fromkeys(claim.evidence) if n in by_n)
            continue
        vecs = finder.embedder.embed_documents([to_simplified(text), to_simplified(f"{question} {text}")])
        items = [by_n[n] for n in dict.fromkeys(claim.evidence) if n in by_n]
        items = [e for e in items if _support(text, vecs, e, finder) >= SUPPORT_MIN] if items else []
        if not items:
            best = _closest(text, vecs[:1], evidence, finder)
            if best is None:
                dropped.append((text, "no evidence sentence states it"))
                continue
            items = [best]
        quotes = [e.text for e in items]
        if not _numbers_supported(text, question, quotes):
            # Small models often cite the neighbouring sentence: another evidence sentence
            # that holds every number and states the claim will do.
            others = [
                e for e in evidence
                if e not in items and _numbers_supported(text, question, [e.text])
                and _support(text, vecs, e, finder) >= SUPPORT_MIN
            ]
            if not others:
                dropped.append((text, "a number or date is not in its evidence"))
                if items and misread_amounts(text, question, quotes):
                    slipped.append(CheckedClaim(text, items))
                continue
            items = others[:1]
            quotes = [items[0].text]
        share, absent = unstated(text, question, quotes)
        if share < 1.0 and absent >= STATED_ABSENT:
            # The words of another evidence sentence, maybe: the model cited a neighbour
            # (or the body text that half says what a table row says in full).
            shares = {
                id(e): unstated(text, question, [e.text])[0]
                for e in evidence if e not in items and _numbers_supported(text, question, [e.text])
            }
            others = [e for e in evidence if shares.get(id(e), 0.0) >= max(STATED_MIN, share + BETTER_BY)]
            if others:
                # Below the floor the cited sentence goes; above it both stand (a table row
                # and the body text that words it more fully).
                better = max(others, key=lambda e: shares[id(e)])
                items = [better] if share < STATED_MIN else [*items, better]
                quotes = [e.text for e in items]
            elif share < STATED_MIN:
                dropped.append((text, f"its words are not in its evidence ({share:.0%} of them)"))
                continue
        if not kinds.counts_supported(text, [question, *quotes]):
            dropped.append((text, "a count is not in its evidence with the same measure word"))
            continue
        missing = _unnamed(text, question, quotes, kinds, known_names)
        if missing:
            # The names may stand in another evidence sentence that states the claim.
            others = [
                e for e in evidence
                if e not in items and not _unnamed(text, question, [e.text], kinds, known_names) and _numbers_supported(text, question, [e.text])
                and kinds.counts_supported(text, [question, e.text]) and _support(text, vecs, e, finder) >= SUPPORT_MIN
            ]
            if not others:
                dropped.append((text, f"names not in its evidence: {', '.join(missing)}"))
                continue
            items = others[:1]
        kept.append(CheckedClaim(text, items))
    return ClaimCheck(kept, dropped, slipped, restated)


def unstated(text: str, question: str, quotes: Sequence[str]) -> tuple[float, int]:
    """What a Chinese claim adds to the question (its character pairs not in the question)
    and its evidence does not hold: (share of the added pairs held, pairs not held). (1.0, 0)
    when the claim adds none or either side is not Chinese. A small model over several
    sentences writes one sentence's facts under another's citation; the words show it."""
    evidence = " ".join(quotes)
    if han_ratio(text) < 0.3 or han_ratio(evidence) < 0.3:
        return 1.0, 0
    added = _han_pairs(text) - _han_pairs(question)
    if not added:
        return 1.0, 0
    held = added & _han_pairs(evidence)
    return len(held) / len(added), len(added) - len(held)


def _han_pairs(text: str) -> set[str]:
    return {p for p in _bigrams(to_simplified(text)) if all("\u4e00" <= c <= "\u9fff" for c in p)}


def _content_words(text: str, kinds: AnswerKinds) -> list[str]:
    """Words that carry content: the subject terms of `text` plus its numbers."""
    return list(dict.fromkeys([*kinds.subject_terms(text), *_numbers(text)]))


def _supports(text: str, vecs: np.ndarray, items: Sequence[EvidenceItem], finder: QuoteFinder) -> list[float]:
    """How well each of `items` states the claim: meaning (embeddings, the best of `vecs`)
    plus shared characters."""
    if not items:
        return []
    ev = finder.embedder.embed_documents([to_simplified(e.text) for e in items])
    sims = cosine(np.atleast_2d(vecs), ev).max(axis=0)
    return [float(sim) + 0.5 * _bigram_overlap(text, e.text) for sim, e in zip(sims, items, strict=True)]


def _support(text: str, vecs: np.ndarray, item: EvidenceItem, finder: QuoteFinder) -> float:
    return _supports(text, vecs, [item], finder)[0]


def _closest(
    text: str, vecs: np.ndarray, evidence: Sequence[EvidenceItem], finder: QuoteFinder
) -> EvidenceItem | None:
    """The evidence sentence that states an uncited or miscited claim best, by the measure
    of `_support` (meaning plus shared characters: a short claim's meaning is far from a
    long sentence's even when it copies its words); None below `ATTACH_MIN`."""
    if not evidence:
        return None
    scores = _supports(text, vecs, evidence, finder)
    i = int(np.argmax(scores))
    return evidence[i] if scores[i] >= ATTACH_MIN else None


def _unnamed(text: str, question: str, quotes: list[str], kinds: AnswerKinds, known_names: frozenset[str]) -> list[str]:
    """`_unsupported_names`, less the corpus's English renderings and words known not to be names."""
    return [
        n for n in _unsupported_names(text, question, quotes)
        if n.lower() not in known_names and n.lower() not in kinds.not_pinyin
    ]


def _unsupported_names(text: str, question: str, quotes: Sequence[str]) -> list[str]:
    """Names in the claim that stand neither in its evidence nor in the question.

    Checked only within one script: an English claim over Chinese evidence translates
    names, which a surface check cannot follow (the similarity check covers it).
    """
    haystack = to_simplified(_plain(" ".join([question, *quotes])))
    evidence_han = han_ratio(" ".join(quotes)) >= 0.3
    if han_ratio(text) >= 0.3:
        if not evidence_han:
            return []
        # "南宁市" stands where the evidence says "南宁".
        return [n for n in _han_names(text) if _ADMIN_SUFFIX.sub("", to_simplified(_plain(n))) not in haystack]
    names = [n for n in dict.fromkeys(_PROPER_LATIN.findall(text)) if n.lower() not in haystack.lower()]
    if not evidence_han:
        return names
    # Over Chinese evidence only romanized Chinese names can be checked: "Shenzhen" must
    # be the pinyin of something in the evidence (or stand in the question).
    spelled = _pinyin(" ".join(quotes))
    return [n for n in names if _is_pinyin(n) and n.lower() not in spelled]


def _han_names(text: str) -> list[str]:
    from assistant.pipeline.keyword import _JIEBA_LOCK, _jieba

    _jieba()
    import jieba.posseg as posseg

    with _JIEBA_LOCK:
        pairs = posseg.lcut(to_simplified(text))
    return list(dict.fromkeys(w for w, tag in pairs if tag in _NAME_TAGS and len(w) >= 2))


@lru_cache(maxsize=1)
def _syllables() -> frozenset[str]:
    from pypinyin import lazy_pinyin
    from pypinyin.pinyin_dict import pinyin_dict

    return frozenset(lazy_pinyin(chr(cp))[0] for cp in pinyin_dict if 0x4E00 <= cp <= 0x9FFF)


def _is_pinyin(word: str) -> bool:
    """Whether `word` reads as two or more pinyin syllables ("Shenzhen", "Wuhan")."""
    if not word[1:].islower():
        return False  # an acronym is not a romanized name
    w = word.lower()
    syllables = _syllables()
    # reach[i]: the fewest syllables spelling w[:i] (None: cannot be spelled)
    reach: list[int | None] = [0] + [None] * len(w)
    for i in range(len(w)):
        if reach[i] is None:
            continue
        for j in range(i + 1, min(len(w), i + 6) + 1):
            if w[i:j] in syllables and (reach[j] is None or reach[j] > reach[i] + 1):  # type: ignore[operator]
                reach[j] = reach[i] + 1  # type: ignore[operator]
    return reach[-1] is not None and reach[-1] >= 2


def _pinyin(text: str) -> str:
    from pypinyin import lazy_pinyin

    return "".join(lazy_pinyin(to_simplified(text))).lower()
