"""Conversations kept in the browser, their Markdown and HTML exports, and suggested follow-ups.

A conversation is its plain history (questions, answer texts, the checked answers'
citations, and a mark for an answer stopped before it was done); the chat, the exports
and the follow-up questions are all rendered from it, in the page's language. Follow-up wording lives in `followups.yaml` beside this file (per language); nothing asks
the model.
"""

from __future__ import annotations

import contextlib
import html
import re
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from assistant.text import detect_language, to_simplified, to_traditional
from assistant.types import Answer, Citation
from assistant.web.ui.render import (
    HERE,
    MAX_CHATS,
    SOURCES_PATH,
    ChatMessages,
    Store,
    _attr,
    _inline,
    _md,
    _preview,
    describe_source,
    message_text,
    render_answer,
    render_stopped,
    source_url,
)
from assistant.web.ui.strings import t


def answer_from_dict(data: Mapping[str, Any]) -> Answer:
    """An `Answer` back from `Answer.as_dict()` (as kept in the browser)."""
    fields = set(Citation.__dataclass_fields__)

    def cites(items: Any) -> list[Citation]:
        out = []
        for c in items if isinstance(items, list) else []:
            with contextlib.suppress(TypeError, AttributeError):  # a damaged entry is left out
                out.append(Citation(**{k: v for k, v in c.items() if k in fields}))
        return out

    return Answer(
        answer=str(data.get("answer") or ""),
        citations=cites(data.get("citations")),
        grounded=bool(data.get("grounded")),
        backend=str(data.get("backend") or "?"),
        notice=data.get("notice"),
        query=data.get("query"),
        related=cites(data.get("related")),
    )


def stopped_turn() -> dict[str, Any]:
    """The plain history's mark for an answer stopped before it was done (its question is kept)."""
    return {"role": "assistant", "content": "", "stopped": True}


def is_stopped(message: Mapping[str, Any]) -> bool:
    return message.get("role") == "assistant" and bool(message.get("stopped"))


def turns(history: Iterable[Mapping[str, Any]]) -> list[tuple[str, Answer | None]]:
    """(question, checked answer) pairs of a plain history; None for an answer that was stopped."""
    pairs: list[tuple[str, Answer | None]] = []
    question: str | None = None
    for m in history:
        if m.get("role") == "user":
            question = message_text(m.get("content"))
        elif m.get("role") == "assistant" and question is not None:
            data = m.get("answer")
            if is_stopped(m):
                pairs.append((question, None))
            elif isinstance(data, dict):
                pairs.append((question, answer_from_dict(data)))
            else:
                pairs.append((question, Answer(answer=message_text(m.get("content")))))
            question = None
    return pairs


def exchanges(history: Iterable[Mapping[str, Any]]) -> list[tuple[str, Answer]]:
    """(question, checked answer) pairs of a plain history, stopped ones left out."""
    return [(q, a) for q, a in turns(history) if a is not None]


def conversation_messages(
    history: Iterable[Mapping[str, Any]], base: str = SOURCES_PATH, lang: str = "en"
) -> ChatMessages:
    """The chat as shown, rendered again from a plain history (a reopened conversation)."""
    shown: ChatMessages = []
    for question, answer in turns(history):
        shown.append({"role": "user", "content": _md(question)})
        content = render_stopped(lang) if answer is None else render_answer(answer, base, question=question, lang=lang)
        shown.append({"role": "assistant", "content": content})
    return shown


def _absolute(url: str, site: str) -> str:
    return f"{site.rstrip('/')}{url}" if site and url.startswith("/") else url


def _source_lists(answer: Answer, lang: str) -> list[tuple[str, list[Citation]]]:
    return [(t("sources", lang), answer.citations), (t("related", lang), answer.related)]


def export_markdown(
    history: Iterable[Mapping[str, Any]], *, site: str = "", base: str = SOURCES_PATH, lang: str = "en"
) -> str:
    """The conversation as Markdown: each question, its answer, and the quoted sources."""
    lines = [f"# {t('title', lang)}", "", f"_{t('exported', lang, time=time.strftime('%Y-%m-%d %H:%M'))}_", ""]
    for question, answer in turns(history):
        lines += [f"## {question.strip()}", ""]
        if answer is None:
            lines += [f"_{t('stopped', lang)}_", ""]
            continue
        if answer.notice:
            lines += [f"> ⚠️ {answer.notice}", ""]
        lines += [answer.answer.strip(), ""]
        for heading, cites in _source_lists(answer, lang):
            if not cites:
                continue
            lines += [f"**{heading}**", ""]
            for c in cites:
                url = _absolute(source_url(c.doc_id, c.start, c.end, base, lang), site)
                lines.append(f"{c.n}. **{c.title}** — {describe_source(c.kind, c.published, c.page, lang)}  ")
                lines.append(f"   > {' '.join(c.quote.split())}  ")
                lines.append(f"   <{url}>")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


EXPORT_CSS = """
body { font: 15px/1.55 system-ui, "Noto Sans CJK SC", "PingFang SC", sans-serif; max-width: 46em; margin: 2em auto; padding: 0 1em; color: #1f2937; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 2em; border-bottom: 1px solid #ddd; padding-bottom: .2em; }
blockquote { margin: .3em 0 .3em 1em; padding-left: .8em; border-left: 3px solid #9ca3af; color: #374151; }
ol.sources li { margin-bottom: .8em; } .meta, .muted { color: #6b7280; font-size: .9em; }
a { color: #1d4ed8; word-break: break-all; } @media print { a { color: inherit; } h2 { break-after: avoid; } li { break-inside: avoid; } }
"""


def export_html(
    history: Iterable[Mapping[str, Any]], *, site: str = "", base: str = SOURCES_PATH, lang: str = "en"
) -> str:
    """The conversation as a print-friendly HTML page (every text escaped)."""
    title = _inline(t("title", lang))
    exported = _inline(t("exported", lang, time=time.strftime("%Y-%m-%d %H:%M")))
    body = [f"<h1>{title}</h1>", f'<p class="muted">{exported}</p>']
    for question, answer in turns(history):
        body.append(f"<h2>{_inline(question)}</h2>")
        if answer is None:
            body.append(f'<p class="muted">{_inline(t("stopped", lang))}</p>')
            continue
        if answer.notice:
            body.append(f'<p class="muted">⚠️ {_inline(answer.notice)}</p>')
        body.append(f"<p>{_inline(answer.answer)}</p>")
        for heading, cites in _source_lists(answer, lang):
            if not cites:
                continue
            items = []
            for c in cites:
                url = _attr(_absolute(source_url(c.doc_id, c.start, c.end, base, lang), site))
                items.append(
                    f'<li value="{int(c.n)}"><strong>{_inline(c.title)}</strong> '
                    f'<span class="meta">— {_inline(describe_source(c.kind, c.published, c.page, lang))}</span>'
                    f"<blockquote>{_inline(c.quote)}</blockquote><a href=\"{url}\">{html.escape(url)}</a></li>"
                )
            body.append(f'<h3>{_inline(heading)}</h3><ol class="sources">{"".join(items)}</ol>')
    return (
        f'<!doctype html><html lang="{_attr(lang)}"><head><meta charset="utf-8">'
        f"<title>{title}</title><style>{EXPORT_CSS}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )


def new_store() -> Store:
    return {"version": 1, "chats": []}


def _valid_store(store: Any) -> Store:
    if isinstance(store, dict) and isinstance(store.get("chats"), list):
        return store
    return new_store()


def chat_title(history: Iterable[Mapping[str, Any]]) -> str:
    """A conversation's title: its first question, shortened."""
    for m in history:
        if m.get("role") == "user":
            return _preview(message_text(m.get("content")), 60)
    return "…"


def save_chat(store: Any, chat_id: str, history: Sequence[Mapping[str, Any]], limit: int = MAX_CHATS) -> Store:
    """`store` with the conversation `chat_id` set to `history`, newest first (empty ones not kept)."""
    store = _valid_store(store)
    chats = [c for c in store["chats"] if isinstance(c, dict) and c.get("id") != chat_id]
    if history:
        chats.insert(0, {"id": chat_id, "title": chat_title(history), "updated": int(time.time()), "history": list(history)})
    return {**store, "version": 1, "chats": chats[:limit]}


def find_chat(store: Any, chat_id: str | None) -> list[dict[str, Any]]:
    for c in _valid_store(store)["chats"]:
        if isinstance(c, dict) and c.get("id") == chat_id:
            return list(c.get("history") or [])
    return []


def chat_choices(store: Any) -> list[tuple[str, str]]:
    """(title, id) of the kept conversations, newest first, for the list of past chats."""
    return [(str(c.get("title") or "…"), str(c["id"])) for c in _valid_store(store)["chats"] if isinstance(c, dict) and c.get("id")]


def new_chat_id() -> str:
    return uuid.uuid4().hex[:12]


# ---------------------------------------------------------------------- follow-ups


@lru_cache(maxsize=1)
def followup_data(path: Path = HERE / "followups.yaml") -> dict[str, Any]:
    data = yaml.safe_load(path.read_text("utf-8")) or {}
    return data if isinstance(data, dict) else {}


_ORGANIZATION = re.compile(r"\b(?:Cent(?:er|re)|Union|Alliance|Platform|Association|Park|Base|Hub)\b")
_GENERIC = {"The", "the", "International", "Technology", "Transfer", "Innovation", "Cooperation", "Center", "Centre"}
_EN_CENTER = re.compile(r"\b(?!The\s)((?:[A-Z][\w–\-]*\s+){1,5}(?:Technology\s+Transfer|Innovation\s+Cooperation)\s+Cent(?:er|re))\b")


def named_in(text: str, names: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """The organizations `text` names, as (Chinese, English) names, in order of appearance."""
    simplified = to_simplified(text)
    found: dict[str, tuple[int, tuple[str, str]]] = {}
    for zh, en in names:
        if not _ORGANIZATION.search(en) or not set(en.split()) - _GENERIC:
            continue  # a place or a generic term ("Technology Transfer Center")
        at = [i for i in (simplified.find(to_simplified(zh)), text.lower().find(en.lower())) if i >= 0]
        if at and en not in found:
            found[en] = (min(at), (zh, en))
    for match in _EN_CENTER.finditer(text):
        en = match.group(1)
        if not set(en.split()) - _GENERIC:
            continue
        if en not in found and not any(en.lower() in k.lower() or k.lower() in en.lower() for k in found):
            found[en] = (match.start(), ("", en))
    return [pair for _, pair in sorted(found.values())]


def suggest_followups(
    question: str,
    answer: Answer,
    names: Sequence[tuple[str, str]] = (),
    *,
    asked_before: Iterable[str] = (),
    limit: int = 3,
    data: Mapping[str, Any] | None = None,
) -> list[str]:
    """Follow-up questions drawn from the answer's evidence, in the question's language.

    The organizations named in the cited sentences (and the question), each asked about
    the aspects (`followups.yaml`) the question did not already ask about. No model call.
    """
    data = data if data is not None else followup_data()
    language = detect_language(question)
    cited = " ".join(c.quote for c in [*answer.citations, *answer.related])
    if not cited:
        return []
    orgs = named_in(cited, names) or named_in(question, names)
    if not orgs:
        return []

    def name(org: tuple[str, str]) -> str:
        zh, en = org
        if language == "en" or not zh:
            return en
        return to_traditional(zh) if language == "zh-Hant" else zh

    low = question.lower()
    previous = {q.strip() for q in asked_before} | {question.strip()}
    open_aspects = [
        a for a in data.get("aspects", []) if not any(str(cue).lower() in low for cue in a.get("cues", []))
    ]
    out: list[str] = []
    for aspect in open_aspects:
        template = (aspect.get("ask") or {}).get(language)
        if template:
            out.append(str(template).format(name=name(orgs[0])))
    if len(orgs) > 1 and (compare := (data.get("compare") or {}).get(language)):
        out.insert(min(2, len(out)), str(compare).format(name=name(orgs[0]), other=name(orgs[1])))
    unique = [q for i, q in enumerate(out) if q not in previous and q not in out[:i]]
    return unique[:limit]


# ---------------------------------------------------------------------- chat logic
