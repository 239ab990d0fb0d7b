"""Language detection and sentence spans."""

from __future__ import annotations

import pytest

from assistant.text import detect_language, normalize, split_sentences


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Which technology transfer center serves ASEAN countries?", "en"),
        ("哪个技术转移中心面向东盟国家？", "zh-Hans"),
        ("哪個技術轉移中心面向東盟國家？", "zh-Hant"),
        ("What does 中国—东盟技术转移中心 do?", "en"),
        ("中国—东盟技术转移中心 (China–ASEAN Technology Transfer Center) 在哪里？", "zh-Hans"),
        ("东盟技术转移中心在广西南宁，歷史", "zh-Hans"),  # one stray Traditional character
    ],
)
def test_detect_language(text: str, language: str) -> None:
    assert detect_language(text) == language


def test_sentence_spans_are_exact_and_trimmed() -> None:
    text = "  第一句。第二句！Third one. Fourth? 2.1 stays whole.\n最后一行"
    spans = list(split_sentences(text, offset=10))
    pieces = [text[a - 10 : b - 10] for a, b in spans]
    assert pieces == ["第一句。", "第二句！", "Third one.", "Fourth?", "2.1 stays whole.", "最后一行"]


def test_normalize_folds_script_width_and_case() -> None:
    assert normalize("東盟ＡＢＣ") == "东盟abc"
