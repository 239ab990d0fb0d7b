"""Text helpers shared by the stages: script normalization, language detection, sentences.

Search works on a normalized form (Traditional → Simplified, lower-case); what is shown
and quoted is always the document's own text, addressed by character offsets.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[A-Za-z]{2,}")

# A sentence ends at Chinese or English terminal punctuation (closing quotes and
# brackets stay with it) or at a line break. English `.` must be followed by space or
# the end, so "2.1", "e.g." inside words and decimals do not split.
_SENTENCE_END = re.compile(
    r"""(?:[。！？；!?;]|\.(?=\s|$))[”’"'」』）)\]]*|\n+""",
)


class _Converter:
    """OpenCC's conversion, skipping the runs it would leave as they are.

    OpenCC (the pure-Python one) splits the text at separators and matches its
    dictionaries' keys at every position of every run, which is most of an ingest's
    keyword work. A key can only match where the run holds its first character, so a run
    holding no key's first character is returned unchanged without the search: the same
    result, found faster. The first characters come from the dictionaries OpenCC loaded
    (`_dict_chain_data`, opencc-python-reimplemented's own table); where that is missing,
    every run is converted.
    """

    def __init__(self, name: str) -> None:
        from opencc import OpenCC

        self.cc = OpenCC(name)
        self.cc.convert("")  # loads the dictionaries
        self.first: frozenset[str] | None = self._first_characters(getattr(self.cc, "_dict_chain_data", None))
        self.split = getattr(self.cc, "split_chars_re", None)

    @staticmethod
    def _first_characters(chain: object) -> frozenset[str] | None:
        found: set[str] = set()
        todo = [chain]
        while todo:
            item = todo.pop()
            if isinstance(item, dict):
                found.update(k[0] for k in item if k)
            elif isinstance(item, list | tuple):
                todo.extend(item)
        return frozenset(found) or None

    def convert(self, text: str) -> str:
        first, split = self.first, self.split
        if first is None or split is None:
            return str(self.cc.convert(text))
        if first.isdisjoint(text):
            return text
        parts = split.split(text)
        # Even items are runs of text, odd ones the separators between them.
        return "".join(
            p if i % 2 or first.isdisjoint(p) else str(self.cc.convert(p)) for i, p in enumerate(parts)
        )


@lru_cache(maxsize=1)
def _t2s() -> _Converter:
    return _Converter("t2s")


@lru_cache(maxsize=1)
def _s2t():  # type: ignore[no-untyped-def]
    from opencc import OpenCC

    return OpenCC("s2t")


def to_simplified(text: str) -> str:
    return _t2s().convert(text)


def to_traditional(text: str) -> str:
    return str(_s2t().convert(text))


def normalize(text: str) -> str:
    """The form used for matching: Simplified script, lower-case, full-width folded."""
    folded = text.translate(_FULLWIDTH)
    return to_simplified(folded).lower()


_FULLWIDTH = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)}
_FULLWIDTH[0x3000] = 0x20


def han_ratio(text: str) -> float:
    """Share of Han characters among the letters (Han + Latin) of `text`."""
    han = len(_HAN.findall(text))
    latin = sum(len(w) for w in _LATIN_WORD.findall(text)) / 4  # ~4 letters per word
    if han + latin == 0:
        return 0.0
    return han / (han + latin)


# Up to this many Han characters a text is question-sized: its script is decided by counts.
SHORT_HAN = 60


def is_traditional(text: str) -> bool:
    """True when a noticeable share of the Han characters simplify under T → S conversion.

    A share, not "any", so a stray variant character in a Simplified question does not
    flip it. Only the first 2,000 Han characters are looked at: conversion is slow.
    """
    han = "".join(_HAN.findall(text))[:2000]
    if not han:
        return False
    simplified = to_simplified(han)
    changed = sum(1 for a, b in zip(han, simplified, strict=False) if a != b)
    if len(han) <= SHORT_HAN:
        # A question is too short for a share ("中非創新合作中心的主要任務有哪些？" changes
        # 2 of 16): the script whose own characters it holds more of wins.
        traditional = to_traditional(han)
        simplified_only = sum(1 for a, b in zip(han, traditional, strict=False) if a != b)
        if changed != simplified_only:
            return changed > simplified_only
    # Traditional text differs from Simplified in roughly a quarter to a third of its
    # characters; 15% keeps a stray variant in a Simplified question from flipping it.
    return changed >= max(1, 0.15 * len(han))


_LEADING_LATIN = re.compile(r"^[\W\d_]*[A-Za-z]")


def detect_language(text: str) -> str:
    """'en', 'zh-Hans' or 'zh-Hant' for a question, an answer or a passage.

    An English sentence that names something in Chinese ("What does 国际技术转移中心
    do?") is English: a short text that starts with a Latin word and has a few of them
    counts as English whatever its Han characters.
    """
    if han_ratio(text) < 0.3:
        return "en"
    if len(text) <= 300 and _LEADING_LATIN.match(text) and len(_LATIN_WORD.findall(text)) >= 3:
        # Only for sentence-sized text: a passage such as a reference list that opens
        # with a URL is still Chinese.
        return "en"
    return "zh-Hant" if is_traditional(text) else "zh-Hans"


def split_sentences(text: str, offset: int = 0) -> Iterator[tuple[int, int]]:
    """Yield (start, end) spans of sentences in `text`, shifted by `offset`.

    Spans exclude surrounding whitespace, so `text[start:end]` is a clean quote.
    """
    pos = 0
    for match in _SENTENCE_END.finditer(text):
        end = match.end()
        yield from _trimmed(text, pos, end, offset)
        pos = end
    if pos < len(text):
        yield from _trimmed(text, pos, len(text), offset)


def _trimmed(text: str, start: int, end: int, offset: int) -> Iterator[tuple[int, int]]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        yield start + offset, end + offset


def in_script(text: str, target: str) -> str:
    """`text` in the target's Chinese script (unchanged for English)."""
    if target == "zh-Hant":
        return to_traditional(text)
    if target == "zh-Hans":
        return to_simplified(text)
    return text


# A bibliography entry ("…[J]. 广东科技, 2022, 31(6): 65-69.", "Res. Policy, 2019, 48(3):
# 1-9."): a GB/T 7714 type mark, or year, volume(issue): pages.
_REFERENCE = re.compile(
    r"\[(?:[JMCDNRSPZAG]|EB|DB|CP)(?:/OL)?\]"
    r"|\b(?:1[89]|20)\d{2}\s*[,，]\s*\d+\s*[(（]\s*\d+\s*[)）]\s*[:：]\s*\d+\s*[-–—~]\s*\d+"
)


def is_reference(sentence: str) -> bool:
    """Whether `sentence` is a bibliography entry rather than a statement: it names a
    source and its year, states nothing, and a question's year matches it."""
    return _REFERENCE.search(sentence) is not None


def is_reference_list(text: str) -> bool:
    """Whether `text` (a chunk) is mostly bibliography entries: at least two, and half its lines."""
    lines = [line for line in text.splitlines() if line.strip()]
    entries = sum(1 for line in lines if is_reference(line))
    return entries >= 2 and entries * 2 >= len(lines)
