"""The directory's data model: cited facts, organizations, regions, the field schema.

A `Fact` is one value of one field of an organization: cited (document id, verbatim quote
and its offsets), a translation (only `name_en`), or not stated. `FIELDS` is the schema
every entry of `centers.yaml` follows, in display order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from assistant.errors import AssistantError
from assistant.text import to_traditional
from assistant.types import Quote

DIRECTORY_FILE = "centers.yaml"
NOT_STATED = "not stated in the documents"


class DirectoryError(AssistantError, ValueError):
    """The directory cannot be loaded; the message names the file, the entry or row, and the fix."""

    status = 503


KINDS = ("regional-center", "provincial-union", "university-platform", "foreign-model")
REACHES = ("primary", "outreach")

# Field name -> (English label, Chinese label), in display order.
FIELDS: dict[str, tuple[str, str]] = {
    "kind": ("Kind", "类型"),
    "name_zh": ("Chinese name", "中文名称"),
    "name_en": ("English name", "英文名称"),
    "level": ("Level", "级别"),
    "regions": ("Regions served", "服务地区"),
    "countries": ("Countries named", "提及国家"),
    "host": ("Host province / city", "所在地"),
    "founded": ("Founded", "成立时间"),
    "operator": ("Operator", "运营主体"),
    "operating_model": ("Operating model", "运营模式"),
    "services": ("Services", "服务内容"),
    "focus_fields": ("Focus fields", "重点领域"),
    "events": ("Recurring events", "品牌活动"),
    "overseas_centers": ("Bilateral / overseas centers", "双边及境外中心"),
    "funding": ("Funding", "经费来源"),
    "targets": ("Targets", "发展目标"),
}

# "{home}" is filled with the home country's name from places.yaml.
_KIND_LABELS = {
    "regional-center": ("international technology transfer center in {home}", "{home}的国际技术转移中心"),
    "provincial-union": ("provincial cooperation union", "省级合作联盟"),
    "university-platform": ("bilateral university innovation platform", "高校双边创新平台"),
    "foreign-model": ("foreign organization the paper compares", "论文比较的国外机构"),
}


def kind_label(kind: str, home_en: str, home_zh: str) -> tuple[str, str]:
    """(English, Chinese) label of an organization kind; the kind itself when unknown."""
    en, zh = _KIND_LABELS.get(kind, (kind, kind))
    return en.format(home=home_en), zh.format(home=home_zh)


@dataclass(frozen=True)
class Region:
    """A region code of the directory with its display names (from places.yaml).

    `short_en` is the label of the UI's schematic map and `map` the (x, y) where the map
    draws the region, or None where the map leaves it out. A `worldwide` region stands for
    the whole world: a center serving it is the fallback when none serves the places named."""

    code: str
    name_en: str
    name_zh: str
    short_en: str
    map: tuple[float, float] | None = None
    worldwide: bool = False


@dataclass(frozen=True)
class Fact:
    """One value of one field: cited (doc_id + quote + offsets), translated, or not stated."""

    value: str | tuple[str, ...] | None
    value_zh: str | None = None
    doc_id: str | None = None
    quote: str | None = None
    start: int | None = None
    end: int | None = None
    note: str | None = None
    translated: bool = False
    reach: str = "primary"
    context: str | None = None
    context_zh: str | None = None

    @property
    def stated(self) -> bool:
        return self.value is not None

    @property
    def cited(self) -> bool:
        return self.quote is not None and self.doc_id is not None and self.start is not None

    def text(self, language: str = "en") -> str:
        """The value in `language` ('en', 'zh-Hans', 'zh-Hant'); '' when not stated."""
        if self.value is None:
            return ""
        if language.startswith("zh"):
            zh = self.value_zh or _join_values(self.value)
            return to_traditional(zh) if language == "zh-Hant" else zh
        return _join_values(self.value)

    def context_text(self, language: str = "en") -> str:
        if language.startswith("zh"):
            zh = self.context_zh or self.context or ""
            return to_traditional(zh) if language == "zh-Hant" else zh
        return self.context or ""

    def quote_ref(self) -> Quote | None:
        if not self.cited:
            return None
        assert self.doc_id is not None and self.quote is not None
        assert self.start is not None and self.end is not None
        return Quote(self.doc_id, self.quote, self.start, self.end)

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"value": list(self.value) if isinstance(self.value, tuple) else self.value}
        for key in ("value_zh", "context", "context_zh", "doc_id", "quote", "start", "end", "note"):
            v = getattr(self, key)
            if v is not None:
                data[key] = v
        if self.translated:
            data["translated"] = True
        if self.reach != "primary":
            data["reach"] = self.reach
        return data


def _join_values(value: str | tuple[str, ...]) -> str:
    return ", ".join(value) if isinstance(value, tuple) else value


@dataclass(frozen=True)
class DocInfo:
    doc_id: str
    title: str
    kind: str = "unknown"
    published: str | None = None


@dataclass(frozen=True)
class Center:
    id: str
    facts: Mapping[str, tuple[Fact, ...]]

    def field(self, name: str) -> tuple[Fact, ...]:
        """The stated facts of a field (empty when the documents do not give it)."""
        return tuple(f for f in self.facts.get(name, ()) if f.stated)

    def first(self, name: str) -> Fact | None:
        facts = self.field(name)
        return facts[0] if facts else None

    def note(self, name: str) -> str | None:
        facts = self.facts.get(name, ())
        return facts[0].note if facts and not facts[0].stated else None

    def value(self, name: str, language: str = "en") -> str | None:
        fact = self.first(name)
        return fact.text(language) if fact else None

    @property
    def kind(self) -> str:
        return str(self.facts["kind"][0].value)

    @property
    def is_foreign(self) -> bool:
        return self.kind == "foreign-model"

    @property
    def name_zh(self) -> str:
        return str(self.facts["name_zh"][0].value)

    @property
    def name_en(self) -> str:
        return str(self.facts["name_en"][0].value)

    @property
    def name_en_translated(self) -> bool:
        return self.facts["name_en"][0].translated

    def name(self, language: str = "en") -> str:
        if language == "zh-Hant":
            return to_traditional(self.name_zh)
        return self.name_zh if language.startswith("zh") else self.name_en

    def regions(self, reach: str | None = "primary") -> tuple[str, ...]:
        return tuple(
            str(f.value) for f in self.field("regions") if reach is None or f.reach == reach
        )

    def countries(self) -> tuple[str, ...]:
        names: list[str] = []
        for f in self.field("countries"):
            values = f.value if isinstance(f.value, tuple) else (str(f.value),)
            names.extend(v for v in values if v not in names)
        return tuple(names)

    @property
    def level(self) -> str | None:
        fact = self.first("level")
        if fact is None:
            return None
        text = str(fact.value)
        for level in ("national", "provincial"):
            if text.startswith(level):
                return level
        return None

    def stated_fields(self) -> list[str]:
        return [name for name in FIELDS if self.field(name)]

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "name_zh": self.name_zh,
            "name_en": self.name_en,
            "name_en_translated": self.name_en_translated,
            "regions": list(self.regions("primary")),
            "outreach_regions": list(self.regions("outreach")),
            "countries": list(self.countries()),
            "host": self.value("host"),
            "founded": self.value("founded"),
        }

    def detail(self) -> dict[str, Any]:
        data = self.summary()
        data["fields"] = {name: [f.as_dict() for f in self.facts.get(name, ())] for name in FIELDS}
        return data
