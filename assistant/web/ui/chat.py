"""The Gradio web UI: a streaming, cited chat and the list of indexed documents.

`build_ui(assistant)` returns the Blocks that the FastAPI app mounts at /ui; the rendering
is done by the small pure functions below (`render_answer`, `history_to_turns`, ...).
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote as url_quote

import gradio as gr

from assistant.admission import admit
from assistant.errors import AssistantError, Busy, InvalidInput
from assistant.pipeline.answer import DoneEvent, SourcesEvent, TokenEvent, Turn
from assistant.pipeline.domain import load_examples
from assistant.types import Answer, Citation

if TYPE_CHECKING:
    from fastapi import FastAPI

    from assistant.service import Assistant
    from assistant.settings import Settings

log = logging.getLogger(__name__)

TITLE = "Technology Transfer Assistant · 技术转移助手"
DESCRIPTION = (
    "Cited answers about China's international technology transfer centers, from policy papers "
    "and news reports. · 基于政策文件与新闻报道、附带出处的国际技术转移问答。"
)
SOURCES_PATH = "/sources"  # served by the FastAPI app, same origin as /ui

THINKING = "_Searching the documents… · 正在检索文档…_"
NOT_GROUNDED = "No supporting passage was found in the documents. · 文档中未找到支持该回答的段落。"
EMPTY_MESSAGE = "Please type a question first. · 请先输入问题。"
CANNOT_ANSWER = "The assistant cannot answer right now: {reason}"
CRASHED = "an unexpected error occurred on the server; please try again."
STREAM_CUT = "the answer stopped before it was complete; please try again."

ChatMessages = list[dict[str, Any]]


# ---------------------------------------------------------------------- rendering


def _md(text: str) -> str:
    """Text for a Markdown context: Markdown stays, any HTML in it shows as text."""
    return html.escape(text, quote=False)


def _inline(text: str) -> str:
    """Text for an HTML block: escaped, and with no blank line (which would end the block)."""
    escaped = html.escape(text.replace("\r\n", "\n").replace("\r", "\n").strip())
    return escaped.replace("\n", "<br>")


def source_url(doc_id: str, start: int | None = None, end: int | None = None, base: str = SOURCES_PATH) -> str:
    """The page showing a document, with the span start..end highlighted when given."""
    url = f"{base}/{url_quote(doc_id, safe='')}"
    if start is not None and end is not None:
        url += f"?start={int(start)}&end={int(end)}#quote"
    return url


def describe_source(kind: str | None, published: str | None) -> str:
    """'policy paper, 2023-05-01' or 'news report, date not stated'."""
    kind_text = (kind or "unknown").replace("_", " ")
    return f"{kind_text}, {published or 'date not stated'}"


def render_citation(citation: Citation, base: str = SOURCES_PATH) -> str:
    """One source as an HTML block: number, title, kind and date; the quote folded below."""
    href = html.escape(source_url(citation.doc_id, citation.start, citation.end, base))
    summary = (
        f"[{citation.n}] {_inline(citation.title)} — "
        f"{_inline(describe_source(citation.kind, citation.published))}"
    )
    return (
        f"<details><summary>{summary}</summary>"
        f"<blockquote>{_inline(citation.quote)}</blockquote>"
        f'<a href="{href}" target="_blank" rel="noopener noreferrer">open passage · 查看原文 ↗</a>'
        "</details>"
    )


def render_sources(
    citations: Sequence[Citation], base: str = SOURCES_PATH, heading: str = "**Sources · 来源**"
) -> str:
    if not citations:
        return ""
    blocks = "\n".join(render_citation(c, base) for c in citations)
    return f"{heading}\n\n{blocks}"


def inert(text: str) -> str:
    """Answer text as an HTML block: escaped, so no Markdown link or HTML from a document is live.

    Inside an HTML block Markdown is not parsed (nor are bare URLs turned into links):
    document text quoted in an answer stays text.
    """
    return f'<div class="tt-answer">{_inline(text)}</div>'


def render_passages(sources: Sequence[dict[str, Any]], base: str = SOURCES_PATH) -> str:
    """The retrieved passages while the answer is written: titles that open the passage."""
    if not sources:
        return ""
    items = []
    for s in sources:
        href = html.escape(source_url(str(s["doc_id"]), base=base))
        when = f" · {html.escape(str(s['published']))}" if s.get("published") else ""
        items.append(
            f'<li><a href="{href}" target="_blank" rel="noopener noreferrer">{_inline(str(s["title"]))}</a>{when}</li>'
        )
    return f"<details open><summary>Reading {len(sources)} passages · 正在阅读 {len(sources)} 个段落</summary><ol>{''.join(items)}</ol></details>"


def render_answer(answer: Answer, base: str = SOURCES_PATH) -> str:
    """The final answer as chat Markdown: notice, text, sources, which backend answered."""
    parts: list[str] = []
    if answer.notice:
        parts.append(f"⚠️ {_md(answer.notice)}")
    parts.append(inert(answer.answer.strip()))
    if not answer.grounded and not answer.related:
        parts.append(f"<sub>{NOT_GROUNDED}</sub>")
    sources = render_sources(answer.citations, base)
    if sources:
        parts.append(sources)
    related = render_sources(answer.related, base, "**Related passages · 相关段落**")
    if related:
        parts.append(related)
    parts.append(f"<sub>Answered by · 回答来源: {html.escape(answer.backend)}</sub>")
    return "\n\n".join(parts)


def render_streaming(text: str, passages: str = "") -> str:
    """The draft as it arrives, under the passages being read (replaced by the checked answer)."""
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


# ---------------------------------------------------------------------- chat logic


def message_text(content: Any) -> str:
    """The text of a chat message's content, as Gradio hands it back (str or list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text") or "")
    if isinstance(content, (list, tuple)):
        return "".join(message_text(part) for part in content)
    return ""


def history_to_turns(messages: Iterable[dict[str, Any]], max_turns: int | None = None) -> list[Turn]:
    """Plain-text user/assistant messages as `Turn`s, the last `max_turns` of them (0: none)."""
    turns = [
        Turn(m["role"], text)
        for m in messages
        if m.get("role") in ("user", "assistant") and (text := message_text(m.get("content")).strip())
    ]
    if max_turns is None:
        return turns
    return turns[-max_turns:] if max_turns > 0 else []


def chat_handler(
    assistant: Assistant, base: str = SOURCES_PATH
) -> Callable[[str, ChatMessages | None, ChatMessages | None], Iterator[tuple[str, ChatMessages, ChatMessages]]]:
    """The generator wired to Send: (message, shown chat, plain history) -> updates of the same.

    The shown chat carries the rendered answers (with sources); the plain history only the
    question and answer texts, which is what goes back to the assistant for follow-ups.
    """
    def respond(
        message: str, chat: ChatMessages | None, history: ChatMessages | None
    ) -> Iterator[tuple[str, ChatMessages, ChatMessages]]:
        chat = [{"role": m["role"], "content": message_text(m.get("content"))} for m in chat or []]
        history = list(history or [])
        message = (message or "").strip()
        if not message:
            gr.Info(EMPTY_MESSAGE)  # a toast in the page; nothing is sent
            yield "", list(chat), history
            return
        try:
            turn = admit(assistant, message, history_to_turns(history))
        except InvalidInput as exc:
            # Keep the text in the box so it can be fixed.
            yield message, [*chat, {"role": "assistant", "content": "⚠️ " + _md(str(exc))}], history
            return
        except AssistantError as exc:  # no index, or the model's queue is full
            wait = f" · {exc.retry_after} s" if isinstance(exc, Busy) else ""
            yield message, [*chat, {"role": "assistant", "content": render_error(str(exc)) + wait}], history
            return

        chat = [*chat, {"role": "user", "content": _md(message)}, {"role": "assistant", "content": THINKING}]
        yield "", list(chat), history
        streamed = ""
        passages = ""
        final: Answer | None = None
        try:
            for event in turn.events():
                if isinstance(event, SourcesEvent):
                    passages = render_passages(event.as_dict()["sources"], base)  # type: ignore[arg-type]
                    chat[-1] = {"role": "assistant", "content": render_streaming(streamed, passages)}
                    yield "", list(chat), history
                elif isinstance(event, TokenEvent):
                    streamed += event.text
                    chat[-1] = {"role": "assistant", "content": render_streaming(streamed, passages)}
                    yield "", list(chat), history
                elif isinstance(event, DoneEvent):
                    final = event.answer
        except AssistantError as exc:
            log.exception("chat failed")
            chat[-1] = {"role": "assistant", "content": render_error(str(exc))}
            yield "", list(chat), history
            return
        except Exception:
            log.exception("chat failed unexpectedly")
            chat[-1] = {"role": "assistant", "content": render_error(CRASHED)}
            yield "", list(chat), history
            return
        if final is None:
            log.error("chat stream ended without a final answer")
            chat[-1] = {"role": "assistant", "content": render_error(STREAM_CUT)}
            yield "", list(chat), history
            return
        chat[-1] = {"role": "assistant", "content": render_answer(final, base)}
        history = [
            *history,
            {"role": "user", "content": message},
            {"role": "assistant", "content": final.answer},
        ]
        yield "", list(chat), history

    return respond


def status_line(assistant: Assistant) -> str:
    try:
        return render_status(assistant.status())
    except Exception as exc:
        log.exception("status failed")
        return render_status({"ready": False, "reason": str(exc) or type(exc).__name__})


def documents_table(assistant: Assistant, base: str = SOURCES_PATH) -> str:
    try:
        return render_documents(assistant.documents(), base)
    except AssistantError as exc:
        return f"<p>⚠️ The documents are not available: {html.escape(str(exc))}</p>"
    except Exception:
        log.exception("listing documents failed")
        return f"<p>⚠️ The documents are not available: {html.escape(CRASHED)}</p>"


# ---------------------------------------------------------------------- the page

DOCUMENTS_CSS = """
table { border-collapse: collapse; width: 100%; font-size: 0.95em; }
th, td { text-align: left; padding: 0.35em 0.6em; border-bottom: 1px solid var(--border-color-primary); vertical-align: top; }
th { font-weight: 600; }
"""


def examples(settings: Settings) -> list[str]:
    """The example questions under the chat box: `examples.yaml` in the corpus folder."""
    return list(load_examples(settings.corpus_dir))


CACHE_LIMITS = (3600, 3600)  # (how often, older than): seconds


def build_ui(assistant: Assistant, *, sources_path: str = SOURCES_PATH) -> gr.Blocks:
    """The UI around `assistant`; mount it with `gr.mount_gradio_app(app, ..., path="/ui")`."""
    respond = chat_handler(assistant, sources_path)

    def refresh() -> tuple[str, str]:
        return status_line(assistant), documents_table(assistant, sources_path)

    def clear() -> tuple[str, ChatMessages, ChatMessages]:
        return "", [], []

    # Gradio's file cache (rendered components, any file a handler returns) is emptied
    # hourly of files older than an hour, so it cannot grow without bound on a long run.
    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=CACHE_LIMITS) as demo:
        gr.Markdown(f"# {TITLE}\n{DESCRIPTION}")
        status = gr.Markdown("Checking status… · 正在检查状态…")
        with gr.Tab("Chat · 问答"):
            chatbot = gr.Chatbot(
                label="Conversation · 对话",
                height=520,
                buttons=["copy"],
                feedback_options=None,
                latex_delimiters=[],
                placeholder="Ask about technology transfer centers, in English or Chinese. · 可用中文或英文提问。",
            )
            history = gr.State([])
            with gr.Row():
                message = gr.Textbox(
                    placeholder="Type a question… · 输入问题…",
                    show_label=False,
                    scale=6,
                    lines=1,
                    max_lines=6,
                    autofocus=True,
                )
                send = gr.Button("Send · 发送", variant="primary", scale=1, min_width=100)
                clear_button = gr.Button("Clear · 清空", scale=1, min_width=100)
            questions = examples(assistant.settings)
            if questions:  # a corpus may come without examples
                gr.Examples([[q] for q in questions], inputs=[message], label="Examples · 示例")
        with gr.Tab("Documents · 文档"):
            documents = gr.HTML("", css_template=DOCUMENTS_CSS, js_on_load=None)
            reload_button = gr.Button("Refresh · 刷新", size="sm")

        with gr.Tab("Centers · 中心"):
            from assistant.web.ui.centers import build_centers_tab

            build_centers_tab(assistant, sources_path=sources_path)

        io: dict[str, Any] = {
            "fn": respond,
            "inputs": [message, chatbot, history],
            "outputs": [message, chatbot, history],
            "concurrency_id": "chat",
            "show_progress": "hidden",
        }
        message.submit(api_name="chat", **io)
        send.click(api_visibility="undocumented", **io)
        clear_button.click(clear, None, [message, chatbot, history], queue=False, api_visibility="private")
        demo.load(refresh, None, [status, documents], api_visibility="private")
        reload_button.click(refresh, None, [status, documents], api_visibility="private")
    return demo


def ui_theme() -> gr.themes.Base:
    """The default look with the system's fonts (nothing fetched, CJK from the OS)."""
    return gr.themes.Default(
        font=["system-ui", "-apple-system", "Segoe UI", "Noto Sans CJK SC", "PingFang SC", "sans-serif"],
        font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"],
    )


def mount_ui(app: FastAPI, assistant: Assistant, path: str = "/ui") -> FastAPI:
    """Mount the UI on `app` at `path` with the system-font theme (the app factory's one call)."""
    return gr.mount_gradio_app(
        app,
        build_ui(assistant),
        path=path,
        theme=ui_theme(),
        footer_links=["api", "settings"],
        run_history=False,
    )
