"""The Gradio web UI: a streaming, cited chat and the list of indexed documents.

`build_ui(assistant)` returns the Blocks that the FastAPI app mounts at /ui; the rendering
is done by the small pure functions below (`render_answer`, `render_pending`,
`history_to_turns`, `export_markdown`, `suggest_followups`, ...). What runs in the browser
(citation popovers, the elapsed-seconds ticker, Copy, lazy translation, the language
switch) is `chat.js` and `chat.css` next to this file, inlined into the page (page.py):
nothing is fetched from elsewhere.

The page is in English, Simplified or Traditional Chinese, one at a time (strings.yaml):
component labels are Gradio translations (`label`), shown in the page's locale; what the
handlers render takes the language as an input, the switcher's value. The page opens in
the language its request asks for (`?lang=`, the remembered choice, `Accept-Language`); a
switch relabels the components in the browser and renders the rest again here.

While an answer is written the page shows the passages being read as cards at once (the
engine's `SourcesEvent` comes before any token), a progress line with the seconds elapsed
and a Stop button that cancels the Gradio event; closing the handler's generator closes
the turn's event stream, which stops the model and frees the chat queue's place.

Conversations are kept in the browser (`gr.BrowserState`, localStorage): each is its plain
history (questions, answer texts and the checked answers' citations, stopped answers
marked), from which the chat, the Markdown and HTML exports and the suggested follow-ups
are all rendered.
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

import gradio as gr

from assistant.admission import admit
from assistant.errors import AssistantError, Busy, InvalidInput
from assistant.pipeline.answer import DoneEvent, SourcesEvent, TokenEvent, Turn
from assistant.pipeline.domain import load_examples, load_names
from assistant.types import Answer
from assistant.web.languages import LANGUAGE_NAMES, LANGUAGES
from assistant.web.ui.conversations import (
    _valid_store,
    chat_choices,
    conversation_messages,
    export_html,
    export_markdown,
    find_chat,
    is_stopped,
    new_chat_id,
    new_store,
    save_chat,
    stopped_turn,
    suggest_followups,
    turns,
)
from assistant.web.ui.page import PageChrome, request_language
from assistant.web.ui.render import (
    SOURCES_PATH,
    STORAGE_KEY,
    STORAGE_SECRET,
    ChatMessages,
    _md,
    message_text,
    render_answer,
    render_documents,
    render_error,
    render_pending,
    render_status,
    render_stopped,
    source_cards,
)
from assistant.web.ui.strings import gradio_i18n, label, pair, t

if TYPE_CHECKING:
    from fastapi import FastAPI

    from assistant.service import Assistant
    from assistant.settings import Settings

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------- rendering


def history_to_turns(messages: Iterable[dict[str, Any]], max_turns: int | None = None) -> list[Turn]:
    """Plain-text user/assistant messages as `Turn`s, the last `max_turns` of them (0: none).

    A question whose answer was stopped is left out with it: the model gets no question
    without an answer.
    """
    turns_: list[Turn] = []
    for m in messages:
        if is_stopped(m):
            if turns_ and turns_[-1].role == "user":
                turns_.pop()
            continue
        if m.get("role") in ("user", "assistant") and (text := message_text(m.get("content")).strip()):
            turns_.append(Turn(m["role"], text))
    if max_turns is None:
        return turns_
    return turns_[-max_turns:] if max_turns > 0 else []


def chat_handler(
    assistant: Assistant, base: str = SOURCES_PATH
) -> Callable[..., Generator[tuple[str, ChatMessages, ChatMessages]]]:
    """The generator wired to Send: (message, shown chat, plain history, language) -> updates
    of the first three.

    The shown chat carries the rendered answers (with sources); the plain history the
    question and answer texts (what goes back to the assistant for follow-ups) and each
    checked answer as data (`answer`), from which a kept conversation is shown again.
    While the answer is written the history holds the question with a stopped answer, so
    that what Stop keeps is the question; the checked answer replaces it when done.

    Closing the generator (Stop: Gradio cancels the event and closes it) closes the
    turn's events, which stops the model; the queue place is given back either way.
    """

    def respond(
        message: str, chat: ChatMessages | None, history: ChatMessages | None, lang: str = "en"
    ) -> Generator[tuple[str, ChatMessages, ChatMessages]]:
        chat = [{"role": m["role"], "content": message_text(m.get("content"))} for m in chat or []]
        history = list(history or [])
        message = (message or "").strip()
        if not message:
            gr.Info(t("empty_message", lang))  # a toast in the page; nothing is sent
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
            yield message, [*chat, {"role": "assistant", "content": render_error(str(exc), lang) + wait}], history
            return

        turn_id = new_chat_id()
        began = time.monotonic()
        cards: list[dict[str, Any]] | None = None
        streamed = ""
        asking = [*history, {"role": "user", "content": message}, stopped_turn()]

        def pending() -> dict[str, Any]:
            content = render_pending(turn_id, cards, streamed, time.monotonic() - began, base, lang)
            return {"role": "assistant", "content": content}

        chat = [*chat, {"role": "user", "content": _md(message)}, pending()]
        final: Answer | None = None
        events: Iterator[Any] | None = None
        try:
            yield "", list(chat), asking
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
                    yield "", list(chat), asking
        except AssistantError as exc:
            log.exception("chat failed")
            chat[-1] = {"role": "assistant", "content": render_error(str(exc), lang)}
            yield "", list(chat), history
            return
        except Exception:
            log.exception("chat failed unexpectedly")
            chat[-1] = {"role": "assistant", "content": render_error(t("crashed", lang), lang)}
            yield "", list(chat), history
            return
        finally:
            if events is None:  # closed (Stop) before the turn started: give its place back
                turn.release()
        if final is None:
            log.error("chat stream ended without a final answer")
            chat[-1] = {"role": "assistant", "content": render_error(t("stream_cut", lang), lang)}
            yield "", list(chat), history
            return
        content = render_answer(final, base, question=message, draft=streamed, lang=lang)
        chat[-1] = {"role": "assistant", "content": content}
        history = [
            *history,
            {"role": "user", "content": message},
            {"role": "assistant", "content": final.answer, "answer": final.as_dict()},
        ]
        yield "", list(chat), history

    return respond


def status_line(assistant: Assistant, lang: str = "en") -> str:
    try:
        return render_status(assistant.status(), lang)
    except Exception as exc:
        log.exception("status failed")
        return render_status({"ready": False, "reason": str(exc) or type(exc).__name__}, lang)


def documents_table(assistant: Assistant, base: str = SOURCES_PATH, lang: str = "en") -> str:
    try:
        return render_documents(assistant.documents(), base, lang)
    except AssistantError as exc:
        return f"<p>⚠️ {html.escape(t('documents_unavailable', lang, reason=str(exc)))}</p>"
    except Exception:
        log.exception("listing documents failed")
        return f"<p>⚠️ {html.escape(t('documents_unavailable', lang, reason=t('crashed', lang)))}</p>"


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


def page_language(request: gr.Request | None) -> str:
    """The language the page was opened in: `?lang=`, the remembered choice, `Accept-Language`.

    Gradio hands a page-load event the page's query and the browser's headers.
    """
    if request is None:
        return "en"
    params = getattr(request, "query_params", None) or {}
    headers = getattr(request, "headers", None) or {}
    return request_language(params.get("lang"), headers.get("cookie") or "", headers.get("accept-language"))


def render_exports(chat_id: str, history: Sequence[Mapping[str, Any]], site: str = "", lang: str = "en") -> str:
    """Download links for the conversation as Markdown and as print-friendly HTML.

    The files travel inside the links (`data:` URLs): no file route, no upload, nothing
    kept on the server.
    """
    if not history:
        return ""
    stem = f"conversation-{re.sub(r'[^A-Za-z0-9]', '', chat_id)[:12] or 'chat'}"

    def data_url(mime: str, text: str) -> str:
        return f"data:{mime};charset=utf-8;base64,{base64.b64encode(text.encode('utf-8')).decode('ascii')}"

    md = data_url("text/markdown", export_markdown(history, site=site, lang=lang))
    page = data_url("text/html", export_html(history, site=site, lang=lang))
    return (
        f'<span class="tt-exports">{html.escape(t("export", lang))} '
        f'<a id="tt-export-md" href="{md}" download="{stem}.md">⬇ Markdown</a> '
        f'<a id="tt-export-html" href="{page}" download="{stem}.html">⬇ {html.escape(t("export_print", lang))}</a></span>'
    )


def _pending(chat: Sequence[Mapping[str, Any]] | None) -> bool:
    """Whether the shown chat ends with an answer being written."""
    return bool(chat) and chat[-1].get("role") == "assistant" and "tt-pending" in message_text(chat[-1].get("content"))  # type: ignore[index]


CACHE_LIMITS = (3600, 3600)  # (how often, older than): seconds
FOLLOWUPS = 3
LANGUAGE_CHOICES = [(LANGUAGE_NAMES[code], code) for code in LANGUAGES]
# The switcher's change, in the browser: remember it and relabel the components (chat.js).
SWITCH_JS = "(lang) => { if (window.__ttSetLanguage) window.__ttSetLanguage(lang); return [lang]; }"


def build_ui(assistant: Assistant, *, sources_path: str = SOURCES_PATH) -> gr.Blocks:
    """The UI around `assistant`; mount it with `mount_ui` (or `gr.mount_gradio_app` with `i18n=gradio_i18n()`)."""
    respond = chat_handler(assistant, sources_path)
    names = _names(assistant.settings)

    def refresh(lang: str) -> tuple[str, str]:
        return status_line(assistant, lang), documents_table(assistant, sources_path, lang)

    def tools(chat_id: str, history: ChatMessages, store: Any, lang: str, request: gr.Request | None = None) -> list[Any]:
        """After a turn: keep the conversation, refresh the list, exports and follow-ups."""
        store = save_chat(store, chat_id, history)
        has = bool(history)
        pairs = turns(history)
        followups: list[str] = []
        if pairs and (answer := pairs[-1][1]) is not None:  # none after a stopped answer
            question = pairs[-1][0]
            followups = suggest_followups(question, answer, names, asked_before=[q for q, _ in pairs])
        buttons = [
            gr.update(value=followups[i], visible=True) if i < len(followups) else gr.update(value="", visible=False)
            for i in range(FOLLOWUPS)
        ]
        return [
            store,
            gr.update(choices=chat_choices(store), value=chat_id if has else None),
            render_exports(chat_id, history, _site(request), lang),
            gr.update(visible=bool(followups)),
            *buttons,
        ]

    def show(chat_id: str, history: ChatMessages, store: Any, lang: str, request: gr.Request | None) -> list[Any]:
        return [chat_id, conversation_messages(history, sources_path, lang), history, *tools(chat_id, history, store, lang, request)]

    def newest(store: Any, lang: str, request: gr.Request | None) -> list[Any]:
        store = _valid_store(store)
        chats = store["chats"]
        chat_id = str(chats[0]["id"]) if chats else new_chat_id()
        return show(chat_id, find_chat(store, chat_id), store, lang, request)

    def restore(store: Any, request: gr.Request) -> list[Any]:
        """On page load: the page's language, and the newest kept conversation shown in it."""
        lang = page_language(request)
        return [lang, *newest(store, lang, request)]

    def open_chat(chat_id: str | None, store: Any, lang: str, request: gr.Request) -> list[Any]:
        history = find_chat(store, chat_id)
        if not chat_id or not history:
            return newest(store, lang, request)
        return show(chat_id, history, store, lang, request)

    def new_chat(store: Any) -> list[Any]:
        chat_id = new_chat_id()
        hidden = gr.update(value="", visible=False)
        return [
            chat_id, [], [], "", _valid_store(store),
            gr.update(choices=chat_choices(store), value=None),
            "",
            gr.update(visible=False), *([hidden] * FOLLOWUPS),
        ]

    def relabel(lang: str, chat: ChatMessages | None, history: ChatMessages, chat_id: str, request: gr.Request) -> list[Any]:
        """After a switch of language: the chat and its exports rendered again in it.

        An answer being written is left as it is (its handler renders it to the end, and the
        exports follow it).
        """
        if _pending(chat):
            return [gr.update(), gr.update()]
        return [conversation_messages(history, sources_path, lang), render_exports(chat_id, history, _site(request), lang)]

    def busy() -> tuple[Any, ...]:
        return gr.update(interactive=False), gr.update(visible=True), gr.update(visible=False)

    def idle() -> tuple[Any, ...]:
        return gr.update(interactive=True), gr.update(visible=False)

    def stopped(
        chat: ChatMessages | None, chat_id: str, history: ChatMessages, store: Any, lang: str, request: gr.Request
    ) -> list[Any]:
        """Stop: the answer's place says so, and the conversation is kept with its question."""
        chat = [{"role": m["role"], "content": message_text(m.get("content"))} for m in chat or []]
        if _pending(chat):
            chat[-1] = {"role": "assistant", "content": render_stopped(lang)}
        return [chat, gr.update(interactive=True), gr.update(visible=False), *tools(chat_id, history, store, lang, request)]

    # Gradio's file cache (rendered components, any file a handler returns) is emptied
    # hourly of files older than an hour, so it cannot grow without bound on a long run.
    with gr.Blocks(title=pair("title"), analytics_enabled=False, delete_cache=CACHE_LIMITS) as demo:
        with gr.Row(elem_classes=["tt-top"]):
            # One translated key per Markdown: Gradio replaces only the first in a text.
            with gr.Column(elem_classes=["tt-header"], min_width=200):
                gr.Markdown("# " + label("title"))
                gr.Markdown(label("description"))
            lang = gr.Dropdown(
                choices=LANGUAGE_CHOICES, value="en", label=label("language"), show_label=False, container=False,
                scale=0, min_width=130, filterable=False, elem_id="tt-lang", interactive=True,
            )
        status = gr.Markdown(label("checking_status"))
        store = gr.BrowserState(new_store(), storage_key=STORAGE_KEY, secret=STORAGE_SECRET)
        chat_id = gr.State("")
        with gr.Tab(label("tab_chat")):
            with gr.Row(elem_classes=["tt-chatbar"]):
                new_button = gr.Button(label("new_chat"), size="sm", scale=0, min_width=150, elem_id="tt-new-chat")
                past = gr.Dropdown(
                    choices=[], value=None, label=label("past_chats"), show_label=False,
                    container=False, scale=3, min_width=160, elem_id="tt-past-chats", interactive=True,
                )
                exports = gr.HTML("", elem_classes=["tt-export-box"], js_on_load=None, scale=2, min_width=200)
            chatbot = gr.Chatbot(
                label=label("conversation"),
                height=560,
                buttons=[],
                feedback_options=None,
                latex_delimiters=[],
                elem_id="tt-chatbot",
                placeholder=str(label("chat_placeholder")),  # typed str: the key's marker, translated all the same
            )
            history = gr.State([])
            with gr.Row(visible=False, elem_classes=["tt-followups"]) as followup_row:
                followup_buttons = [
                    gr.Button("", size="sm", visible=False, variant="secondary", elem_classes=["tt-followup"])
                    for _ in range(FOLLOWUPS)
                ]
            with gr.Row():
                message = gr.Textbox(
                    placeholder=label("message_placeholder"),
                    show_label=False,
                    scale=6,
                    lines=1,
                    max_lines=6,
                    autofocus=True,
                    elem_id="tt-message",
                )
                send = gr.Button(label("send"), variant="primary", scale=1, min_width=100, elem_id="tt-send")
                stop = gr.Button(label("stop"), variant="stop", scale=1, min_width=100, visible=False, elem_id="tt-stop")
            questions = examples(assistant.settings)
            if questions:  # a corpus may come without examples
                gr.Examples([[q] for q in questions], inputs=[message], label=label("examples"))
        with gr.Tab(label("tab_documents")):
            documents = gr.HTML("", css_template=DOCUMENTS_CSS, js_on_load=None)
            reload_button = gr.Button(label("refresh"), size="sm")

        with gr.Tab(label("tab_centers")):
            from assistant.web.ui.centers import build_centers_tab

            centers = build_centers_tab(assistant, sources_path=sources_path, language=lang)

        after = [store, past, exports, followup_row, *followup_buttons]
        private: dict[str, Any] = {"api_visibility": "private"}
        answering: list[Any] = []

        def wire(event: Any, *, api_name: str | None = None) -> None:
            """One way to ask: lock Send, answer, then keep the conversation and unlock."""
            run = event.then(
                respond,
                [message, chatbot, history, lang],
                [message, chatbot, history],
                concurrency_id="chat",
                show_progress="hidden",
                **({"api_name": api_name} if api_name else {"api_visibility": "undocumented"}),
            )
            answering.append(run)
            run.then(tools, [chat_id, history, store, lang], after, queue=False, **private).then(
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
        stop.click(
            stopped, [chatbot, chat_id, history, store, lang], [chatbot, send, stop, *after],
            cancels=answering, queue=False, **private,
        )
        new_button.click(
            new_chat, [store], [chat_id, chatbot, history, message, *after], queue=False, **private
        )
        past.input(open_chat, [past, store, lang], [chat_id, chatbot, history, *after], queue=False, **private)
        def load_status(request: gr.Request) -> tuple[str, str]:
            return refresh(page_language(request))

        def load_centers(
            region: str | None, ids: list[str] | None, goal: str, countries: str, sector: str, request: gr.Request
        ) -> list[Any]:
            return centers.render(page_language(request), region, ids, goal, countries, sector)

        demo.load(restore, [store], [lang, chat_id, chatbot, history, *after], **private)
        demo.load(load_status, None, [status, documents], **private)
        demo.load(load_centers, centers.inputs, centers.outputs, **private)
        reload_button.click(refresh, [lang], [status, documents], **private)
        lang.input(None, [lang], None, js=SWITCH_JS, **private)
        lang.input(relabel, [lang, chatbot, history, chat_id], [chatbot, exports], queue=False, **private)
        lang.input(refresh, [lang], [status, documents], **private)
        lang.input(centers.render, [lang, *centers.inputs], centers.outputs, **private)
    return demo


def ui_theme() -> gr.themes.Base:
    """The default look with the system's fonts (nothing fetched, CJK from the OS)."""
    return gr.themes.Default(
        font=["system-ui", "-apple-system", "Segoe UI", "Noto Sans CJK SC", "Noto Sans SC", "PingFang SC", "sans-serif"],
        font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"],
    )


def mount_ui(app: FastAPI, assistant: Assistant, path: str = "/ui") -> FastAPI:
    """Mount the UI on `app` at `path` with the system-font theme (the app factory's one call).

    No Gradio footer (API, "built with Gradio", Settings): the page is for the assistant's
    users, and its language switcher is the UI's own. The page's language, link preview,
    icon, style and script come from `PageChrome`; the components' words from `gradio_i18n`.
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
        i18n=gradio_i18n(),
    )
