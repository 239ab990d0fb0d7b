"""What the assistant knows of its corpus besides the documents: data files beside them.

The vocabulary that ties English questions and answers to one corpus's Chinese documents
lives in optional YAML files in the corpus folder, so that a deployment over other
documents replaces them without touching the code:

* `synonyms.yaml`: English phrases → Chinese search terms, and places → the regions the
  documents group them under (keyword search for English questions);
* `names.yaml`: English renderings of Chinese names (English answers over Chinese passages);
* `examples.yaml`: the example questions the web UI offers.

Each file describes its format in its header. A missing file means "none"; a malformed
one raises `DomainDataError` naming the file, the entry and the problem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from assistant.pipeline.corpus import CorpusError
from assistant.text import normalize, to_simplified

SYNONYMS_FILE = "synonyms.yaml"
NAMES_FILE = "names.yaml"
EXAMPLES_FILE = "examples.yaml"


class DomainDataError(CorpusError):
    """A data file in the corpus folder is malformed; the message names the file, the entry and the problem.

    A `CorpusError`: the corpus folder is what needs fixing, and every face already
    reports those cleanly.
    """


@dataclass(frozen=True)
class Synonyms:
    """How English questions reach Chinese passages (`synonyms.yaml`), in file order."""

    # (English phrase in `phrase_words` form, the Chinese terms a question containing it
    # also searches for)
    glossary: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # (place in normalized form, the regions the documents group it under)
    regions: tuple[tuple[str, tuple[str, ...]], ...] = ()


@dataclass(frozen=True)
class Names:
    """English renderings of Chinese names (`names.yaml`)."""

    # (Chinese name in Simplified script, English rendering), in file order
    english: tuple[tuple[str, str], ...] = ()
    # What follows "China–" in the English names of the bilateral centers.
    china_partners: tuple[str, ...] = ()


@dataclass(frozen=True)
class DomainData:
    synonyms: Synonyms = field(default_factory=Synonyms)
    names: Names = field(default_factory=Names)
    examples: tuple[str, ...] = ()


def load_domain(corpus_dir: Path) -> DomainData:
    """The data files of `corpus_dir`; a missing file is empty, a malformed one an error."""
    return DomainData(
        synonyms=load_synonyms(corpus_dir),
        names=load_names(corpus_dir),
        examples=load_examples(corpus_dir),
    )


def load_synonyms(corpus_dir: Path) -> Synonyms:
    path = corpus_dir / SYNONYMS_FILE
    data = _sections(path, ("glossary", "regions"))
    glossary: list[tuple[str, tuple[str, ...]]] = []
    seen: dict[str, str] = {}
    for where, entry in _entries(path, data, "glossary", ("en", "zh")):
        terms = tuple(to_simplified(t) for t in _strings(path, where, entry, "zh"))
        for phrase in _strings(path, where, entry, "en"):
            words = phrase_words(phrase)
            if not words:
                raise _error(path, where, f"the English phrase {phrase!r} has no letter or digit, so it never matches.")
            if words in seen:
                raise _error(path, where, f"the English phrase {phrase!r} is already in {seen[words]}; list it once.")
            seen[words] = where
            glossary.append((words, terms))
    regions: list[tuple[str, tuple[str, ...]]] = []
    places: dict[str, str] = {}
    for where, entry in _entries(path, data, "regions", ("places", "regions")):
        names = tuple(to_simplified(r) for r in _strings(path, where, entry, "regions"))
        for place in _strings(path, where, entry, "places"):
            folded = normalize(place)
            if folded in places:
                raise _error(path, where, f"the place {place!r} is already in {places[folded]}; list it once.")
            places[folded] = where
            regions.append((folded, names))
    return Synonyms(tuple(glossary), tuple(regions))


def load_names(corpus_dir: Path) -> Names:
    path = corpus_dir / NAMES_FILE
    data = _sections(path, ("names", "china_partners"))
    english: list[tuple[str, str]] = []
    seen: dict[str, str] = {}
    for where, entry in _entries(path, data, "names", ("zh", "en")):
        rendering = entry["en"]
        if not isinstance(rendering, str) or not rendering.strip():
            raise _error(path, where, f"`en` must be one non-empty string (got {rendering!r}).")
        for name in _strings(path, where, entry, "zh"):
            simplified = to_simplified(name)
            if simplified in seen:
                raise _error(path, where, f"the Chinese name {name!r} is already in {seen[simplified]}; list it once.")
            seen[simplified] = where
            english.append((simplified, rendering.strip()))
    partners = data.get("china_partners")
    china_partners = () if partners is None else _strings(path, "china_partners", data, "china_partners")
    return Names(tuple(english), china_partners)


def load_examples(corpus_dir: Path) -> tuple[str, ...]:
    path = corpus_dir / EXAMPLES_FILE
    data = _read(path)
    if data is None:
        return ()
    if not isinstance(data, list):
        raise _error(path, "the file", f"must be a list of questions (`- question`), not {_kind(data)}.")
    questions = []
    for n, item in enumerate(data, start=1):
        if not isinstance(item, str) or not item.strip():
            raise _error(path, f"example {n}", f"must be a non-empty string (got {item!r}).")
        questions.append(item.strip())
    return tuple(questions)


# --------------------------------------------------------------------------- helpers


def _read(path: Path) -> Any:
    """The parsed YAML of `path`; None when the file does not exist or is empty."""
    if not path.exists():
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DomainDataError(f"{path}: cannot be read as UTF-8 text ({exc}). Fix the file or delete it.") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or exc
        raise DomainDataError(f"{path}: not valid YAML{at} ({problem}). Fix the file or delete it.") from exc


def _sections(path: Path, names: tuple[str, ...]) -> dict[str, Any]:
    data = _read(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise _error(path, "the file", f"must be a mapping with the keys {', '.join(names)}, not {_kind(data)}.")
    unknown = sorted(str(k) for k in data if k not in names)
    if unknown:
        raise _error(path, "the file", f"unknown key(s) {', '.join(unknown)}; the keys are {', '.join(names)}.")
    return data


def _entries(path: Path, data: dict[str, Any], section: str, keys: tuple[str, ...]) -> list[tuple[str, dict[str, Any]]]:
    """The entries of a list-of-mappings section, each with the words that locate it in errors."""
    items = data.get(section)
    if items is None:
        return []
    if not isinstance(items, list):
        raise _error(path, section, f"must be a list of entries (`- {keys[0]}: …`), not {_kind(items)}.")
    out = []
    for n, entry in enumerate(items, start=1):
        where = f"{section} entry {n}"
        if not isinstance(entry, dict):
            raise _error(path, where, f"must be a mapping with the keys {', '.join(keys)} (got {entry!r}).")
        first = entry.get(keys[0])
        label = first[0] if isinstance(first, list) and first else first
        if isinstance(label, str):
            where += f" ({label!r})"
        missing = [k for k in keys if k not in entry]
        unknown = sorted(str(k) for k in entry if k not in keys)
        if missing or unknown:
            problems = ([f"missing {', '.join(missing)}"] if missing else []) + (
                [f"unknown key(s) {', '.join(unknown)}"] if unknown else []
            )
            raise _error(path, where, f"{'; '.join(problems)}; the keys are {', '.join(keys)}.")
        out.append((where, entry))
    return out


def _strings(path: Path, where: str, entry: dict[str, Any], key: str) -> tuple[str, ...]:
    """`entry[key]` as a tuple of stripped strings: one string or a non-empty list of them."""
    value = entry[key]
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(s, str) and s.strip() for s in items):
        raise _error(path, where, f"`{key}` must be a non-empty string or a list of them (got {value!r}).")
    return tuple(s.strip() for s in items)


def phrase_words(text: str) -> str:
    """The form English phrases are matched in: lower-case words joined by single spaces.

    Punctuation separates words, so "China-EU" and "China–EU" both contain "eu".
    """
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def _kind(value: object) -> str:
    for kind, words in ((dict, "a mapping"), (list, "a list"), (str, "a string")):
        if isinstance(value, kind):
            return words
    return type(value).__name__


def _error(path: Path, where: str, problem: str) -> DomainDataError:
    return DomainDataError(f"{path}: {where}: {problem} Fix the file or delete it.")
