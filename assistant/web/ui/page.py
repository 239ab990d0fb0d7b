"""The /ui page itself: its language, link preview, icon, and the UI's style and script.

The page is served in one of three languages, chosen per request like the source page's:
`?lang=`, else the choice remembered in the `tt_lang` cookie (set by the switcher), else
`Accept-Language` (`chosen_language`). `PageChrome` writes that language into Gradio's
page before Gradio's own scripts run, so the first paint is already in it; chat.js then
makes it Gradio's locale and switches it later without a reload.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs
from urllib.parse import quote as url_quote

from assistant.web.languages import LANGUAGE_COOKIE, LANGUAGE_NAMES, chosen_language
from assistant.web.ui.render import HERE, _attr
from assistant.web.ui.strings import GRADIO_LOCALES, pair, script_strings

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

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


@lru_cache(maxsize=1)
def gradio_locale_module() -> str | None:
    """The page-relative path of Gradio's frontend module that exports `changeLocale`.

    Gradio's Settings panel switches the locale through it; its file name carries a build
    hash, so it is looked up in the installed package. None when it is not there: the
    switcher then reloads the page instead.
    """
    import gradio

    assets = Path(gradio.__file__).resolve().parent / "templates" / "frontend" / "assets"
    for path in sorted(assets.glob("core-*.js")):
        if "changeLocale" in path.read_text("utf-8", errors="replace"):
            return f"assets/{path.name}"
    return None


def page_head(language: str = "en") -> str:
    """What the page's <head> gets: link preview tags, the icon, the UI's style and script.

    The link preview is read before anyone's language is known: it names the product in
    English and Chinese. The script gets the page's language and its words.
    """
    css = (HERE / "chat.css").read_text("utf-8")
    js = (HERE / "chat.js").read_text("utf-8")
    title, description = _attr(pair("title")), _attr(pair("description"))
    setup = {
        "lang": language,
        "locales": GRADIO_LOCALES,
        "strings": script_strings(),
        "names": LANGUAGE_NAMES,
        "cookie": LANGUAGE_COOKIE,
        "localeModule": gradio_locale_module(),
    }
    # "</" inside the JSON would end the <script> early.
    data = json.dumps(setup, ensure_ascii=False).replace("</", "<\\/")
    return (
        f'<meta property="og:title" content="{title}">'
        f'<meta property="og:description" content="{description}">'
        '<meta property="og:type" content="website">'
        f'<meta name="twitter:title" content="{title}">'
        f'<meta name="twitter:description" content="{description}">'
        f'<meta name="description" content="{description}">'
        f'<link rel="icon" href="{FAVICON}">'
        f"<style>{css}</style><script>window.__ttUi = {data};</script><script>{js}</script>"
    )


# Gradio's page template names itself in the link preview (and points at an image on
# github.com); these tags are dropped from the page, `page_head` gives the product's own.
_META_TAG = re.compile(r"<meta\b[^>]*?(?:property=\"og:|name=\"twitter:)[^>]*>", re.S)
_LINK_TAGS = re.compile(r'<link\s+rel="manifest"[^>]*>')
_HTML_LANG = re.compile(r'(<html\b[^>]*?\blang=")[^"]*(")', re.S)


def rewrite_page(page: str, language: str = "en") -> str:
    """Gradio's index page in `language`, with the product's link preview, icon, style and script."""
    page = _META_TAG.sub("", page)
    page = _LINK_TAGS.sub("", page)
    page = _HTML_LANG.sub(lambda m: f"{m.group(1)}{language}{m.group(2)}", page, count=1)
    return page.replace("</head>", page_head(language) + "</head>", 1)


def request_language(query: str | None, cookie_header: str, accept_language: str | None) -> str:
    """The language a request for the page asks for: its `?lang=`, its cookie header and
    `Accept-Language` (see the module's docstring)."""
    remembered = None
    if cookie_header:
        try:
            cookies: SimpleCookie = SimpleCookie(cookie_header)
        except CookieError:
            cookies = SimpleCookie()
        if LANGUAGE_COOKIE in cookies:
            remembered = cookies[LANGUAGE_COOKIE].value
    return chosen_language(query, remembered, accept_language)


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers") or []:
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return ""


class PageChrome:
    """ASGI middleware: the UI's HTML page gets `rewrite_page` in the language asked for."""

    def __init__(self, app: ASGIApp, path: str = "/ui") -> None:
        self.app = app
        self.paths = {path.rstrip("/"), path.rstrip("/") + "/"}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "GET" or scope.get("path") not in self.paths:
            await self.app(scope, receive, send)
            return
        query = parse_qs(bytes(scope.get("query_string") or b"").decode("latin-1"), max_num_fields=50)
        language = request_language(
            query.get("lang", [None])[0],
            _header(scope, b"cookie"),
            _header(scope, b"accept-language") or None,
        )
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
                body = rewrite_page(body.decode("utf-8"), language).encode("utf-8")
                headers = [(k, v) for k, v in headers if k.lower() not in (b"content-length", b"content-language")]
                headers += [
                    (b"content-length", str(len(body)).encode()),
                    (b"content-language", language.encode()),
                    # The page differs by these: a cache keeps one per language asked for.
                    (b"vary", b"Accept-Language, Cookie"),
                ]
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, capture)
