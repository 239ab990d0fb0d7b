"""Language detection and sentence spans."""

from __future__ import annotations

import pytest

from assistant.text import (
    detect_language,
    is_reference,
    is_reference_list,
    normalize,
    split_sentences,
    to_simplified,
    to_traditional,
)


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Which technology transfer center serves ASEAN countries?", "en"),
        ("哪个技术转移中心面向东盟国家？", "zh-Hans"),
        ("哪個技術轉移中心面向東盟國家？", "zh-Hant"),
        ("What does 中国—东盟技术转移中心 do?", "en"),
        ("中国—东盟技术转移中心 (China–ASEAN Technology Transfer Center) 在哪里？", "zh-Hans"),
        ("东盟技术转移中心在广西南宁，歷史", "zh-Hans"),  # one stray Traditional character
        # Short questions with few script-specific characters: counted, not shared out.
        ("中非創新合作中心的主要任務有哪些？", "zh-Hant"),
        ("中非创新合作中心的主要任务有哪些？", "zh-Hans"),
        ("中心在哪裡成立？", "zh-Hant"),
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


def test_to_simplified_gives_what_opencc_gives() -> None:
    """The skip of runs with no dictionary key's first character changes no output."""
    import random

    from opencc import OpenCC

    from assistant.pipeline.corpus import load_corpus
    from tests.conftest import CORPUS

    reference = OpenCC("t2s")
    texts = [d.text for d in load_corpus(CORPUS)]
    texts += [to_traditional(t) for t in texts] + ["", "ASEAN 2023", "乾隆年間的著作", "於是　發現，台灣的後來"]
    rng = random.Random(3)
    samples = [t[a : a + rng.randrange(1, 300)] for t in texts if t for a in (rng.randrange(len(t)) for _ in range(50))]
    for text in texts + samples:
        assert to_simplified(text) == reference.convert(text), text[:80]


@pytest.mark.parametrize(
    "line",
    [
        "科技进步与对策, 2022, 39(8): 153-160.",
        "- [15] 张业倩, 耿燕. 国际技术转移服务资源池构建与应用研究[J]. 广东科技",
        "[1] 科学技术部. 关于印发管理办法的通知[A/OL]. [2023-12-10].",
        "Smith J. Technology transfer offices. Res. Policy, 2019, 48(3): 1-9.",
    ],
)
def test_bibliography_entries_are_recognised(line: str) -> None:
    assert is_reference(line)


@pytest.mark.parametrize(
    "line",
    ["到2022年,每年建成1—3个境外协同中心。", "The center opened in 2020 (see Table 3): 12 projects.", "2014年，广西（3）：1-3项"],
)
def test_statements_with_years_and_ranges_are_not_references(line: str) -> None:
    assert not is_reference(line)


def test_a_reference_list_is_mostly_entries() -> None:
    entries = "[1] 甲. 论文[J]. 期刊, 2021(5): 75-77.\n[2] 乙. 报告[R]. 北京: 出版社, 2020."
    assert is_reference_list("参考文献:\n" + entries)
    assert not is_reference_list("中心成立于2014年。\n它面向东盟国家。\n" + entries.splitlines()[0] + "\n正文继续。")
