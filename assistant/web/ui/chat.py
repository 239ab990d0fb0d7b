"""The Gradio web UI: a streaming, cited chat and the list of indexed documents.

`build_ui(assistant)` returns the Blocks that the FastAPI app mounts at /ui; the rendering
is done by the small pure functions below (`render_answer`, `render_pending`,
`history_to_turns`, `export_markdown`, `suggest_followups`, ...). What runs in the browser
(citation popovers, the elapsed-seconds ticker, Copy, lazy translation) is `chat.js` and
`chat.css` next to this file, inlined into the page: nothing is fetched from elsewhere.

While an answer is written the page shows the passages being read as cards at once (the
engine's `SourcesEvent` comes before any token), a progress line with the seconds elapsed
and a Stop button that cancels the Gradio event; closing the handler's generator closes
the turn's event stream, which stops the model and frees the chat queue's place.

Conversations are kept in the browser (`gr.BrowserState`, localStorage): each is its plain
history (questions, answer texts and the checked answers' citations), from which the chat,
the Markdown and HTML exports and the suggested follow-ups are all rendered.
"""

from __future__ import annotations

import base64
import contextlib
import html
import logging
import re
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote as url_quote

import gradio as gr

from assistant.admission import admit
from assistant.errors import AssistantError, Busy, InvalidInput
from assistant.pipeline.answer import DoneEvent, SourcesEvent, TokenEvent, Turn
from assistant.pipeline.domain import load_examples, load_names
from assistant.types import Answer
from assistant.web.ui.conversations import (
    _valid_store,
    chat_choices,
    conversation_messages,
    exchanges,
    export_html,
    export_markdown,
    find_chat,
    new_chat_id,
    new_store,
    save_chat,
    suggest_followups,
)
from assistant.web.ui.render import (
    CRASHED,
    DESCRIPTION,
    EMPTY_MESSAGE,
    HERE,
    SOURCES_PATH,
    STOPPED,
    STORAGE_KEY,
    STORAGE_SECRET,
    STREAM_CUT,
    TITLE,
    ChatMessages,
    _attr,
    _md,
    message_text,
    render_answer,
    render_documents,
    render_error,
    render_pending,
    render_status,
    source_cards,
)

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from assistant.service import Assistant
    from assistant.settings import Settings

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------- rendering


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
) -> Callable[[str, ChatMessages | None, ChatMessages | None], Generator[tuple[str, ChatMessages, ChatMessages]]]:
    """The generator wired to Send: (message, shown chat, plain history) -> updates of the same.

    The shown chat carries the rendered answers (with sources); the plain history the
    question and answer texts (what goes back to the assistant for follow-ups) and each
    checked answer as data (`answer`), from which a kept conversation is shown again.

    Closing the generator (Stop: Gradio cancels the event and closes it) closes the
    turn's events, which stops the model; the queue place is given back either way.
    """

    def respond(
        message: str, chat: ChatMessages | None, history: ChatMessages | None
    ) -> Generator[tuple[str, ChatMessages, ChatMessages]]:
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

        turn_id = new_chat_id()
        began = time.monotonic()
        cards: list[dict[str, Any]] | None = None
        streamed = ""

        def pending() -> dict[str, Any]:
            return {"role": "assistant", "content": render_pending(turn_id, cards, streamed, time.monotonic() - began, base)}

        chat = [*chat, {"role": "user", "content": _md(message)}, pending()]
        final: Answer | None = None
        events: Iterator[Any] | None = None
        try:
            yield "", list(chat), history
            events = turn.events()
            with contextlib.closing(events):  # type: ignore[type-var]
                for event in events:
                    if isinstance(event, SourcesEvent):
                        cards = source_cards(event.hits)
                    elif isinstance(event, TokenEvent):
                        streamed += event.text
                    elif isinstance(event, DoneEvent):
                        final = event.answer
                        continue
                    chat[-1] = pending()
                    yield "", list(chat), history
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
        finally:
            if events is None:  # closed (Stop) before the turn started: give its place back
                turn.release()
        if final is None:
            log.error("chat stream ended without a final answer")
            chat[-1] = {"role": "assistant", "content": render_error(STREAM_CUT)}
            yield "", list(chat), history
            return
        chat[-1] = {"role": "assistant", "content": render_answer(final, base, question=message, draft=streamed)}
        history = [
            *history,
            {"role": "user", "content": message},
            {"role": "assistant", "content": final.answer, "answer": final.as_dict()},
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


def _names(settings: Any) -> list[tuple[str, str]]:
    try:
        return list(load_names(settings.corpus_dir).english)
    except Exception:  # a corpus without (or with a broken) names.yaml: no names, no crash
        log.warning("names.yaml could not be read; follow-ups use English names only", exc_info=True)
        return []


def _site(request: gr.Request | None) -> str:
    """The address the page was opened at (scheme and host), for absolute links in exports."""
    if request is None:
        return ""
    headers = getattr(request, "headers", None) or {}
    host = headers.get("x-forwarded-host") or headers.get("host")
    if not host or not re.fullmatch(r"[A-Za-z0-9.\-\[\]:]+", host):
        return ""
    proto = headers.get("x-forwarded-proto") or "http"
    return f"{'https' if proto == 'https' else 'http'}://{host}"


def render_exports(chat_id: str, history: Sequence[Mapping[str, Any]], site: str = "") -> str:
    """Download links for the conversation as Markdown and as print-friendly HTML.

    The files travel inside the links (`data:` URLs): no file route, no upload, nothing
    kept on the server.
    """
    if not history:
        return ""
    stem = f"conversation-{re.sub(r'[^A-Za-z0-9]', '', chat_id)[:12] or 'chat'}"

    def data_url(mime: str, text: str) -> str:
        return f"data:{mime};charset=utf-8;base64,{base64.b64encode(text.encode('utf-8')).decode('ascii')}"

    md = data_url("text/markdown", export_markdown(history, site=site))
    page = data_url("text/html", export_html(history, site=site))
    return (
        '<span class="tt-exports">Export · 导出: '
        f'<a id="tt-export-md" href="{md}" download="{stem}.md">⬇ Markdown</a> '
        f'<a id="tt-export-html" href="{page}" download="{stem}.html">⬇ HTML (print · 打印版)</a></span>'
    )


CACHE_LIMITS = (3600, 3600)  # (how often, older than): seconds
FOLLOWUPS = 3


def build_ui(assistant: Assistant, *, sources_path: str = SOURCES_PATH) -> gr.Blocks:
    """The UI around `assistant`; mount it with `mount_ui` (or `gr.mount_gradio_app`)."""
    respond = chat_handler(assistant, sources_path)
    names = _names(assistant.settings)

    def refresh() -> tuple[str, str]:
        return status_line(assistant), documents_table(assistant, sources_path)

    def tools(chat_id: str, history: ChatMessages, store: Any, request: gr.Request | None = None) -> list[Any]:
        """After a turn: keep the conversation, refresh the list, exports and follow-ups."""
        store = save_chat(store, chat_id, history)
        has = bool(history)
        pairs = exchanges(history)
        followups: list[str] = []
        if pairs:
            question, answer = pairs[-1]
            followups = suggest_followups(question, answer, names, asked_before=[q for q, _ in pairs])
        buttons = [
            gr.update(value=followups[i], visible=True) if i < len(followups) else gr.update(value="", visible=False)
            for i in range(FOLLOWUPS)
        ]
        return [
            store,
            gr.update(choices=chat_choices(store), value=chat_id if has else None),
            render_exports(chat_id, history, _site(request)),
            gr.update(visible=bool(followups)),
            *buttons,
        ]

    def restore(store: Any, request: gr.Request) -> list[Any]:
        store = _valid_store(store)
        chats = store["chats"]
        chat_id = str(chats[0]["id"]) if chats else new_chat_id()
        history = find_chat(store, chat_id)
        return [chat_id, conversation_messages(history, sources_path), history, *tools(chat_id, history, store, request)]

    def open_chat(chat_id: str | None, store: Any, request: gr.Request) -> list[Any]:
        history = find_chat(store, chat_id)
        if not chat_id or not history:
            return restore(store, request)
        return [chat_id, conversation_messages(history, sources_path), history, *tools(chat_id, history, store, request)]

    def new_chat(store: Any) -> list[Any]:
        chat_id = new_chat_id()
        hidden = gr.update(value="", visible=False)
        return [
            chat_id, [], [], "", _valid_store(store),
            gr.update(choices=chat_choices(store), value=None),
            "",
            gr.update(visible=False), *([hidden] * FOLLOWUPS),
        ]

    def busy() -> tuple[Any, ...]:
        return gr.update(interactive=False), gr.update(visible=True), gr.update(visible=False)

    def idle() -> tuple[Any, ...]:
        return gr.update(interactive=True), gr.update(visible=False)

    def stopped(chat: ChatMessages | None) -> tuple[Any, ...]:
        chat = [{"role": m["role"], "content": message_text(m.get("content"))} for m in chat or []]
        if chat and chat[-1]["role"] == "assistant" and "tt-pending" in chat[-1]["content"]:
            chat[-1] = {"role": "assistant", "content": f'<p class="tt-muted tt-stopped">⏹ {STOPPED}</p>'}
        return chat, gr.update(interactive=True), gr.update(visible=False)

    # Gradio's file cache (rendered components, any file a handler returns) is emptied
    # hourly of files older than an hour, so it cannot grow without bound on a long run.
    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=CACHE_LIMITS) as demo:
        gr.Markdown(f"# {TITLE}\n{DESCRIPTION}", elem_classes=["tt-header"])
        status = gr.Markdown("Checking status… · 正在检查状态…")
        store = gr.BrowserState(new_store(), storage_key=STORAGE_KEY, secret=STORAGE_SECRET)
        chat_id = gr.State("")
        with gr.Tab("Chat · 问答"):
            with gr.Row(elem_classes=["tt-chatbar"]):
                new_button = gr.Button("＋ New chat · 新对话", size="sm", scale=0, min_width=150, elem_id="tt-new-chat")
                past = gr.Dropdown(
                    choices=[], value=None, label="Past chats · 历史对话", show_label=False,
                    container=False, scale=3, min_width=160, elem_id="tt-past-chats", interactive=True,
                )
                exports = gr.HTML("", elem_classes=["tt-export-box"], js_on_load=None, scale=2, min_width=200)
            chatbot = gr.Chatbot(
                label="Conversation · 对话",
                height=560,
                buttons=[],
                feedback_options=None,
                latex_delimiters=[],
                elem_id="tt-chatbot",
                placeholder="Ask about technology transfer centers, in English or Chinese. · 可用中文或英文提问。",
            )
            history = gr.State([])
            with gr.Row(visible=False, elem_classes=["tt-followups"]) as followup_row:
                followup_buttons = [
                    gr.Button("", size="sm", visible=False, variant="secondary", elem_classes=["tt-followup"])
                    for _ in range(FOLLOWUPS)
                ]
            with gr.Row():
                message = gr.Textbox(
                    placeholder="Type a question… · 输入问题…",
                    show_label=False,
                    scale=6,
                    lines=1,
                    max_lines=6,
                    autofocus=True,
                    elem_id="tt-message",
                )
                send = gr.Button("Send · 发送", variant="primary", scale=1, min_width=100, elem_id="tt-send")
                stop = gr.Button("■ Stop · 停止", variant="stop", scale=1, min_width=100, visible=False, elem_id="tt-stop")
            questions = examples(assistant.settings)
            if questions:  # a corpus may come without examples
                gr.Examples([[q] for q in questions], inputs=[message], label="Examples · 示例")
        with gr.Tab("Documents · 文档"):
            documents = gr.HTML("", css_template=DOCUMENTS_CSS, js_on_load=None)
            reload_button = gr.Button("Refresh · 刷新", size="sm")

        with gr.Tab("Centers · 中心"):
            from assistant.web.ui.centers import build_centers_tab

            build_centers_tab(assistant, sources_path=sources_path)

        after = [store, past, exports, followup_row, *followup_buttons]
        private: dict[str, Any] = {"api_visibility": "private"}
        answering: list[Any] = []

        def wire(event: Any, *, api_name: str | None = None) -> None:
            """One way to ask: lock Send, answer, then keep the conversation and unlock."""
            run = event.then(
                respond,
                [message, chatbot, history],
                [message, chatbot, history],
                concurrency_id="chat",
                show_progress="hidden",
                **({"api_name": api_name} if api_name else {"api_visibility": "undocumented"}),
            )
            answering.append(run)
            run.then(tools, [chat_id, history, store], after, queue=False, **private).then(
                idle, None, [send, stop], queue=False, **private
            )

        wire(message.submit(busy, None, [send, stop, followup_row], queue=False, **private), api_name="chat")
        wire(send.click(busy, None, [send, stop, followup_row], queue=False, **private))
        for button in followup_buttons:
            wire(
                button.click(lambda q: q, button, message, queue=False, **private).then(
                    busy, None, [send, stop, followup_row], queue=False, **private
                )
            )
        stop.click(stopped, [chatbot], [chatbot, send, stop], cancels=answering, queue=False, **private)
        new_button.click(
            new_chat, [store], [chat_id, chatbot, history, message, *after], queue=False, **private
        )
        past.input(open_chat, [past, store], [chat_id, chatbot, history, *after], queue=False, **private)
        demo.load(restore, [store], [chat_id, chatbot, history, *after], **private)
        demo.load(refresh, None, [status, documents], **private)
        reload_button.click(refresh, None, [status, documents], **private)
    return demo


def ui_theme() -> gr.themes.Base:
    """The default look with the system's fonts (nothing fetched, CJK from the OS)."""
    return gr.themes.Default(
        font=["system-ui", "-apple-system", "Segoe UI", "Noto Sans CJK SC", "Noto Sans SC", "PingFang SC", "sans-serif"],
        font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"],
    )


# ---------------------------------------------------------------------- page chrome

FAVICON = (
    "data:image/svg+xml,"
    + url_quote(
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64">'
        '<rect width="64" height="64" rx="14" fill="#1b3a2f"/>'
        '<path d="M14 22h36M32 22v28" stroke="#fff" stroke-width="7" stroke-linecap="round"/>'
        '<circle cx="47" cy="45" r="6" fill="#e3b341"/></svg>',
        safe="",
    )
)


def page_head() -> str:
    """What the page's <head> gets: link preview tags, the icon, the UI's style and script."""
    css = (HERE / "chat.css").read_text("utf-8")
    js = (HERE / "chat.js").read_text("utf-8")
    return (
        f'<meta property="og:title" content="{_attr(TITLE)}">'
        f'<meta property="og:description" content="{_attr(DESCRIPTION)}">'
        '<meta property="og:type" content="website">'
        f'<meta name="twitter:title" content="{_attr(TITLE)}">'
        f'<meta name="twitter:description" content="{_attr(DESCRIPTION)}">'
        f'<meta name="description" content="{_attr(DESCRIPTION)}">'
        f'<link rel="icon" href="{FAVICON}">'
        f"<style>{css}</style><script>{js}</script>"
    )


# Gradio's page template names itself in the link preview (and points at an image on
# github.com); these tags are dropped from the page, `page_head` gives the product's own.
_META_TAG = re.compile(r"<meta\b[^>]*?(?:property=\"og:|name=\"twitter:)[^>]*>", re.S)
_LINK_TAGS = re.compile(r'<link\s+rel="manifest"[^>]*>')


def rewrite_page(page: str) -> str:
    """Gradio's index page with the product's link preview, icon, style and script."""
    page = _META_TAG.sub("", page)
    page = _LINK_TAGS.sub("", page)
    return page.replace("</head>", page_head() + "</head>", 1)


class PageChrome:
    """ASGI middleware: the UI's HTML page gets `rewrite_page` (title tags, icon, script)."""

    def __init__(self, app: ASGIApp, path: str = "/ui") -> None:
        self.app = app
        self.paths = {path.rstrip("/"), path.rstrip("/") + "/"}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "GET" or scope.get("path") not in self.paths:
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            headers = [(k, v) for k, v in start.get("headers", [])]
            ctype = next((v for k, v in headers if k.lower() == b"content-type"), b"")
            encoded = any(k.lower() == b"content-encoding" for k, _ in headers)
            body = b"".join(chunks)
            if ctype.startswith(b"text/html") and not encoded:
                body = rewrite_page(body.decode("utf-8")).encode("utf-8")
                headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
                headers.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, capture)


def mount_ui(app: FastAPI, assistant: Assistant, path: str = "/ui") -> FastAPI:
    """Mount the UI on `app` at `path` with the system-font theme (the app factory's one call).

    No Gradio footer (API, "built with Gradio", Settings): the page is for the assistant's
    users. The page's own link preview, icon, style and script come from `PageChrome`.
    """
    app.add_middleware(PageChrome, path=path)
    return gr.mount_gradio_app(
        app,
        build_ui(assistant),
        path=path,
        theme=ui_theme(),
        footer_links=[],
        run_history=False,
        pwa=False,
    )

