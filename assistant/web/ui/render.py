"""HTML for the chat UI: answers with clickable citations, source cards, status lines.

Pure functions of their arguments. Document text only ever enters the page escaped: an
answer's `[n]` markers become links only where they match a real citation, so a Markdown
link or HTML in a document stays text. The words around it are in `lang`, the page's
language (en, zh-Hans, zh-Hant; strings.yaml), and links to passages open in it.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote as url_quote

from assistant.text import detect_language
from assistant.types import Answer, Citation, SearchHit
from assistant.web.languages import LANGUAGE_NAMES
from assistant.web.ui.strings import t

HERE = Path(__file__).resolve().parent
SOURCES_PATH = "/sources"  # served by the FastAPI app, same origin as /ui

QUOTE_PREVIEW = 180  # characters of a passage on its card while the answer is written
MAX_CHATS = 30  # conversations kept in the browser
STORAGE_KEY = "tt-assistant-chats-v1"
# BrowserState encrypts what it stores with this key. It is in the page, so it hides
# nothing from the browser's owner; a fixed one keeps the chats readable across restarts.
STORAGE_SECRET = "tt-assistant-local-chats"

ChatMessages = list[dict[str, Any]]
Store = dict[str, Any]


def _md(text: str) -> str:
    """Text for a Markdown context: Markdown stays, any HTML in it shows as text."""
    return html.escape(text, quote=False)


def _inline(text: str) -> str:
    """Text for an HTML block: escaped, and with no blank line (which would end the block)."""
    escaped = html.escape(text.replace("\r\n", "\n").replace("\r", "\n").strip())
    return escaped.replace("\n", "<br>")


def _attr(text: str) -> str:
    return html.escape(text, quote=True)


def source_url(
    doc_id: str, start: int | None = None, end: int | None = None, base: str = SOURCES_PATH, lang: str | None = None
) -> str:
    """The page showing a document, with the span start..end highlighted when given, in `lang`."""
    url = f"{base}/{url_quote(doc_id, safe='')}"
    query = [f"start={int(start)}", f"end={int(end)}"] if start is not None and end is not None else []
    if lang:
        query.append(f"lang={url_quote(lang, safe='')}")
    if query:
        url += "?" + "&".join(query)
    return url + ("#quote" if start is not None and end is not None else "")


def kind_name(kind: str | None, lang: str = "en") -> str:
    """'policy paper' (政策文件); a kind without words of its own as written, '_' read as a space."""
    key = f"kind_{kind or 'unknown'}"
    try:
        return t(key, lang)
    except KeyError:
        return str(kind).replace("_", " ")


def describe_source(kind: str | None, published: str | None, page: int | None = None, lang: str = "en") -> str:
    """'policy paper, 2023-05-01' or 'news report, date not stated' (', p. 4' when paged)."""
    parts = [kind_name(kind, lang), published or t("undated", lang)]
    if page:
        parts.append(t("page_n", lang, page=int(page)))
    return t("list_separator", lang).join(parts)


def render_citation(citation: Citation, base: str = SOURCES_PATH, lang: str = "en") -> str:
    """One source as an HTML block: number, title, kind and date; the quote folded below.

    Its classes `tt-n-<n>` and `tt-lang-<language>` (Gradio's sanitizer drops `data-`
    attributes) let the page's script show it in a popover when its `[n]` in the answer is
    tapped, and offer a translation.
    """
    href = _attr(source_url(citation.doc_id, citation.start, citation.end, base, lang))
    meta = describe_source(citation.kind, citation.published, citation.page, lang)
    return (
        f'<details class="tt-src tt-n-{int(citation.n)} tt-lang-{_attr(detect_language(citation.quote))}">'
        f'<summary>[{int(citation.n)}] <span class="tt-src-title">{_inline(citation.title)}</span> — '
        f'<span class="tt-src-meta">{_inline(meta)}</span></summary>'
        f'<blockquote class="tt-quote">{_inline(citation.quote)}</blockquote>'
        f'<a class="tt-open" href="{href}" target="_blank" rel="noopener noreferrer">{_inline(t("open_passage", lang))}</a>'
        "</details>"
    )


def render_sources(
    citations: Sequence[Citation], base: str = SOURCES_PATH, heading: str | None = None, lang: str = "en"
) -> str:
    if not citations:
        return ""
    blocks = "".join(render_citation(c, base, lang) for c in citations)
    return f'<div class="tt-sources"><p class="tt-heading">{_inline(heading or t("sources", lang))}</p>{blocks}</div>'


_MARKER = re.compile(r"\[(\d{1,2})\]")


def inert(
    text: str, cites: Mapping[int, Citation] | None = None, base: str = SOURCES_PATH, lang: str | None = None
) -> str:
    """Answer text as an HTML block: escaped, so no Markdown link or HTML from a document is live.

    Inside an HTML block Markdown is not parsed (nor are bare URLs turned into links):
    document text quoted in an answer stays text. Only the `[n]` markers of `cites`
    become links (to the passage; the page's script opens them as a popover instead).
    """
    body = _inline(text)
    if cites:

        def link(match: re.Match[str]) -> str:
            citation = cites.get(int(match.group(1)))
            if citation is None:
                return match.group(0)
            href = _attr(source_url(citation.doc_id, citation.start, citation.end, base, lang))
            return (
                f'<a class="tt-cite tt-n-{int(citation.n)}" href="{href}" target="_blank" '
                f'rel="noopener noreferrer" title="{_attr(citation.title)}">[{citation.n}]</a>'
            )

        body = _MARKER.sub(link, body)
    return f'<div class="tt-answer">{body}</div>'


def _plain(text: str) -> str:
    """Text compared between draft and answer: no markers, no spacing."""
    return re.sub(r"\s+", "", _MARKER.sub("", text))


def render_answer(
    answer: Answer,
    base: str = SOURCES_PATH,
    *,
    question: str | None = None,
    draft: str | None = None,
    lang: str = "en",
) -> str:
    """The final answer as one HTML block: notice, text with live `[n]`, sources, tools.

    `question` sets the language the popovers offer to translate quotes into; a `draft`
    (what was streamed) that differs from the checked answer gets a muted line saying so.
    The answer is in its question's language; `lang` is the page's, for everything around it.
    """
    cites = {c.n: c for c in answer.related}
    cites.update({c.n: c for c in answer.citations})
    qlang = detect_language(question) if question else ""
    parts = [f'<div class="tt-msg tt-qlang-{_attr(qlang or "none")}">']
    if answer.notice:
        parts.append(f'<p class="tt-notice">⚠️ {_inline(answer.notice)}</p>')
    parts.append(inert(answer.answer.strip(), cites, base, lang))
    if draft and _plain(draft) != _plain(answer.answer):
        parts.append(f'<p class="tt-muted tt-checked">{_inline(t("checked", lang))}</p>')
    if not answer.grounded and not answer.related:
        parts.append(f'<p class="tt-muted">{_inline(t("not_grounded", lang))}</p>')
    parts.append(render_sources(answer.citations, base, lang=lang))
    parts.append(render_sources(answer.related, base, t("related", lang), lang))
    parts.append(
        f'<p class="tt-tools"><button type="button" class="tt-copy">{_inline(t("copy", lang))}</button> '
        f'<span class="tt-muted">{_inline(t("answered_by", lang, backend=answer.backend))}</span></p>'
    )
    parts.append("</div>")
    return "".join(parts)


def render_stopped(lang: str = "en") -> str:
    """What stands for an answer stopped before it was done."""
    return f'<p class="tt-muted tt-stopped">⏹ {_inline(t("stopped", lang))}</p>'


def source_cards(hits: Sequence[SearchHit]) -> list[dict[str, Any]]:
    """The retrieved passages as card data: what `render_pending` shows while the answer is written."""
    cards = []
    for n, hit in enumerate(hits, start=1):
        card = hit.as_source(n)
        card["start"], card["end"] = hit.chunk.start, hit.chunk.end
        cards.append(card)
    return cards


def _preview(text: str, limit: int = QUOTE_PREVIEW) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def render_cards(cards: Sequence[Mapping[str, Any]], base: str = SOURCES_PATH, lang: str = "en") -> str:
    """Source cards: title, kind, date, page, a short quote; each opens its passage."""
    items = []
    for card in cards:
        start, end = card.get("start"), card.get("end")
        href = _attr(source_url(str(card["doc_id"]), start, end, base, lang))
        meta = describe_source(card.get("kind"), card.get("published"), card.get("page"), lang)
        items.append(
            f'<a class="tt-card" href="{href}" target="_blank" rel="noopener noreferrer">'
            f'<span class="tt-card-title">{int(card.get("n") or 0)}. {_inline(str(card["title"]))}</span>'
            f'<span class="tt-card-meta">{_inline(meta)}</span>'
            f'<span class="tt-card-quote">{_inline(_preview(str(card.get("text") or "")))}</span></a>'
        )
    return f'<div class="tt-cards">{"".join(items)}</div>' if items else ""


def render_pending(
    turn_id: str,
    cards: Sequence[Mapping[str, Any]] | None,
    streamed: str = "",
    elapsed: float = 0.0,
    base: str = SOURCES_PATH,
    lang: str = "en",
) -> str:
    """The message while an answer is written: progress line, source cards, the draft."""
    if cards is None:
        phase = t("searching", lang)
    elif not streamed:
        phase = t("reading", lang, n=len(cards))
    else:
        phase = t("writing", lang)
    secs = int(elapsed)
    parts = [
        '<div class="tt-msg tt-pending">',
        f'<p class="tt-progress tt-turn-{_attr(turn_id)}">'
        f'<span class="tt-spinner" aria-hidden="true"></span> <span class="tt-phase">{_inline(phase)}</span> '
        f'<span class="tt-secs">{secs} s</span></p>',
    ]
    if cards:
        parts.append(render_cards(cards, base, lang))
    if streamed:
        parts.append(f'<div class="tt-answer tt-draft">{_inline(streamed)} ▍</div>')
        parts.append(f'<p class="tt-muted">{_inline(t("draft_note", lang))}</p>')
    parts.append("</div>")
    return "".join(parts)


def render_error(reason: str, lang: str = "en") -> str:
    return "⚠️ " + _md(t("cannot_answer", lang, reason=reason.strip() or t("crashed", lang)))


def render_status(status: dict[str, Any], lang: str = "en") -> str:
    """The one-line status shown at the top of the page."""
    backend = t("backend", lang)
    if status.get("ready"):
        line = f"🟢 **{t('ready', lang)}** · {backend}: `{status.get('backend', '?')}`"
    else:
        reason = status.get("reason") or t("not_ready", lang)
        line = f"🟠 **{t('not_ready', lang)}**: {_md(str(reason))}"
        if status.get("backend"):
            line += f" · {backend}: `{status['backend']}`"
    if "chunks" in status:
        line += " · " + t("passages_indexed", lang, n=f"{int(status['chunks']):,}")
    if status.get("model_error"):
        line += f" · {t('model', lang)}: {_md(str(status['model_error']))}"
    return line


def _language_names(languages: str | None, lang: str) -> str:
    """A document's languages ("zh-Hans, en") by their names: "简体中文, English"."""
    codes = [code.strip() for code in (languages or "").split(",") if code.strip()]
    return t("list_separator", lang).join(LANGUAGE_NAMES.get(code, code) for code in codes)


def render_documents(infos: Iterable[Any], base: str = SOURCES_PATH, lang: str = "en") -> str:
    """The indexed documents as an HTML table; each title opens the document."""
    rows = []
    for info in infos:
        doc = info.document
        href = html.escape(source_url(doc.doc_id, base=base, lang=lang))
        rows.append(
            "<tr>"
            f'<td><a href="{href}" target="_blank" rel="noopener noreferrer">{html.escape(doc.title)}</a></td>'
            f"<td>{html.escape(kind_name(doc.kind, lang))}</td>"
            f"<td>{html.escape(doc.published or t('undated', lang))}</td>"
            f"<td>{html.escape(_language_names(doc.language, lang))}</td>"
            f'<td style="text-align:right">{int(info.chunks)}</td>'
            "</tr>"
        )
    if not rows:
        return f"<p>{html.escape(t('no_documents', lang))}</p>"
    head = "".join(
        f"<th>{html.escape(t(key, lang))}</th>" for key in ("col_title", "col_kind", "col_published", "col_language")
    )
    head = f'<thead><tr>{head}<th style="text-align:right">{html.escape(t("col_passages", lang))}</th></tr></thead>'
    return f'<table class="tt-documents">{head}<tbody>{"".join(rows)}</tbody></table>'


# ---------------------------------------------------------------------- conversations


def message_text(content: Any) -> str:
    """The text of a chat message's content, as Gradio hands it back (str or list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text") or "")
    if isinstance(content, (list, tuple)):
        return "".join(message_text(part) for part in content)
    return ""
