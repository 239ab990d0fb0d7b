"""The Gradio UI: rendering of answers and sources, the chat handler, and an offline page."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import gradio as gr
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from assistant.errors import Unavailable
from assistant.llm.base import ChatModelError
from assistant.pipeline.answer import DoneEvent, SourcesEvent, TokenEvent, Turn
from assistant.settings import PROJECT_ROOT
from assistant.types import Answer, Chunk, Citation, Document, SearchHit
from assistant.web.ui.chat import (
    build_ui,
    chat_handler,
    documents_table,
    examples,
    history_to_turns,
    render_exports,
    status_line,
    ui_theme,
)
from assistant.web.ui.conversations import (
    answer_from_dict,
    chat_choices,
    conversation_messages,
    export_html,
    export_markdown,
    find_chat,
    save_chat,
    stopped_turn,
    suggest_followups,
)
from assistant.web.ui.page import rewrite_page
from assistant.web.ui.render import (
    render_answer,
    render_documents,
    render_pending,
    render_status,
    source_cards,
    source_url,
)

XSS = "<img src=x onerror=alert(1)>"


def _citation(n: int = 1, **kw: Any) -> Citation:
    data: dict[str, Any] = {
        "n": n,
        "chunk_id": f"doc-a#{n}",
        "doc_id": "doc-a",
        "title": "China–ASEAN Technology Transfer Center",
        "quote": "The center was founded in Nanning in 2013.",
        "start": 120,
        "end": 163,
        "kind": "policy_paper",
        "published": "2023-05-01",
    }
    data.update(kw)
    return Citation(**data)


def _answer(**kw: Any) -> Answer:
    data: dict[str, Any] = {
        "answer": "The China–ASEAN center serves ASEAN countries [1].",
        "citations": [_citation()],
        "grounded": True,
        "backend": "local",
    }
    data.update(kw)
    return Answer(**data)


# ---------------------------------------------------------------------- rendering


def test_render_answer_lists_sources_with_links_to_the_quoted_span() -> None:
    text = render_answer(
        _answer(
            citations=[
                _citation(1),
                _citation(2, doc_id="sco news/1", title="SCO center", kind="news_report", published=None,
                          start=5, end=40, quote="Launched in Qingdao."),
            ]
        ),
        question="Which center serves ASEAN?",
    )
    assert text.startswith('<div class="tt-msg tt-qlang-en"><div class="tt-answer">The China–ASEAN center serves ASEAN countries <a class="tt-cite tt-n-1" href="/sources/doc-a?start=120&amp;end=163&amp;lang=en#quote"')
    assert "Sources" in text
    assert '[1] <span class="tt-src-title">China–ASEAN Technology Transfer Center</span> — <span class="tt-src-meta">policy paper, 2023-05-01</span>' in text
    assert '<span class="tt-src-title">SCO center</span> — <span class="tt-src-meta">news report, date not stated</span>' in text
    assert 'href="/sources/doc-a?start=120&amp;end=163&amp;lang=en#quote"' in text
    # The doc id is URL-quoted, the offsets are those of the citation.
    assert 'href="/sources/sco%20news%2F1?start=5&amp;end=40&amp;lang=en#quote"' in text
    assert 'class="tt-src tt-n-2 tt-lang-en"' in text
    assert "noopener" in text
    assert '<blockquote class="tt-quote">The center was founded in Nanning in 2013.</blockquote>' in text
    assert "Open passage" in text and "tt-copy" in text
    assert "Answered by" in text and "local" in text
    assert "No supporting passage" not in text
    assert "\n" not in text  # one HTML block: Markdown never parses inside it


def test_only_known_markers_become_citation_links() -> None:
    text = render_answer(_answer(answer="Founded in 2013 [1], see also [7] and [[1]](https://evil.example)."))
    assert text.count('class="tt-cite') == 2
    assert "[7]" in text and 'tt-n-7' not in text
    assert 'href="https://evil.example"' not in text  # a Markdown link from a document stays text


def test_page_of_a_paged_source_is_shown() -> None:
    text = render_answer(_answer(citations=[_citation(page=4)]))
    assert "policy paper, 2023-05-01, p. 4" in text


def test_quote_language_is_marked_for_translation() -> None:
    text = render_answer(_answer(citations=[_citation(quote="中国—东盟技术转移中心于2013年成立。")]), question="When?")
    assert "tt-qlang-en" in text and "tt-lang-zh-Hans" in text


def test_a_checked_answer_that_differs_from_the_draft_says_so() -> None:
    answer = _answer()
    assert "Checked answer" not in render_answer(answer, draft="The China–ASEAN center serves ASEAN countries.")
    assert "Checked answer" in render_answer(answer, draft="The China–ASEAN center serves everyone.")
    assert "Checked answer" not in render_answer(answer)  # nothing streamed (extractive)


def test_quotes_and_titles_from_documents_are_escaped() -> None:
    text = render_answer(
        _answer(
            answer=f"Quoted: {XSS} [1]",
            citations=[_citation(title=f"Title {XSS}", quote=f"Quote <script>alert(2)</script> {XSS}")],
        )
    )
    assert XSS not in text
    assert "<script>" not in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in text
    assert 'title="Title &lt;img src=x onerror=alert(1)&gt;"' in text


def test_quote_with_blank_lines_stays_one_html_block() -> None:
    text = render_answer(_answer(citations=[_citation(quote="first paragraph\n\nsecond paragraph")]))
    assert "\n" not in text
    assert "first paragraph<br><br>second paragraph" in text


def test_pending_message_shows_progress_cards_and_draft() -> None:
    searching = render_pending("t1", None)
    assert "Searching the documents" in searching and "0 s" in searching and "tt-turn-t1" in searching
    cards = source_cards([_hit()])
    reading = render_pending("t1", cards, elapsed=7.4)
    assert "Reading 1 passages" in reading and ">7 s<" in reading
    assert 'class="tt-card" href="/sources/doc-a?start=0&amp;end=18&amp;lang=en#quote"' in reading
    assert "China–ASEAN &lt;i&gt;paper&lt;/i&gt;" in reading and "policy paper, 2023-05-01" in reading
    assert "中国—东盟技术转移中心面向东盟国家。" in reading
    writing = render_pending("t1", cards, "The <b>draft</b>")
    assert "Writing the answer" in writing and "The &lt;b&gt;draft&lt;/b&gt; ▍" in writing
    long = render_pending("t1", [{**cards[0], "text": "x" * 1000}])
    assert "x" * 179 + "…" in long and "x" * 181 not in long


def test_ungrounded_answer_says_no_passage_was_found() -> None:
    text = render_answer(_answer(answer="The documents do not cover this question.", citations=[], grounded=False))
    assert "The documents do not cover this question." in text
    assert "No supporting passage was found" in text
    assert "Sources" not in text


def test_notice_is_shown_above_the_answer() -> None:
    text = render_answer(_answer(notice="The language model is unavailable (timeout)."))
    assert '<p class="tt-notice">⚠️ The language model is unavailable (timeout).</p><div class="tt-answer">' in text
    assert text.index("unavailable") < text.index("serves ASEAN")


def test_source_url() -> None:
    assert source_url("doc-a", 3, 9) == "/sources/doc-a?start=3&end=9#quote"
    assert source_url("doc-a") == "/sources/doc-a"
    assert source_url("x", 1, 2, base="/app/sources") == "/app/sources/x?start=1&end=2#quote"
    # In the page's language: the passage opens in it.
    assert source_url("doc-a", 3, 9, lang="zh-Hant") == "/sources/doc-a?start=3&end=9&lang=zh-Hant#quote"
    assert source_url("doc-a", lang="en") == "/sources/doc-a?lang=en"


def test_history_to_turns_takes_text_and_limits_turns() -> None:
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "Which center serves ASEAN?"},
        {"role": "assistant", "content": [{"type": "text", "text": "The China–ASEAN center [1]."}]},
        {"role": "system", "content": "ignored"},
        {"role": "user", "content": "   "},
        {"role": "user", "content": "When was it launched?"},
    ]
    assert history_to_turns(messages) == [
        Turn("user", "Which center serves ASEAN?"),
        Turn("assistant", "The China–ASEAN center [1]."),
        Turn("user", "When was it launched?"),
    ]
    assert history_to_turns(messages, max_turns=1) == [Turn("user", "When was it launched?")]
    assert history_to_turns(messages, max_turns=0) == []


def test_render_status() -> None:
    ready = render_status({"ready": True, "chunks": 1234, "backend": "local", "model": "ok"})
    assert "Ready" in ready and "local" in ready and "1,234" in ready
    down = render_status({"ready": False, "reason": "No index: run `assistant ingest`."})
    assert "Not ready" in down and "run `assistant ingest`" in down


def _doc(doc_id: str, title: str, **kw: Any) -> SimpleNamespace:
    fields = {"kind": "policy_paper", "published": "2024-01-02", "language": "zh-Hans"} | kw
    return SimpleNamespace(document=SimpleNamespace(doc_id=doc_id, title=title, **fields), chunks=7)


def test_render_documents_links_each_row_and_escapes_titles() -> None:
    table = render_documents([_doc("doc-a", f"Doc {XSS}"), _doc("doc-b", "News", kind="news_report", published=None)])
    assert 'href="/sources/doc-a?lang=en"' in table and 'href="/sources/doc-b?lang=en"' in table
    assert XSS not in table and "&lt;img" in table
    assert "policy paper" in table and "news report" in table and "date not stated" in table
    assert ">7</td>" in table
    assert "No documents" in render_documents([])


# ---------------------------------------------------------------------- chat handler


class FakeAssistant:
    """Just what the UI calls; the real pipeline is tested elsewhere."""

    backend = "fake"
    queue = None

    def probe(self) -> None:
        pass

    def __init__(self, events: list[Any] | None = None, error: Exception | None = None) -> None:
        self.settings = SimpleNamespace(
            max_message_chars=100, max_history_turns=20, corpus_dir=PROJECT_ROOT / "corpus"
        )
        self.events = events if events is not None else [
            SourcesEvent((_hit(),)),
            TokenEvent("The China–ASEAN "),
            TokenEvent("center <b>raw</b>"),
            DoneEvent(_answer(backend="fake")),
        ]
        self.error = error
        self.calls: list[tuple[str, list[Turn]]] = []

    def chat_stream(self, message: str, history: list[Turn] | None = None) -> Iterator[Any]:
        self.calls.append((message, list(history or [])))
        yield from self.events
        if self.error is not None:
            raise self.error

    def status(self) -> dict[str, Any]:
        return {"ready": True, "chunks": 3, "backend": self.backend, "model": "ok"}

    def documents(self) -> list[Any]:
        if self.error is not None:
            raise self.error
        return [_doc("doc-a", "China–ASEAN")]


def _hit() -> SearchHit:
    text = "中国—东盟技术转移中心面向东盟国家。"
    doc = Document("doc-a", "China–ASEAN <i>paper</i>", text, kind="policy_paper", published="2023-05-01")
    return SearchHit(1, Chunk("doc-a#0", "doc-a", 0, len(text), text), doc, 0.9)


def _run(fake: FakeAssistant, message: str, chat: list[Any] | None = None,
         history: list[Any] | None = None) -> list[tuple[str, list[dict[str, Any]], list[dict[str, Any]]]]:
    return list(chat_handler(fake)(message, chat or [], history or []))  # type: ignore[arg-type]


def test_chat_streams_tokens_then_replaces_them_with_the_checked_answer() -> None:
    fake = FakeAssistant()
    updates = _run(fake, "  Which center serves ASEAN?  ")
    assert fake.calls == [("Which center serves ASEAN?", [])]
    box, chat, history = updates[-1]
    assert box == ""
    assert chat[-2] == {"role": "user", "content": "Which center serves ASEAN?"}
    final = _answer(backend="fake")
    assert chat[-1] == {
        "role": "assistant",
        "content": render_answer(final, question="Which center serves ASEAN?", draft="The China–ASEAN center <b>raw</b>"),
    }
    assert "Checked answer" in chat[-1]["content"]  # the draft said something else
    # In between: the progress line, then the source cards at once, then the draft, growing.
    streamed = [u[1][-1]["content"] for u in updates[:-1]]
    assert "Searching the documents" in streamed[0] and "tt-progress" in streamed[0]
    assert "Reading 1 passages" in streamed[1] and 'class="tt-card" href="/sources/doc-a?start=0&amp;end=18&amp;lang=en#quote"' in streamed[1]
    assert "tt-card" in streamed[-1] and "Writing the answer" in streamed[-1]
    assert "The China–ASEAN center &lt;b&gt;raw&lt;/b&gt; ▍" in streamed[-1]
    # While it is written the history holds the question with a stopped answer (what Stop keeps).
    assert all(u[2] == [{"role": "user", "content": "Which center serves ASEAN?"}, stopped_turn()] for u in updates[:-1])
    # The plain history keeps the texts, and the checked answer as data for reopening and export.
    assert history == [
        {"role": "user", "content": "Which center serves ASEAN?"},
        {"role": "assistant", "content": "The China–ASEAN center serves ASEAN countries [1].", "answer": final.as_dict()},
    ]


class SlowQueuedAssistant(FakeAssistant):
    """A fake whose answers hold a place in a real one-at-a-time queue and never end by themselves."""

    def __init__(self) -> None:
        super().__init__()
        from assistant.llm.queue import ChatQueue

        self.queue = ChatQueue(concurrency=1, max_waiting=0, wait_timeout=5)  # type: ignore[assignment]
        self.closed = threading.Event()

    def chat_stream(self, message: str, history: list[Turn] | None = None) -> Iterator[Any]:
        with self.queue.turn():  # type: ignore[attr-defined]
            try:
                yield SourcesEvent((_hit(),))
                while True:  # a model that keeps talking
                    time.sleep(0.02)
                    yield TokenEvent("more ")
            finally:
                self.closed.set()


def _admitted(fake: SlowQueuedAssistant) -> int:
    return int(fake.queue.snapshot()["admitted"])  # type: ignore[attr-defined]


def test_stop_closes_the_answer_and_frees_the_queue() -> None:
    fake = SlowQueuedAssistant()
    updates = chat_handler(fake)("Which center serves ASEAN?", [], [])  # type: ignore[arg-type]
    for _, chat, _ in updates:
        if "more more" in chat[-1]["content"]:
            break
    assert _admitted(fake) == 1
    updates.close()  # what Gradio does to the handler when Stop cancels the event
    assert fake.closed.wait(5)  # the model's stream was closed
    for _ in range(100):
        if _admitted(fake) == 0:
            break
        time.sleep(0.05)
    assert _admitted(fake) == 0
    fake.queue.admit().release()  # type: ignore[attr-defined]  # a free place: the next chat may start


def test_stop_before_the_answer_started_gives_the_place_back() -> None:
    fake = SlowQueuedAssistant()
    updates = chat_handler(fake)("Which center serves ASEAN?", [], [])  # type: ignore[arg-type]
    next(updates)  # "Searching…" shown, the turn admitted but not started
    assert _admitted(fake) == 1
    updates.close()
    assert _admitted(fake) == 0


def test_follow_up_passes_previous_turns() -> None:
    fake = FakeAssistant()
    _, chat, history = _run(fake, "Which center serves ASEAN?")[-1]
    _run(fake, "When was it launched?", chat, history)
    assert fake.calls[-1] == (
        "When was it launched?",
        [
            Turn("user", "Which center serves ASEAN?"),
            Turn("assistant", "The China–ASEAN center serves ASEAN countries [1]."),
        ],
    )


def test_chat_keeps_gradio_normalized_messages() -> None:
    """Gradio hands the Chatbot value back with content as a list of text parts."""
    fake = FakeAssistant()
    chat_in = [
        {"role": "user", "content": [{"type": "text", "text": "Q1"}], "metadata": None, "options": None},
        {"role": "assistant", "content": [{"type": "text", "text": "A1 with sources"}]},
    ]
    _, chat, _ = _run(fake, "Q2", chat_in, [])[-1]
    assert chat[0] == {"role": "user", "content": "Q1"}
    assert chat[1] == {"role": "assistant", "content": "A1 with sources"}
    assert len(chat) == 4


def test_empty_message_does_nothing() -> None:
    fake = FakeAssistant()
    assert _run(fake, "   ") == [("", [], [])]
    assert fake.calls == []


def test_too_long_message_states_the_limit() -> None:
    fake = FakeAssistant()
    updates = _run(fake, "x" * 101)
    assert fake.calls == []
    box, chat, history = updates[-1]
    assert box == "x" * 101  # kept, to be shortened
    assert "limit is 100" in chat[-1]["content"]
    assert history == []


@pytest.mark.parametrize(
    "error",
    [Unavailable("No index: run `assistant ingest`."), ChatModelError("model timed out"), KeyError("boom")],
)
def test_errors_become_a_friendly_message(error: Exception, caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeAssistant(events=[TokenEvent("partial")], error=error)
    _, chat, history = _run(fake, "Which center serves ASEAN?")[-1]
    content = chat[-1]["content"]
    assert "The assistant cannot answer right now:" in content
    assert "Traceback" not in content and "partial" not in content
    if isinstance(error, KeyError):
        assert "boom" not in content and "unexpected error" in content
    else:
        assert str(error) in content
    assert history == []
    assert any(r.exc_info for r in caplog.records if r.name == "assistant.web.ui.chat")


def test_stream_without_final_answer_is_reported() -> None:
    fake = FakeAssistant(events=[TokenEvent("partial")])
    _, chat, history = _run(fake, "Q")[-1]
    assert "cannot answer right now" in chat[-1]["content"]
    assert history == []


def test_status_and_documents_survive_unavailable() -> None:
    fake = FakeAssistant(error=Unavailable("No index: run `assistant ingest`."))
    assert "run `assistant ingest`" in documents_table(fake)  # type: ignore[arg-type]
    assert "China–ASEAN" in documents_table(FakeAssistant())  # type: ignore[arg-type]
    broken = SimpleNamespace(status=lambda: (_ for _ in ()).throw(Unavailable("index not loaded")))
    assert "index not loaded" in status_line(broken)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- the page


def _external_assets(page: str) -> list[str]:
    """URLs off this origin that the page would load (scripts, stylesheets, fonts, images)."""
    tags = re.findall(r"<(?:script|link|img|iframe)\b[^>]*>", page, flags=re.IGNORECASE)
    urls = [
        m.group(1)
        for tag in tags
        for m in re.finditer(r"""\b(?:src|href)\s*=\s*["']?([^"'\s>]+)""", tag, flags=re.IGNORECASE)
    ]
    urls += re.findall(r"""@import\s+(?:url\()?["']?(https?:[^"')\s]+)""", page)
    urls += re.findall(r"""url\(["']?((?:https?:)?//[^"')]+)""", page)
    return [u for u in urls if re.match(r"(?:https?:)?//", u, flags=re.IGNORECASE)]


@pytest.mark.parametrize("theme", [None, "system"])
def test_page_is_served_without_remote_assets(theme: str | None) -> None:
    fake = FakeAssistant()
    demo = build_ui(fake)  # type: ignore[arg-type]
    assert isinstance(demo, gr.Blocks)
    app = FastAPI()
    gr.mount_gradio_app(app, demo, path="/ui", theme=ui_theme() if theme else None)
    with TestClient(app) as client:
        page = client.get("/ui/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        html_text = page.text
        assert "Technology Transfer Assistant · 技术转移助手" in html_text
        assert "fonts.googleapis" not in html_text and "fonts.gstatic" not in html_text
        assert _external_assets(html_text) == []
        theme_css = client.get("/ui/theme.css")
        assert theme_css.status_code == 200
        assert "fonts.googleapis" not in theme_css.text
        assert _external_assets(theme_css.text) == []
        # The examples (the corpus's examples.yaml) are part of the page's config.
        questions = examples(fake.settings)  # type: ignore[arg-type]
        assert questions
        for question in questions:
            assert question in html_text
        config = client.get("/ui/config").json()
        names = {d.get("api_name") for d in config["dependencies"]}
        assert "chat" in names


def test_system_theme_uses_only_local_fonts() -> None:
    theme = ui_theme()
    assert theme._stylesheets == []
    assert "system-ui" in theme.font


def test_gradio_file_cache_is_emptied_regularly() -> None:
    demo = build_ui(FakeAssistant())  # type: ignore[arg-type]
    frequency, age = demo.delete_cache  # type: ignore[misc]
    assert 0 < frequency <= 3600 and 0 < age <= 3600


# ---------------------------------------------------------------------- conversations


def _history(question: str = "Which center serves ASEAN?", **kw: Any) -> list[dict[str, Any]]:
    answer = _answer(**kw)
    return [
        {"role": "user", "content": question},
        {"role": "assistant", "content": answer.answer, "answer": answer.as_dict()},
    ]


def test_answers_come_back_from_their_data() -> None:
    answer = _answer(citations=[_citation(page=3)], related=[_citation(2)], notice="n", query="q")
    assert answer_from_dict(answer.as_dict()) == answer
    assert answer_from_dict({"answer": "x", "citations": [{"bogus": 1}, "x"], "related": "y"}).citations == []


def test_conversations_are_kept_newest_first_and_reopened() -> None:
    store = save_chat(None, "a", _history("First question?"))
    store = save_chat(store, "b", _history("Second question?"))
    assert chat_choices(store) == [("Second question?", "b"), ("First question?", "a")]
    store = save_chat(store, "a", [*_history("First question?"), *_history("And then?")])
    assert [c[1] for c in chat_choices(store)] == ["a", "b"]  # the one just used comes first
    assert len(find_chat(store, "a")) == 4 and find_chat(store, "zzz") == []
    assert chat_choices(save_chat(store, "c", [])) == chat_choices(store)  # an empty chat is not kept
    many = None
    for i in range(40):
        many = save_chat(many, str(i), _history(f"Q{i}?"))
    assert len(chat_choices(many)) == 30 and chat_choices(many)[0] == ("Q39?", "39")
    assert chat_choices({"chats": "garbage"}) == [] and chat_choices("garbage") == []
    # Shown again from the plain history: the same rendering as when it was answered.
    shown = conversation_messages(find_chat(store, "a"))
    assert shown[0] == {"role": "user", "content": "First question?"}
    assert shown[1]["content"] == render_answer(_answer(), question="First question?")
    assert len(shown) == 4


def test_exports_carry_questions_answers_quotes_titles_dates_and_links() -> None:
    history = [
        *_history(f"Which center? {XSS}"),
        *_history("Related?", answer="Not covered.", citations=[], grounded=False, related=[_citation(2, quote="Nearby fact.")]),
    ]
    md = export_markdown(history, site="http://127.0.0.1:8000")
    assert f"## Which center? {XSS}" in md
    assert "The China–ASEAN center serves ASEAN countries [1]." in md
    assert "1. **China–ASEAN Technology Transfer Center** — policy paper, 2023-05-01" in md
    assert "> The center was founded in Nanning in 2013." in md
    assert "<http://127.0.0.1:8000/sources/doc-a?start=120&end=163&lang=en#quote>" in md
    assert "Related passages" in md and "> Nearby fact." in md
    page = export_html(history, site="http://127.0.0.1:8000")
    assert page.startswith("<!doctype html>") and "@media print" in page
    assert XSS not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<blockquote>The center was founded in Nanning in 2013.</blockquote>" in page
    assert 'href="http://127.0.0.1:8000/sources/doc-a?start=120&amp;end=163&amp;lang=en#quote"' in page
    links = render_exports("abc", history)
    assert 'download="conversation-abc.md"' in links and 'href="data:text/markdown;charset=utf-8;base64,' in links
    assert 'download="conversation-abc.html"' in links and render_exports("abc", []) == ""


# ---------------------------------------------------------------------- follow-ups

NAMES = [("中国—东盟技术转移中心", "China–ASEAN Technology Transfer Center"), ("东盟", "ASEAN"),
         ("中国—上合组织技术转移中心", "China–SCO Technology Transfer Center")]


def test_followups_ask_about_the_cited_organization_what_was_not_asked() -> None:
    answer = _answer(citations=[_citation(quote="中国—东盟技术转移中心面向东盟国家。")])
    asked = suggest_followups("Which center serves ASEAN countries?", answer, NAMES)
    assert asked == [
        "When was the China–ASEAN Technology Transfer Center established?",
        "What services does the China–ASEAN Technology Transfer Center offer to companies?",
        "Where is the China–ASEAN Technology Transfer Center based?",
    ]
    # An aspect already asked about is not offered again; the language is the question's.
    when = suggest_followups("中国—东盟技术转移中心是什么时候成立的？", answer, NAMES)
    assert when[0] == "中国—东盟技术转移中心为企业提供哪些服务？" and not any("成立" in q for q in when)
    assert suggest_followups("哪個中心面向東盟國家？", answer, NAMES)[0] == "中國—東盟技術轉移中心是什麼時候成立的？"
    # Questions asked before in the conversation are not offered.
    again = suggest_followups("Which center?", answer, NAMES, asked_before=[asked[0]])
    assert asked[0] not in again


def test_followups_compare_two_cited_organizations_and_need_evidence() -> None:
    two = _answer(citations=[_citation(quote="中国—东盟技术转移中心与中国—上合组织技术转移中心均于近年成立。")])
    out = suggest_followups("Which centers?", two, NAMES)
    assert "How does the China–ASEAN Technology Transfer Center compare with the China–SCO Technology Transfer Center?" in out
    assert len(out) == 3 and not any(q == "ASEAN?" for q in out)
    english = _answer(citations=[_citation(quote="The Zebra Lantern Technology Transfer Center opened in 2024.")])
    assert suggest_followups("What opened?", english)[0] == "When was the Zebra Lantern Technology Transfer Center established?"
    assert suggest_followups("Q?", _answer(citations=[]), NAMES) == []  # no evidence, no suggestion
    assert suggest_followups("Q?", _answer(citations=[_citation(quote="Nothing named here.")]), NAMES) == []


# ---------------------------------------------------------------------- page chrome


def test_the_page_names_the_product_and_shows_no_gradio_chrome() -> None:
    from assistant.web.ui.chat import mount_ui

    app = FastAPI()
    mount_ui(app, FakeAssistant())  # type: ignore[arg-type]
    with TestClient(app) as client:
        page = client.get("/ui/").text
        config = client.get("/ui/config").json()
    assert config.get("footer_links") == []
    assert 'content="Gradio"' not in page and "Click to try out the app" not in page
    assert "raw.githubusercontent.com" not in page and 'rel="manifest"' not in page
    assert page.count('property="og:title"') == 1
    assert '<meta property="og:title" content="Technology Transfer Assistant · 技术转移助手">' in page
    assert '<html lang="en"' in page.replace("\n\t", " ") or 'lang="en"' in page
    assert '<link rel="icon" href="data:image/svg+xml,' in page
    assert "window.__ttChat" in page and ".tt-pop" in page  # the UI's script and style, inline
    assert _external_assets(page) == []


def test_rewrite_page_keeps_the_rest() -> None:
    page = '<html><head><meta property="og:title" content="Gradio" /><title>x</title></head><body>b</body></html>'
    out = rewrite_page(page)
    assert 'content="Gradio"' not in out and "<title>x</title>" in out and "<body>b</body>" in out
