"""What a question asks for, and whether evidence holds that kind of thing about its subject.

The cues and patterns are data (`prompts/answer_kinds.yaml`), not code: a question
"When was … set up?" asks for a date, and only evidence with a date in it can answer it;
"What is the email address of …?" needs an address-shaped string. Kinds without a surface
pattern (a reason, a list) are left to the other checks.

The subject check asks whether the evidence is about what the question names: the share of
the question's own content words (after its question words are dropped) that stand in the
evidence. It is deliberately lexical — embeddings call every on-topic passage "close".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from assistant.errors import AssistantError
from assistant.pipeline.prompts import read_data_file
from assistant.text import han_ratio, normalize, to_simplified

KINDS_FILE = "answer_kinds.yaml"
_PART_END = re.compile(r"(?<=[？?；;])")
_LATIN_WORD = re.compile(r"[a-z0-9][a-z0-9'’.-]*[a-z0-9]|[a-z0-9]")


class AnswerKindsError(AssistantError, ValueError):
    """`prompts/answer_kinds.yaml` is missing or malformed; the message says where."""


@dataclass(frozen=True)
class Kind:
    name: str
    cues: tuple[re.Pattern[str], ...]
    evidence: tuple[re.Pattern[str], ...]  # empty: not checkable on the surface
    in_claim: bool
    labels: dict[str, str]
    required: bool = False  # a question asking for it is refused without it

    def asked_by(self, question: str) -> bool:
        return any(p.search(question) for p in self.cues)

    def held_by(self, text: str) -> bool:
        if not self.evidence:
            return True
        folded = to_simplified(text)
        return any(p.search(folded) for p in self.evidence)

    def found_in(self, text: str) -> set[str]:
        """The things of this kind `text` names on the surface (Simplified script)."""
        folded = to_simplified(text)
        return {m.group(0) for p in self.evidence for m in p.finditer(folded)}

    def label(self, language: str) -> str:
        return self.labels.get(language) or self.labels.get("en") or self.name


@dataclass(frozen=True)
class AnswerKinds:
    kinds: tuple[Kind, ...] = ()
    question_words_en: frozenset[str] = frozenset()
    question_words_zh: frozenset[str] = frozenset()
    referring_en: tuple[str, ...] = ()
    referring_zh: tuple[str, ...] = ()
    absence_en: frozenset[str] = frozenset()
    absence_zh: tuple[str, ...] = ()
    not_pinyin: frozenset[str] = frozenset()
    # (kind, pattern capturing `n`): years and ordinals that narrow a question's subject
    qualifier_patterns: tuple[tuple[str, re.Pattern[str]], ...] = ()
    anchor_patterns: tuple[re.Pattern[str], ...] = ()
    measure_words: frozenset[str] = frozenset()

    def counts(self, text: str) -> set[str]:
        """The counts `text` writes with a Chinese measure word, as "4家" (ordinals such as
        "第4届" left out; Simplified script, spaces dropped)."""
        if not self.measure_words:
            return set()
        folded = to_simplified(normalize(text)).replace(" ", "").replace(",", "")
        return {
            m.group(1) + m.group(2)
            for m in re.finditer(r"(?<![\d.第])(\d+(?:\.\d+)?)[余多]?([\u4e00-\u9fff])", folded)
            if m.group(2) in self.measure_words
        }

    def counts_supported(self, claim: str, sources: Sequence[str]) -> bool:
        """Whether every count in `claim` (see `counts`) stands as the same count in `sources`."""
        wanted = self.counts(claim)
        return not wanted or wanted <= self.counts(" ".join(sources))

    def anchors(self, question: str) -> list[str]:
        """The names `question` writes unmistakably: titles in 《》, quoted names, codes."""
        folded = normalize(question)
        found = [m.group("a").strip() for p in self.anchor_patterns for m in p.finditer(folded)]
        return list(dict.fromkeys(a for a in found if a))

    def anchored(self, question: str, context: str) -> bool:
        """Whether `context` holds every anchor of `question` (spacing and script aside)."""
        wanted = self.anchors(question)
        if not wanted:
            return True
        folded = normalize(context).replace(" ", "")
        return all(a.replace(" ", "") in folded for a in wanted)

    def qualifiers(self, text: str) -> set[tuple[str, int]]:
        """The years and ordinals `text` names, as (kind, number): "第十一届" → ("ordinal", 11)."""
        folded = normalize(text)
        found = set()
        for kind, pattern in self.qualifier_patterns:
            for match in pattern.finditer(folded):
                value = chinese_number(match.group("n"))
                if value is not None:
                    found.add((kind, value))
        return found

    def qualified(self, question: str, context: str) -> bool:
        """Whether `context` names one of the years or ordinals `question` is narrowed by
        (always true for a question without any): evidence about the 2021 awards does not
        answer a question about the 2022 ones."""
        wanted = self.qualifiers(question)
        return not wanted or bool(wanted & self.qualifiers(context))

    def parts(self, question: str) -> list[str]:
        """The sub-questions of `question` ("…是什么时候召开的？…又是何时启用的？"), split
        after each question mark or semicolon; `[question]` when it asks one thing."""
        pieces = [p.strip() for p in _PART_END.split(question) if len(p.strip()) >= 4]
        return pieces if len(pieces) > 1 else [question]

    def asked(self, question: str) -> list[Kind]:
        """The kinds of thing `question` asks for, in precedence order (may be empty)."""
        folded = to_simplified(question)
        return [k for k in self.kinds if k.asked_by(folded)]

    def subject_terms(self, question: str) -> list[str]:
        """The question's content words: what the evidence must be about."""
        from assistant.pipeline.keyword import word_tokens

        folded = normalize(question)
        terms: list[str] = []
        if han_ratio(folded) > 0:
            terms += [
                w for w in word_tokens(folded)
                if w not in self.question_words_zh and (len(w) >= 2 or w.isdigit())
            ]
        terms += [
            w for w in _LATIN_WORD.findall(re.sub(r"[\u4e00-\u9fff]", " ", folded))
            if w not in self.question_words_en and (len(w) > 2 or w.isdigit())
        ]
        return list(dict.fromkeys(terms))

    def beyond(self, claim: str, question: str) -> str:
        """What `claim` says besides the question's own words."""
        from assistant.pipeline.keyword import word_tokens

        asked = to_simplified(normalize(question))
        stems = {stem(w) for w in _LATIN_WORD.findall(asked)} | {stem(w) for w in self.question_words_en}
        out = []
        for w in word_tokens(to_simplified(normalize(claim))):
            if _LATIN_WORD.fullmatch(w):
                if stem(w) not in stems:
                    out.append(w)
            elif w not in asked:
                out.append(w)
        return " ".join(out)

    def states_absence(self, claim: str) -> bool:
        """Whether `claim` says that something is missing rather than stating a fact."""
        folded = normalize(claim)
        words = set(_LATIN_WORD.findall(folded))
        if len(words & self.absence_en) >= 2:
            return True  # "not provided", "not stated in the evidence"
        return any(w in folded for w in self.absence_zh if len(w) >= 2) and han_ratio(folded) >= 0.3

    def refers_back(self, sentence: str) -> bool:
        """Whether `sentence` leans on the one before it ("It was…", "该中心…")."""
        head = normalize(sentence).lstrip(" \t\"'“‘（(")
        first = head.split(" ", 1)[0].strip(",.;:，、")
        return first in self.referring_en or any(head.startswith(w) for w in self.referring_zh)


def coverage(terms: Sequence[str], text: str) -> float:
    """The share of `terms` that stand in `text` (1.0 when there are none); either script."""
    if not terms:
        return 1.0
    folded = to_simplified(normalize(text)).replace(" ", "")
    return sum(to_simplified(t).replace(" ", "") in folded for t in terms) / len(terms)


_DIGITS = {c: i for i, c in enumerate("零一二三四五六七八九")} | {"两": 2}
_UNITS = {"十": 10, "百": 100}


def chinese_number(text: str) -> int | None:
    """A numeral in digits or in Chinese characters as an int ("11", "十一", "二十", "一百零五"); None if not one."""
    if text.isdigit():
        return int(text)
    total, digit = 0, None
    for char in text:
        if char in _DIGITS:
            digit = _DIGITS[char]
        elif char in _UNITS:
            total += (1 if digit is None else digit) * _UNITS[char]
            digit = None
        else:
            return None
    return total + (digit or 0)


def stem(word: str) -> str:
    """A light English stem, so that "heads", "headed" and "announce", "announced" count
    as the question's word."""
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    return word[:-1] if word.endswith("e") and len(word) > 4 else word


@lru_cache(maxsize=8)
def load_answer_kinds(prompts_dir: Path) -> AnswerKinds:
    path = prompts_dir / KINDS_FILE
    data = read_data_file(path, AnswerKindsError)
    if not isinstance(data, dict) or not isinstance(data.get("kinds"), dict):
        raise AnswerKindsError(f"{path}: expected a mapping with a `kinds` mapping at the top.")
    kinds = tuple(_kind(path, name, entry) for name, entry in data["kinds"].items())
    words = data.get("question_words") or {}
    refer = data.get("referring_starts") or {}
    absence = data.get("absence_words") or {}
    return AnswerKinds(
        kinds=kinds,
        question_words_en=frozenset(str(words.get("en", "")).lower().split()),
        question_words_zh=frozenset(str(words.get("zh", "")).split()),
        referring_en=tuple(str(refer.get("en", "")).lower().split()),
        referring_zh=tuple(sorted(str(refer.get("zh", "")).split(), key=len, reverse=True)),
        absence_en=frozenset(str(absence.get("en", "")).lower().split()),
        absence_zh=tuple(str(absence.get("zh", "")).split()),
        not_pinyin=frozenset(str(data.get("not_pinyin", "")).lower().split()),
        qualifier_patterns=tuple(_qualifier(path, entry) for entry in data.get("qualifiers") or []),
        anchor_patterns=tuple(_anchor(path, raw) for raw in data.get("anchors") or []),
        measure_words=frozenset(str(data.get("measure_words", "")).split()),
    )


def _anchor(path: Path, raw: Any) -> re.Pattern[str]:
    try:
        pattern = re.compile(str(raw), re.IGNORECASE)
    except re.error as exc:
        raise AnswerKindsError(f"{path}: anchor pattern {raw!r}: {exc}") from exc
    if "a" not in pattern.groupindex:
        raise AnswerKindsError(f"{path}: anchor pattern {raw!r} must capture the anchor as (?P<a>…).")
    return pattern


def _qualifier(path: Path, entry: Any) -> tuple[str, re.Pattern[str]]:
    if not isinstance(entry, dict) or entry.get("kind") not in ("year", "ordinal") or not entry.get("pattern"):
        raise AnswerKindsError(f"{path}: each qualifier needs `kind` (year or ordinal) and a `pattern`; got {entry!r}.")
    try:
        pattern = re.compile(str(entry["pattern"]), re.IGNORECASE)
    except re.error as exc:
        raise AnswerKindsError(f"{path}: qualifier pattern {entry['pattern']!r}: {exc}") from exc
    if "n" not in pattern.groupindex:
        raise AnswerKindsError(f"{path}: qualifier pattern {entry['pattern']!r} must capture the number as (?P<n>…).")
    return str(entry["kind"]), pattern


def _kind(path: Path, name: str, entry: Any) -> Kind:
    if not isinstance(entry, dict) or not entry.get("cues"):
        raise AnswerKindsError(f"{path}: kind {name!r} needs a list of `cues`.")

    def patterns(key: str) -> tuple[re.Pattern[str], ...]:
        out = []
        for raw in entry.get(key) or []:
            try:
                out.append(re.compile(str(raw), re.IGNORECASE))
            except re.error as exc:
                raise AnswerKindsError(f"{path}: kind {name!r}, {key} pattern {raw!r}: {exc}") from exc
        return tuple(out)

    labels = entry.get("label") or {}
    return Kind(
        name=str(name),
        cues=patterns("cues"),
        evidence=patterns("evidence"),
        in_claim=bool(entry.get("in_claim", False)),
        required=bool(entry.get("required", False)),
        labels={str(k): str(v) for k, v in labels.items()},
    )
