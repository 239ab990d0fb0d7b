"""The Gradio UI: rendering of answers and sources, the chat handler, and an offline page."""

from __future__ import annotations

import re
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
    render_answer,
    render_documents,
    render_status,
    source_url,
    status_line,
    ui_theme,
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
        )
    )
    assert text.startswith('<div class="tt-answer">The China–ASEAN center serves ASEAN countries [1].</div>')
    assert "Sources" in text
    assert "[1] China–ASEAN Technology Transfer Center — policy paper, 2023-05-01" in text
    assert "[2] SCO center — news report, date not stated" in text
    assert 'href="/sources/doc-a?start=120&amp;end=163#quote"' in text
    # The doc id is URL-quoted, the offsets are those of the citation.
    assert 'href="/sources/sco%20news%2F1?start=5&amp;end=40#quote"' in text
    assert text.count('target="_blank"') == 2 and "noopener" in text
    assert "<blockquote>The center was founded in Nanning in 2013.</blockquote>" in text
    assert "open passage" in text
    assert "Answered by" in text and "local" in text
    assert "No supporting passage" not in text


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


def test_quote_with_blank_lines_stays_one_html_block() -> None:
    text = render_answer(_answer(citations=[_citation(quote="first paragraph\n\nsecond paragraph")]))
    sources = text[text.index("<details>") :]
    block = sources[: sources.index("</details>")]
    assert "\n" not in block
    assert "first paragraph<br><br>second paragraph" in block


def test_ungrounded_answer_says_no_passage_was_found() -> None:
    text = render_answer(_answer(answer="The documents do not cover this question.", citations=[], grounded=False))
    assert "The documents do not cover this question." in text
    assert "No supporting passage was found" in text
    assert "Sources" not in text


def test_notice_is_shown_above_the_answer() -> None:
    text = render_answer(_answer(notice="The language model is unavailable (timeout)."))
    assert text.startswith("⚠️ The language model is unavailable (timeout).")
    assert text.index("unavailable") < text.index("serves ASEAN")


def test_source_url() -> None:
    assert source_url("doc-a", 3, 9) == "/sources/doc-a?start=3&end=9#quote"
    assert source_url("doc-a") == "/sources/doc-a"
    assert source_url("x", 1, 2, base="/app/sources") == "/app/sources/x?start=1&end=2#quote"


def test_history_to_turns_takes_text_and_limits_turns() -> None:
    messages = [
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
    assert 'href="/sources/doc-a"' in table and 'href="/sources/doc-b"' in table
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
    assert chat[-1] == {"role": "assistant", "content": render_answer(_answer(backend="fake"))}
    # In between: a placeholder, then the streamed text (escaped), growing.
    streamed = [u[1][-1]["content"] for u in updates[:-1]]
    assert "Searching" in streamed[0]
    # The passages being read show before any text, and stay while the draft grows.
    assert "Reading 1 passages" in streamed[1] and 'href="/sources/doc-a"' in streamed[1]
    assert "Reading 1 passages" in streamed[-1]
    assert '<div class="tt-answer">The China–ASEAN center &lt;b&gt;raw&lt;/b&gt; ▍</div>' in streamed[-1]
    # The plain history keeps the texts only, without the sources block.
    assert history == [
        {"role": "user", "content": "Which center serves ASEAN?"},
        {"role": "assistant", "content": "The China–ASEAN center serves ASEAN countries [1]."},
    ]


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
