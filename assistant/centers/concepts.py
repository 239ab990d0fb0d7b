"""Sector concepts: which sectors a goal mentions and which cited facts of a center show them.

The vocabulary is the corpus's `concepts.yaml` (its header documents the format): for each
concept, the words a goal may use (English, Chinese) and the words that mark it in the
documents' Chinese; and the fields of `centers.yaml` searched for them, with their weights.
"Specific" concepts are industries; the others are kinds of help almost every center offers.

`load_concepts(corpus_dir)` reads and checks the file once per corpus folder (again when it
changes).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from assistant.centers.datafile import FileCache, describe, read_yaml
from assistant.centers.model import FIELDS, Center, DirectoryError, Fact
from assistant.centers.places import fold_latin
from assistant.text import normalize

CONCEPTS_FILE = "concepts.yaml"

Word = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


@dataclass(frozen=True)
class Concept:
    key: str
    label_en: str
    label_zh: str
    specific: bool
    goal_en: tuple[str, ...]
    goal_zh: tuple[str, ...]
    center_zh: tuple[str, ...]


# ------------------------------------------------------------------ the file's schema


class _ConceptIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]
    label_en: Word
    label_zh: Word
    specific: bool
    goal_en: list[Word] = Field(min_length=1)
    goal_zh: list[Word] = Field(min_length=1)
    center_zh: list[Word] = Field(min_length=1)

    @field_validator("goal_en")
    @classmethod
    def _english_words(cls, words: list[str]) -> list[str]:
        for word in words:
            if "*" in word[:-1]:
                raise ValueError(f"{word!r}: '*' may only end a word (it stands for any ending).")
            if word != word.lower():
                raise ValueError(f"{word!r}: write the words in lower case (goals are matched lower-cased).")
        return words


class _ConceptsFileIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sector_fields: dict[str, Annotated[float, Field(gt=0)]] = Field(min_length=1)
    concepts: list[_ConceptIn] = Field(min_length=1)

    @field_validator("sector_fields")
    @classmethod
    def _known_fields(cls, fields: dict[str, float]) -> dict[str, float]:
        unknown = [name for name in fields if name not in FIELDS]
        if unknown:
            raise ValueError(f"{unknown[0]!r} is not a field of centers.yaml; use one of {', '.join(FIELDS)}.")
        return fields


# ------------------------------------------------------------------ matching


class Concepts:
    """The sector vocabulary of one corpus."""

    def __init__(self, concepts: tuple[Concept, ...], sector_fields: Mapping[str, float], path: Path) -> None:
        self.concepts = concepts
        self.sector_fields = sector_fields
        self.path = path
        self._patterns = {c.key: _goal_pattern(c.goal_en) for c in concepts}

    def goal_concepts(self, text: str) -> list[Concept]:
        """The sector concepts a goal mentions, in English or Chinese."""
        latin = fold_latin(text)
        folded = normalize(text)
        return [
            c for c in self.concepts
            if self._patterns[c.key].search(latin) or any(z in folded for z in c.goal_zh)
        ]

    def center_facts(self, center: Center, concept: Concept) -> list[tuple[float, Fact]]:
        """(weight, fact) for each cited fact of the center that shows the concept; the
        weight is that of the fact's field under `sector_fields`."""
        hits = []
        for name, weight in self.sector_fields.items():
            for fact in center.field(name):
                text = normalize((fact.value_zh or "") + " " + (fact.quote or ""))
                if any(word in text for word in concept.center_zh):
                    hits.append((weight, fact))
        return hits


def _goal_pattern(words: tuple[str, ...]) -> re.Pattern[str]:
    """Whole-word alternatives; a trailing '*' allows any ending ("farm*": farms, farming)."""
    parts = [re.escape(w[:-1]) + r"[a-z-]*" if w.endswith("*") else re.escape(w) for w in words]
    return re.compile(r"(?<![a-z0-9])(?:" + "|".join(parts) + r")(?![a-z0-9])")


# ------------------------------------------------------------------ loading


def load_concepts(corpus_dir: Path | str) -> Concepts:
    """The checked sector vocabulary of `corpus_dir/concepts.yaml`, cached per file.

    Raises `DirectoryError` naming the file, the row and what is wrong."""
    return _CACHE.get(Path(corpus_dir) / CONCEPTS_FILE)


def _read(path: Path) -> Concepts:
    raw = read_yaml(path, "the sector concepts are a YAML file next to the documents (see corpus/concepts.yaml)")
    try:
        data = _ConceptsFileIn.model_validate(raw)
    except ValidationError as exc:
        raise DirectoryError(describe(path.name, exc, raw)) from exc
    seen: set[str] = set()
    for i, c in enumerate(data.concepts):
        if c.key in seen:
            raise DirectoryError(f"{path.name}: concepts[{i}] ({c.key!r}): the key is used twice; keys must be unique.")
        seen.add(c.key)
    concepts = tuple(
        Concept(c.key, c.label_en, c.label_zh, c.specific, tuple(c.goal_en),
                tuple(normalize(w) for w in c.goal_zh), tuple(normalize(w) for w in c.center_zh))
        for c in data.concepts
    )
    return Concepts(concepts, dict(data.sector_fields), path)


_CACHE: FileCache[Concepts] = FileCache(_read)
