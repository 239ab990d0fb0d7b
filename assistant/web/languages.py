"""The three languages of the pages (English, Simplified and Traditional Chinese) and how a
page picks one: `?lang=`, then the choice remembered in a cookie, then `Accept-Language`.

Shared by the source page (routers/documents.py), the login page and the chat UI (/ui).
"""

from __future__ import annotations

LANGUAGES = ("en", "zh-Hans", "zh-Hant")
LANGUAGE_NAMES = {"en": "English", "zh-Hans": "简体中文", "zh-Hant": "繁體中文"}
# The browser remembers the language chosen in the UI's switcher in this cookie (not
# HttpOnly: the page's script sets it), so the server renders the next page in it.
LANGUAGE_COOKIE = "tt_lang"


def language_of(tag: str) -> str | None:
    """A language tag (`zh-TW`, `zh-Hant-HK`, `en-GB`, `zh`) -> en, zh-Hans or zh-Hant; None: none of them."""
    t = tag.strip().lower().replace("_", "-")
    if t.startswith("zh"):
        parts = t.split("-")[1:]
        if "hant" in parts or any(p in ("tw", "hk", "mo") for p in parts):
            return "zh-Hant"
        return "zh-Hans"
    if t == "en" or t.startswith("en-"):
        return "en"
    return None


def page_language(query: str | None, accept_language: str | None) -> str:
    """`?lang=` when it names one of the three, else the best of `Accept-Language`, else English."""
    if query and (chosen := language_of(query)):
        return chosen
    best: tuple[float, int, str] | None = None
    for i, item in enumerate((accept_language or "").split(",")[:20]):
        tag, _, params = item.partition(";")
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        found = language_of(tag)
        if found and q > 0 and (best is None or (q, -i) > (best[0], best[1])):
            best = (q, -i, found)
    return best[2] if best else "en"


def chosen_language(query: str | None, remembered: str | None, accept_language: str | None) -> str:
    """`?lang=`, else the remembered choice (`LANGUAGE_COOKIE`), else `Accept-Language`, else English.

    A value naming none of the three (`?lang=fr`, a damaged cookie) is passed over.
    """
    named = next((tag for tag in (query, remembered) if tag and language_of(tag[:35])), None)
    return page_language(named[:35] if named else None, accept_language)
