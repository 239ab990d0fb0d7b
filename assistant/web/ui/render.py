"""HTML for the chat UI: answers with clickable citations, source cards, status lines.

Pure functions of their arguments. Document text only ever enters the page escaped: an
answer's `[n]` markers become links only where they match a real citation, so a Markdown
link or HTML in a document stays text.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote as url_quote

from assistant.text import detect_language
from assistant.types import Answer, Citation, SearchHit

if TYPE_CHECKING:

    pass


HERE = Path(__file__).resolve().parent
TITLE = "Technology Transfer Assistant · 技术转移助手"
DESCRIPTION = (
    "Cited answers about China's international technology transfer centers, from policy papers "
    "and news reports. · 基于政策文件与新闻报道、附带出处的国际技术转移问答。"
)
SOURCES_PATH = "/sources"  # served by the FastAPI app, same origin as /ui

SEARCHING = "Searching the documents… · 正在检索文档…"
THINKING = f"_{SEARCHING}_"
NOT_GROUNDED = "No supporting passage was found in the documents. · 文档中未找到支持该回答的段落。"
EMPTY_MESSAGE = "Please type a question first. · 请先输入问题。"
CANNOT_ANSWER = "The assistant cannot answer right now: {reason}"
CRASHED = "an unexpected error occurred on the server; please try again."
STREAM_CUT = "the answer stopped before it was complete; please try again."
STOPPED = "Stopped. · 已停止。"
CHECKED = "✓ Checked answer: it replaces the draft shown while writing. · 已核对的回答，取代书写时的草稿。"
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


def source_url(doc_id: str, start: int | None = None, end: int | None = None, base: str = SOURCES_PATH) -> str:
    """The page showing a document, with the span start..end highlighted when given."""
    url = f"{base}/{url_quote(doc_id, safe='')}"
    if start is not None and end is not None:
        url += f"?start={int(start)}&end={int(end)}#quote"
    return url


def describe_source(kind: str | None, published: str | None, page: int | None = None) -> str:
    """'policy paper, 2023-05-01' or 'news report, date not stated' (', p. 4' when paged)."""
    kind_text = (kind or "unknown").replace("_", " ")
    text = f"{kind_text}, {published or 'date not stated'}"
    return f"{text}, p. {int(page)}" if page else text


def render_citation(citation: Citation, base: str = SOURCES_PATH) -> str:
    """One source as an HTML block: number, title, kind and date; the quote folded below.

    Its classes `tt-n-<n>` and `tt-lang-<language>` (Gradio's sanitizer drops `data-`
    attributes) let the page's script show it in a popover when its `[n]` in the answer is
    tapped, and offer a translation.
    """
    href = _attr(source_url(citation.doc_id, citation.start, citation.end, base))
    return (
        f'<details class="tt-src tt-n-{int(citation.n)} tt-lang-{_attr(detect_language(citation.quote))}">'
        f'<summary>[{int(citation.n)}] <span class="tt-src-title">{_inline(citation.title)}</span> — '
        f'<span class="tt-src-meta">{_inline(describe_source(citation.kind, citation.published, citation.page))}</span></summary>'
        f'<blockquote class="tt-quote">{_inline(citation.quote)}</blockquote>'
        f'<a class="tt-open" href="{href}" target="_blank" rel="noopener noreferrer">open passage · 查看原文 ↗</a>'
        "</details>"
    )


def render_sources(
    citations: Sequence[Citation], base: str = SOURCES_PATH, heading: str = "Sources · 来源"
) -> str:
    if not citations:
        return ""
    blocks = "".join(render_citation(c, base) for c in citations)
    return f'<div class="tt-sources"><p class="tt-heading">{heading}</p>{blocks}</div>'


_MARKER = re.compile(r"\[(\d{1,2})\]")


def inert(text: str, cites: Mapping[int, Citation] | None = None, base: str = SOURCES_PATH) -> str:
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
            href = _attr(source_url(citation.doc_id, citation.start, citation.end, base))
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
    answer: Answer, base: str = SOURCES_PATH, *, question: str | None = None, draft: str | None = None
) -> str:
    """The final answer as one HTML block: notice, text with live `[n]`, sources, tools.

    `question` sets the language the popovers offer to translate quotes into; a `draft`
    (what was streamed) that differs from the checked answer gets a muted line saying so.
    """
    cites = {c.n: c for c in answer.related}
    cites.update({c.n: c for c in answer.citations})
    qlang = detect_language(question) if question else ""
    parts = [f'<div class="tt-msg tt-qlang-{_attr(qlang or "none")}">']
    if answer.notice:
        parts.append(f'<p class="tt-notice">⚠️ {_inline(answer.notice)}</p>')
    parts.append(inert(answer.answer.strip(), cites, base))
    if draft and _plain(draft) != _plain(answer.answer):
        parts.append(f'<p class="tt-muted tt-checked">{CHECKED}</p>')
    if not answer.grounded and not answer.related:
        parts.append(f'<p class="tt-muted">{NOT_GROUNDED}</p>')
    parts.append(render_sources(answer.citations, base))
    parts.append(render_sources(answer.related, base, "Related passages · 相关段落"))
    parts.append(
        '<p class="tt-tools"><button type="button" class="tt-copy">Copy · 复制</button> '
        f'<span class="tt-muted">Answered by · 回答来源: {html.escape(answer.backend)}</span></p>'
    )
    parts.append("</div>")
    return "".join(parts)


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


def render_cards(cards: Sequence[Mapping[str, Any]], base: str = SOURCES_PATH) -> str:
    """Source cards: title, kind, date, page, a short quote; each opens its passage."""
    items = []
    for card in cards:
        start, end = card.get("start"), card.get("end")
        href = _attr(source_url(str(card["doc_id"]), start, end, base))
        meta = describe_source(card.get("kind"), card.get("published"), card.get("page"))
        items.append(
            f'<a class="tt-card" href="{href}" target="_blank" rel="noopener noreferrer">'
            f'<span class="tt-card-title">{int(card.get("n") or 0)}. {_inline(str(card["title"]))}</span>'
            f'<span class="tt-card-meta">{_inline(meta)}</span>'
            f'<span class="tt-card-quote">{_inline(_preview(str(card.get("text") or "")))}</span></a>'
        )
    return f'<div class="tt-cards">{"".join(items)}</div>' if items else ""


def render_pending(
    turn_id: str, cards: Sequence[Mapping[str, Any]] | None, streamed: str = "", elapsed: float = 0.0,
    base: str = SOURCES_PATH,
) -> str:
    """The message while an answer is written: progress line, source cards, the draft."""
    if cards is None:
        phase = SEARCHING
    elif not streamed:
        phase = f"Reading {len(cards)} passages… · 正在阅读 {len(cards)} 个段落…"
    else:
        phase = "Writing the answer… · 正在撰写回答…"
    secs = int(elapsed)
    parts = [
        '<div class="tt-msg tt-pending">',
        f'<p class="tt-progress tt-turn-{_attr(turn_id)}">'
        f'<span class="tt-spinner" aria-hidden="true"></span> <span class="tt-phase">{phase}</span> '
        f'<span class="tt-secs">{secs} s</span></p>',
    ]
    if cards:
        parts.append(render_cards(cards, base))
    if streamed:
        parts.append(f'<div class="tt-answer tt-draft">{_inline(streamed)} ▍</div>')
        parts.append('<p class="tt-muted">Draft: it is checked against the passages when done. · 草稿，完成后将核对。</p>')
    parts.append("</div>")
    return "".join(parts)


def render_streaming(text: str, passages: str = "") -> str:
    """The draft as it arrives, under the passages being read (kept for callers of the old API)."""
    body = inert(text + " ▍") if text else THINKING
    return f"{passages}\n\n{body}" if passages else body


def render_error(reason: str) -> str:
    return "⚠️ " + _md(CANNOT_ANSWER.format(reason=reason.strip() or CRASHED))


def render_status(status: dict[str, Any]) -> str:
    """The one-line status shown at the top of the page."""
    if status.get("ready"):
        line = f"🟢 **Ready · 就绪** · backend · 后端: `{status.get('backend', '?')}`"
    else:
        reason = status.get("reason") or "not ready"
        line = f"🟠 **Not ready · 未就绪**: {_md(str(reason))}"
        if status.get("backend"):
            line += f" · backend · 后端: `{status['backend']}`"
    if "chunks" in status:
        line += f" · {int(status['chunks']):,} passages indexed · 已索引段落"
    if status.get("model_error"):
        line += f" · model · 模型: {_md(str(status['model_error']))}"
    return line


def render_documents(infos: Iterable[Any], base: str = SOURCES_PATH) -> str:
    """The indexed documents as an HTML table; each title opens the document."""
    rows = []
    for info in infos:
        doc = info.document
        href = html.escape(source_url(doc.doc_id, base=base))
        rows.append(
            "<tr>"
            f'<td><a href="{href}" target="_blank" rel="noopener noreferrer">{html.escape(doc.title)}</a></td>'
            f"<td>{html.escape((doc.kind or 'unknown').replace('_', ' '))}</td>"
            f"<td>{html.escape(doc.published or 'date not stated')}</td>"
            f"<td>{html.escape(doc.language or '')}</td>"
            f'<td style="text-align:right">{int(info.chunks)}</td>'
            "</tr>"
        )
    if not rows:
        return "<p>No documents are indexed yet. · 尚未索引任何文档。</p>"
    head = (
        "<thead><tr><th>Title · 标题</th><th>Kind · 类型</th><th>Published · 发布日期</th>"
        '<th>Language · 语言</th><th style="text-align:right">Passages · 段落</th></tr></thead>'
    )
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
