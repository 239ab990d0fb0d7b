"""Loading `centers.yaml`: pydantic-validated entries, every quote checked against its document.

Each value of an entry carries the document id and a verbatim quote (see the header of
`corpus/centers.yaml`). The entries' shape is validated by the models below (which field
takes a list, which may be a translation, which region codes and country names exist);
then every quote is looked up in its document's text and its `start`/`end` offsets
recorded. Any problem stops loading with a `DirectoryError` naming the entry and the field.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    StrictBool,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from assistant.centers.concepts import load_concepts
from assistant.centers.datafile import MAX_REPORTED_ERRORS, error_text, read_yaml
from assistant.centers.directory import Directory
from assistant.centers.model import (
    DIRECTORY_FILE,
    FIELDS,
    KINDS,
    NOT_STATED,
    REACHES,
    Center,
    DirectoryError,
    DocInfo,
    Fact,
)
from assistant.centers.places import Geography, load_geography
from assistant.text import to_simplified

if TYPE_CHECKING:
    from assistant.types import Document

_ID_OK = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_NOT_STATED_HINT = f"{{value: null, note: {NOT_STATED}}}"


# ------------------------------------------------------------------ the entries' schema


class _FactIn(BaseModel):
    """One value as written in centers.yaml; subclasses set the rules of their field."""

    model_config = ConfigDict(extra="forbid")

    rule: ClassVar[str] = "text"  # "text", "kind", "name_en", "region" or "countries"

    value: str | tuple[str, ...] | None
    value_zh: str | None = None
    doc_id: str | None = None
    quote: str | None = None
    note: str | None = None
    translated: StrictBool = False
    reach: str = "primary"
    context: str | None = None
    context_zh: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _a_mapping(cls, raw: Any) -> Any:
        if not isinstance(raw, dict):
            raise ValueError(f'expected {{value: ..., doc_id: ..., quote: "..."}}, got {type(raw).__name__}.')
        return raw

    @field_validator("value", mode="before")
    @classmethod
    def _value_shape(cls, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (str, int, float, list)):
            raise ValueError("the value must be text, a number or a list of text.")
        if isinstance(value, list):
            if cls.rule != "countries" or not value or not all(isinstance(v, str) and v.strip() for v in value):
                raise ValueError("only countries takes a list of names as its value.")
            return tuple(v.strip() for v in value)
        text = str(value).strip()
        if not text:
            raise ValueError(f"empty value; write {_NOT_STATED_HINT} instead.")
        return text

    @model_validator(mode="after")
    def _rules(self, info: ValidationInfo) -> _FactIn:
        if self.value is None:
            if not self.note or not self.note.strip():
                raise ValueError(f"a null value needs a note, e.g. note: {NOT_STATED}.")
            if self.quote or self.doc_id:
                raise ValueError("a null value cannot carry a quote; give the value or drop the quote.")
            self.note = self.note.strip()
            return self
        geography: Geography | None = (info.context or {}).get("geography")
        if isinstance(self.value, tuple):
            for country in self.value:
                if geography is not None and geography.country(country) is None:
                    raise ValueError(
                        f"{country!r} is not a country name the place table knows; use the English "
                        f"name of a row under 'countries' in {geography.path.name}."
                    )
        elif self.rule == "countries":
            raise ValueError("countries takes a list of country names as its value.")
        elif self.rule == "region" and geography is not None and self.value not in geography.regions:
            raise ValueError(
                f"unknown region code {self.value!r}; use one of {', '.join(geography.regions)}."
            )
        elif self.rule == "kind" and self.value not in KINDS:
            raise ValueError(f"unknown kind {self.value!r}; use one of {', '.join(KINDS)}.")
        if self.translated and self.rule != "name_en":
            raise ValueError("only name_en may be a translation; other values need a quote.")
        if self.reach not in REACHES:
            raise ValueError(f"reach must be one of {', '.join(REACHES)} (got {self.reach!r}).")
        if self.reach != "primary" and self.rule != "region":
            raise ValueError("'reach' applies only to regions.")
        if self.quote is None and self.doc_id is None:
            if not self.translated:
                raise ValueError(
                    f"the value {_short(str(self.value))!r} has no doc_id and quote. Every value needs "
                    "the id of the document that states it and a verbatim quote from its text."
                )
        elif self.doc_id is None:
            raise ValueError("the quote needs the doc_id of the document it is taken from.")
        elif self.quote is None or not self.quote.strip():
            raise ValueError(f"the quote must be non-empty text from document {self.doc_id!r}.")
        return self


class _TextFact(_FactIn):
    rule: ClassVar[str] = "text"


class _KindFact(_FactIn):
    rule: ClassVar[str] = "kind"


class _NameEnFact(_FactIn):
    rule: ClassVar[str] = "name_en"


class _RegionFact(_FactIn):
    rule: ClassVar[str] = "region"


class _CountriesFact(_FactIn):
    rule: ClassVar[str] = "countries"


class _EntryIn(BaseModel):
    """One organization. A list-typed field takes one fact or a list of stated facts."""

    model_config = ConfigDict(extra="forbid")

    id: str
    kind: _KindFact
    name_zh: _TextFact
    name_en: _NameEnFact
    level: _TextFact
    regions: list[_RegionFact]
    countries: list[_CountriesFact]
    host: _TextFact
    founded: _TextFact
    operator: _TextFact
    operating_model: list[_TextFact]
    services: list[_TextFact]
    focus_fields: list[_TextFact]
    events: list[_TextFact]
    overseas_centers: list[_TextFact]
    funding: list[_TextFact]
    targets: list[_TextFact]

    @field_validator("id", mode="before")
    @classmethod
    def _id(cls, value: Any) -> Any:
        if not isinstance(value, str) or not _ID_OK.match(value):
            raise ValueError(f"needs an 'id' of lower-case letters, digits and '-' (got {value!r}).")
        return value

    @field_validator(*FIELDS, mode="before")
    @classmethod
    def _one_or_many(cls, raw: Any, info: ValidationInfo) -> Any:
        many = info.field_name in _LIST_FIELDS
        if isinstance(raw, list):
            if not raw:
                raise ValueError(f"an empty list; write {_NOT_STATED_HINT} instead.")
            if not many:
                raise ValueError("takes one value, not a list.")
            if any(isinstance(item, dict) and "value" in item and item["value"] is None for item in raw):
                raise ValueError("a list may hold only stated values, each with its quote.")
            return raw
        return [raw] if many else raw

    @field_validator("kind", "name_zh", "name_en")
    @classmethod
    def _given(cls, fact: _FactIn) -> _FactIn:
        if fact.value is None:
            raise ValueError("must be given (it cannot be 'not stated').")
        return fact


_LIST_FIELDS = frozenset(name for name, info in _EntryIn.model_fields.items() if get_origin(info.annotation) is list)
if set(_EntryIn.model_fields) != {"id", *FIELDS}:
    raise RuntimeError("the entry model and FIELDS must list the same fields")


class _UiIn(BaseModel):
    """How the UI opens: the centers compared first and the examples in the goal form."""

    model_config = ConfigDict(extra="forbid")

    compare: list[str] = []
    goal_example: str | None = None
    countries_example: str | None = None


# ------------------------------------------------------------------ loading


def load_directory(
    corpus_dir: Path | str,
    documents: Mapping[str, str],
    *,
    sources: Mapping[str, DocInfo] | None = None,
) -> Directory:
    """Read `corpus_dir/centers.yaml` and verify every quote against `documents` (id -> text).

    The geography (`places.yaml`) and sector concepts (`concepts.yaml`) of the same folder
    are loaded with it. `sources` (id -> title, kind, date) is used for the citations'
    titles; without it the document id stands in for the title. Raises `DirectoryError`
    naming the entry and the field when the file, an entry or a quote is wrong.
    """
    corpus_dir = Path(corpus_dir)
    path = corpus_dir / DIRECTORY_FILE
    raw = read_yaml(
        path, f"the centers directory is a YAML file next to the documents (see corpus/{DIRECTORY_FILE} in the repository)"
    )
    if not isinstance(raw, dict) or not isinstance(raw.get("entries"), list):
        raise DirectoryError(f"{path.name}: expected a mapping with an 'entries:' list.")
    for i, entry in enumerate(raw["entries"]):
        if not isinstance(entry, dict):
            raise DirectoryError(f"{path.name}: entry #{i + 1} is not a mapping of field: value.")
    geography = load_geography(corpus_dir)
    concepts = load_concepts(corpus_dir)
    entries = _validate(raw, geography, path.name)

    centers: list[Center] = []
    seen: set[str] = set()
    for entry, raw_entry in zip(entries, raw["entries"], strict=True):
        if entry.id in seen:
            raise DirectoryError(f"{path.name}: entry id {entry.id!r} is used twice; ids must be unique.")
        seen.add(entry.id)
        centers.append(_center(entry, raw_entry, documents, f"{path.name}: entry {entry.id!r}"))
    ui = raw.get("ui") or {}
    unknown = [i for i in ui.get("compare", []) if i not in seen] if isinstance(ui, dict) else []
    if unknown:
        raise DirectoryError(f"{path.name}: ui, compare: {unknown[0]!r} is not an entry id.")
    infos = {
        doc_id: (sources or {}).get(doc_id) or DocInfo(doc_id, doc_id) for doc_id in documents
    }
    return Directory(tuple(centers), infos, path, geography, concepts)


def directory_from_documents(corpus_dir: Path | str, docs: Iterable[Document]) -> Directory:
    """`load_directory` for `Document`s (texts, titles, kinds and dates in one go)."""
    docs = list(docs)
    return load_directory(
        corpus_dir,
        {d.doc_id: d.text for d in docs},
        sources={d.doc_id: DocInfo(d.doc_id, d.title, d.kind, d.published) for d in docs},
    )


def verify_corpus_directory(corpus_dir: Path | str) -> Directory | None:
    """Check the directory of a corpus folder against its documents (for `assistant ingest`).

    Returns None when the folder has no centers.yaml (other corpora need none); raises
    `DirectoryError` when it has one that does not check out.
    """
    from assistant.pipeline.corpus import load_corpus

    corpus_dir = Path(corpus_dir)
    if not (corpus_dir / DIRECTORY_FILE).is_file():
        return None
    return directory_from_documents(corpus_dir, load_corpus(corpus_dir))


def _validate(raw: dict[str, Any], geography: Geography, file: str) -> list[_EntryIn]:
    entries: list[_EntryIn] = []
    problems: list[str] = []
    for i, entry in enumerate(raw["entries"]):
        try:
            entries.append(_EntryIn.model_validate(entry, context={"geography": geography}))
        except ValidationError as exc:
            problems.extend(_entry_problem(file, i, entry, err["loc"], err) for err in exc.errors())
    extra = set(raw) - {"version", "entries", "ui"}
    if extra:
        problems.append(f"{file}: unknown top-level key(s) {', '.join(sorted(extra))}; the keys are version, entries, ui.")
    try:
        _UiIn.model_validate(raw.get("ui") or {})
    except ValidationError as exc:
        problems.extend(f"{file}: ui, {'.'.join(map(str, e['loc']))}: {error_text(e)}" for e in exc.errors())
    problems = list(dict.fromkeys(problems))
    if problems:
        more = len(problems) - MAX_REPORTED_ERRORS
        raise DirectoryError("\n".join(problems[:MAX_REPORTED_ERRORS]) + (f"\n{file}: … and {more} more." if more > 0 else ""))
    return entries


def _entry_problem(file: str, index: int, entry: dict[str, Any], loc: tuple[int | str, ...], err: Any) -> str:
    """One validation error as "<file>: entry 'id', field 'name[i]': what is wrong"."""
    entry_id = entry.get("id")
    if not loc or loc[0] == "id" or not isinstance(entry_id, str) or not _ID_OK.match(entry_id):
        return (
            f"{file}: entry #{index + 1} needs an 'id' of lower-case letters, digits and '-' "
            f"(got {entry_id!r})."
        )
    where = f"{file}: entry {entry_id!r}"
    name = str(loc[0])
    if len(loc) == 1 and err["type"] == "missing":
        return (
            f"{where}: field {name!r} is missing. Give it with a quote, or write "
            f"{_NOT_STATED_HINT} when the documents do not state it."
        )
    if len(loc) == 1 and err["type"] == "extra_forbidden":
        return f"{where}: unknown field {name!r}; the fields are {', '.join(FIELDS)}."
    rest = list(loc[1:])
    label = name
    if rest and isinstance(rest[0], int):
        if isinstance(entry.get(name), list):
            label += f"[{rest[0]}]"
        rest = rest[1:]
    where += f", field {label!r}"
    if rest and err["type"] == "missing":
        return f"{where}: no {rest[0]!r} key."
    if rest and err["type"] == "extra_forbidden":
        allowed = ", ".join(sorted(_FactIn.model_fields))
        return f"{where}: unknown key {rest[0]!r}; allowed: {allowed}."
    if rest:
        where += f", key {rest[0]!r}"
    return f"{where}: {error_text(err)}"


# ------------------------------------------------------------------ quotes


def _center(entry: _EntryIn, raw_entry: Mapping[str, Any], documents: Mapping[str, str], where: str) -> Center:
    facts: dict[str, tuple[Fact, ...]] = {}
    for name in FIELDS:
        value: _FactIn | list[_FactIn] = getattr(entry, name)
        items = value if isinstance(value, list) else [value]
        many = isinstance(raw_entry.get(name), list)
        facts[name] = tuple(
            _fact(item, documents, f"{where}, field '{name}[{i}]'" if many else f"{where}, field '{name}'")
            for i, item in enumerate(items)
        )
    return Center(entry.id, facts)


def _fact(item: _FactIn, documents: Mapping[str, str], where: str) -> Fact:
    start = end = None
    if item.doc_id is not None and item.quote is not None:
        if item.doc_id not in documents:
            known = ", ".join(sorted(documents)) or "none loaded"
            raise DirectoryError(f"{where}: doc_id {item.doc_id!r} is not a document id (known: {known}).")
        start = documents[item.doc_id].find(item.quote)
        if start < 0:
            raise DirectoryError(_quote_not_found(where, item.doc_id, item.quote, documents[item.doc_id]))
        end = start + len(item.quote)
    return Fact(
        item.value,
        value_zh=item.value_zh,
        doc_id=item.doc_id,
        quote=item.quote,
        start=start,
        end=end,
        note=item.note,
        translated=item.translated,
        reach=item.reach,
        context=item.context,
        context_zh=item.context_zh,
    )


def _quote_not_found(where: str, doc_id: str, quote: str, text: str) -> str:
    message = (
        f"{where}: quote not found in document {doc_id!r}: {_short(quote, 120)!r}. "
        "Copy it exactly from the document text after the front matter — same script "
        "(Simplified or Traditional), same full- or half-width punctuation, same spaces, tabs "
        "(\\t) and line breaks (\\n)."
    )
    near = _near_match(quote, text)
    if near is not None:
        message += f" The document has a near match that differs in script, spacing or punctuation: {_short(near, 120)!r}."
    return message


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _loose_char(ch: str) -> str:
    if ch.isspace():
        return ""
    ch = unicodedata.normalize("NFKC", ch)
    return to_simplified(ch).lower()


def _near_match(quote: str, text: str) -> str | None:
    """The document span that matches `quote` ignoring script, width, case and whitespace."""
    target = "".join(_loose_char(c) for c in quote)
    if not target:
        return None
    folded: list[str] = []
    index: list[int] = []
    for i, ch in enumerate(text):
        for c in _loose_char(ch):
            folded.append(c)
            index.append(i)
    pos = "".join(folded).find(target)
    if pos < 0:
        return None
    return text[index[pos] : index[pos + len(target) - 1] + 1]
