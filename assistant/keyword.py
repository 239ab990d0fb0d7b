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

from .text import han_ratio, normalize

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
    "invest": ("投入", "投资"),
    "invested": ("投入", "投资"),
    "investment": ("投入", "投资"),
    "regulation": ("办法", "规定"),
    "regulations": ("办法", "规定"),
    "definition": ("是指", "规定"),
    "defines": ("是指", "规定"),
    "target": ("目标", "实现"),
    "targets": ("目标", "实现"),
    "aim": ("目标", "实现"),
    "central asia": ("中亚", "上合"),
    "nttc": ("美国国家技术转移中心",),
    "kotec": ("韩国技术保证基金",),
    "btg": ("英国技术集团",),
}


# Countries and the regions the documents organise cooperation by: a question about
# Russia or Vietnam should find the CIS or ASEAN centers.
REGIONS: dict[str, tuple[str, ...]] = {
    # SCO members that are also CIS states.
    **dict.fromkeys(
        ("俄罗斯", "哈萨克斯坦", "乌兹别克斯坦", "吉尔吉斯斯坦", "塔吉克斯坦"),
        ("独联体", "东欧", "上合"),
    ),
    **dict.fromkeys(("白俄罗斯", "乌克兰", "亚美尼亚", "阿塞拜疆", "摩尔多瓦"), ("独联体", "东欧")),
    **dict.fromkeys(("中亚",), ("上合", "独联体")),
    **dict.fromkeys(
        ("越南", "泰国", "印度尼西亚", "印尼", "马来西亚", "菲律宾", "新加坡", "缅甸", "老挝", "柬埔寨", "文莱"),
        ("东盟",),
    ),
    **dict.fromkeys(
        ("沙特", "阿联酋", "迪拜", "埃及", "约旦", "阿曼", "摩洛哥", "苏丹", "科威特", "卡塔尔", "阿尔及利亚", "伊拉克", "巴林", "突尼斯"),
        ("阿拉伯",),
    ),
    **dict.fromkeys(("以色列",), ("中以",)),
    **dict.fromkeys(("印度", "巴基斯坦"), ("南亚", "上合")),
    **dict.fromkeys(("孟加拉", "斯里兰卡", "尼泊尔"), ("南亚",)),
    **dict.fromkeys(("巴西", "阿根廷", "智利", "墨西哥", "秘鲁", "哥伦比亚", "古巴"), ("拉美", "加勒比")),
    **dict.fromkeys(("肯尼亚", "尼日利亚", "南非", "埃塞俄比亚", "坦桑尼亚", "加纳"), ("非洲", "中非")),
    **dict.fromkeys(("波兰", "匈牙利", "捷克", "塞尔维亚", "罗马尼亚", "保加利亚"), ("中东欧",)),
}
for _en, _zh in {
    "russia": "俄罗斯", "ukraine": "乌克兰", "belarus": "白俄罗斯", "kazakhstan": "哈萨克斯坦",
    "uzbekistan": "乌兹别克斯坦", "kuwait": "科威特", "qatar": "卡塔尔", "morocco": "摩洛哥",
    "sudan": "苏丹", "india": "印度", "pakistan": "巴基斯坦", "brazil": "巴西", "argentina": "阿根廷",
    "chile": "智利", "mexico": "墨西哥", "kenya": "肯尼亚", "nigeria": "尼日利亚", "south africa": "南非",
    "poland": "波兰", "hungary": "匈牙利", "serbia": "塞尔维亚", "singapore": "新加坡", "myanmar": "缅甸",
    "laos": "老挝", "cambodia": "柬埔寨", "israeli": "以色列",
}.items():
    GLOSSARY.setdefault(_en, (_zh, *REGIONS.get(_zh, ())))


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


def query_tokens(question: str) -> list[str]:
    """Tokens for a question: its Chinese words, names and numbers, and glossary terms.

    Ordinary English words are left out: they match only the two English abstracts,
    which would then outrank the Chinese passages that hold the answer. Names and
    acronyms (KOTEC, Technomart, Yet2) and numbers stay.
    """
    if han_ratio(question) >= 0.3:
        tokens = tokenize(question)
    else:
        names = " ".join(_PROPER.findall(question))
        tokens = tokenize(re.sub(r"[A-Za-z][A-Za-z'’-]*", " ", question) + " " + names)
    lowered = f" {_words(question)} "
    terms = [t for phrase, ts in GLOSSARY.items() if f" {_words(phrase)} " in lowered for t in ts]
    folded = normalize(question) + " " + " ".join(terms)
    terms += [r for place, regions in REGIONS.items() if place in folded for r in regions]
    for term in dict.fromkeys(terms):
        tokens.extend(tokenize(term))
    return tokens


def english_words(question: str) -> list[str]:
    """The plain English words of a question (for matching the English abstracts)."""
    return [w for w in _words(question).split() if len(w) > 2 and w not in _STOPWORDS]


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
