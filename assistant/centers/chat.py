"""The recommendation in the chat: which questions go to it, and its answer with citations."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from assistant.centers.directory import Directory
from assistant.centers.model import DocInfo
from assistant.centers.places import load_geography
from assistant.centers.reasons import pick
from assistant.centers.recommend import Recommendation, recommend
from assistant.text import normalize, to_simplified, to_traditional
from assistant.types import Answer, Citation, Quote

_EN_ASK = re.compile(
    r"\b(which|what)\s+(\w+\s+){0,3}(center|centre|platform|organi[sz]ation|institution|agency|partner|one|union|network)s?\b"
    r"|\bwho\s+(can|could|should|would)\s+(help|support|assist)"
    r"|\bwhere\s+(should|can|could|do)\s+(we|i)\s+(go|start|turn|look)"
    r"|\brecommend|\bsuggest|\b(best|right)\s+(fit|choice|center|centre|platform|partner)"
    r"|\bfits?\s+(my|our)\b|\bwork\s+with\b|\bpartner\s+with\b|\bhelp\s+(us|me)\b",
    re.IGNORECASE,
)
_EN_GOAL = re.compile(r"\b(we|our|us|i|my|me|sme|smes|company|firm|startup)\b", re.IGNORECASE)
_ZH_ASK = re.compile(
    r"哪(个|家|些|一个)?[^，。？！,.?!]{0,12}(中心|平台|机构|组织|联盟|单位)"
    r"|有没有[^，。？！,.?!]{0,10}(中心|平台|机构|组织|联盟)"
    r"|找(哪|谁|什么)|可以找|应该找|该找|推荐|适合|合适|对接哪|谁能帮|谁可以帮|能帮(我们|我)|可以帮(我们|我)"
)
_ZH_GOAL = re.compile(
    r"我们|我司|我公司|本公司|我想|我方|企业|公司|想要|计划|打算|希望|适合|合适|推荐"
    r"|想(与|和|跟|在|把|去|进入|开拓|拓展|开展|做)"
)


def looks_like_recommendation(question: str, corpus_dir: Path | str) -> bool:
    """True for "which center should we work with for <place>?"-type questions.

    Needs a request for a center or platform ("which center/platform…", "who can help",
    "找哪个平台", "哪個中心適合") by someone with a goal ("we", "our company", "我们",
    "企业"), and a country or region of `corpus_dir`'s place table (one no center serves
    counts too: it gets an honest "no"). A factual question such as "Which center serves
    these countries?" stays with the ordinary retrieval answer. The place table is read
    only when the wording matches; a missing or broken one raises `DirectoryError`.
    """
    if not question or not question.strip():
        return False
    folded = normalize(question)
    asks = bool(_EN_ASK.search(question)) or bool(_ZH_ASK.search(folded))
    goal = bool(_EN_GOAL.search(question)) or bool(_ZH_GOAL.search(folded))
    if not (asks and goal):
        return False
    return bool(load_geography(corpus_dir).find_places([question]).places)


def render_recommendation(rec: Recommendation, language: str | None = None) -> tuple[str, list[dict[str, Any]]]:
    """The chat answer for a recommendation: a short comparison with [n] markers, and its
    numbered citations in the chat's shape (n, chunk_id, doc_id, title, quote, start, end,
    kind, published). chunk_id is the pseudo id "centers:<center id>".

    The text is in the recommendation's language; `language` may switch a Chinese one
    between Simplified and Traditional script (for English or Chinese, pass `language` to
    `recommend`)."""
    lang = rec.language
    if language in ("zh-Hans", "zh-Hant") and lang.startswith("zh"):
        lang = language
    numbers: dict[tuple[str, int, int], int] = {}
    citations: list[dict[str, Any]] = []

    def mark(quotes: Sequence[Quote], center_id: str) -> str:
        marks = []
        for q in quotes:
            key = (q.doc_id, q.start, q.end)
            if key not in numbers:
                numbers[key] = len(numbers) + 1
                info = rec.sources.get(q.doc_id) or DocInfo(q.doc_id, q.doc_id)
                citations.append({
                    "n": numbers[key],
                    "chunk_id": f"centers:{center_id}",
                    "doc_id": q.doc_id,
                    "title": info.title,
                    "quote": q.quote,
                    "start": q.start,
                    "end": q.end,
                    "kind": info.kind,
                    "published": info.published,
                })
            marks.append(f"[{numbers[key]}]")
        return "".join(marks)

    zh = lang.startswith("zh")
    lines = [_relang(rec.note, lang)]
    shown = rec.centers[:3]
    for i, c in enumerate(shown, 1):
        name = pick(lang, f"{c.name_en} ({c.name_zh})", f"{c.name_zh}（{c.name_en}）")
        label = pick(lang, " — through outreach", "（通过外联方向）") if c.match == "outreach" else ""
        sentences = []
        for r in c.reasons[: 6 if i == 1 else 3]:
            text = _relang(r.text, lang).rstrip()
            end = ""
            if text and text[-1] in ".。":
                text, end = text[:-1], text[-1]
            marks = mark(r.citations, c.id)
            sentences.append(f"{text}{' ' if marks and not zh else ''}{marks}{end}")
        lines.append(f"{i}. {name}{label}{'：' if zh else ': '}" + ("" if zh else " ").join(sentences))
    if len(rec.centers) > len(shown):
        more = ("、" if zh else ", ").join(pick(lang, c.name_en, c.name_zh) for c in rec.centers[len(shown):])
        lines.append(pick(lang, f"Also relevant: {more}.", f"另可参考：{more}。"))
    return "\n\n".join(lines), citations


def _relang(text: str, lang: str) -> str:
    """Text already built in the recommendation's language, in the script asked for."""
    if lang == "zh-Hant":
        return to_traditional(text)
    return to_simplified(text) if lang == "zh-Hans" else text


def recommendation_answer(directory: Directory, question: str, *, language: str | None = None) -> Answer:
    """The chat's `Answer` for a recommendation question (see `looks_like_recommendation`)."""
    rec = recommend(directory, question, language=language)
    text, cites = render_recommendation(rec)
    return Answer(
        answer=text,
        citations=[Citation(**c) for c in cites],
        grounded=rec.covered and bool(cites),
        backend="extractive",
    )
