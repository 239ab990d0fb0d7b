"""Prompt templates from `prompts/`, with their variables checked.

Each file is parsed as a LangChain `PromptTemplate` (Python format syntax: `{name}`, with
`{{` and `}}` for literal braces), which lists the variables it uses. `Prompt.render` fills
them in and returns a plain string; the answer stage puts those strings into the chat
messages itself, so no LangChain chain runs here.

A template must use exactly the variables its caller names: a typo in a template or a
variable the code no longer supplies fails loudly when the prompts are loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from langchain_core.prompts import PromptTemplate

from assistant.errors import AssistantError


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
class PromptSet:
    answer_system: Prompt
    answer_user: Prompt
    condense: Prompt
    translate: Prompt


def load_prompts(prompts_dir: Path) -> PromptSet:
    return PromptSet(
        # No variables: the same system message every time, so a llama.cpp server reuses
        # its evaluated prefix across requests.
        answer_system=load_prompt(prompts_dir, "answer_system.txt", set()),
        answer_user=load_prompt(prompts_dir, "answer_user.txt", {"evidence", "question", "reminder"}),
        condense=load_prompt(prompts_dir, "condense.txt", {"history", "question"}),
        translate=load_prompt(prompts_dir, "translate.txt", {"text", "language_name"}),
    )
