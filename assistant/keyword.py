"""Keyword search: BM25 over Chinese-tokenized (jieba), script-normalized text.

Whitespace splitting makes whole Chinese sentences single tokens, so both passages and
questions are cut with jieba after Traditional → Simplified folding. English questions
reach Chinese passages through a small bilingual glossary of the domain's terms.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from .text import normalize

_TOKEN_OK = re.compile(r"[\u4e00-\u9fff]|[a-z0-9]")
_STOPWORDS = frozenset(
    """的 了 和 与 及 或 是 在 为 对 等 将 也 并 而 从 由 以 于 其 之 这 那 有 个 中 上 下 把 被 让 给 吗 呢 吧 啊
    什么 哪个 哪些 哪家 怎么 如何 多少 是否 可以 能 请问 一个 我们 你们 他们 它 它们 该 此 这个 那个
    a an the of in on at to for and or is are was were be been by with as from that this which what
    who whom whose when where why how does do did can could would should will shall it its their there
    about into than then so if not no yes any some many much""".split()
)

# Domain terms that English questions use for Chinese passages (lower-case keys).
GLOSSARY: dict[str, tuple[str, ...]] = {
    "asean": ("东盟",),
    "southeast asia": ("东盟",),
    "south asia": ("南亚",),
    "arab": ("阿拉伯",),
    "arab states": ("阿拉伯国家",),
    "africa": ("非洲", "中非"),
    "african": ("非洲", "中非"),
    "sco": ("上合组织", "上海合作组织", "上合"),
    "shanghai cooperation organization": ("上海合作组织", "上合组织"),
    "shanghai cooperation organisation": ("上海合作组织", "上合组织"),
    "cis": ("独联体",),
    "commonwealth of independent states": ("独联体",),
    "eastern europe": ("东欧", "中东欧"),
    "central and eastern europe": ("中东欧",),
    "latin america": ("拉美",),
    "caribbean": ("加勒比",),
    "brics": ("金砖国家",),
    "belt and road": ("一带一路",),
    "technology transfer": ("技术转移",),
    "tech transfer": ("技术转移",),
    "innovation": ("创新",),
    "cooperation": ("合作",),
    "center": ("中心",),
    "centre": ("中心",),
    "conference": ("大会",),
    "founded": ("成立", "设立"),
    "established": ("成立", "设立", "建立"),
    "guangdong": ("广东",),
    "guangxi": ("广西",),
    "nanning": ("南宁",),
    "ningxia": ("宁夏",),
    "hubei": ("湖北",),
    "yunnan": ("云南",),
    "jiangsu": ("江苏",),
    "qingdao": ("青岛",),
    "shinan": ("市南区",),
    "chengdu": ("成都", "成渝"),
    "chongqing": ("重庆", "成渝"),
    "sichuan": ("四川",),
    "beijing": ("北京",),
    "shanghai": ("上海",),
    "israel": ("以色列", "中以"),
    "russia": ("俄罗斯",),
    "vietnam": ("越南",),
    "indonesia": ("印度尼西亚",),
    "thailand": ("泰国",),
    "malaysia": ("马来西亚",),
    "philippines": ("菲律宾",),
    "egypt": ("埃及",),
    "saudi": ("沙特",),
    "jordan": ("约旦",),
    "oman": ("阿曼",),
    "dubai": ("迪拜",),
    "uae": ("阿联酋",),
    "talent": ("人才",),
    "talents": ("人才",),
    "funding": ("经费", "资金"),
    "fund": ("基金",),
    "operated": ("运营",),
    "operates": ("运营",),
    "operation": ("运营",),
    "operator": ("运营",),
    "network": ("网络",),
    "platform": ("平台",),
    "laboratory": ("实验室",),
    "laboratories": ("实验室",),
    "bilateral": ("双边",),
    "market-oriented": ("市场化",),
    "self-sustaining": ("自我造血",),
    "nttc": ("美国国家技术转移中心",),
    "kotec": ("韩国技术保证基金",),
    "btg": ("英国技术集团",),
}


@lru_cache(maxsize=1)
def _jieba():  # type: ignore[no-untyped-def]
    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


_JIEBA_LOCK = threading.Lock()


def tokenize(text: str) -> list[str]:
    """Search tokens for a passage: jieba words (with sub-words) of the normalized text."""
    jieba = _jieba()
    with _JIEBA_LOCK:  # jieba's tokenizer is not thread-safe during lazy init
        words = jieba.lcut_for_search(normalize(text))
    return [w for w in (w.strip() for w in words) if w and _keep(w)]


def query_tokens(question: str) -> list[str]:
    """Tokens for a question: its own words plus glossary terms for English phrases."""
    tokens = tokenize(question)
    lowered = f" {_words(question)} "
    for phrase, terms in GLOSSARY.items():
        if f" {_words(phrase)} " in lowered:
            for term in terms:
                tokens.extend(tokenize(term))
    return tokens


def _words(text: str) -> str:
    # "China-SCO" and "China–ASEAN" must match the glossary's "sco" and "asean".
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


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
