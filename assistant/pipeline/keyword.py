"""Keyword search: BM25 over Chinese-tokenized (jieba), script-normalized text.

Whitespace splitting makes whole Chinese sentences single tokens, so both passages and
questions are cut with jieba after Traditional → Simplified folding. English questions
reach Chinese passages through the corpus's bilingual glossary (`synonyms.yaml`, see
`assistant.pipeline.domain`).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from assistant.pipeline.domain import Synonyms, phrase_words
from assistant.text import han_ratio, normalize, to_simplified

_TOKEN_OK = re.compile(r"[\u4e00-\u9fff]|[a-z0-9]")
_STOPWORDS = frozenset(
    """的 了 和 与 及 或 是 在 为 对 等 将 也 并 而 从 由 以 于 其 之 这 那 有 个 中 上 下 把 被 让 给 吗 呢 吧 啊
    什么 哪个 哪些 哪家 怎么 如何 多少 是否 可以 能 请问 一个 我们 你们 他们 它 它们 该 此 这个 那个
    a an the of in on at to for and or is are was were be been by with as from that this which what
    who whom whose when where why how does do did can could would should will shall it its their there
    about into than then so if not no yes any some many much""".split()
)


@lru_cache(maxsize=1)
def _jieba():  # type: ignore[no-untyped-def]
    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


_JIEBA_LOCK = threading.Lock()


# Captured tables wrap cell text with spaces ("编制增 设情况"): join Han runs again.
_HAN_GAP = re.compile(r"(?<=[\u4e00-\u9fff])[ \t\u3000]+(?=[\u4e00-\u9fff])")
_PROPER = re.compile(r"\b(?:[A-Z][A-Za-z0-9]*[A-Z0-9][A-Za-z0-9]*|[A-Z][a-z]+[A-Z0-9]\w*|\d[\d.,]*)\b")


def tokenize(text: str) -> list[str]:
    """Search tokens for a passage: jieba words (with sub-words) of the normalized text."""
    jieba = _jieba()
    with _JIEBA_LOCK:  # jieba's tokenizer is not thread-safe during lazy init
        words = jieba.lcut_for_search(_HAN_GAP.sub("", normalize(text)))
    return [w for w in (w.strip() for w in words) if w and _keep(w)]


def word_tokens(text: str) -> list[str]:
    """Whole jieba words of the normalized text (no sub-words), stopwords dropped."""
    jieba = _jieba()
    with _JIEBA_LOCK:
        words = jieba.lcut(_HAN_GAP.sub("", normalize(text)))
    return [w for w in (w.strip() for w in words) if w and _keep(w)]


def query_tokens(question: str, synonyms: Synonyms) -> list[str]:
    """Tokens for a question: its Chinese words, names and numbers, and glossary terms.

    Ordinary English words are left out: they match only the English abstracts, which
    would then outrank the Chinese passages that hold the answer. Names, acronyms and
    numbers stay.
    """
    if han_ratio(question) >= 0.3:
        tokens = tokenize(question)
    else:
        names = " ".join(_PROPER.findall(question))
        tokens = tokenize(re.sub(r"[A-Za-z][A-Za-z'’-]*", " ", question) + " " + names)
    lowered = f" {phrase_words(question)} "
    terms = [t for words, ts in synonyms.glossary if f" {words} " in lowered for t in ts]
    # A place named in the question or reached through the glossary brings its regions.
    folded = normalize(question) + " " + " ".join(terms)
    terms += [r for place, regions in synonyms.regions if place in folded for r in regions]
    for term in dict.fromkeys(terms):
        tokens.extend(tokenize(term))
    return tokens


def english_words(question: str) -> list[str]:
    """The plain English words of a question (for matching the English abstracts)."""
    return [w for w in phrase_words(question).split() if len(w) > 2 and w not in _STOPWORDS]


def _keep(word: str) -> bool:
    return word not in _STOPWORDS and bool(_TOKEN_OK.search(word))


class KeywordIndex:
    """BM25 over a fixed list of tokenized passages (row i = passage i)."""

    def __init__(self, corpus_tokens: Sequence[Sequence[str]]) -> None:
        import bm25s

        logging.getLogger("bm25s").setLevel(logging.WARNING)
        self.size = len(corpus_tokens)
        self._bm25 = bm25s.BM25()
        if self.size:
            # bm25s needs at least one token per row.
            rows = [list(toks) or ["\u0000"] for toks in corpus_tokens]
            self._bm25.index(rows, show_progress=False)
        self._vocab: dict[str, int] = dict(getattr(self._bm25, "vocab_dict", {}) or {})

    def scores(self, tokens: Sequence[str]) -> NDArray[np.float32]:
        """BM25 score of every passage for the query tokens (zeros when none match)."""
        known = [t for t in tokens if t in self._vocab]
        if not self.size or not known:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._bm25.get_scores(known), dtype=np.float32)


# Part-of-speech tags of nouns, names and abbreviations in jieba's tag set.
_NOUN_TAGS = ("n", "nr", "ns", "nt", "nz", "nrt", "nrfg", "j")


# Of those, the tags of names: people, places, organizations, other proper nouns, abbreviations.
NAME_TAGS = ("nr", "ns", "nt", "nz", "nrt", "nrfg", "j")


def nouns(text: str) -> dict[str, str]:
    """The nouns, names and abbreviations of `text` (two characters or more), folded to
    Simplified script, each with its jieba tag: what names a subject or a role, unlike its verbs."""
    _jieba()
    import jieba.posseg as posseg

    with _JIEBA_LOCK:
        pairs = posseg.lcut(to_simplified(normalize(text)))
    out: dict[str, str] = {}
    for word, tag in pairs:
        if tag in _NOUN_TAGS and len(word) >= 2 and han_ratio(word) == 1.0:
            out.setdefault(word, tag)
    return out
