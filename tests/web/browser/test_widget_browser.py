"""The chat widget in real headless Chromium (Debian's `chromium`, driven by Playwright).

Three servers on loopback: the API (uvicorn, extractive backend, a temporary index with
one extra document carrying an XSS payload), the demo partner page on a second port
whose origin is allowed, and the same page on a third port whose origin is not.

A fourth server, the full app with the Gradio UI, serves the Centers tab for the phone test.
Every page is offline: a request to anything but 127.0.0.1 is aborted and recorded, and
each test ends by asserting that none was attempted. Desktop pages are 1366×900, phones
390×844.

Screenshots go to a temporary folder; with UPDATE_SCREENSHOTS=1 they replace
docs/images/widget-*.png and docs/images/centers-phone.png (used by the README).
"""

from __future__ import annotations

import html
import http.server
import os
import re
import shutil
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlparse

import pytest

from assistant.settings import PROJECT_ROOT
from tests.conftest import make_settings
from tests.web.browser.conftest import TIMEOUT

pytestmark = pytest.mark.slow

DEMO_PAGE = PROJECT_ROOT / "assistant" / "web" / "static" / "demo" / "partner.html"
IMAGES = PROJECT_ROOT / "docs" / "images"
ACCENT = "rgb(27, 58, 47)"  # data-accent="#1b3a2f" on the demo page
ANSWER_TIMEOUT = TIMEOUT
ASEAN = "Which technology transfer center serves ASEAN countries?"
XSS_QUESTION = "What markup sample does the Zebra Lantern Technology Transfer Center print on its notice board?"
XSS_DOC = """---
id: zebra-lantern-markup-note
title: Zebra Lantern Center note <img src=x onerror="window.__xss=3">
kind: news_report
published: 2024-05-01
language: en
---
Zebra Lantern Technology Transfer Center

The Zebra Lantern Technology Transfer Center prints the markup sample <img src=x onerror="window.__xss=1"> and <script>window.__xss=2</script> on its notice board as plain text.

The Zebra Lantern Technology Transfer Center opened in 2024 in the fictional harbour town of Lantern Bay.
"""
REFUSED = "This website is not allowed to use the assistant."
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
TOO_MANY = re.compile(r"Too many questions right now\. Please try again in \d+ seconds\.")
BAD_KEY = "This website's access key for the assistant is not valid."


# ------------------------------------------------------------------------------ servers


def _listen() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock


class ApiServer:
    """uvicorn in a thread, on a socket bound before it starts (no port race)."""

    def __init__(self, app: object) -> None:
        import uvicorn

        self.sock = _listen()
        self.port = self.sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1))  # type: ignore[arg-type]
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> ApiServer:
        self.thread.start()
        for _ in range(300):
            if self.server.started:
                return self
            self.thread.join(0.05)
        raise RuntimeError("the API server did not start")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


class PageServer:
    """Serves the demo partner page rewritten to call the API: /NAME.html uses keys[NAME].

    `keys` is read at request time, so it can be filled once the page origins are known.
    """

    def __init__(self, api_base: str, keys: dict[str, str]) -> None:
        template = DEMO_PAGE.read_text("utf-8").replace("http://127.0.0.1:8000", api_base)

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path, _, query = self.path.partition("?")
                name = path.removeprefix("/").removesuffix(".html")
                if name not in keys:
                    self.send_error(404)
                    return
                page = template.replace("REPLACE_WITH_PARTNER_KEY", keys[name])
                lang = dict(parse_qsl(query)).get("lang")  # ?lang=zh-Hant: the widget's data-lang
                if lang:
                    page = page.replace('data-lang="auto"', f'data-lang="{html.escape(lang)}"')
                body = page.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> PageServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@dataclass
class Sites:
    api: str
    allowed: str  # the demo page on an allowed origin
    refused: str  # the same page on an origin no partner allows
    state: Path  # the API's ASSISTANT_STATE_DIR (partners.db, feedback.db)


@pytest.fixture(scope="module")
def sites(built_index: Path, embedder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sites]:  # type: ignore[no-untyped-def]
    from assistant.partners.store import PartnerStore
    from assistant.pipeline.index import ingest, store_factory_for
    from assistant.service import Assistant, chunker_config
    from assistant.web.api import create_app
    from assistant.web.api.middleware import security_headers
    from assistant.web.api.routers import widget

    root = tmp_path_factory.mktemp("widget-browser")
    corpus = root / "corpus"
    shutil.copytree(PROJECT_ROOT / "corpus", corpus)
    (corpus / "zebra-lantern-markup-note.md").write_text(XSS_DOC, "utf-8")
    index = root / "index"
    shutil.copytree(built_index, index)
    settings = make_settings(
        ASSISTANT_CORPUS_DIR=corpus,
        ASSISTANT_INDEX_DIR=index,
        ASSISTANT_STATE_DIR=root / "var",
        # Every page here is one visitor (127.0.0.1): room for all the tests' questions.
        ASSISTANT_WIDGET_VISITOR_PER_MINUTE=1000,
        ASSISTANT_WIDGET_VISITOR_PER_DAY=10000,
    )
    ingest(corpus, index, embedder, store_factory_for(index, None, 0), chunker_config(settings))  # adds one document

    assistant = Assistant(settings, embedder, None)
    app = create_app(assistant=assistant, with_ui=False)
    if not any(getattr(r, "path", None) == widget.CHAT_PATH for r in app.routes):
        app.include_router(widget.router)
    security_headers(app)
    store = PartnerStore.from_settings(settings)
    with ApiServer(app) as api:
        api_base = f"http://127.0.0.1:{api.port}"
        # The page servers bind their ports first: their origins go into the allowlists.
        keys: dict[str, str] = {}
        allowed_server = PageServer(api_base, keys)
        refused_server = PageServer(api_base, keys)
        origin = allowed_server.origin
        _, keys["partner"] = store.add("demo partner", [origin], per_minute=1000, per_day=10000)
        _, keys["tight"] = store.add("tight partner", [origin], per_minute=1, per_day=100)
        keys["badkey"] = "ttw_000000000000_" + "A" * 43
        with allowed_server, refused_server:
            yield Sites(api=api_base, allowed=allowed_server.origin, refused=refused_server.origin, state=root / "var")
    store.close()
    assistant.close()


# ------------------------------------------------------------------------------ browser


@pytest.fixture
def open_page(browser, sites: Sites) -> Iterator[object]:  # type: ignore[no-untyped-def]
    """open_page(url, **context options) -> page; records every request the page makes."""
    contexts = []

    def open_(url: str, **options: object):  # type: ignore[no-untyped-def]
        context = browser.new_context(viewport=options.pop("viewport", DESKTOP), **options)
        offline(context)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(ANSWER_TIMEOUT)
        page.requested = []
        page.on("request", lambda r: page.requested.append(r.url))
        page.errors = []
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        page.add_init_script(
            "window.__ttw = {tokens: 0, answers: 0};"
            "document.addEventListener('ttw:token', () => window.__ttw.tokens++);"
            "document.addEventListener('ttw:answer', () => window.__ttw.answers++);"
        )
        page.goto(url)
        return page

    yield open_
    for c in contexts:
        assert c.off_host == [], f"requests off this host were attempted: {c.off_host}"
        c.close()


def offline(context) -> None:  # type: ignore[no-untyped-def]
    """Abort and record every request the context makes to anything but 127.0.0.1."""
    context.off_host = []

    def guard(route) -> None:  # type: ignore[no-untyped-def]
        url = route.request.url
        if url.startswith(("data:", "blob:")) or urlparse(url).hostname == "127.0.0.1":
            route.fallback()
        else:
            context.off_host.append(url)
            route.abort()

    context.route("**/*", guard)


def _screenshot(page, name: str, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    folder = IMAGES if os.environ.get("UPDATE_SCREENSHOTS") == "1" else tmp_path
    path = folder / name
    page.screenshot(path=str(path))
    assert path.stat().st_size > 5000
    return path


def _bubble(page):  # type: ignore[no-untyped-def]
    return page.get_by_role("button", name=re.compile(r"^Open chat"))


def _dialog(page, name: str = "Ask about technology transfer"):  # type: ignore[no-untyped-def]
    return page.get_by_role("dialog", name=name)


def _last_bot(page):  # type: ignore[no-untyped-def]
    return page.locator("tt-assistant .msg.bot").last


def _ask(page, question: str, box_name: str = "Your question"):  # type: ignore[no-untyped-def]
    box = page.locator("tt-assistant").get_by_role("textbox", name=box_name)
    box.fill(question)
    box.press("Enter")
    message = _last_bot(page)
    from playwright.sync_api import expect

    expect(message).to_have_attribute("data-state", re.compile("done|error"), timeout=ANSWER_TIMEOUT)
    return message


def _shadow_focus(page) -> str:  # type: ignore[no-untyped-def]
    return page.evaluate(
        """() => { const h = document.activeElement;
                   if (!h || h.tagName !== 'TT-ASSISTANT') return 'page:' + (h && h.tagName);
                   const a = h.shadowRoot.activeElement; return a ? (a.id || a.className) : 'none'; }"""
    )


# -------------------------------------------------------------------------------- tests


def test_the_demo_page_gets_a_streamed_cited_answer(open_page, sites: Sites, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    page = open_page(f"{sites.allowed}/partner.html")
    bubble = _bubble(page)
    expect(bubble).to_be_visible()
    expect(bubble).to_have_attribute("aria-expanded", "false")
    expect(_dialog(page)).to_be_hidden()
    # The page's loud button styles do not reach the widget, and the widget's do not reach the page.
    assert bubble.evaluate("b => getComputedStyle(b).backgroundColor") == ACCENT
    assert page.locator("#page-button").evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(192, 57, 43)"
    _screenshot(page, "widget-closed.png", tmp_path)

    bubble.click()
    dialog = _dialog(page)
    expect(dialog).to_be_visible()
    expect(bubble).to_have_attribute("aria-expanded", "true")
    assert _shadow_focus(page) == "ttw-input"
    expect(dialog).to_contain_text("I answer questions about China's international technology transfer centers")

    with page.expect_response(lambda r: r.url.endswith("/v1/widget/chat") and r.request.method == "POST") as info:
        dialog.get_by_role("button", name=ASEAN).click()  # a starter question
    response = info.value
    assert response.status == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["access-control-allow-origin"] == sites.allowed

    message = _last_bot(page)
    expect(message).to_have_attribute("data-state", "done")
    assert page.evaluate("window.__ttw.tokens") >= 1  # the answer arrived as token events first
    assert page.evaluate("window.__ttw.answers") == 1
    expect(message.locator(".text")).to_contain_text("[1]")
    citations = message.locator("details")
    assert citations.count() >= 1
    first = citations.first
    expect(first.locator("summary")).to_have_text(re.compile(r"^\[1\] \S"))
    quote = first.locator("blockquote")
    expect(quote).to_be_hidden()
    first.locator("summary").click()
    expect(quote).to_be_visible()
    quote_text = quote.inner_text().strip()
    assert quote_text and quote_text[:20] in message.locator(".text").inner_text()
    assert re.search("东盟|東盟|ASEAN", quote_text)
    expect(first.locator(".meta")).to_have_text(re.compile(r"^(policy paper|news report|document), "))
    expect(dialog.locator(".starters")).to_be_hidden()
    _screenshot(page, "widget-open.png", tmp_path)

    # Nothing was loaded from anywhere but the two local servers; no script errors.
    hosts = {re.match(r"https?://([^/]+)", u).group(1) for u in page.requested}  # type: ignore[union-attr]
    assert hosts == {sites.allowed.removeprefix("http://"), sites.api.removeprefix("http://")}
    assert page.errors == []


def test_a_follow_up_typed_question_is_answered(open_page, sites: Sites) -> None:  # type: ignore[no-untyped-def]
    page = open_page(f"{sites.allowed}/partner.html")
    _bubble(page).click()
    first = _ask(page, ASEAN)
    assert first.get_attribute("data-state") == "done"
    second = _ask(page, "哪个技术转移中心面向东盟国家？")
    assert second.get_attribute("data-state") == "done"
    assert page.locator("tt-assistant .msg.user").count() == 2


def test_keyboard_tab_enter_type_escape(open_page, sites: Sites) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    page = open_page(f"{sites.allowed}/partner.html")
    expect(_bubble(page)).to_be_visible()
    for _ in range(20):
        page.keyboard.press("Tab")
        if _shadow_focus(page) == "bubble":
            break
    assert _shadow_focus(page) == "bubble"
    page.keyboard.press("Enter")
    expect(_dialog(page)).to_be_visible()
    assert _shadow_focus(page) == "ttw-input"
    page.keyboard.type(ASEAN)
    page.keyboard.press("Enter")
    expect(_last_bot(page)).to_have_attribute("data-state", "done")
    page.keyboard.press("Escape")
    expect(_dialog(page)).to_be_hidden()
    assert _shadow_focus(page) == "bubble"
    expect(_bubble(page)).to_have_attribute("aria-expanded", "false")
    page.keyboard.press("Enter")  # opens again, the conversation kept
    expect(_dialog(page)).to_be_visible()
    assert page.locator("tt-assistant .msg.user").count() == 1


def test_a_page_on_a_non_allowed_origin_gets_the_refusal_message(open_page, sites: Sites) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    page = open_page(f"{sites.refused}/partner.html")
    _bubble(page).click()
    message = _ask(page, ASEAN)
    expect(message).to_have_attribute("data-state", "error")
    expect(message).to_have_attribute("role", "alert")
    expect(message).to_contain_text(REFUSED)


def test_the_widget_speaks_traditional_chinese(open_page, sites: Sites) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    page = open_page(f"{sites.refused}/partner.html?lang=zh-Hant")
    bubble = page.get_by_role("button", name=re.compile(r"^開啟對話"))
    bubble.click()
    dialog = _dialog(page, "技術轉移問答")
    expect(dialog.get_by_role("button", name="送出")).to_be_visible()
    expect(dialog.get_by_role("button", name="關閉對話")).to_be_visible()
    box = dialog.get_by_role("textbox", name="您的問題")
    box.fill("哪個技術轉移中心面向東盟國家？")
    box.press("Enter")
    expect(_last_bot(page)).to_have_text(re.compile("本網站未獲授權使用該助手。"))


def test_a_bad_key_gets_its_message(open_page, sites: Sites) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    page = open_page(f"{sites.allowed}/badkey.html")
    _bubble(page).click()
    expect(_ask(page, ASEAN)).to_contain_text(BAD_KEY)


def test_exceeding_the_quota_shows_the_429_message(open_page, sites: Sites) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    page = open_page(f"{sites.allowed}/tight.html")  # a partner allowed 1 question a minute
    _bubble(page).click()
    first = _ask(page, ASEAN)
    assert first.get_attribute("data-state") == "done"
    second = _ask(page, "哪个技术转移中心面向东盟国家？")
    expect(second).to_have_attribute("data-state", "error")
    expect(second).to_have_text(TOO_MANY)


def test_an_xss_payload_in_a_document_stays_inert_text(open_page, sites: Sites) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    page = open_page(f"{sites.allowed}/partner.html")
    _bubble(page).click()
    message = _ask(page, XSS_QUESTION)
    assert message.get_attribute("data-state") == "done"
    text = message.locator(".text")
    expect(text).to_contain_text('<img src=x onerror="window.__xss=1">')
    expect(text).to_contain_text("<script>window.__xss=2</script>")
    first = message.locator("details").first
    expect(first.locator("summary")).to_contain_text('Zebra Lantern Center note <img src=x onerror="window.__xss=3">')
    first.locator("summary").click()
    expect(first.locator("blockquote")).to_contain_text("<script>window.__xss=2</script>")
    page.wait_for_timeout(500)  # time for an injected image's onerror to fire, were there one
    assert page.evaluate("typeof window.__xss") == "undefined"
    counts = page.evaluate(
        "() => { const r = document.querySelector('tt-assistant').shadowRoot;"
        " return [r.querySelectorAll('img, script, iframe').length, document.querySelectorAll('img').length]; }"
    )
    assert counts == [0, 0]
    assert page.errors == []


def test_a_phone_sized_viewport_gets_a_full_screen_panel(open_page, sites: Sites, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    size = PHONE
    page = open_page(f"{sites.allowed}/partner.html", viewport=size, is_mobile=True, has_touch=True)
    bubble = _bubble(page)
    box = bubble.bounding_box()
    assert box is not None
    assert box["x"] + box["width"] <= size["width"] and box["y"] + box["height"] <= size["height"]
    bubble.tap()
    dialog = _dialog(page)
    expect(dialog).to_be_visible()
    panel = dialog.bounding_box()
    assert panel == {"x": 0, "y": 0, "width": size["width"], "height": size["height"]}
    expect(bubble).to_be_hidden()  # the panel's own close button takes over
    message = _ask(page, ASEAN)
    assert message.get_attribute("data-state") == "done"
    _screenshot(page, "widget-phone.png", tmp_path)
    dialog.get_by_role("button", name="Close chat").tap()
    expect(dialog).to_be_hidden()
    expect(bubble).to_be_visible()


# ------------------------------------------------------------------ languages, passages, tools, feedback

LANGUAGE_CASES = [
    # (browser locale, ?lang= of the page (data-lang), open-button name, dialog title, send, question box)
    ("en-US", None, "Open chat", "Ask about technology transfer", "Send", "Your question"),
    ("zh-CN", None, "打开对话", "技术转移问答", "发送", "您的问题"),
    ("zh-TW", None, "開啟對話", "技術轉移問答", "送出", "您的問題"),
    ("zh-HK", None, "開啟對話", "技術轉移問答", "送出", "您的問題"),
    ("zh-TW", "en", "Open chat", "Ask about technology transfer", "Send", "Your question"),  # data-lang wins
    ("en-GB", "zh-Hans", "打开对话", "技术转移问答", "发送", "您的问题"),
]


@pytest.mark.parametrize(("locale", "lang", "open_name", "title", "send", "box"), LANGUAGE_CASES)
def test_the_widget_picks_its_language_from_the_browser_unless_told(  # type: ignore[no-untyped-def]
    open_page, sites: Sites, locale: str, lang: str | None, open_name: str, title: str, send: str, box: str
) -> None:
    from playwright.sync_api import expect

    query = f"?lang={lang}" if lang else ""
    page = open_page(f"{sites.allowed}/partner.html{query}", locale=locale)
    page.get_by_role("button", name=re.compile("^" + open_name)).click()
    dialog = _dialog(page, title)
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("button", name=send, exact=True)).to_be_visible()
    expect(dialog.get_by_role("textbox", name=box)).to_be_visible()
    expect(dialog.locator(".new")).to_be_visible()
    assert page.errors == []


def _starter(dialog, text: str):  # type: ignore[no-untyped-def]
    return dialog.locator(".starters").get_by_role("button", name=text, exact=True)


@pytest.mark.parametrize(
    ("locale", "viewport", "title", "labels"),
    [
        ("en-US", DESKTOP, "Ask about technology transfer",
         {"passage": "Open passage", "more": "Suggested questions", "new": "New chat", "down": "Not helpful",
          "comment": "Tell us more (optional)", "send": "Send feedback", "thanks": "Thank you for your feedback.",
          "back": "← Back to chat", "starter": ASEAN}),
        ("zh-CN", PHONE, "技术转移问答",
         {"passage": "查看原文", "more": "推荐问题", "new": "新对话", "down": "没有帮助",
          "comment": "补充说明（可选）", "send": "提交反馈", "thanks": "感谢您的反馈。",
          "back": "← 返回对话", "starter": "哪个技术转移中心面向东盟国家？"}),
        ("zh-TW", DESKTOP, "技術轉移問答",
         {"passage": "查看原文", "more": "推薦問題", "new": "新對話", "down": "沒有幫助",
          "comment": "補充說明（選填）", "send": "送出意見", "thanks": "感謝您的意見回饋。",
          "back": "← 返回對話", "starter": "哪個技術轉移中心面向東盟國家？"}),
    ],
    ids=["en-desktop", "zh-Hans-phone", "zh-Hant-desktop"],
)
def test_open_passage_starters_again_feedback_and_new_chat(  # type: ignore[no-untyped-def]
    open_page, sites: Sites, tmp_path: Path, locale: str, viewport: dict, title: str, labels: dict
) -> None:
    from playwright.sync_api import expect

    from assistant.feedback.store import FeedbackStore

    phone = viewport["width"] < 600
    page = open_page(f"{sites.allowed}/partner.html", locale=locale, viewport=viewport, is_mobile=phone, has_touch=phone)
    _bubble_any(page).click()
    dialog = _dialog(page, title)
    more = dialog.get_by_role("button", name=labels["more"])
    expect(more).to_be_hidden()  # the starters are on show before the first question
    _starter(dialog, labels["starter"]).click()
    message = _last_bot(page)
    expect(message).to_have_attribute("data-state", "done")
    expect(dialog.locator(".starters")).to_be_hidden()

    # Each source has an "open passage" link to this server's page of the passage, in the widget's language.
    links = message.locator("a.passage")
    assert links.count() == message.locator("details").count() >= 1
    expect(links.first).to_have_text(labels["passage"] + " ↗")
    href = links.first.get_attribute("href") or ""
    assert href.startswith(f"{sites.api}/sources/") and "start=" in href and "end=" in href
    with page.context.expect_page() as opened:
        links.first.click()
    source = opened.value
    source.wait_for_load_state()
    expect(source.locator("mark#quote")).to_be_visible()
    expect(source.get_by_role("link", name=labels["back"])).to_have_attribute("href", "/ui/")
    assert source.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # no sideways scroll
    source.close()

    # The starters come back through the toggle.
    expect(more).to_be_visible()
    expect(more).to_have_attribute("aria-expanded", "false")
    more.click()
    expect(more).to_have_attribute("aria-expanded", "true")
    expect(_starter(dialog, labels["starter"])).to_be_visible()

    # 👎 with a comment.
    message.get_by_role("button", name=labels["down"], exact=True).click()
    comment = message.get_by_role("textbox", name=labels["comment"])
    expect(comment).to_be_focused()
    comment.fill("The answer should name Nanning.")
    with page.expect_response(lambda r: r.url.endswith("/v1/widget/feedback") and r.request.method == "POST") as info:
        message.get_by_role("button", name=labels["send"]).click()
    assert info.value.status == 201
    expect(message.get_by_role("status")).to_have_text(labels["thanks"])
    store = FeedbackStore(sites.state / "feedback.db")
    try:
        record = store.records(limit=1)[0]
    finally:
        store.close()
    assert (record.source, record.rating, record.comment) == ("widget", "down", "The answer should name Nanning.")
    assert record.question == labels["starter"] and record.answer and record.citations
    assert record.partner_id and record.conversation_id and record.conversation_id.startswith("w-")
    if locale == "en-US":
        _screenshot(page, "widget-feedback.png", tmp_path)

    # New chat: the log is back to the greeting, the starters on show, the toggle gone.
    dialog.get_by_role("button", name=labels["new"]).click()
    expect(page.locator("tt-assistant .msg")).to_have_count(1)
    expect(page.locator("tt-assistant .msg.user")).to_have_count(0)
    expect(_starter(dialog, labels["starter"])).to_be_visible()
    expect(more).to_be_hidden()
    if phone:
        for button in (dialog.get_by_role("button", name=labels["new"]), _starter(dialog, labels["starter"])):
            box = button.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"]
    assert page.errors == []


def _bubble_any(page):  # type: ignore[no-untyped-def]
    return page.locator("tt-assistant .bubble")


def test_stop_aborts_the_answer_and_the_next_question_works(open_page, sites: Sites) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    page = open_page(f"{sites.allowed}/partner.html")
    held: list[object] = []
    page.route("**/v1/widget/chat", lambda route: held.append(route))  # never answered: a slow model
    failed: list[str] = []
    page.on("requestfailed", lambda r: failed.append(r.url))
    _bubble(page).click()
    dialog = _dialog(page)
    box = dialog.get_by_role("textbox", name="Your question")
    box.fill(ASEAN)
    box.press("Enter")
    stop = dialog.get_by_role("button", name="Stop", exact=True)
    expect(stop).to_be_visible()
    expect(dialog.get_by_role("button", name="Send", exact=True)).to_be_hidden()
    expect(_last_bot(page)).to_have_attribute("data-state", "waiting")
    stop.click()
    message = _last_bot(page)
    expect(message).to_have_attribute("data-state", "stopped")
    expect(message).to_contain_text("Stopped.")
    expect(stop).to_be_hidden()
    expect(dialog.get_by_role("button", name="Send", exact=True)).to_be_visible()
    page.wait_for_timeout(200)
    assert any(u.endswith("/v1/widget/chat") for u in failed)  # the fetch itself was aborted
    page.unroute("**/v1/widget/chat")
    again = _ask(page, ASEAN)
    assert again.get_attribute("data-state") == "done"
    assert page.errors == []


def test_a_new_chat_stops_an_answer_in_flight(open_page, sites: Sites) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    page = open_page(f"{sites.allowed}/partner.html")
    held: list[object] = []
    page.route("**/v1/widget/chat", lambda route: held.append(route))
    _bubble(page).click()
    dialog = _dialog(page)
    _starter(dialog, ASEAN).click()
    expect(_last_bot(page)).to_have_attribute("data-state", "waiting")
    dialog.get_by_role("button", name="New chat").click()
    expect(page.locator("tt-assistant .msg")).to_have_count(1)
    expect(dialog.get_by_role("button", name="Send", exact=True)).to_be_visible()
    page.unroute("**/v1/widget/chat")
    answer = _ask(page, ASEAN)
    assert answer.get_attribute("data-state") == "done", answer.inner_text()
    assert page.locator("tt-assistant .msg.user").count() == 1


# ------------------------------------------------------------------------------ the Centers tab on a phone


@pytest.fixture(scope="module")
def ui_site(sites: Sites, built_index: Path, embedder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The full app, Gradio UI mounted, for the Centers tab."""
    from assistant.service import Assistant
    from assistant.web.api import create_app

    index = tmp_path_factory.mktemp("centers-ui") / "index"
    shutil.copytree(built_index, index)
    assistant = Assistant(make_settings(ASSISTANT_INDEX_DIR=index, ASSISTANT_STATE_DIR=index.parent / "var"), embedder, None)
    with ApiServer(create_app(assistant=assistant)) as server:
        yield f"http://127.0.0.1:{server.port}"
    assistant.close()


def _open_tab(page, name: str, phone: bool) -> None:  # type: ignore[no-untyped-def]
    """Gradio folds the tabs that do not fit (on a phone) into an overflow menu."""
    from playwright.sync_api import expect

    page.locator(".tab-container").first.wait_for(state="attached")
    tab = page.get_by_role("tab", name=name)
    if tab.count() and tab.first.is_visible():
        tab.first.click()
    else:
        menu = page.locator(".overflow-menu button").first
        menu.tap() if phone else menu.click()
        item = page.locator(".overflow-dropdown button", has_text=name).first
        item.tap() if phone else item.click()
    expect(page.get_by_role("tab", name=name)).to_have_attribute("aria-selected", "true")


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_the_centers_tab_form_first_labels_and_quotes_by_tap(  # type: ignore[no-untyped-def]
    browser, ui_site: str, tmp_path: Path, viewport: dict
) -> None:
    from playwright.sync_api import expect

    phone = viewport["width"] < 600
    context = browser.new_context(viewport=viewport, is_mobile=phone, has_touch=phone, locale="en-US")
    offline(context)
    try:
        page = context.new_page()
        page.set_default_timeout(ANSWER_TIMEOUT)
        page.goto(f"{ui_site}/ui/")
        _open_tab(page, "Centers", phone)
        form_heading = page.get_by_text("Which center fits my goal?", exact=False).first
        directory = page.locator("table.tt-centers, .tt-cards").first
        expect(form_heading).to_be_visible()
        expect(directory).to_be_attached()
        assert form_heading.bounding_box()["y"] < directory.bounding_box()["y"]  # the form comes first
        # Human labels, not codes.
        panel = page.locator(".tt-directory").first
        expect(panel).to_contain_text("Regional center")
        assert "regional-center" not in panel.inner_text()
        # Every column reachable: the directory fits or scrolls sideways inside its own box.
        width = viewport["width"]
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        scroller = page.locator(".tt-scroll").first
        reach = scroller.evaluate("e => e.scrollWidth - e.clientWidth")
        if reach > 0:
            scroller.evaluate("e => { e.scrollLeft = e.scrollWidth; }")
        last = page.locator("table.tt-centers thead th").last
        last.scroll_into_view_if_needed()
        box = last.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width + 1
        # A quote opens by a tap (a <details>), not only on hover.
        quote = page.locator("table.tt-centers details.tt-quote").first
        quote.locator("summary").scroll_into_view_if_needed()
        expect(quote.locator("blockquote")).to_be_hidden()
        if phone:
            quote.locator("summary").tap()
        else:
            quote.locator("summary").click()
        expect(quote.locator("blockquote")).to_be_visible()
        # The map's region labels stay inside their shapes' canvas.
        svg = page.locator("svg[aria-label^='Schematic map']").first
        svg.scroll_into_view_if_needed()
        outside = svg.evaluate(
            """s => { const v = s.viewBox.baseVal; return [...s.querySelectorAll('text')].filter(t => {
                 const b = t.getBBox(); return b.x < v.x - 0.5 || b.x + b.width > v.x + v.width + 0.5; }).map(t => t.textContent); }"""
        )
        assert outside == []
        if phone:
            form_heading.scroll_into_view_if_needed()
            _screenshot(page, "centers-phone.png", tmp_path)
    finally:
        assert context.off_host == [], f"requests off this host were attempted: {context.off_host}"
        context.close()
