"""Prompt files: named variables, checked when loaded and when rendered."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from assistant.pipeline.answerability import load_answer_kinds
from assistant.pipeline.prompts import PromptError, load_prompt, load_prompts, load_reminders
from assistant.settings import PROJECT_ROOT


def test_shipped_prompts_load() -> None:
    prompts = load_prompts(PROJECT_ROOT / "prompts")
    text = prompts.answer_system.render()
    assert '"claims"' in text and '"answerable"' in text  # the JSON braces survive formatting
    user = prompts.answer_user.render(evidence="[1] 证据", question="Q?", reminder="R")
    assert user.index("[1] 证据") < user.index("Q?")


def test_a_template_missing_a_variable_is_an_error(tmp_path: Path) -> None:
    shutil.copytree(PROJECT_ROOT / "prompts", tmp_path / "p")
    (tmp_path / "p" / "answer_user.txt").write_text("{evidence}\n\nQuestion: {question}\n", "utf-8")
    with pytest.raises(PromptError, match="reminder"):
        load_prompts(tmp_path / "p")


def test_an_unknown_variable_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("{history} {question} {typo}", "utf-8")
    with pytest.raises(PromptError, match="typo"):
        load_prompt(tmp_path, "x.txt", {"history", "question"})


def test_rendering_with_a_missing_value_is_an_error() -> None:
    prompt = load_prompt(PROJECT_ROOT / "prompts", "condense.txt", {"history", "question"})
    with pytest.raises(PromptError, match="missing"):
        prompt.render(history="user: hi")


def test_missing_prompt_file_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(PromptError, match="ASSISTANT_PROMPTS_DIR"):
        load_prompt(tmp_path, "nope.txt", set())


# ------------------------------------------------------------------ reminders


@pytest.fixture(scope="module")
def reminders():  # type: ignore[no-untyped-def]
    return load_reminders(PROJECT_ROOT / "prompts")


@pytest.mark.parametrize(
    ("question", "parts"),
    [
        ("When was the centre set up?", 1),
        ("When was the centre set up, and which organization runs it?", 2),
        ("Where is it based? Who runs it?", 2),
        ("它设在哪个省？哪一年成立？", 2),
        ("它設在哪個省、哪一年成立？", 1),
        ("Which centres in Guangxi, and in Yunnan, serve ASEAN?", 1),  # "and" joins names
    ],
)
def test_parts_are_counted_from_the_cues(reminders, question: str, parts: int) -> None:  # type: ignore[no-untyped-def]
    sentences = len(load_answer_kinds(PROJECT_ROOT / "prompts").parts(question))
    assert reminders.count_parts(question, sentences) == parts


@pytest.mark.parametrize(
    ("question", "items"),
    [
        ("由哪些单位共同主办？", True),
        ("提出的三点倡议是什么？", True),
        ("經費來源包括哪些？", True),  # Traditional script is folded first
        ("国内有哪个国家级平台可以对接？", False),
        ("增设了几个？", False),  # a count, not a list
        ("Which four actions did the ministry announce?", True),
        ("Which organizations co-hosted the conference?", True),
        ("What were the three proposals?", True),
        ("Which center serves ASEAN countries?", False),
        ("What does the table list as the main business of the platform?", False),
    ],
)
def test_item_questions_are_recognised(reminders, question: str, items: bool) -> None:  # type: ignore[no-untyped-def]
    assert reminders.asks_items(question) is items


def test_the_reminder_line_adds_what_the_question_needs(reminders) -> None:  # type: ignore[no-untyped-def]
    plain = reminders.line("When was it founded?", "en")
    assert plain == reminders.always["en"]
    both = reminders.line("它设在哪个省？围绕哪些领域开展合作？", "zh-Hans", sentences=2).splitlines()
    assert both[0] == reminders.always["zh-Hans"]
    assert "2" in both[1] and both[2] == reminders.items["zh-Hans"]


@pytest.mark.parametrize(
    ("old", "new", "named"),
    [
        ('  zh-Hant: "問題問了 {n} 件事：逐一回答。"\n', "", "parts"),  # a language missing
        ("asks {n} things", "asks {count} things", "count"),  # a variable the code does not give
        ("item_cues:\n", "item_cues:\n  - '(unclosed'\n", "item_cues"),  # a broken cue
    ],
)
def test_a_broken_reminders_file_is_an_error_naming_the_key(tmp_path: Path, old: str, new: str, named: str) -> None:
    shutil.copytree(PROJECT_ROOT / "prompts", tmp_path / "p")
    path = tmp_path / "p" / "answer_reminders.yaml"
    text = path.read_text("utf-8")
    assert old in text
    path.write_text(text.replace(old, new), "utf-8")
    with pytest.raises(PromptError, match=named):
        load_prompts(tmp_path / "p")


@pytest.mark.parametrize(
    "broken",
    [
        lambda text: text.replace("zh-Hant:", "zh-TW:"),  # a language missing
        lambda text: text.replace("en: '{\"claims\": [{\"evidence\": ['", "en: 'Answer:'"),  # no JSON opening
    ],
)
def test_a_broken_answer_start_file_is_an_error_naming_the_file(tmp_path: Path, broken: Callable[[str], str]) -> None:
    shutil.copytree(PROJECT_ROOT / "prompts", tmp_path / "p")
    path = tmp_path / "p" / "answer_start.yaml"
    text = path.read_text("utf-8")
    assert broken(text) != text
    path.write_text(broken(text), "utf-8")
    with pytest.raises(PromptError, match=r"answer_start\.yaml"):
        load_prompts(tmp_path / "p")


def test_the_answer_start_opens_the_json_answer_in_every_language() -> None:
    starts = load_prompts(PROJECT_ROOT / "prompts").answer_start
    assert set(starts) == {"en", "zh-Hans", "zh-Hant"}
    for opening in starts.values():
        assert opening.lstrip("`json\n").startswith("{") and opening.rstrip().endswith('"evidence": [')
