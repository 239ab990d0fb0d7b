"""Prompt files: named variables, checked when loaded and when rendered."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from assistant.pipeline.prompts import PromptError, load_prompt, load_prompts
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
