"""The UI's words (assistant/web/ui/strings.yaml): every key in all three languages, each
filled in the same way, each used, and every key the code asks for present."""

from __future__ import annotations

import re
import string

import pytest
import yaml

from assistant.settings import PROJECT_ROOT
from assistant.text import to_simplified, to_traditional
from assistant.web.languages import LANGUAGES
from assistant.web.ui.strings import (
    GRADIO_LOCALES,
    KEY_PREFIX,
    SCRIPT_KEYS,
    STRINGS_FILE,
    gradio_i18n,
    label,
    pair,
    script_strings,
    strings,
    t,
)

WEB = PROJECT_ROOT / "assistant" / "web"


def _raw() -> dict[str, object]:
    data = yaml.safe_load(STRINGS_FILE.read_text("utf-8"))
    assert isinstance(data, dict)
    return data


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_key_has_all_three_languages_and_no_empty_text() -> None:
    raw = _raw()
    assert len(raw) > 80
    for key, entry in raw.items():
        assert re.fullmatch(r"[a-z][a-z0-9_]*", key), key
        assert isinstance(entry, dict) and set(entry) == set(LANGUAGES), (key, entry)
        for lang in LANGUAGES:
            text = entry[lang]
            assert isinstance(text, str) and text.strip(), (key, lang)
    assert strings() == {k: {lang: v[lang] for lang in LANGUAGES} for k, v in raw.items()}  # type: ignore[index]


def test_each_language_fills_in_the_same_values() -> None:
    for key, entry in strings().items():
        names = {lang: _fields(entry[lang]) for lang in LANGUAGES}
        assert names["en"] == names["zh-Hans"] == names["zh-Hant"], (key, names)


def test_one_language_at_a_time_and_each_in_its_own_script() -> None:
    for key, entry in strings().items():
        for lang in LANGUAGES:
            assert " · " not in entry[lang], (key, lang)  # no "English · 中文" pairs
        assert to_simplified(entry["zh-Hans"]) == entry["zh-Hans"], key
        assert to_traditional(entry["zh-Hant"]) == entry["zh-Hant"], key
        if re.search(r"[A-Za-z]{3}", entry["en"]):  # words, not a separator: written in Chinese
            assert re.search(r"[\u4e00-\u9fff]", entry["zh-Hans"]), key
            assert re.search(r"[\u4e00-\u9fff]", entry["zh-Hant"]), key


def _used_keys() -> set[str]:
    """Keys the code names: t("key", …), label("key"), pair("key"), the login page's w("key"),
    the tables' column keys, and the script's (SCRIPT_KEYS)."""
    found: set[str] = set(SCRIPT_KEYS)
    for path in [*(WEB / "ui").glob("*.py"), WEB / "api" / "session.py"]:
        text = path.read_text("utf-8")
        found |= set(re.findall(r"""\b(?:t|label|pair|w)\(\s*["']([a-z][a-z0-9_]*)["']""", text))
        found |= set(re.findall(r"""["'](col_[a-z_]+|regions_served)["']""", text))
    return found


def test_every_key_the_code_asks_for_exists_and_every_key_is_used() -> None:
    used = _used_keys()
    known = set(strings())
    assert used - known == set()
    dynamic = {k for k in known if k.startswith("kind_")}  # f"kind_{kind}": a document's kind
    assert known - used - dynamic == set()


def test_lookup_fills_values_and_falls_back_to_english() -> None:
    assert t("reading", "zh-Hant", n=3) == "正在閱讀 3 個段落…"
    assert t("send", "zh-Hans") == "发送" and t("send") == "Send"
    assert t("send", "fr") == "Send"  # a language the file has not: English
    assert pair("title") == "Technology Transfer Assistant · 技术转移助手"
    with pytest.raises(KeyError):
        t("no_such_key")
    with pytest.raises(KeyError):
        label("no_such_key")


def test_gradio_gets_every_string_under_its_locales() -> None:
    assert GRADIO_LOCALES == {"en": "en", "zh-Hans": "zh-CN", "zh-Hant": "zh-TW"}
    table = gradio_i18n().translations_dict
    assert set(table) == {"en", "zh-CN", "zh-TW"}
    for lang, locale in GRADIO_LOCALES.items():
        assert table[locale] == {KEY_PREFIX + k: v[lang] for k, v in strings().items()}
    assert label("send").key == "tt.send"


def test_the_script_gets_its_words_in_each_language() -> None:
    words = script_strings()
    assert set(words) == set(LANGUAGES)
    assert all(set(words[lang]) == set(SCRIPT_KEYS) for lang in LANGUAGES)
    assert words["zh-Hant"]["copied"] == "已複製 ✓" and words["en"]["source_n"] == "Source [{n}]"
    script = (WEB / "ui" / "chat.js").read_text("utf-8")
    assert set(re.findall(r'\bt\("([a-z_]+)"', script)) <= set(SCRIPT_KEYS)
