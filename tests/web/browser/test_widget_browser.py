"""The chat widget in real headless Chromium (Debian's `chromium`, driven by Playwright).

Three servers on loopback: the API (uvicorn, extractive backend, a temporary index with
one extra document carrying an XSS payload), the demo partner page on a second port
whose origin is allowed, and the same page on a third port whose origin is not.

Screenshots go to a temporary folder; with UPDATE_SCREENSHOTS=1 they replace
docs/images/widget-*.png (used by the README).
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
from urllib.parse import parse_qsl

import pytest

from assistant.settings import PROJECT_ROOT
from tests.conftest import make_settings

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
DEMO_PAGE = PROJECT_ROOT / "assistant" / "web" / "static" / "demo" / "partner.html"
IMAGES = PROJECT_ROOT / "docs" / "images"
ACCENT = "rgb(27, 58, 47)"  # data-accent="#1b3a2f" on the demo page
ANSWER_TIMEOUT = 30_000
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
                    page = page.replace('data-lang="en"', f'data-lang="{html.escape(lang)}"')
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
    settings = make_settings(ASSISTANT_CORPUS_DIR=corpus, ASSISTANT_INDEX_DIR=index, ASSISTANT_STATE_DIR=root / "var")
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
            yield Sites(api=api_base, allowed=allowed_server.origin, refused=refused_server.origin)
    store.close()
    assistant.close()


# ------------------------------------------------------------------------------ browser


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium)")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=ANSWER_TIMEOUT)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def open_page(browser, sites: Sites) -> Iterator[object]:  # type: ignore[no-untyped-def]
    """open_page(url, **context options) -> page; records every request the page makes."""
    contexts = []

    def open_(url: str, **options: object):  # type: ignore[no-untyped-def]
        context = browser.new_context(viewport=options.pop("viewport", {"width": 1280, "height": 860}), **options)
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
        c.close()


def _screenshot(page, name: str, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    folder = IMAGES if os.environ.get("UPDATE_SCREENSHOTS") == "1" else tmp_path
    path = folder / name
    page.screenshot(path=str(path))
    assert path.stat().st_size > 5000
    return path


def _bubble(page):  # type: ignore[no-untyped-def]
    return page.get_by_role("button", name=re.compile(r"^Open chat"))


def _dialog(page):  # type: ignore[no-untyped-def]
    return page.get_by_role("dialog", name="Ask about technology transfer")


def _last_bot(page):  # type: ignore[no-untyped-def]
    return page.locator("tt-assistant .msg.bot").last


def _ask(page, question: str):  # type: ignore[no-untyped-def]
    box = _dialog(page).get_by_role("textbox", name="Your question")
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
    dialog = _dialog(page)
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

    size = {"width": 390, "height": 844}
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
