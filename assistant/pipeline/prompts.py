"""Prompt templates from `prompts/`, with their variables checked.

Each file is parsed as a LangChain `PromptTemplate` (Python format syntax: `{name}`, with
`{{` and `}}` for literal braces), which lists the variables it uses. `Prompt.render` fills
them in and returns a plain string; the answer stage puts those strings into the chat
messages itself, so no LangChain chain runs here.

A template must use exactly the variables its caller names: a typo in a template or a
variable the code no longer supplies fails loudly when the prompts are loaded.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from langchain_core.prompts import PromptTemplate

from assistant.errors import AssistantError
from assistant.text import to_simplified

REMINDERS_FILE = "answer_reminders.yaml"
START_FILE = "answer_start.yaml"
_FORMATTER = string.Formatter()
LANGUAGES = ("en", "zh-Hans", "zh-Hant")


class PromptError(AssistantError, ValueError):
    """A prompt file is missing or does not use the variables it must."""


@dataclass(frozen=True)
class Prompt:
    name: str
    template: PromptTemplate

    @property
    def variables(self) -> frozenset[str]:
        return frozenset(self.template.input_variables)

    def render(self, **values: str) -> str:
        missing = self.variables - values.keys()
        extra = values.keys() - self.variables
        if missing or extra:
            raise PromptError(
                f"Prompt {self.name}: missing {sorted(missing)}, unexpected {sorted(extra)}."
            )
        return self.template.format(**values)


def load_prompt(prompts_dir: Path, name: str, variables: set[str]) -> Prompt:
    path = prompts_dir / name
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise PromptError(
            f"Prompt file {path} cannot be read ({exc.strerror}). "
            "Check ASSISTANT_PROMPTS_DIR."
        ) from exc
    try:
        template = PromptTemplate.from_template(text)
    except (ValueError, KeyError) as exc:
        raise PromptError(f"Prompt file {path} is not a valid template: {exc}") from exc
    used = set(template.input_variables)
    if used != variables:
        raise PromptError(
            f"Prompt file {path} must use the variables {sorted(variables)}; "
            f"it uses {sorted(used)}."
        )
    return Prompt(name, template)


@dataclass(frozen=True)
class Reminders:
    """The reminder line after the question (`answer_reminders.yaml`): always the same
    line per language, plus a line when the question asks several things or several
    items, found by the file's cues on the question folded to Simplified script. The
    caller says how many sentences the question is (`AnswerKinds.parts`); the cues find
    the questions joined inside one ("…, and which…")."""

    always: dict[str, str]
    parts: dict[str, str]
    items: dict[str, str]
    part_cues: tuple[re.Pattern[str], ...]
    item_cues: tuple[re.Pattern[str], ...]

    def count_parts(self, question: str, sentences: int = 1) -> int:
        """How many questions `question` holds: its question sentences, plus one per part
        cue match inside them."""
        folded = to_simplified(question.strip())
        return sentences + sum(len(p.findall(folded)) for p in self.part_cues)

    def asks_items(self, question: str) -> bool:
        folded = to_simplified(question)
        return any(p.search(folded) for p in self.item_cues)

    def line(self, question: str, language: str, sentences: int = 1) -> str:
        lines = [self.always[language]]
        n = self.count_parts(question, sentences)
        if n > 1:
            lines.append(self.parts[language].format(n=n))
        if self.asks_items(question):
            lines.append(self.items[language])
        return "\n".join(lines)


def read_data_file(path: Path, error: type[Exception] = PromptError) -> Any:
    """A YAML data file of `prompts/`, parsed; `error` says what cannot be read and why."""
    try:
        return yaml.safe_load(path.read_text("utf-8"))
    except OSError as exc:
        raise error(f"{path} cannot be read ({exc.strerror}); check ASSISTANT_PROMPTS_DIR.") from exc
    except yaml.YAMLError as exc:
        raise error(f"{path} is not valid YAML: {exc}") from exc


def load_reminders(prompts_dir: Path) -> Reminders:
    path = prompts_dir / REMINDERS_FILE
    data = read_data_file(path)
    if not isinstance(data, dict):
        raise PromptError(f"{path}: expected a mapping with always, parts, items, part_cues, item_cues.")

    def lines(key: str, fields: set[str]) -> dict[str, str]:
        entry = data.get(key)
        if not isinstance(entry, dict) or any(not isinstance(entry.get(lang), str) for lang in LANGUAGES):
            raise PromptError(f"{path}: `{key}` needs a line for each of {', '.join(LANGUAGES)}.")
        for lang in LANGUAGES:
            used = {name for _, name, _, _ in _FORMATTER.parse(entry[lang]) if name}
            if used != fields:
                raise PromptError(f"{path}: `{key}.{lang}` must use the variables {sorted(fields)}; it uses {sorted(used)}.")
        return {lang: entry[lang] for lang in LANGUAGES}

    def cues(key: str) -> tuple[re.Pattern[str], ...]:
        raw: Any = data.get(key) or []
        if not isinstance(raw, list):
            raise PromptError(f"{path}: `{key}` must be a list of regular expressions.")
        try:
            return tuple(re.compile(str(c), re.IGNORECASE) for c in raw)
        except re.error as exc:
            raise PromptError(f"{path}: a `{key}` entry is not a valid regular expression: {exc}") from exc

    return Reminders(
        always=lines("always", set()),
        parts=lines("parts", {"n"}),
        items=lines("items", set()),
        part_cues=cues("part_cues"),
        item_cues=cues("item_cues"),
    )


def load_answer_start(prompts_dir: Path) -> dict[str, str]:
    """The opening of the JSON answer per language (`answer_start.yaml`), written for the
    model where the backend can."""
    path = prompts_dir / START_FILE
    data = read_data_file(path)
    if not isinstance(data, dict) or any(
        not isinstance(data.get(lang), str) or "{" not in data[lang] for lang in LANGUAGES
    ):
        raise PromptError(f"{path}: needs the opening of a JSON answer (with its '{{') for each of {', '.join(LANGUAGES)}.")
    return {lang: data[lang] for lang in LANGUAGES}


@dataclass(frozen=True)
class PromptSet:
    answer_system: Prompt
    answer_user: Prompt
    answer_start: dict[str, str]  # language → the opening of the JSON answer
    condense: Prompt
    translate: Prompt
    reminders: Reminders


def load_prompts(prompts_dir: Path) -> PromptSet:
    return PromptSet(
        # No variables: the same system message every time, so a llama.cpp server reuses
        # its evaluated prefix across requests.
        answer_system=load_prompt(prompts_dir, "answer_system.txt", set()),
        answer_user=load_prompt(prompts_dir, "answer_user.txt", {"evidence", "question", "reminder"}),
        answer_start=load_answer_start(prompts_dir),
        condense=load_prompt(prompts_dir, "condense.txt", {"history", "question"}),
        translate=load_prompt(prompts_dir, "translate.txt", {"text", "language_name"}),
        reminders=load_reminders(prompts_dir),
    )
