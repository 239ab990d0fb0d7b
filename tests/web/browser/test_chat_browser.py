"""The Gradio chat UI (/ui) in real headless Chromium (Debian's `chromium`, driven by Playwright).

Two apps on loopback, each the full app (`create_app`, UI mounted): one answering with the
extractive backend, one with an OpenAI-compatible chat model that is `FakeLLMServer`
(tests/fake_llm_server.py): `ok` for translations, `trickle` for an answer slow enough to
stop. Every request the page makes to anything but 127.0.0.1 is aborted and recorded;
none may be attempted. Each flow runs at 1366×900 and at 390×844 (a phone, by touch).
Browsers are en-US unless a test says otherwise: the page follows the browser's language
(English, Simplified or Traditional Chinese), a switch, and `?lang=`.

Screenshots go to a temporary folder; with UPDATE_SCREENSHOTS=1 they replace
docs/images/ui-answer.png, ui-phone.png and ui-zh-hant.png (used by the README).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from assistant.settings import PROJECT_ROOT
from tests.conftest import make_settings
from tests.fake_llm_server import FakeLLMServer
from tests.web.browser.conftest import TIMEOUT
from tests.web.browser.test_widget_browser import ApiServer

pytestmark = pytest.mark.slow

IMAGES = PROJECT_ROOT / "docs" / "images"
ASEAN = "Which technology transfer center serves ASEAN countries?"
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
SIZES = [pytest.param(DESKTOP, id="desktop"), pytest.param(PHONE, id="phone")]
# Said by the fake model: grounded in the ASEAN passages (the claims check keeps it).
MODEL_ANSWER = "The China–ASEAN Technology Transfer Center serves ASEAN countries [1]."
first_card_seconds: dict[str, float] = {}


@dataclass
class Apps:
    extractive: str
    model: str
    fake: FakeLLMServer
    model_assistant: Any


@pytest.fixture(scope="module")
def apps(built_index: Path, embedder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Apps]:  # type: ignore[no-untyped-def]
    from assistant.llm import build_chat_model
    from assistant.service import Assistant
    from assistant.web.api import create_app

    root = tmp_path_factory.mktemp("chat-browser")
    index = root / "index"
    shutil.copytree(built_index, index)
    common = {"ASSISTANT_INDEX_DIR": index, "ASSISTANT_WARM_START_WAIT": 0}
    plain = Assistant(make_settings(**common, ASSISTANT_STATE_DIR=root / "var1"), embedder, None)
    fake = FakeLLMServer("ok", answer=MODEL_ANSWER).start()
    fake.interval = 0.4
    fake.trickle_tokens = 200  # 80 s of tokens: only Stop ends it in time
    settings = make_settings(
        **common,
        ASSISTANT_STATE_DIR=root / "var2",
        ASSISTANT_LLM="openai",
        OPENAI_BASE_URL=f"http://127.0.0.1:{fake.port}/v1",
        OPENAI_API_KEY="sk-test",
        ASSISTANT_MODEL="fake-model",
        ASSISTANT_LLM_TIMEOUT=20.0,
        ASSISTANT_LLM_DEADLINE=120.0,
        # The slow answer Stop ends must be the turn's first model call: a translation of
        # the question for retrieval would trickle first, and no source card would show.
        ASSISTANT_QUERY_TRANSLATION=False,
    )
    modelled = Assistant(settings, embedder, build_chat_model(settings))
    with ApiServer(create_app(assistant=plain)) as one, ApiServer(create_app(assistant=modelled)) as two:
        yield Apps(f"http://127.0.0.1:{one.port}", f"http://127.0.0.1:{two.port}", fake, modelled)
    fake.stop()
    plain.close()
    modelled.close()


@pytest.fixture
def open_ui(browser: Any) -> Iterator[Any]:
    """open_ui(base, size) -> page at base/ui/, offline: requests off 127.0.0.1 are aborted and kept."""
    contexts = []

    def open_(base: str, size: dict[str, int], context: Any = None, *, locale: str = "en-US", path: str = "/ui/") -> Any:
        phone = size["width"] < 600
        if context is None:
            context = browser.new_context(
                viewport=size, is_mobile=phone, has_touch=phone, accept_downloads=True, locale=locale
            )
            context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
            context.off_host = []

            def guard(route: Any) -> None:
                host = urlparse(route.request.url).hostname
                if route.request.url.startswith(("data:", "blob:")) or host == "127.0.0.1":
                    route.continue_()
                else:
                    context.off_host.append(route.request.url)
                    route.abort()

            context.route("**/*", guard)
            contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT)
        page.errors = []
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        page.goto(f"{base}{path}")
        page.locator("#tt-message textarea").wait_for()
        return page

    yield open_
    for c in contexts:
        assert c.off_host == [], f"requests off this host were attempted: {c.off_host}"
        c.close()


def _tap(page: Any, locator: Any) -> None:
    if page.viewport_size["width"] < 600:
        locator.tap()
    else:
        locator.click()


def _ask(page: Any, question: str) -> float:
    """Type and send `question`; seconds until the first source card shows."""
    box = page.locator("#tt-message textarea")
    box.fill(question)
    began = time.monotonic()
    box.press("Enter")
    page.locator(".tt-pending .tt-card, .tt-msg:not(.tt-pending) .tt-answer").last.wait_for()
    return time.monotonic() - began


def _last_answer(page: Any) -> Any:
    from playwright.sync_api import expect

    answer = page.locator(".tt-msg:not(.tt-pending)").last
    expect(answer.locator(".tt-answer")).to_be_visible()
    return answer


def _shot(page: Any, name: str, tmp_path: Path) -> None:
    folder = IMAGES if os.environ.get("UPDATE_SCREENSHOTS") == "1" else tmp_path
    path = folder / name
    page.screenshot(path=str(path))
    assert path.stat().st_size > 5000


# -------------------------------------------------------------------------------- tests


@pytest.mark.parametrize("size", SIZES)
def test_a_cited_answer_with_cards_popovers_copy_followups_and_exports(
    open_ui: Any, apps: Apps, size: dict[str, int], tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    page = open_ui(apps.extractive, size)
    # The chrome names the product (the link preview in both languages); no Gradio footer or settings.
    expect(page).to_have_title("Technology Transfer Assistant")
    og = page.locator('meta[property="og:title"]')
    expect(og).to_have_count(1)
    assert og.get_attribute("content") == "Technology Transfer Assistant · 技术转移助手"
    assert page.locator('link[rel="icon"]').first.get_attribute("href").startswith("data:image/svg+xml")  # type: ignore[union-attr]
    expect(page.locator("footer")).to_be_hidden()
    expect(page.get_by_text("Built with Gradio")).to_have_count(0)
    expect(page.get_by_role("button", name=re.compile("^Settings"))).to_have_count(0)

    # 1. While it thinks: source cards at once, then the checked answer.
    seconds = _ask(page, ASEAN)
    first_card_seconds[f"extractive-{size['width']}"] = seconds
    answer = _last_answer(page)
    expect(page.locator("#tt-send")).to_be_enabled()
    # 2. Every [n] is a link that opens a popover with the quote and its document.
    cite = answer.locator("a.tt-cite").first
    expect(cite).to_have_text(re.compile(r"^\[\d+\]$"))
    assert re.search(r"/sources/[^?]+\?start=\d+&end=\d+&lang=en#quote$", cite.get_attribute("href") or "")
    _tap(page, cite)
    pop = page.locator(".tt-pop")
    expect(pop).to_be_visible()
    n = cite.inner_text().strip("[]")
    source = answer.locator(f".tt-src.tt-n-{n}")
    quote = source.locator(".tt-quote").text_content() or ""
    expect(pop.locator(".tt-pop-quote")).to_have_text(quote.strip())
    expect(pop.locator(".tt-pop-title")).to_have_text((source.locator(".tt-src-title").text_content() or "").strip())
    expect(pop.locator(".tt-pop-meta")).to_have_text(re.compile(r"^(policy paper|news report|[a-z ]+), "))
    link = pop.get_by_role("link", name=re.compile("Open passage"))
    assert re.search(r"start=\d+&end=\d+&lang=en#quote$", link.get_attribute("href") or "")
    box = pop.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= size["width"]
    assert box["y"] + box["height"] <= size["height"]
    _shot(page, "ui-answer.png" if size is DESKTOP else "ui-phone.png", tmp_path)
    _tap(page, pop.get_by_role("button", name=re.compile("Close")))
    expect(pop).to_have_count(0)

    # 3. Copy: the answer with its citations.
    _tap(page, answer.locator("button.tt-copy"))
    expect(answer.locator("button.tt-copy")).to_have_text(re.compile("Copied"))
    copied = page.evaluate("window.__ttLastCopy")
    assert copied.startswith((answer.locator(".tt-answer").text_content() or "").strip()[:20])
    assert f"[{n}] " in copied and quote.strip()[:15] in copied and "start=" in copied

    # Follow-up questions from the evidence; one asks it.
    followups = page.locator(".tt-followup:visible")
    expect(followups.first).to_be_visible()
    assert "ASEAN" in (followups.first.inner_text() or "")

    # Exports: Markdown and print-friendly HTML with the question, quotes and links.
    for button, needle in (("#tt-export-md", "## " + ASEAN), ("#tt-export-html", f"<h2>{ASEAN}</h2>")):
        with page.expect_download() as info:
            _tap(page, page.locator(button))
        content = Path(info.value.path()).read_text("utf-8")
        assert needle in content, content[:500]
        assert quote.strip()[:15] in content and "start=" in content

    _tap(page, followups.first)
    expect(page.locator(".tt-msg:not(.tt-pending)")).to_have_count(2)
    assert page.errors == []


@pytest.mark.parametrize("size", SIZES)
def test_conversations_survive_a_reload_and_can_be_reopened(open_ui: Any, apps: Apps, size: dict[str, int]) -> None:
    from playwright.sync_api import expect

    page = open_ui(apps.extractive, size)
    _ask(page, ASEAN)
    _last_answer(page)
    page.wait_for_timeout(500)  # the store is written after the answer
    page.reload()
    expect(page.locator(".tt-msg")).to_have_count(1)
    expect(page.locator("#tt-chatbot")).to_contain_text(ASEAN)
    # A new chat is empty; the first one is in the list of past chats.
    _tap(page, page.locator("#tt-new-chat"))
    expect(page.locator(".tt-msg")).to_have_count(0)
    _ask(page, "哪个技术转移中心面向东盟国家？")
    _last_answer(page)
    page.locator("#tt-past-chats input").click()
    option = page.get_by_role("option", name=ASEAN)
    expect(option).to_be_visible()
    option.click()
    expect(page.locator("#tt-chatbot")).to_contain_text(ASEAN)
    expect(page.locator("#tt-chatbot")).not_to_contain_text("哪个技术转移中心面向东盟国家")
    # The reopened answer's citations still open.
    _tap(page, page.locator(".tt-msg a.tt-cite").first)
    expect(page.locator(".tt-pop")).to_be_visible()
    assert page.errors == []


@pytest.mark.parametrize("size", SIZES)
def test_stop_ends_a_slow_answer_and_frees_the_queue(open_ui: Any, apps: Apps, size: dict[str, int]) -> None:
    from playwright.sync_api import expect

    apps.fake.mode = "trickle"
    try:
        page = open_ui(apps.model, size)
        seconds = _ask(page, ASEAN)
        first_card_seconds[f"model-{size['width']}"] = seconds
        pending = page.locator(".tt-pending")
        expect(pending.locator(".tt-progress")).to_contain_text(re.compile(r"(Reading \d+ passages|Writing).* \d+ s"))
        expect(page.locator("#tt-send")).to_be_disabled()
        expect(pending.locator(".tt-draft")).to_be_visible()  # tokens trickle in
        expect(pending.locator(".tt-secs")).to_have_text(re.compile(r"^[2-9]\d* s$"))  # the seconds count
        assert apps.model_assistant.queue.snapshot()["admitted"] == 1
        _tap(page, page.locator("#tt-stop"))
        expect(page.locator(".tt-stopped")).to_be_visible()
        expect(page.locator("#tt-send")).to_be_enabled()
        expect(page.locator("#tt-stop")).to_be_hidden()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (
            apps.model_assistant.queue.snapshot()["admitted"] or apps.fake.in_flight
        ):
            time.sleep(0.1)
        assert apps.model_assistant.queue.snapshot()["admitted"] == 0  # the place is free
        assert apps.fake.in_flight == 0  # the model server is no longer read from
        # The stopped question is kept in the conversation: it is there after a reload.
        expect(page.locator("#tt-past-chats input")).to_have_value(ASEAN)
        page.wait_for_timeout(500)  # the store is written after the list
        page.reload()
        chat = page.locator("#tt-chatbot")
        expect(chat).to_contain_text(ASEAN)
        expect(chat.locator(".tt-stopped")).to_have_text("⏹ Stopped.")
        expect(page.locator(".tt-followup:visible")).to_have_count(0)  # nothing to follow up on
        assert page.errors == []
    finally:
        apps.fake.mode = "ok"


def test_a_quote_in_another_language_is_translated_on_demand(open_ui: Any, apps: Apps) -> None:
    from playwright.sync_api import expect

    page = open_ui(apps.model, DESKTOP)
    _ask(page, ASEAN)
    answer = _last_answer(page)
    chinese = answer.locator(".tt-src.tt-lang-zh-Hans, .tt-src.tt-lang-zh-Hant")
    expect(chinese.first).to_be_attached()
    n = re.search(r"tt-n-(\d+)", chinese.first.get_attribute("class") or "").group(1)  # type: ignore[union-attr]
    before = len(apps.fake.chat_requests())
    answer.locator(f"a.tt-cite.tt-n-{n}").first.click()
    pop = page.locator(".tt-pop")
    assert len(apps.fake.chat_requests()) == before  # lazily: nothing until asked
    with page.expect_response(lambda r: r.url.endswith("/v1/translate")) as info:
        pop.get_by_role("button", name=re.compile("Translate")).click()
    assert info.value.status == 200
    expect(pop.locator(".tt-mt-label")).to_contain_text("Machine translation")
    expect(pop.locator(".tt-mt")).not_to_be_empty()
    assert page.errors == []


# -------------------------------------------------------------------------------- languages

ENGLISH = {"send": "Send", "tab": "Chat", "new": "＋ New chat", "box": "Type a question…", "title": "Technology Transfer Assistant",
           "status": "Ready", "sources": "Sources", "copy": "Copy", "switch": "English", "examples": "Examples",
           "open": "Open passage ↗", "description": "Cited answers about China's international technology transfer"}
SIMPLIFIED = {"send": "发送", "tab": "问答", "new": "＋ 新对话", "box": "输入问题…", "title": "技术转移助手",
              "status": "就绪", "sources": "来源", "copy": "复制", "switch": "简体中文", "examples": "示例",
              "open": "查看原文 ↗", "description": "基于政策文件与新闻报道"}
TRADITIONAL = {"send": "傳送", "tab": "問答", "new": "＋ 新對話", "box": "輸入問題…", "title": "技術轉移助手",
               "status": "就緒", "sources": "來源", "copy": "複製", "switch": "繁體中文", "examples": "範例",
               "open": "查看原文 ↗", "description": "基於政策文件與新聞報導"}


def _expect_labels(page: Any, words: dict[str, str]) -> None:
    """The page's own words are all in one language: buttons, box, tab, title, status, switcher."""
    from playwright.sync_api import expect

    expect(page.locator("#tt-send")).to_have_text(words["send"])
    expect(page.locator("#tt-new-chat")).to_have_text(words["new"])
    expect(page.locator("#tt-message textarea")).to_have_attribute("placeholder", words["box"])
    expect(page.get_by_role("tab", name=words["tab"])).to_have_count(1)
    expect(page.get_by_text(words["examples"], exact=True).first).to_be_attached()
    expect(page).to_have_title(words["title"])
    expect(page.locator("#tt-lang input")).to_have_value(words["switch"])
    expect(page.locator(".tt-header h1")).to_have_text(words["title"])
    expect(page.get_by_text(words["status"], exact=True).first).to_be_visible()  # the status line, rendered here
    expect(page.locator(".tt-header")).to_contain_text(words["description"])
    expect(page.locator("body")).not_to_contain_text("translation_metadata")  # no key left untranslated
    others = [w for w in (ENGLISH, SIMPLIFIED, TRADITIONAL) if w is not words]
    for other in others:  # one language at a time: none of the others' labels
        expect(page.locator("#tt-send")).not_to_have_text(other["send"])
        assert " · " not in (page.locator("#tt-new-chat").inner_text() or "")


def _choose_language(page: Any, name: str) -> None:
    _tap(page, page.locator("#tt-lang input"))
    _tap(page, page.get_by_role("option", name=name))


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize(("locale", "words"), [("zh-TW", TRADITIONAL), ("en-US", ENGLISH)], ids=["zh-TW", "en-US"])
def test_the_ui_opens_in_the_browsers_language(
    open_ui: Any, apps: Apps, size: dict[str, int], locale: str, words: dict[str, str], tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    page = open_ui(apps.extractive, size, locale=locale)
    _expect_labels(page, words)
    # What the server renders is in it too: the answer's sources, Copy, links to the passage in it.
    _ask(page, ASEAN)
    answer = _last_answer(page)
    expect(answer.locator(".tt-sources .tt-heading").first).to_have_text(words["sources"])
    expect(answer.locator("button.tt-copy")).to_have_text(words["copy"])
    lang = {"zh-TW": "zh-Hant", "en-US": "en"}[locale]
    assert (answer.locator("a.tt-cite").first.get_attribute("href") or "").endswith(f"&lang={lang}#quote")
    _tap(page, answer.locator("a.tt-cite").first)
    pop = page.locator(".tt-pop")
    expect(pop.locator(".tt-pop-open")).to_have_text(words["open"])
    if locale == "zh-TW" and size is DESKTOP:
        _shot(page, "ui-zh-hant.png", tmp_path)
    # The passage page opens in the same language.
    with page.context.expect_page() as info:
        _tap(page, pop.locator(".tt-pop-open"))
    passage = info.value
    passage.wait_for_load_state()
    assert passage.evaluate("document.documentElement.lang") == lang
    passage.close()
    assert page.errors == []


def test_a_browser_in_hong_kong_gets_traditional_chinese_too(open_ui: Any, apps: Apps) -> None:
    """zh-HK is Traditional Chinese here (Gradio by itself would fall back to English)."""
    page = open_ui(apps.extractive, DESKTOP, locale="zh-HK")
    _expect_labels(page, TRADITIONAL)
    assert page.errors == []


@pytest.mark.parametrize("size", SIZES)
def test_switching_language_relabels_at_once_and_is_remembered(open_ui: Any, apps: Apps, size: dict[str, int]) -> None:
    from playwright.sync_api import expect

    page = open_ui(apps.extractive, size)
    _expect_labels(page, ENGLISH)
    _ask(page, ASEAN)
    answer = _last_answer(page)
    expect(answer.locator("button.tt-copy")).to_have_text("Copy")
    page.evaluate("window.__notReloaded = true")
    _choose_language(page, "简体中文")
    # At once, without a reload: the components' labels and the answer rendered around it.
    _expect_labels(page, SIMPLIFIED)
    assert page.evaluate("window.__notReloaded") is True
    answer = _last_answer(page)
    expect(answer.locator("button.tt-copy")).to_have_text("复制")
    expect(answer.locator(".tt-sources .tt-heading").first).to_have_text("来源")
    assert (answer.locator("a.tt-cite").first.get_attribute("href") or "").endswith("&lang=zh-Hans#quote")
    expect(page.locator("#tt-chatbot")).to_contain_text(ASEAN)  # the conversation stays
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    assert cookies.get("tt_lang") == "zh-Hans"
    # Remembered: a reload opens in it.
    page.reload()
    page.locator("#tt-message textarea").wait_for()
    _expect_labels(page, SIMPLIFIED)
    expect(_last_answer(page).locator("button.tt-copy")).to_have_text("复制")
    # And back.
    _choose_language(page, "English")
    _expect_labels(page, ENGLISH)
    assert page.errors == []


@pytest.mark.parametrize("size", SIZES)
def test_lang_in_the_address_wins_and_a_switch_replaces_it(open_ui: Any, apps: Apps, size: dict[str, int]) -> None:
    page = open_ui(apps.extractive, size, path="/ui/?lang=zh-Hant")
    _expect_labels(page, TRADITIONAL)
    assert not any(c["name"] == "tt_lang" for c in page.context.cookies())  # opening a link chooses nothing
    _choose_language(page, "English")
    _expect_labels(page, ENGLISH)
    assert "lang=" not in page.url  # a reload keeps the choice, not the link's
    page.reload()
    page.locator("#tt-message textarea").wait_for()
    _expect_labels(page, ENGLISH)
    assert page.errors == []

def test_the_centers_tab_is_in_the_pages_language(open_ui: Any, apps: Apps) -> None:
    from playwright.sync_api import expect

    from tests.web.browser.test_widget_browser import _open_tab

    page = open_ui(apps.extractive, DESKTOP, locale="zh-TW")
    _open_tab(page, "中心", False)
    panel = page.locator(".tt-directory").first
    expect(page.get_by_text("哪個中心適合我？").first).to_be_visible()
    expect(page.get_by_label("目標")).to_be_visible()
    expect(panel.locator("thead th").first).to_have_text("名稱")
    expect(panel).to_contain_text("區域中心")
    expect(page.locator("svg[aria-label='各中心服務地區示意圖']")).to_have_count(1)
    assert "/sources/" in (panel.locator("a.tt-src").first.get_attribute("href") or "")
    assert (panel.locator("a.tt-src").first.get_attribute("href") or "").endswith("&lang=zh-Hant#quote")
    _choose_language(page, "English")
    expect(panel.locator("thead th").first).to_have_text("Name")
    expect(panel).to_contain_text("Regional center")
    expect(page.get_by_text("Which center fits my goal?").first).to_be_visible()
    expect(page.get_by_label("Goal")).to_be_visible()
    assert "區域中心" not in panel.inner_text()
    assert page.errors == []


def test_report_time_to_first_source_card() -> None:
    """Prints what was measured above (pytest -s shows it): seconds from Enter to the first card."""
    print("time to first source card (s):", {k: round(v, 2) for k, v in first_card_seconds.items()})
