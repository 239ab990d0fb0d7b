"""The chat UI's words in English, Simplified and Traditional Chinese (`strings.yaml`).

Three ways a word reaches the page, all from the one file:
- `label(key)`: a component's label, placeholder or text, as a Gradio `I18nData`; the
  browser shows it in the page's locale (`gradio_i18n()` is mounted with the UI), and a
  switch of locale relabels every component at once;
- `t(key, lang)`: what the server renders (answers' sources, status line, tables, exports);
- `script_strings()`: what chat.js shows (the citation popover, Copy), sent with the page.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from assistant.web.languages import LANGUAGES

if TYPE_CHECKING:
    import gradio as gr
    from gradio.i18n import I18nData

STRINGS_FILE = Path(__file__).resolve().parent / "strings.yaml"
# Gradio's frontend names Simplified and Traditional Chinese zh-CN and zh-TW (its own
# words, like "Loading", come in those): our three languages are these locales there.
GRADIO_LOCALES = {"en": "en", "zh-Hans": "zh-CN", "zh-Hant": "zh-TW"}
# Our keys in Gradio's translations, apart from its own ("common.submit", ...).
KEY_PREFIX = "tt."
# The words chat.js shows.
SCRIPT_KEYS = (
    "title", "open_passage", "translate", "translating", "machine_translation", "no_translation",
    "close", "copied", "copy_failed", "sources", "source_n",
)


@lru_cache(maxsize=1)
def strings() -> dict[str, dict[str, str]]:
    """key -> {language: text}, as `strings.yaml` has them."""
    raw = yaml.safe_load(STRINGS_FILE.read_text("utf-8"))
    if not isinstance(raw, dict):
        raise ValueError(f"{STRINGS_FILE.name}: expected a mapping of keys to {{en, zh-Hans, zh-Hant}}")
    return {
        str(key): {lang: str(value[lang]) for lang in LANGUAGES if isinstance(value, dict) and value.get(lang)}
        for key, value in raw.items()
    }


def t(key: str, lang: str = "en", **values: Any) -> str:
    """The text of `key` in `lang` (English where it has none), `{name}`s filled from `values`."""
    entry = strings()[key]
    text = entry.get(lang) or entry["en"]
    return text.format(**values) if values else text


def pair(key: str) -> str:
    """"English · 简体中文": for what is read before a language can be known (link previews)."""
    return f"{t(key, 'en')} · {t(key, 'zh-Hans')}"


@lru_cache(maxsize=1)
def gradio_i18n() -> gr.I18n:
    """Every string as Gradio translations, keyed by Gradio's locales (mounted with the UI)."""
    import gradio as gr

    table = strings()
    return gr.I18n(
        **{
            locale: {KEY_PREFIX + key: texts.get(lang) or texts["en"] for key, texts in table.items()}
            for lang, locale in GRADIO_LOCALES.items()
        }
    )


def label(key: str) -> I18nData:
    """A component's text that the browser shows in the page's language."""
    if key not in strings():
        raise KeyError(key)
    return gradio_i18n()(KEY_PREFIX + key)


def script_strings() -> dict[str, dict[str, str]]:
    """language -> {key: text} of `SCRIPT_KEYS`, for chat.js."""
    return {lang: {key: t(key, lang) for key in SCRIPT_KEYS} for lang in LANGUAGES}
