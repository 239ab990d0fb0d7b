"""The UI's language: which one a request gets, the page served in it, everything the
server renders in it, and a stopped answer kept in the conversation."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace
from typing import Any

import gradio as gr
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.requests import Request

from assistant.types import Answer, Citation
from assistant.web.api.session import _login_form
from assistant.web.api.session import page_language as login_language
from assistant.web.languages import LANGUAGE_COOKIE, chosen_language, language_of, page_language
from assistant.web.ui.chat import build_ui, chat_handler, history_to_turns, mount_ui, render_exports
from assistant.web.ui.chat import page_language as event_language
from assistant.web.ui.conversations import (
    chat_choices,
    conversation_messages,
    export_html,
    export_markdown,
    find_chat,
    save_chat,
    stopped_turn,
)
from assistant.web.ui.page import gradio_locale_module, request_language, rewrite_page
from assistant.web.ui.render import (
    describe_source,
    render_answer,
    render_documents,
    render_pending,
    render_status,
)
from tests.web.ui.test_chat import FakeAssistant, SlowQueuedAssistant, _doc

PAIR = re.compile(r"[A-Za-z]\w* · [\u4e00-\u9fff]")  # "Sources · 来源": both languages at once


# ---------------------------------------------------------------------- which language


@pytest.mark.parametrize(
    ("tag", "language"),
    [
        ("zh-TW", "zh-Hant"), ("zh-HK", "zh-Hant"), ("zh-MO", "zh-Hant"), ("zh-Hant", "zh-Hant"),
        ("zh-Hant-CN", "zh-Hant"), ("zh_TW", "zh-Hant"), ("zh-CN", "zh-Hans"), ("zh-SG", "zh-Hans"),
        ("zh", "zh-Hans"), ("zh-Hans-HK", "zh-Hant"), ("en", "en"), ("en-GB", "en"), ("fr", None), ("", None),
    ],
)
def test_a_language_tag_names_one_of_the_three(tag: str, language: str | None) -> None:
    assert language_of(tag) == language


def test_the_address_then_the_remembered_choice_then_the_browser() -> None:
    assert chosen_language(None, None, None) == "en"
    assert chosen_language(None, None, "fr-FR,zh-TW;q=0.5") == "zh-Hant"
    assert chosen_language(None, "zh-Hans", "zh-TW") == "zh-Hans"  # the remembered choice wins over the browser
    assert chosen_language("en", "zh-Hans", "zh-TW") == "en"  # ?lang= wins over both
    assert chosen_language("xx", "zh-Hans", "zh-TW") == "zh-Hans"  # a ?lang= naming none is passed over
    assert chosen_language(None, "garbage", "zh-CN") == "zh-Hans"  # so is a damaged cookie
    assert page_language(None, "en;q=0.4,zh-Hans;q=0.8") == "zh-Hans"


def test_a_request_for_the_page_reads_its_cookie_header() -> None:
    assert request_language(None, f"tt_session=abc; {LANGUAGE_COOKIE}=zh-Hant", "en-US") == "zh-Hant"
    assert request_language(None, 'broken="; x', "zh-CN") == "zh-Hans"
    assert request_language("en", f"{LANGUAGE_COOKIE}=zh-Hant", "zh-CN") == "en"
    assert request_language(None, "", None) == "en"


def test_a_page_load_event_reads_the_pages_query_and_headers() -> None:
    request = SimpleNamespace(
        query_params={"lang": "zh-Hant"}, headers={"accept-language": "en-US", "cookie": f"{LANGUAGE_COOKIE}=zh-Hans"}
    )
    assert event_language(request) == "zh-Hant"  # type: ignore[arg-type]
    request.query_params = {}
    assert event_language(request) == "zh-Hans"  # type: ignore[arg-type]
    assert event_language(None) == "en"


# ---------------------------------------------------------------------- the page


@pytest.fixture(scope="module")
def client() -> Any:
    app = FastAPI()
    mount_ui(app, FakeAssistant())  # type: ignore[arg-type]
    with TestClient(app) as c:
        yield c


def _setup(page: str) -> dict[str, Any]:
    match = re.search(r"<script>window.__ttUi = (\{.*?\});</script>", page)
    assert match, "the page carries its language for chat.js"
    return dict(json.loads(match.group(1)))


@pytest.mark.parametrize(
    ("params", "headers", "language"),
    [
        ({}, {}, "en"),
        ({}, {"Accept-Language": "zh-TW,zh;q=0.9"}, "zh-Hant"),
        ({}, {"Accept-Language": "zh-HK"}, "zh-Hant"),
        ({}, {"Accept-Language": "zh-CN", "Cookie": f"{LANGUAGE_COOKIE}=en"}, "en"),
        ({"lang": "zh-Hant"}, {"Accept-Language": "en-US", "Cookie": f"{LANGUAGE_COOKIE}=zh-Hans"}, "zh-Hant"),
        ({"lang": "zz"}, {"Accept-Language": "zh-CN"}, "zh-Hans"),
    ],
)
def test_the_page_is_served_in_the_language_asked_for(
    client: Any, params: dict[str, str], headers: dict[str, str], language: str
) -> None:
    r = client.get("/ui/", params=params, headers=headers)
    assert r.status_code == 200
    assert re.search(rf'<html\s+lang="{language}"', r.text)
    assert r.headers["content-language"] == language
    assert "Accept-Language" in r.headers["vary"] and "Cookie" in r.headers["vary"]
    setup = _setup(r.text)
    assert setup["lang"] == language and setup["cookie"] == LANGUAGE_COOKIE
    assert setup["locales"] == {"en": "en", "zh-Hans": "zh-CN", "zh-Hant": "zh-TW"}
    assert setup["strings"]["zh-Hant"]["close"] == "關閉"


def test_the_page_carries_gradios_locale_switch_and_its_words(client: Any) -> None:
    setup = _setup(client.get("/ui/").text)
    module = setup["localeModule"]
    assert module == gradio_locale_module() and re.fullmatch(r"assets/core-[\w-]+\.js", module)
    served = client.get(f"/ui/{module}")
    assert served.status_code == 200 and "changeLocale" in served.text
    config = client.get("/ui/config").json()
    translations = config["i18n_translations"]
    assert translations["zh-TW"]["tt.send"] == "傳送" and translations["zh-CN"]["tt.send"] == "发送"
    # Every label, placeholder and button of the page is a key of the UI's strings, not a pair.
    for component in config["components"]:
        props = component.get("props", {})
        for name in ("label", "placeholder"):
            value = props.get(name)
            assert not (isinstance(value, str) and PAIR.search(value)), (component["type"], name, value)
        if component["type"] in ("button", "markdown"):
            assert not PAIR.search(str(props.get("value") or "")), props.get("value")


def test_script_data_cannot_end_its_script_early() -> None:
    page = rewrite_page('<html lang="en"><head></head><body></body></html>', "zh-Hant")
    assert page.startswith('<html lang="zh-Hant">')
    data = re.search(r"window.__ttUi = (.*?);</script>", page)
    assert data and "</" not in data.group(1)


# ---------------------------------------------------------------------- what the server renders


def _citation(**kw: Any) -> Citation:
    data: dict[str, Any] = {
        "n": 1, "chunk_id": "doc-a#1", "doc_id": "doc-a", "title": "Paper", "quote": "Founded in 2013.",
        "start": 5, "end": 21, "kind": "policy_paper", "published": "2023-05-01", "page": 4,
    }
    return Citation(**(data | kw))


def _answer() -> Answer:
    return Answer(
        answer="It serves ASEAN [1].", citations=[_citation()], grounded=True, backend="local",
        related=[_citation(n=2, kind="news_report", published=None, page=None)],
    )


@pytest.mark.parametrize(
    ("lang", "words"),
    [
        ("en", ["Sources", "Related passages", "Copy", "Answered by: local", "Open passage ↗", "policy paper, 2023-05-01, p. 4"]),
        ("zh-Hans", ["来源", "相关段落", "复制", "回答来源：local", "查看原文 ↗", "政策文件，2023-05-01，第 4 页", "新闻报道，未注明日期"]),
        ("zh-Hant", ["來源", "相關段落", "複製", "回答來源：local", "查看原文 ↗", "政策文件，2023-05-01，第 4 頁", "新聞報導，未註明日期"]),
    ],
)
def test_an_answer_is_shown_in_the_pages_language(lang: str, words: list[str]) -> None:
    text = render_answer(_answer(), question="Which center?", lang=lang, draft="Something else.")
    for word in words:
        assert word in text, word
    assert "It serves ASEAN" in text  # the answer itself is not translated
    assert f"start=5&amp;end=21&amp;lang={lang}#quote" in text  # its passage opens in the same language
    assert not PAIR.search(text)


def test_the_status_progress_documents_and_exports_follow_the_language() -> None:
    assert "**就緒** · 後端: `local` · 已索引 1,234 個段落" in render_status({"ready": True, "backend": "local", "chunks": 1234}, "zh-Hant")
    assert "**Not ready**: no index" in render_status({"ready": False, "reason": "no index"}, "en")
    assert "正在阅读 2 个段落…" in render_pending("t", [{"n": 1, "doc_id": "d", "title": "x"}] * 2, lang="zh-Hans")
    assert "正在檢索文件…" in render_pending("t", None, lang="zh-Hant")
    table = render_documents([_doc("doc-a", "Paper", language="zh-Hans, en")], lang="zh-Hant")
    assert "<th>標題</th>" in table and "政策文件" in table and "简体中文，English" in table
    assert "尚未索引任何文件。" in render_documents([], lang="zh-Hant")
    assert describe_source("white_paper", None, lang="en") == "white paper, date not stated"
    history = [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A [1].", "answer": _answer().as_dict()}]
    md = export_markdown(history, lang="zh-Hans")
    assert md.startswith("# 技术转移助手") and "**来源**" in md and "&lang=zh-Hans#quote>" in md
    page = export_html(history, lang="zh-Hant")
    assert '<html lang="zh-Hant">' in page and "<h3>來源</h3>" in page
    links = render_exports("abc", history, lang="zh-Hant")
    assert "匯出：" in links and "HTML（列印版）" in links


def test_the_login_page_is_in_the_language_asked_for() -> None:
    page = _login_form("/ui/", lang="zh-Hant").body.decode()
    assert '<html lang="zh-Hant">' in page and "登入" in page and "API 金鑰" in page and "密碼" in page
    assert "Log in" not in page
    english = _login_form("/ui/").body.decode()
    assert "Log in" in english and "登录" not in english

    def request(headers: dict[str, str], query: str = "") -> Request:
        raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        return Request({"type": "http", "method": "GET", "path": "/login", "query_string": query.encode(), "headers": raw})

    assert login_language(request({"Accept-Language": "zh-TW"})) == "zh-Hant"
    assert login_language(request({"Accept-Language": "zh-TW", "Cookie": f"{LANGUAGE_COOKIE}=en"})) == "en"
    assert login_language(request({}, "lang=zh-Hans")) == "zh-Hans"


# ---------------------------------------------------------------------- a stopped answer is kept


def test_a_stopped_answer_keeps_its_question_in_the_conversation() -> None:
    fake = SlowQueuedAssistant()
    updates = chat_handler(fake)("Which center serves ASEAN?", [], [], "zh-Hant")  # type: ignore[arg-type]
    _, shown, history = next(updates)
    assert "正在檢索文件…" in shown[-1]["content"]
    # What Stop finds in the history while the answer is written: the question, the answer stopped.
    assert history == [{"role": "user", "content": "Which center serves ASEAN?"}, stopped_turn()]
    updates.close()
    store = save_chat(None, "c1", history)
    assert chat_choices(store) == [("Which center serves ASEAN?", "c1")]
    kept = find_chat(store, "c1")
    shown_again = conversation_messages(kept, lang="zh-Hant")
    assert shown_again[0] == {"role": "user", "content": "Which center serves ASEAN?"}
    assert "⏹ 已停止。" in shown_again[1]["content"] and "tt-stopped" in shown_again[1]["content"]
    assert "_Stopped._" in export_markdown(kept)
    # The model is not given a question without its answer; later turns still go.
    later = [*kept, {"role": "user", "content": "And SCO?"}, {"role": "assistant", "content": "The SCO center."}]
    assert [(turn.role, turn.content) for turn in history_to_turns(later)] == [
        ("user", "And SCO?"), ("assistant", "The SCO center."),
    ]


def test_an_answer_that_fails_takes_its_question_back_out() -> None:
    from assistant.errors import Unavailable

    fake = FakeAssistant(events=[], error=Unavailable("index not loaded"))
    *_, (_, shown, history) = list(chat_handler(fake)("Q?", [], [], "zh-Hans"))  # type: ignore[arg-type]
    assert history == [] and "助手暂时无法回答：index not loaded" in shown[-1]["content"]


def test_the_switcher_offers_the_three_languages_by_their_own_names() -> None:
    demo = build_ui(FakeAssistant())  # type: ignore[arg-type]
    switch = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "tt-lang")
    assert isinstance(switch, gr.Dropdown)
    assert [tuple(c) for c in switch.choices] == [("English", "en"), ("简体中文", "zh-Hans"), ("繁體中文", "zh-Hant")]
