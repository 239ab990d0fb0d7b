"""The centers directory and the "which center fits my goal?" recommendation.

Two kinds of knowledge are kept apart here:

* **Facts** about the organizations come only from `corpus/centers.yaml`, where every
  value carries the document id and a verbatim quote. `load_directory` checks each quote
  against its document's text and records its `start`/`end` offsets; a quote that is not
  found stops loading with a `DirectoryError` naming the entry and the field.
* **Geography** — which countries belong to which region (Vietnam is in ASEAN, Kuwait is an
  Arab state, Brazil is in Latin America) — is the table `_PLACE_ROWS` below. It is general
  knowledge used only to match a user's places to the regions the documents say each
  organization serves; it is never shown as a fact about an organization.

Entry points: `load_directory`, `directory_from_documents`, `resolve_places`/`find_places`,
`recommend`, `looks_like_recommendation`, `render_recommendation`, `recommendation_answer`
and `DirectoryCache`. The module reads no environment and builds nothing at import: the
place and keyword tables are compiled on first use.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import yaml

from .text import detect_language, normalize, to_simplified, to_traditional
from .types import Answer, Citation

if TYPE_CHECKING:
    from .settings import Settings
    from .types import Document

DIRECTORY_FILE = "centers.yaml"
NOT_STATED = "not stated in the documents"


class DirectoryError(ValueError):
    """The directory cannot be loaded; the message names the entry and field and the fix."""


# =============================================================================== schema


@dataclass(frozen=True)
class Region:
    code: str
    name_en: str
    name_zh: str


REGIONS: dict[str, Region] = {
    r.code: r
    for r in (
        Region("asean", "ASEAN", "东盟"),
        Region("south-asia", "South Asia", "南亚"),
        Region("arab-states", "the Arab states", "阿拉伯国家"),
        Region("cee", "Central and Eastern Europe", "中东欧"),
        Region("africa", "Africa", "非洲"),
        Region("sco", "the SCO (Shanghai Cooperation Organisation) countries", "上合组织国家"),
        Region("lac", "Latin America and the Caribbean", "拉美和加勒比"),
        Region("brics", "the BRICS countries", "金砖国家"),
        Region("cis", "Eastern Europe and the CIS", "东欧独联体国家"),
        Region("northeast-asia", "Northeast Asia", "东北亚"),
        Region("global", "worldwide", "全球"),
        Region("usa", "the United States", "美国"),
        Region("europe", "Europe", "欧洲"),
        Region("japan", "Japan", "日本"),
        Region("korea", "South Korea", "韩国"),
        Region("uk", "the United Kingdom", "英国"),
        Region("israel", "Israel", "以色列"),
    )
}

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
_LIST_FIELDS = {"regions", "countries", "operating_model", "services", "focus_fields", "events",
                "overseas_centers", "funding", "targets"}
_FACT_KEYS = {"value", "value_zh", "doc_id", "quote", "note", "translated", "reach", "context", "context_zh"}
_ID_OK = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")

KIND_LABELS = {
    "regional-center": ("international technology transfer center in China", "中国的国际技术转移中心"),
    "provincial-union": ("provincial cooperation union", "省级合作联盟"),
    "university-platform": ("bilateral university innovation platform", "高校双边创新平台"),
    "foreign-model": ("foreign organization the paper compares", "论文比较的国外机构"),
}


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
class Quote:
    """A verbatim span of a document: `document.text[start:end] == quote`."""

    doc_id: str
    quote: str
    start: int
    end: int

    def as_dict(self) -> dict[str, Any]:
        return {"doc_id": self.doc_id, "quote": self.quote, "start": self.start, "end": self.end}


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


@dataclass(frozen=True)
class Directory:
    centers: tuple[Center, ...]
    documents: Mapping[str, DocInfo]
    path: Path

    @property
    def ids(self) -> list[str]:
        return [c.id for c in self.centers]

    def get(self, center_id: str) -> Center:
        for c in self.centers:
            if c.id == center_id:
                return c
        raise KeyError(center_id)

    def filter(self, region: str | None = None, country: str | None = None) -> list[Center]:
        """Centers serving `region` (a code) and/or the regions of `country` (primary reach)."""
        centers = list(self.centers)
        if region:
            centers = [c for c in centers if region in c.regions("primary")]
        if country:
            places = find_places([country]).places
            codes = set().union(*(p.regions for p in places)) if places else set()
            names = {p.name_en for p in places}
            centers = [
                c for c in centers if codes & set(c.regions("primary")) or names & set(c.countries())
            ]
        return centers


# =============================================================================== loading


def load_directory(
    corpus_dir: Path | str,
    documents: Mapping[str, str],
    *,
    sources: Mapping[str, DocInfo] | None = None,
) -> Directory:
    """Read `corpus_dir/centers.yaml` and verify every quote against `documents` (id -> text).

    `sources` (id -> title, kind, date) is used for the citations' titles; without it the
    document id stands in for the title. Raises `DirectoryError` naming the entry and the
    field when the file, an entry or a quote is wrong.
    """
    path = Path(corpus_dir) / DIRECTORY_FILE
    if not path.is_file():
        raise DirectoryError(
            f"{path} not found: the centers directory is a YAML file next to the documents "
            f"(see corpus/{DIRECTORY_FILE} in the repository)."
        )
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise DirectoryError(f"{path.name}: cannot be read ({exc}).") from exc
    except yaml.YAMLError as exc:
        raise DirectoryError(f"{path.name}: not valid YAML ({exc}).") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("entries"), list):
        raise DirectoryError(f"{path.name}: expected a mapping with an 'entries:' list.")
    centers: list[Center] = []
    seen: set[str] = set()
    for i, entry in enumerate(raw["entries"]):
        if not isinstance(entry, dict):
            raise DirectoryError(f"{path.name}: entry #{i + 1} is not a mapping of field: value.")
        center = _parse_entry(entry, i, documents, path.name)
        if center.id in seen:
            raise DirectoryError(f"{path.name}: entry id {center.id!r} is used twice; ids must be unique.")
        seen.add(center.id)
        centers.append(center)
    infos = {
        doc_id: (sources or {}).get(doc_id) or DocInfo(doc_id, doc_id) for doc_id in documents
    }
    return Directory(tuple(centers), infos, path)


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
    from .corpus import load_corpus

    corpus_dir = Path(corpus_dir)
    if not (corpus_dir / DIRECTORY_FILE).is_file():
        return None
    return directory_from_documents(corpus_dir, load_corpus(corpus_dir))


def _parse_entry(entry: dict[str, Any], index: int, documents: Mapping[str, str], file: str) -> Center:
    center_id = entry.get("id")
    if not isinstance(center_id, str) or not _ID_OK.match(center_id):
        raise DirectoryError(
            f"{file}: entry #{index + 1} needs an 'id' of lower-case letters, digits and '-' "
            f"(got {center_id!r})."
        )
    where = f"{file}: entry {center_id!r}"
    unknown = set(entry) - set(FIELDS) - {"id"}
    if unknown:
        raise DirectoryError(
            f"{where}: unknown field(s) {', '.join(sorted(unknown))}; the fields are {', '.join(FIELDS)}."
        )
    facts: dict[str, tuple[Fact, ...]] = {}
    for name in FIELDS:
        if name not in entry:
            raise DirectoryError(
                f"{where}: field {name!r} is missing. Give it with a quote, or write "
                f"{{value: null, note: {NOT_STATED}}} when the documents do not state it."
            )
        facts[name] = _parse_field(entry[name], name, f"{where}, field", documents)
    for name in ("kind", "name_zh", "name_en"):
        if not facts[name][0].stated:
            raise DirectoryError(f"{where}, field {name!r}: must be given (it cannot be 'not stated').")
    return Center(center_id, facts)


def _parse_field(raw: Any, name: str, prefix: str, documents: Mapping[str, str]) -> tuple[Fact, ...]:
    where = f"{prefix} '{name}'"
    if isinstance(raw, list):
        if not raw:
            raise DirectoryError(f"{where}: an empty list; write {{value: null, note: {NOT_STATED}}} instead.")
        if name not in _LIST_FIELDS:
            raise DirectoryError(f"{where}: takes one value, not a list.")
        facts = tuple(_parse_fact(item, name, f"{prefix} '{name}[{i}]'", documents) for i, item in enumerate(raw))
        if any(not f.stated for f in facts):
            raise DirectoryError(f"{where}: a list may hold only stated values, each with its quote.")
        return facts
    return (_parse_fact(raw, name, where, documents),)


def _parse_fact(raw: Any, name: str, where: str, documents: Mapping[str, str]) -> Fact:
    if not isinstance(raw, dict):
        raise DirectoryError(
            f"{where}: expected {{value: ..., doc_id: ..., quote: \"...\"}}, got {type(raw).__name__}."
        )
    unknown = set(raw) - _FACT_KEYS
    if unknown:
        raise DirectoryError(
            f"{where}: unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(_FACT_KEYS))}."
        )
    if "value" not in raw:
        raise DirectoryError(f"{where}: no 'value' key.")
    value = raw["value"]
    if value is None:
        note = raw.get("note")
        if not isinstance(note, str) or not note.strip():
            raise DirectoryError(f"{where}: a null value needs a note, e.g. note: {NOT_STATED}.")
        if raw.get("quote") or raw.get("doc_id"):
            raise DirectoryError(f"{where}: a null value cannot carry a quote; give the value or drop the quote.")
        return Fact(None, note=note.strip())
    parsed = _parse_value(value, name, where)
    translated = raw.get("translated", False)
    if translated not in (True, False):
        raise DirectoryError(f"{where}: 'translated' must be true or false.")
    if translated and name != "name_en":
        raise DirectoryError(f"{where}: only name_en may be a translation; other values need a quote.")
    reach = raw.get("reach", "primary")
    if reach not in REACHES:
        raise DirectoryError(f"{where}: reach must be one of {', '.join(REACHES)} (got {reach!r}).")
    if reach != "primary" and name != "regions":
        raise DirectoryError(f"{where}: 'reach' applies only to regions.")
    strings = {}
    for key in ("value_zh", "context", "context_zh", "note"):
        v = raw.get(key)
        if v is not None and not isinstance(v, str):
            raise DirectoryError(f"{where}: {key} must be text.")
        strings[key] = v
    doc_id, quote = raw.get("doc_id"), raw.get("quote")
    start = end = None
    if quote is None and doc_id is None:
        if not translated:
            raise DirectoryError(
                f"{where}: the value {_short(str(value))!r} has no doc_id and quote. Every value needs "
                f"the id of the document that states it and a verbatim quote from its text."
            )
    else:
        if not isinstance(doc_id, str) or doc_id not in documents:
            known = ", ".join(sorted(documents)) or "none loaded"
            raise DirectoryError(f"{where}: doc_id {doc_id!r} is not a document id (known: {known}).")
        if not isinstance(quote, str) or not quote.strip():
            raise DirectoryError(f"{where}: the quote must be non-empty text from document {doc_id!r}.")
        start = documents[doc_id].find(quote)
        if start < 0:
            raise DirectoryError(_quote_not_found(where, doc_id, quote, documents[doc_id]))
        end = start + len(quote)
    return Fact(
        parsed,
        value_zh=strings["value_zh"],
        doc_id=doc_id,
        quote=quote,
        start=start,
        end=end,
        note=strings["note"],
        translated=bool(translated),
        reach=str(reach),
        context=strings["context"],
        context_zh=strings["context_zh"],
    )


def _parse_value(value: Any, name: str, where: str) -> str | tuple[str, ...]:
    if isinstance(value, bool) or not isinstance(value, (str, int, float, list)):
        raise DirectoryError(f"{where}: the value must be text, a number or a list of text.")
    if isinstance(value, list):
        if name != "countries" or not value or not all(isinstance(v, str) and v.strip() for v in value):
            raise DirectoryError(f"{where}: only countries takes a list of names as its value.")
        for country in value:
            places = _place_index().by_name.get(country.lower())
            if places is None or places.kind != "country":
                raise DirectoryError(
                    f"{where}: {country!r} is not a country name the place table knows; use the "
                    f"English name as in assistant/centers.py (e.g. 'United Arab Emirates')."
                )
        return tuple(v.strip() for v in value)
    text = str(value).strip()
    if not text:
        raise DirectoryError(f"{where}: empty value; write {{value: null, note: {NOT_STATED}}} instead.")
    if name == "regions" and text not in REGIONS:
        raise DirectoryError(f"{where}: unknown region code {text!r}; use one of {', '.join(REGIONS)}.")
    if name == "kind" and text not in KINDS:
        raise DirectoryError(f"{where}: unknown kind {text!r}; use one of {', '.join(KINDS)}.")
    return text


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


# =============================================================================== geography

# The geographic knowledge the ranking uses: place names (English | more English aliases |
# Chinese names, Simplified, incl. common Taiwan/HK forms | region codes). A code names a
# region the directory uses; a code marked "~" is a wider or cross-continental grouping the
# place also belongs to and counts 0.85 of a full match (India is in South Asia first and in
# the SCO and BRICS too; Egypt is an Arab state first and African too), so the center for
# the place's own region comes first. "-" means the place is known but lies in no such
# region (a goal there is answered "not covered"); "china" marks China itself, ignored.
# Memberships: ASEAN's ten members; the Arab League's 22 members (North African ones are
# also in Africa); the SCO's members as of 2024; BRICS's five founding members (the
# documents predate its enlargement); "cee" the China–CEE cooperation ("16+1") countries;
# "cis" the CIS and post-Soviet states outside the Baltics; "europe" the EU/EFTA countries,
# the UK and the Western Balkans. This table is not a source of facts about any center.
_PLACE_ROWS = """
Brunei | Brunei Darussalam | 文莱, 汶莱 | asean
Cambodia | Cambodian | 柬埔寨 | asean
Indonesia | Indonesian | 印度尼西亚, 印尼 | asean
Laos | Lao PDR, Laotian | 老挝, 寮国 | asean
Malaysia | Malaysian | 马来西亚 | asean
Myanmar | Burma, Burmese | 缅甸 | asean
Philippines | Philippine, Filipino | 菲律宾 | asean
Singapore | Singaporean | 新加坡 | asean
Thailand | Thai | 泰国 | asean
Vietnam | Viet Nam, Vietnamese | 越南 | asean
India | Indian | 印度 | south-asia sco~ brics~
Pakistan | Pakistani | 巴基斯坦 | south-asia sco~
Bangladesh | Bangladeshi | 孟加拉国, 孟加拉 | south-asia
Sri Lanka | Sri Lankan | 斯里兰卡 | south-asia
Nepal | Nepali, Nepalese | 尼泊尔 | south-asia
Bhutan | | 不丹 | south-asia
Maldives | | 马尔代夫 | south-asia
Afghanistan | Afghan | 阿富汗 | south-asia
Saudi Arabia | Saudi, KSA | 沙特阿拉伯, 沙特, 沙乌地阿拉伯, 沙乌地 | arab-states
United Arab Emirates | UAE, Emirati, Emirates, Dubai, Abu Dhabi | 阿联酋, 阿拉伯联合酋长国, 阿拉伯联合大公国, 迪拜, 杜拜, 阿布扎比 | arab-states
Kuwait | Kuwaiti | 科威特 | arab-states
Qatar | Qatari, Doha | 卡塔尔, 卡达, 多哈 | arab-states
Bahrain | Bahraini | 巴林 | arab-states
Oman | Omani | 阿曼 | arab-states
Yemen | Yemeni | 也门 | arab-states
Iraq | Iraqi | 伊拉克 | arab-states
Jordan | Jordanian | 约旦 | arab-states
Lebanon | Lebanese | 黎巴嫩 | arab-states
Syria | Syrian | 叙利亚 | arab-states
Palestine | Palestinian | 巴勒斯坦 | arab-states
Egypt | Egyptian | 埃及 | arab-states africa~
Libya | Libyan | 利比亚 | arab-states africa~
Tunisia | Tunisian | 突尼斯, 突尼西亚 | arab-states africa~
Algeria | Algerian | 阿尔及利亚 | arab-states africa~
Morocco | Moroccan | 摩洛哥 | arab-states africa~
Mauritania | | 毛里塔尼亚, 茅利塔尼亚 | arab-states africa~
Sudan | Sudanese | 苏丹 | arab-states africa~
Somalia | Somali | 索马里 | arab-states africa~
Djibouti | | 吉布提 | arab-states africa~
Comoros | | 科摩罗 | arab-states africa~
Nigeria | Nigerian | 尼日利亚, 奈及利亚 | africa
Kenya | Kenyan | 肯尼亚, 肯亚 | africa
Ethiopia | Ethiopian | 埃塞俄比亚, 衣索比亚 | africa
South Africa | South African | 南非 | africa brics~
Ghana | Ghanaian | 加纳, 迦纳 | africa
Tanzania | Tanzanian | 坦桑尼亚, 坦尚尼亚 | africa
Uganda | Ugandan | 乌干达 | africa
Rwanda | Rwandan | 卢旺达 | africa
Senegal | Senegalese | 塞内加尔 | africa
Cote d'Ivoire | Côte d'Ivoire, Ivory Coast | 科特迪瓦 | africa
Cameroon | | 喀麦隆 | africa
Angola | Angolan | 安哥拉 | africa
Mozambique | | 莫桑比克 | africa
Zambia | Zambian | 赞比亚, 尚比亚 | africa
Zimbabwe | | 津巴布韦, 辛巴威 | africa
Namibia | | 纳米比亚 | africa
Botswana | | 博茨瓦纳 | africa
Madagascar | | 马达加斯加 | africa
Mali | | 马里 | africa
Niger | | 尼日尔 | africa
Chad | | 乍得 | africa
Burkina Faso | | 布基纳法索 | africa
Benin | | 贝宁 | africa
Togo | | 多哥 | africa
Guinea | | 几内亚 | africa
Guinea-Bissau | | 几内亚比绍 | africa
Equatorial Guinea | | 赤道几内亚 | africa
Sierra Leone | | 塞拉利昂 | africa
Liberia | | 利比里亚 | africa
Gabon | | 加蓬 | africa
Congo | Republic of the Congo | 刚果 | africa
DR Congo | Democratic Republic of the Congo, DRC | 刚果民主共和国, 刚果（金）, 刚果(金) | africa
Central African Republic | | 中非共和国 | africa
Malawi | | 马拉维 | africa
Mauritius | | 毛里求斯 | africa
South Sudan | | 南苏丹 | africa
Eritrea | | 厄立特里亚 | africa
Burundi | | 布隆迪 | africa
Lesotho | | 莱索托 | africa
Eswatini | Swaziland | 斯威士兰 | africa
Gambia | The Gambia | 冈比亚 | africa
Cape Verde | Cabo Verde | 佛得角 | africa
Seychelles | | 塞舌尔 | africa
Sao Tome and Principe | São Tomé and Príncipe | 圣多美和普林西比 | africa
Russia | Russian, Russian Federation | 俄罗斯, 俄国 | cis sco brics~
Kazakhstan | Kazakh, Kazakhstani | 哈萨克斯坦, 哈萨克 | cis sco
Uzbekistan | Uzbek | 乌兹别克斯坦, 乌兹别克 | cis sco
Kyrgyzstan | Kyrgyz, Kyrgyz Republic | 吉尔吉斯斯坦, 吉尔吉斯 | cis sco
Tajikistan | Tajik | 塔吉克斯坦, 塔吉克 | cis sco
Turkmenistan | Turkmen | 土库曼斯坦, 土库曼 | cis
Belarus | Belarusian | 白俄罗斯 | cis sco~
Ukraine | Ukrainian | 乌克兰 | cis
Moldova | Moldovan | 摩尔多瓦 | cis
Armenia | Armenian | 亚美尼亚 | cis
Azerbaijan | Azerbaijani | 阿塞拜疆, 亚塞拜然 | cis
Georgia | Georgian | 格鲁吉亚, 乔治亚 | cis
Iran | Iranian | 伊朗 | sco
Mongolia | Mongolian | 蒙古国, 蒙古 | northeast-asia
Japan | Japanese | 日本 | japan northeast-asia~
South Korea | Korea, Korean, Republic of Korea | 韩国, 南韩 | korea northeast-asia~
North Korea | DPRK | 朝鲜, 北韩 | northeast-asia
Brazil | Brazilian | 巴西 | lac brics~
Argentina | Argentine, Argentinian | 阿根廷 | lac
Chile | Chilean | 智利 | lac
Mexico | Mexican | 墨西哥 | lac
Peru | Peruvian | 秘鲁 | lac
Colombia | Colombian | 哥伦比亚 | lac
Venezuela | Venezuelan | 委内瑞拉 | lac
Ecuador | Ecuadorian | 厄瓜多尔, 厄瓜多 | lac
Bolivia | Bolivian | 玻利维亚 | lac
Paraguay | | 巴拉圭 | lac
Uruguay | | 乌拉圭 | lac
Cuba | Cuban | 古巴 | lac
Dominican Republic | | 多米尼加 | lac
Jamaica | Jamaican | 牙买加 | lac
Panama | Panamanian | 巴拿马 | lac
Costa Rica | | 哥斯达黎加 | lac
Guatemala | | 危地马拉 | lac
Honduras | | 洪都拉斯 | lac
Nicaragua | | 尼加拉瓜 | lac
El Salvador | | 萨尔瓦多 | lac
Trinidad and Tobago | | 特立尼达和多巴哥 | lac
Guyana | | 圭亚那 | lac
Suriname | | 苏里南 | lac
Haiti | | 海地 | lac
Barbados | | 巴巴多斯 | lac
Bahamas | | 巴哈马 | lac
Poland | Polish | 波兰 | cee europe~
Czech Republic | Czechia, Czech | 捷克 | cee europe~
Slovakia | Slovak | 斯洛伐克 | cee europe~
Hungary | Hungarian | 匈牙利 | cee europe~
Slovenia | Slovenian | 斯洛文尼亚, 斯洛维尼亚 | cee europe~
Croatia | Croatian | 克罗地亚, 克罗埃西亚 | cee europe~
Serbia | Serbian | 塞尔维亚 | cee europe~
Bosnia and Herzegovina | Bosnia | 波斯尼亚和黑塞哥维那, 波黑 | cee europe~
Montenegro | | 黑山 | cee europe~
North Macedonia | Macedonia | 北马其顿, 马其顿 | cee europe~
Albania | Albanian | 阿尔巴尼亚 | cee europe~
Romania | Romanian | 罗马尼亚 | cee europe~
Bulgaria | Bulgarian | 保加利亚 | cee europe~
Estonia | Estonian | 爱沙尼亚 | cee europe~
Latvia | Latvian | 拉脱维亚 | cee europe~
Lithuania | Lithuanian | 立陶宛 | cee europe~
Greece | Greek | 希腊 | cee europe~
Germany | German | 德国 | europe
France | French | 法国 | europe
Italy | Italian | 意大利 | europe
Spain | Spanish | 西班牙 | europe
Portugal | Portuguese | 葡萄牙 | europe
Netherlands | Dutch, Holland | 荷兰 | europe
Belgium | Belgian | 比利时 | europe
Luxembourg | | 卢森堡 | europe
Austria | Austrian | 奥地利 | europe
Switzerland | Swiss | 瑞士 | europe
Sweden | Swedish | 瑞典 | europe
Norway | Norwegian | 挪威 | europe
Denmark | Danish | 丹麦 | europe
Finland | Finnish | 芬兰 | europe
Ireland | Irish | 爱尔兰 | europe
Iceland | | 冰岛 | europe
Cyprus | | 塞浦路斯 | europe
Malta | | 马耳他 | europe
United Kingdom | UK, Britain, Great Britain, British, England, Scotland, Wales | 英国 | uk europe~
United States | USA, United States of America, America, American | 美国 | usa
Canada | Canadian | 加拿大 | -
Australia | Australian | 澳大利亚, 澳洲 | -
New Zealand | | 新西兰, 纽西兰 | -
Papua New Guinea | | 巴布亚新几内亚 | -
Turkey | Türkiye, Turkish | 土耳其 | -
Israel | Israeli | 以色列, 中以 | israel
Antarctica | Antarctic, South Pole | 南极洲, 南极 | -
Arctic | North Pole | 北极 | -
Greenland | | 格陵兰 | -
China | Chinese, PRC, Hong Kong, Macau, Macao, Taiwan | 中国, 内蒙古, 香港, 澳门, 台湾, 印度洋, 中华人民共和国 | china
"""

# Region names a goal may use (English | aliases | Chinese | codes).
_REGION_ROWS = """
ASEAN | Southeast Asia, South-East Asia, South East Asia | 东盟, 东南亚, 东协 | asean
South Asia | South Asian | 南亚 | south-asia
Arab states | Arab world, Arab countries, Arab, Arabic, Arabian, Arab League, Middle East, MENA, GCC, Gulf states, Gulf | 阿拉伯国家, 阿拉伯, 阿盟, 中东, 海湾, 中阿 | arab-states
Central and Eastern Europe | CEE, Central Europe, Balkans | 中东欧, 中欧, 巴尔干 | cee europe~
Eastern Europe | East European, Eastern European | 东欧 | cee cis
Africa | African, Sub-Saharan Africa, East Africa, West Africa, Southern Africa, Central Africa | 非洲, 中非, 东非, 西非, 南部非洲 | africa
North Africa | North African | 北非 | africa arab-states
SCO | Shanghai Cooperation Organisation, Shanghai Cooperation Organization | 上海合作组织, 上合组织, 上合 | sco
Central Asia | Central Asian | 中亚 | sco cis
CIS | Commonwealth of Independent States, post-Soviet | 独联体, 独立国家联合体 | cis
Latin America | Latin American, South America, South American, Central America, Caribbean, LAC, LATAM | 拉丁美洲, 拉美, 南美洲, 南美, 中美洲, 中南美, 加勒比 | lac
BRICS | | 金砖国家, 金砖 | brics
Europe | European, EU, European Union | 欧洲, 欧盟 | europe cee~
Northeast Asia | North-East Asia, East Asia | 东北亚, 东亚 | northeast-asia
North America | North American | 北美洲, 北美 | usa
Worldwide | global, globally, world-wide, worldwide markets | 全球, 全世界, 世界各地 | global
Oceania | Pacific Islands | 大洋洲 | -
"""

# Chinese names that are also ordinary word fragments: the context that rules a match out.
_ZH_GUARDS: dict[str, tuple[str, str]] = {  # alias -> (not preceded by, not followed by)
    "中非": ("集其", "常法凡"),
    "南非": ("", "常法凡"),
    "西非": ("", "常法凡"),
    "东非": ("", "常法凡"),
    "北非": ("", "常法凡"),
    "中东": ("", "西南北部"),
    "海地": ("沿近临", "区带域"),
    "加纳": ("增添追", "入税米"),
    "多哥": ("", "们"),
    "马里": ("", "兰"),
    "中欧": ("", "班"),
    "中以": ("其集之当空正适命打选居折射", ""),
    "海湾": ("", ""),
}
# English aliases matched only with this exact case ("us" is a pronoun).
_CASED = ("US", "U.S.", "U.S.A.")


SECONDARY_REGION_WEIGHT = 0.85


@dataclass(frozen=True)
class Place:
    name_en: str
    name_zh: str
    regions: frozenset[str]
    kind: str  # "country", "region" or "china"
    secondary: frozenset[str] = frozenset()  # codes marked "~" in the table

    def weight(self, code: str) -> float:
        """How fully a center serving region `code` covers this place (0 when not at all)."""
        if code not in self.regions:
            return 0.0
        return SECONDARY_REGION_WEIGHT if code in self.secondary else 1.0

    def name(self, language: str = "en") -> str:
        if language == "zh-Hant":
            return to_traditional(self.name_zh)
        return self.name_zh if language.startswith("zh") else self.name_en


@dataclass(frozen=True)
class PlaceScan:
    places: tuple[Place, ...]  # places outside China, in order of first mention
    unknown: tuple[str, ...] = ()  # list items that name no known place

    @property
    def regions(self) -> set[str]:
        return set().union(*(p.regions for p in self.places)) if self.places else set()


@dataclass(frozen=True)
class _PlaceIndex:
    by_name: dict[str, Place]
    en_pattern: re.Pattern[str]
    zh_pattern: re.Pattern[str]
    cased_pattern: re.Pattern[str]
    zh_names: dict[str, Place]


@lru_cache(maxsize=1)
def _place_index() -> _PlaceIndex:
    by_name: dict[str, Place] = {}
    zh_names: dict[str, Place] = {}
    for rows, kind in ((_PLACE_ROWS, "country"), (_REGION_ROWS, "region")):
        for line in rows.strip().splitlines():
            en, aliases, zh, codes = (part.strip() for part in line.split("|"))
            zh_list = [z.strip() for z in zh.split(",") if z.strip()]
            code_list = [] if codes in ("-", "china") else codes.split()
            place = Place(
                en,
                zh_list[0],
                frozenset(c.rstrip("~") for c in code_list),
                "china" if codes == "china" else kind,
                frozenset(c.rstrip("~") for c in code_list if c.endswith("~")),
            )
            for alias in [en, *(a.strip() for a in aliases.split(",") if a.strip())]:
                if alias in _CASED:
                    continue
                by_name.setdefault(alias.lower(), place)
                folded = _fold_latin(alias)
                if folded != alias.lower():
                    by_name.setdefault(folded, place)
            for z in zh_list:
                zh_names.setdefault(normalize(z), place)
    en_names = sorted(by_name, key=len, reverse=True)
    en_pattern = re.compile(
        r"(?<![a-z0-9])(" + "|".join(re.escape(n) for n in en_names) + r")(?![a-z0-9])"
    )
    zh_parts = []
    for z in sorted(zh_names, key=len, reverse=True):
        before, after = _ZH_GUARDS.get(z, ("", ""))
        part = re.escape(z)
        if before:
            part = f"(?<![{re.escape(before)}])" + part
        if after:
            part = part + f"(?![{re.escape(after)}])"
        zh_parts.append(part)
    zh_pattern = re.compile("(" + "|".join(zh_parts) + ")")
    cased_pattern = re.compile(r"(?<![A-Za-z0-9])(U\.S\.A\.|U\.S\.|US|USA)(?![A-Za-z0-9])")
    return _PlaceIndex(by_name, en_pattern, zh_pattern, cased_pattern, zh_names)


def _fold_latin(text: str) -> str:
    """Lower case without accents, curly apostrophes made straight ("Côte d’Ivoire")."""
    decomposed = unicodedata.normalize("NFKD", text.replace("’", "'"))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def find_places(query: str | Iterable[str]) -> PlaceScan:
    """The countries and regions named in a text or a list of names, English or Chinese.

    A list item that is not a known place name is reported in `unknown`; China itself is
    left out (the user is in China). Places with no region code (Antarctica) are kept: they
    are named but no center covers them.
    """
    index = _place_index()
    found: list[Place] = []
    unknown: list[str] = []
    items = [query] if isinstance(query, str) else list(query)
    for item in items:
        item = str(item)
        stripped = item.strip()
        whole = (
            index.by_name.get("united states") if stripped in _CASED or stripped.lower() == "us" else None
        ) or index.by_name.get(_fold_latin(stripped)) or index.zh_names.get(normalize(stripped))
        hits = [whole] if whole is not None else _scan(item)
        if not isinstance(query, str) and not hits and item.strip():
            unknown.append(item.strip())
        for place in hits:
            if place.kind != "china" and place not in found:
                found.append(place)
    return PlaceScan(tuple(found), tuple(unknown))


def _scan(text: str) -> list[Place]:
    index = _place_index()
    hits: list[tuple[int, Place]] = []
    latin = _fold_latin(text.translate(_FULLWIDTH))
    hits.extend((m.start(), index.by_name[m.group(1)]) for m in index.en_pattern.finditer(latin))
    hits.extend(
        (m.start(), index.by_name["united states"]) for m in index.cased_pattern.finditer(text)
    )
    hits.extend((m.start(), index.zh_names[m.group(1)]) for m in index.zh_pattern.finditer(normalize(text)))
    return [p for _, p in sorted(hits, key=lambda h: h[0])]


_FULLWIDTH = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)}


def resolve_places(query: str | Iterable[str]) -> set[str]:
    """The region codes of the places named in a text or a list (see `find_places`)."""
    return find_places(query).regions


# =============================================================================== sectors

# A goal's sector is matched to the centers' cited services, focus fields, operating
# models and events by these concepts: words a goal may use (English | Chinese) and the
# words that mark the concept in the documents' Chinese. "specific" concepts are
# industries; "service" concepts are kinds of help almost every center offers.


@dataclass(frozen=True)
class _Concept:
    key: str
    label_en: str
    label_zh: str
    specific: bool
    goal_en: tuple[str, ...]
    goal_zh: tuple[str, ...]
    center_zh: tuple[str, ...]


_CONCEPTS: tuple[_Concept, ...] = (
    _Concept("environment", "water and environment", "水务与环境", True,
             ("water treatment", "water", "wastewater", "sewage", "environment*", "pollution", "waste",
              "recycling", "desalination", "ecolog*", "clean water", "purification"),
             ("水处理", "污水", "废水", "环保", "环境", "生态", "净水", "水务", "海水淡化", "固废", "垃圾"),
             ("资源环境", "环境", "生态", "环保", "可持续")),
    _Concept("agriculture", "agriculture", "农业", True,
             ("agricultur*", "farm*", "agritech", "agri-tech", "crop*", "irrigation", "livestock",
              "aquaculture", "fishery", "fisheries", "food"),
             ("农业", "农机", "种植", "灌溉", "养殖", "畜牧", "农产品", "渔业", "粮食"),
             ("农业", "养殖")),
    _Concept("health", "health", "医药健康", True,
             ("health*", "medical", "medicine*", "pharma*", "biotech*", "hospital*", "vaccine*", "drug*",
              "medtech", "diagnostic*"),
             ("医疗", "医药", "健康", "卫生", "药品", "疫苗", "生物医药", "医院", "医疗器械"),
             ("医药", "卫生", "健康", "医疗", "疫苗")),
    _Concept("digital", "digital technology", "数字技术", True,
             ("digital", "software", "ict", "internet", "e-commerce", "ecommerce", "ai",
              "artificial intelligence", "data", "electronic*", "smart city", "5g", "telecom*"),
             ("数字", "软件", "互联网", "电子商务", "电商", "人工智能", "大数据", "电子", "智慧城市", "通信",
              "信息技术"),
             ("数字", "电子信息", "人工智能", "电子商务")),
    _Concept("energy", "energy", "能源", True,
             ("energy", "solar", "wind power", "photovoltaic*", "pv", "batter*", "renewable*", "hydrogen",
              "power grid", "new energy", "inverter*"),
             ("能源", "光伏", "太阳能", "风电", "储能", "电池", "新能源", "氢能", "电力"),
             ("清洁能源", "能源")),
    _Concept("space", "space technology", "空间技术", True,
             ("space", "satellite*", "aerospace", "remote sensing"),
             ("航天", "卫星", "空间技术", "遥感"),
             ("空间技术",)),
    _Concept("chemicals", "chemicals", "化工", True,
             ("chemical*", "chemistry"),
             ("化工", "化学"),
             ("化工",)),
    _Concept("finance", "finance", "金融与投资", False,
             ("financ*", "loan*", "credit", "guarantee*", "invest*", "venture", "capital", "funding",
              "fund*"),
             ("融资", "贷款", "担保", "投资", "风投", "基金", "金融"),
             ("金融", "担保", "投资", "基金", "参股")),
    _Concept("ip", "IP licensing", "知识产权与许可", False,
             ("patent*", "licens*", "intellectual property", "ip"),
             ("专利", "知识产权", "许可"),
             ("知识产权", "许可")),
    _Concept("legal", "legal services", "法律服务", False,
             ("legal", "law", "lawyer*", "compliance"),
             ("法律", "法规", "合规"),
             ("法律",)),
    _Concept("trade", "market entry", "市场开拓", False,
             ("export*", "sell", "selling", "sales", "trade", "market entry", "distribut*", "enter",
              "market", "markets", "expand*", "customers"),
             ("出口", "销售", "贸易", "市场", "推广", "商贸", "经销", "开拓", "进入", "走出去"),
             ("贸易", "商贸", "销售", "产能合作", "海外拓展")),
    _Concept("talent", "talent", "人才与培训", False,
             ("talent*", "training", "train", "recruit*", "education", "engineers", "staff"),
             ("人才", "培训", "教育", "招聘"),
             ("人才", "培训", "教育", "工程师", "科学家")),
    _Concept("research", "joint R&D", "联合研发", False,
             ("research", "r&d", "lab", "labs", "laborator*", "co-develop*", "joint development"),
             ("研发", "研究", "实验室", "科研"),
             ("研发", "研究", "实验室", "科研")),
    _Concept("incubation", "incubation", "孵化与创业", False,
             ("startup*", "start-up*", "incubat*", "entrepreneur*", "accelerator*"),
             ("孵化", "创业", "初创"),
             ("孵化", "创业")),
    _Concept("matchmaking", "technology matchmaking", "技术对接", False,
             ("technology transfer", "partner*", "matchmaking", "match", "buyer*", "roadshow*"),
             ("技术对接", "对接", "合作伙伴", "供需", "技术转移", "路演"),
             ("对接", "供需", "技术交易", "路演", "推介")),
    _Concept("manufacturing", "manufacturing", "制造与产能", False,
             ("manufactur*", "factory", "factories", "equipment", "machinery", "industrial", "plant"),
             ("制造", "设备", "装备", "机械", "工业", "产能", "工厂"),
             ("产能", "实体产业", "工业")),
    _Concept("logistics", "logistics", "物流", False,
             ("logistic*", "shipping", "supply chain"),
             ("物流", "运输", "供应链"),
             ("物流",)),
)

_SECTOR_FIELDS = {
    "services": 1.0,
    "focus_fields": 1.0,
    "operating_model": 0.5,
    "events": 0.5,
    "overseas_centers": 0.5,
}


@lru_cache(maxsize=1)
def _concept_patterns() -> dict[str, re.Pattern[str]]:
    patterns = {}
    for c in _CONCEPTS:
        words = []
        for w in c.goal_en:
            if w.endswith("*"):
                words.append(re.escape(w[:-1]) + r"[a-z-]*")
            else:
                words.append(re.escape(w))
        patterns[c.key] = re.compile(r"(?<![a-z0-9])(?:" + "|".join(words) + r")(?![a-z0-9])")
    return patterns


def goal_concepts(text: str) -> list[_Concept]:
    """The sector concepts a goal mentions, in English or Chinese."""
    latin = _fold_latin(text)
    folded = normalize(text)
    found = []
    for c in _CONCEPTS:
        if _concept_patterns()[c.key].search(latin) or any(z in folded for z in c.goal_zh):
            found.append(c)
    return found


def _center_concept_facts(center: Center, concept: _Concept) -> list[tuple[float, Fact]]:
    """(weight, fact) for each cited fact of the center that shows the concept."""
    hits = []
    for name, weight in _SECTOR_FIELDS.items():
        for fact in center.field(name):
            text = normalize((fact.value_zh or "") + " " + (fact.quote or ""))
            if any(word in text for word in concept.center_zh):
                hits.append((weight, fact))
    return hits


# =============================================================================== recommendation


@dataclass(frozen=True)
class Reason:
    text: str
    citations: tuple[Quote, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"text": self.text, "citations": [q.as_dict() for q in self.citations]}


@dataclass(frozen=True)
class RankedCenter:
    id: str
    name_zh: str
    name_en: str
    score: float
    match: str  # "region", "outreach", "sector" or "closest"
    reasons: tuple[Reason, ...]
    kind: str = "regional-center"

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name_zh": self.name_zh,
            "name_en": self.name_en,
            "score": self.score,
            "match": self.match,
            "kind": self.kind,
            "reasons": [r.as_dict() for r in self.reasons],
        }


@dataclass(frozen=True)
class Recommendation:
    goal: str
    covered: bool
    note: str
    centers: tuple[RankedCenter, ...]
    language: str
    places: tuple[Place, ...] = ()
    uncovered: tuple[Place, ...] = ()
    unknown: tuple[str, ...] = ()
    sources: Mapping[str, DocInfo] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "goal": self.goal,
            "covered": self.covered,
            "note": self.note,
            "language": self.language,
            "places": [p.name_en for p in self.places],
            "centers": [c.as_dict() for c in self.centers],
        }


@dataclass(frozen=True)
class _SectorHit:
    concept: _Concept
    fact: Fact
    weight: float  # 1.0 services/focus fields, 0.5 operating model/events/overseas centers


@dataclass
class _Scored:
    center: Center
    primary: list[Place]
    outreach: list[Place]
    region_score: float
    countries: list[Place]
    sector_score: float
    sector_hits: list[_SectorHit]
    strong_sector: bool
    score: float = 0.0


def _language(language: str | None, text: str) -> str:
    if language in ("en", "zh-Hans", "zh-Hant"):
        return language
    if language == "zh":
        return "zh-Hans"
    return detect_language(text)


def recommend(
    directory: Directory,
    goal: str,
    countries: Sequence[str] | None = None,
    sector: str | None = None,
    *,
    language: str | None = None,
    limit: int = 5,
) -> Recommendation:
    """Rank the directory's organizations for an SME's goal, with cited reasons.

    The region match dominates (the places named in the goal or in `countries` against the
    regions the documents say each organization serves; an outreach region counts 0.4);
    overlap of the goal's sector with the cited services and focus fields adds; a foreign
    model never ranks above a Chinese center whose region matches. When no organization
    serves the places named — or no place is named and no sector match is strong — the
    result is `covered=False` with at most three organizations labelled "closest".
    """
    lang = _language(language, goal)
    scan = find_places(goal) if not countries else _merge(find_places(goal), find_places(countries))
    places = scan.places
    concepts = goal_concepts(goal + " " + (sector or ""))
    scored = [_score(c, places, concepts) for c in directory.centers]

    if places:
        matched = [s for s in scored if s.primary or s.outreach]
        reached = {id(p) for s in matched for p in (*s.primary, *s.outreach)}
        uncovered = tuple(p for p in places if id(p) not in reached)
        if matched:
            matched.sort(key=lambda s: (not (s.primary and not s.center.is_foreign), -s.score, s.center.id))
            chosen = matched[:limit]
            ranked = tuple(
                _ranked(s, "region" if s.primary else "outreach", places, concepts, lang) for s in chosen
            )
            note = _covered_note(chosen[0], matched[1:], places, uncovered, scan.unknown, concepts, lang)
            return Recommendation(goal, True, note, ranked, lang, places, uncovered, scan.unknown,
                                  directory.documents)
        closest = _closest(scored)
        note = _uncovered_note(places, scan.unknown, lang)
        ranked = tuple(_ranked(s, "closest", places, concepts, lang) for s in closest)
        return Recommendation(goal, False, note, ranked, lang, places, places, scan.unknown,
                              directory.documents)

    strong = [s for s in scored if s.strong_sector]
    if strong:
        by_sector = sorted(
            (s for s in scored if s.sector_score > 0),
            key=lambda s: (-s.score, s.center.is_foreign, s.center.id),
        )[:limit]
        note = _sector_note(concepts, scan.unknown, lang)
        ranked = tuple(_ranked(s, "sector", places, concepts, lang) for s in by_sector)
        return Recommendation(goal, True, note, ranked, lang, (), (), scan.unknown, directory.documents)
    closest = _closest(scored) if concepts else []
    note = _no_place_note(concepts, scan.unknown, lang)
    ranked = tuple(_ranked(s, "closest", places, concepts, lang) for s in closest)
    return Recommendation(goal, False, note, ranked, lang, (), (), scan.unknown, directory.documents)


def _merge(a: PlaceScan, b: PlaceScan) -> PlaceScan:
    places = list(a.places)
    places.extend(p for p in b.places if p not in places)
    return PlaceScan(tuple(places), a.unknown + b.unknown)


def _score(center: Center, places: Sequence[Place], concepts: Sequence[_Concept]) -> _Scored:
    primary_codes = set(center.regions("primary"))
    outreach_codes = set(center.regions("outreach"))
    primary = [p for p in places if p.regions & primary_codes]
    outreach = [p for p in places if p not in primary and p.regions & outreach_codes]
    coverage = sum(max(p.weight(code) for code in primary_codes) for p in primary)
    coverage += sum(OUTREACH_WEIGHT * max(p.weight(code) for code in outreach_codes) for p in outreach)
    region_score = coverage / len(places) if places else 0.0
    named = set(center.countries())
    countries = [p for p in places if p.kind == "country" and p.name_en in named]

    sector = 0.0
    hits: list[_SectorHit] = []
    strong = False
    for c in concepts:
        facts = _center_concept_facts(center, c)
        if not facts:
            continue
        weight, fact = max(facts, key=lambda wf: wf[0])
        sector += (1.5 if c.specific else 0.4) * weight
        hits.append(_SectorHit(c, fact, weight))
        strong = strong or (c.specific and weight >= 1.0)
    sector_score = min(sector, 3.0)

    level_bonus = {"national": 0.3, "provincial": 0.15}.get(center.level or "", 0.0)
    # Region dominates (10 for full coverage); a country the documents name for the center
    # adds up to 1.5; sector overlap up to 3; the level breaks ties.
    score = 10 * region_score + sector_score + level_bonus
    if countries:
        score += 1.5 * len(countries) / len(places)
    if center.is_foreign and not places:
        score *= 0.8  # a model the paper compares, not a service described for Chinese SMEs
    evidence = len(center.stated_fields()) / 100  # tie-break: the better-documented first
    return _Scored(center, primary, outreach, region_score, countries, sector_score, hits, strong,
                   round(score + evidence, 3))


OUTREACH_WEIGHT = 0.4


def _closest(scored: Sequence[_Scored]) -> list[_Scored]:
    def key(s: _Scored) -> tuple[float, bool, float, str]:
        global_reach = "global" in s.center.regions(None)
        return (-(s.sector_score + (0.2 if global_reach else 0.0)), s.center.is_foreign, -s.score, s.center.id)

    ranked = sorted(scored, key=key)
    useful = [s for s in ranked if s.sector_score > 0 or "global" in s.center.regions(None)]
    return (useful or ranked)[:3] if useful else []


# ------------------------------------------------------------------ wording

def _t(language: str, en: str, zh: str) -> str:
    if language == "zh-Hant":
        return to_traditional(zh)
    return zh if language.startswith("zh") else en


def _list_names(names: Sequence[str], language: str) -> str:
    names = list(dict.fromkeys(names))
    if language.startswith("zh"):
        return "、".join(names)
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def _places_text(places: Sequence[Place], language: str) -> str:
    return _list_names([p.name(language) for p in places], language)


def _region_name(code: str, language: str) -> str:
    region = REGIONS[code]
    return _t(language, region.name_en, region.name_zh)


def _covered_note(
    best: _Scored,
    rest: Sequence[_Scored],
    places: Sequence[Place],
    uncovered: Sequence[Place],
    unknown: Sequence[str],
    concepts: Sequence[_Concept],
    lang: str,
) -> str:
    c = best.center
    reached = [*best.primary, *best.outreach]
    served = [r for r in c.regions("primary") if any(r in p.regions for p in best.primary)]
    outreach = [r for r in c.regions("outreach") if any(r in p.regions for p in best.outreach)]
    region = _list_names([_region_name(r, lang) for r in served or outreach], lang)
    also = _list_names([_region_name(r, lang) for r in outreach], lang) if served and outreach else ""
    parts = [
        _t(
            lang,
            f"Best fit in the documents for {_places_text(reached, 'en')}: {c.name_en}, which serves {region}"
            + (f" and reaches {also} through its outreach." if also else "."),
            f"就{_places_text(reached, 'zh-Hans')}而言，文档中最合适的是{c.name_zh}，面向{region}"
            + (f"，并通过外联方向涉及{also}。" if also else "。"),
        )
        if best.primary
        else _t(
            lang,
            f"No center in the documents is dedicated to {_places_text(reached, 'en')}; {c.name_en} reaches {region} only through its outreach.",
            f"文档中没有专门面向{_places_text(reached, 'zh-Hans')}的中心；{c.name_zh}仅通过外联方向涉及{region}。",
        )
    ]
    # Places the best center does not reach but another one does.
    for p in places:
        if p in reached or p in uncovered:
            continue
        other = next((o for o in rest if p in o.primary), None) or next((o for o in rest if p in o.outreach), None)
        if other is not None:
            parts.append(_t(lang, f"For {p.name('en')}: {other.center.name_en}.", f"{p.name('zh-Hans')}方面：{other.center.name_zh}。"))
    if c.is_foreign and best.primary:
        parts.append(_t(
            lang,
            "It is a foreign organization the paper describes as a model; the documents do not say it works with Chinese companies.",
            "它是论文作为借鉴介绍的国外机构，文档未说明其为中国企业提供服务。",
        ))
    if uncovered:
        parts.append(_t(
            lang,
            f"No center in the documents serves {_places_text(uncovered, 'en')}.",
            f"文档中没有面向{_places_text(uncovered, 'zh-Hans')}的中心。",
        ))
    found = {h.concept.key: h.weight for h in best.sector_hits}
    missing = [k for k in concepts if k.specific and k.key not in found]
    weak = [k for k in concepts if k.specific and 0 < found.get(k.key, 0) < 1]
    if weak:
        parts.append(_t(
            lang,
            f"The documents link it to {_list_names([k.label_en for k in weak], 'en')} only indirectly (see the reasons).",
            f"文档中其与{_list_names([k.label_zh for k in weak], 'zh-Hans')}的联系是间接的（见理由）。",
        ))
    if missing:
        parts.append(_t(
            lang,
            f"The documents do not link {_list_names([k.label_en for k in missing], 'en')} to this center; the services below are general.",
            f"文档未将{_list_names([k.label_zh for k in missing], 'zh-Hans')}与该中心联系起来，以下为其一般服务。",
        ))
    parts.extend(_unknown_note(unknown, lang))
    return " ".join(parts) if not lang.startswith("zh") else "".join(parts)


def _uncovered_note(places: Sequence[Place], unknown: Sequence[str], lang: str) -> str:
    parts = [_t(
        lang,
        f"No center in the documents serves {_places_text(places, 'en')}. The organizations below are only the closest by sector or reach — they are not described as serving that place.",
        f"文档中没有面向{_places_text(places, 'zh-Hans')}的中心。以下仅为按领域或覆盖范围最接近的机构，文档并未说明它们服务该地区。",
    )]
    parts.extend(_unknown_note(unknown, lang))
    return " ".join(parts) if not lang.startswith("zh") else "".join(parts)


def _sector_note(concepts: Sequence[_Concept], unknown: Sequence[str], lang: str) -> str:
    labels_en = _list_names([c.label_en for c in concepts if c.specific], "en")
    labels_zh = _list_names([c.label_zh for c in concepts if c.specific], "zh-Hans")
    parts = [_t(
        lang,
        f"No country or region named, so the ranking follows the sectors the documents give for each organization ({labels_en}). Name the countries you want to work with for a regional match.",
        f"未提及国家或地区，因此按文档所载各机构的领域排序（{labels_zh}）。请说明目标国家，以便按地区匹配。",
    )]
    parts.extend(_unknown_note(unknown, lang))
    return " ".join(parts) if not lang.startswith("zh") else "".join(parts)


def _no_place_note(concepts: Sequence[_Concept], unknown: Sequence[str], lang: str) -> str:
    parts = [_t(
        lang,
        "No country or region is named, and no organization's documented focus clearly matches the goal. Name the countries you want to work with."
        + (" The organizations below are only the closest by services." if concepts else ""),
        "未提及国家或地区，文档所载各机构的重点领域也与该目标不明确相符。请说明目标国家。"
        + ("以下仅为按服务最接近的机构。" if concepts else ""),
    )]
    parts.extend(_unknown_note(unknown, lang))
    return " ".join(parts) if not lang.startswith("zh") else "".join(parts)


def _unknown_note(unknown: Sequence[str], lang: str) -> list[str]:
    if not unknown:
        return []
    names = _list_names(list(unknown), lang)
    return [_t(lang, f"Not recognised as a country or region: {names}.", f"未能识别为国家或地区：{names}。")]


def _ranked(s: _Scored, match: str, places: Sequence[Place], concepts: Sequence[_Concept], lang: str) -> RankedCenter:
    """A scored center with its reasons: sentences in `lang` built from its cited fields."""
    c = s.center
    reasons: list[Reason] = []

    if match == "closest":
        reasons.append(Reason(
            _t(lang, f"Closest only: the documents do not say it serves {_places_text(places, 'en')}.",
               f"仅为最接近：文档未说明其服务{_places_text(places, 'zh-Hans')}。")
            if places
            else _t(lang, "Closest only: no country or region was named.", "仅为最接近：未提及国家或地区。")
        ))
        fact = next((f for f in c.field("regions") if f.value == "global"), None)
        if fact is not None:
            reasons.append(Reason(_t(lang, "Reach: worldwide.", "覆盖范围：全球。"), _cite(fact)))

    # The region served, and where the user's places are.
    for reach, hit_places in (("primary", s.primary), ("outreach", s.outreach)):
        facts = [f for f in c.field("regions") if f.reach == reach and any(str(f.value) in p.regions for p in hit_places)]
        if not facts:
            continue
        fact = facts[0]
        region_en, region_zh = REGIONS[str(fact.value)].name_en, REGIONS[str(fact.value)].name_zh
        where_en, where_zh = _places_text(hit_places, "en"), _places_text(hit_places, "zh-Hans")
        verb = "is" if len(hit_places) == 1 else "are"
        same = len(hit_places) == 1 and (
            hit_places[0].name_en.lower() in region_en.lower() or hit_places[0].name_zh in region_zh
        )
        if reach == "primary":
            text = (
                _t(lang, f"Serves {region_en}.", f"面向{region_zh}。")
                if same
                else _t(lang, f"Serves {region_en} — where {where_en} {verb}.", f"面向{region_zh}，{where_zh}属于该地区。")
            )
        else:
            text = _t(
                lang,
                f"Reaches {region_en} through one of its outreach lines" + ("." if same else f" — where {where_en} {verb}."),
                f"其外联方向之一涉及{region_zh}" + ("。" if same else f"，{where_zh}属于该地区。"),
            )
        reasons.append(Reason(text, _cite(fact)))

    # Countries the documents name for it.
    remaining = list(s.countries)
    for fact in c.field("countries"):
        values = fact.value if isinstance(fact.value, tuple) else ()
        hit = [p for p in remaining if p.name_en in values]
        if hit:
            reasons.append(Reason(_t(
                lang,
                f"The documents name {_places_text(hit, 'en')} for it: {fact.context_text('en')}.",
                f"文档提到{_places_text(hit, 'zh-Hans')}：{fact.context_text('zh-Hans')}。",
            ), _cite(fact)))
            remaining = [p for p in remaining if p not in hit]

    # Since when, where, who runs it.
    labels = {"founded": ("founded", "成立"), "host": ("based in", "所在地"), "operator": ("operator:", "运营")}
    stated = [(n, f) for n in labels if (f := c.first(n)) is not None and f.cited]
    if stated:
        en_parts = [f"{labels[n][0]} {f.text('en')}" for n, f in stated]
        en_parts[0] = en_parts[0][0].upper() + en_parts[0][1:]
        quotes: list[Quote] = []
        for _, f in stated:
            quotes.extend(q for q in _cite(f) if q not in quotes)
        reasons.append(Reason(
            _t(lang, "; ".join(en_parts) + ".", "；".join(f"{labels[n][1]}：{f.text('zh-Hans')}" for n, f in stated) + "。"),
            tuple(quotes),
        ))

    # Sector fit: industries first, else kinds of service.
    hits = [h for h in s.sector_hits if h.concept.specific] or list(s.sector_hits)
    sector_facts: list[Fact] = []
    for h in hits:
        if h.fact not in sector_facts:
            sector_facts.append(h.fact)
    if hits:
        labels_en = _list_names([h.concept.label_en for h in hits], "en")
        labels_zh = _list_names([h.concept.label_zh for h in hits], "zh-Hans")
        direct = any(h.weight >= 1.0 for h in hits)
        reasons.append(Reason(
            _t(lang, f"{'Fits' if direct else 'Indirectly related to'} {labels_en}: "
               + "; ".join(f.text("en") for f in sector_facts[:2]) + ".",
               f"与{labels_zh}{'相关' if direct else '间接相关'}：" + "；".join(f.text("zh-Hans") for f in sector_facts[:2]) + "。"),
            tuple(q for f in sector_facts[:2] for q in _cite(f)),
        ))

    # What it offers.
    services = [f for f in c.field("services") if f not in sector_facts][:2]
    if services:
        reasons.append(Reason(
            _t(lang, "What it offers: " + "; ".join(f.text("en") for f in services) + ".",
               "可提供：" + "；".join(f.text("zh-Hans") for f in services) + "。"),
            tuple(q for f in services for q in _cite(f)),
        ))
    elif not c.field("services"):
        reasons.append(Reason(_t(lang, "The documents do not describe its services.", "文档未介绍其服务内容。")))

    # Bilateral or overseas presence.
    overseas = c.first("overseas_centers")
    if overseas is not None and overseas.cited and overseas not in sector_facts:
        reasons.append(Reason(
            _t(lang, f"Bilateral or overseas centers: {overseas.text('en')}.", f"双边及境外中心：{overseas.text('zh-Hans')}。"),
            _cite(overseas),
        ))

    if c.is_foreign:
        reasons.append(Reason(_t(
            lang,
            "A foreign organization the paper describes as a model; the documents do not say it works with Chinese companies.",
            "论文作为借鉴介绍的国外机构，文档未说明其为中国企业提供服务。",
        ), _cite(c.first("kind"))))

    return RankedCenter(c.id, c.name_zh, c.name_en, s.score, match, tuple(reasons), c.kind)


def _cite(fact: Fact | None) -> tuple[Quote, ...]:
    ref = fact.quote_ref() if fact is not None else None
    return (ref,) if ref is not None else ()


# =============================================================================== chat

_EN_ASK = re.compile(
    r"\b(which|what)\s+(\w+\s+){0,3}(center|centre|platform|organi[sz]ation|institution|agency|partner|one|union|network)s?\b"
    r"|\bwho\s+(can|could|should|would)\s+(help|support|assist)"
    r"|\bwhere\s+(should|can|could|do)\s+(we|i)\s+(go|start|turn|look)"
    r"|\brecommend|\bsuggest|\b(best|right)\s+(fit|choice|center|centre|platform|partner)"
    r"|\bfits?\s+(my|our)\b|\bwork\s+with\b|\bpartner\s+with\b|\bhelp\s+(us|me)\b",
    re.IGNORECASE,
)
_EN_GOAL = re.compile(r"\b(we|our|us|i|my|me|sme|smes|company|firm|startup)\b", re.IGNORECASE)
_ZH_ASK = re.compile(
    r"哪(个|家|些|一个)?[^，。？！,.?!]{0,12}(中心|平台|机构|组织|联盟|单位)"
    r"|有没有[^，。？！,.?!]{0,10}(中心|平台|机构|组织|联盟)"
    r"|找(哪|谁|什么)|可以找|应该找|该找|推荐|适合|合适|对接哪|谁能帮|谁可以帮|能帮(我们|我)|可以帮(我们|我)"
)
_ZH_GOAL = re.compile(
    r"我们|我司|我公司|本公司|我想|我方|企业|公司|想要|计划|打算|希望|适合|合适|推荐"
    r"|想(与|和|跟|在|把|去|进入|开拓|拓展|开展|做)"
)


def looks_like_recommendation(question: str) -> bool:
    """True for "which center should we work with for <place>?"-type questions.

    Needs a request for a center or platform ("which center/platform…", "who can help",
    "找哪个平台", "哪個中心適合") by someone with a goal ("we", "our company", "我们",
    "企业"), and a named country or region (Antarctica counts: it gets an honest "no").
    A factual question such as "Which center serves ASEAN countries?" stays with the
    ordinary retrieval answer.
    """
    if not question or not question.strip():
        return False
    folded = normalize(question)
    asks = bool(_EN_ASK.search(question)) or bool(_ZH_ASK.search(folded))
    goal = bool(_EN_GOAL.search(question)) or bool(_ZH_GOAL.search(folded))
    if not (asks and goal):
        return False
    return bool(find_places([question]).places)


def render_recommendation(rec: Recommendation, language: str | None = None) -> tuple[str, list[dict[str, Any]]]:
    """The chat answer for a recommendation: a short comparison with [n] markers, and its
    numbered citations in the chat's shape (n, chunk_id, doc_id, title, quote, start, end,
    kind, published). chunk_id is the pseudo id "centers:<center id>".

    The text is in the recommendation's language; `language` may switch a Chinese one
    between Simplified and Traditional script (for English or Chinese, pass `language` to
    `recommend`)."""
    lang = rec.language
    if language in ("zh-Hans", "zh-Hant") and lang.startswith("zh"):
        lang = language
    numbers: dict[tuple[str, int, int], int] = {}
    citations: list[dict[str, Any]] = []

    def mark(quotes: Sequence[Quote], center_id: str) -> str:
        marks = []
        for q in quotes:
            key = (q.doc_id, q.start, q.end)
            if key not in numbers:
                numbers[key] = len(numbers) + 1
                info = rec.sources.get(q.doc_id) or DocInfo(q.doc_id, q.doc_id)
                citations.append({
                    "n": numbers[key],
                    "chunk_id": f"centers:{center_id}",
                    "doc_id": q.doc_id,
                    "title": info.title,
                    "quote": q.quote,
                    "start": q.start,
                    "end": q.end,
                    "kind": info.kind,
                    "published": info.published,
                })
            marks.append(f"[{numbers[key]}]")
        return "".join(marks)

    zh = lang.startswith("zh")
    lines = [_relang(rec.note, lang)]
    shown = rec.centers[:3]
    for i, c in enumerate(shown, 1):
        name = _t(lang, f"{c.name_en} ({c.name_zh})", f"{c.name_zh}（{c.name_en}）")
        label = _t(lang, " — through outreach", "（通过外联方向）") if c.match == "outreach" else ""
        sentences = []
        for r in c.reasons[: 6 if i == 1 else 3]:
            text = _relang(r.text, lang).rstrip()
            end = ""
            if text and text[-1] in ".。":
                text, end = text[:-1], text[-1]
            marks = mark(r.citations, c.id)
            sentences.append(f"{text}{' ' if marks and not zh else ''}{marks}{end}")
        lines.append(f"{i}. {name}{label}{'：' if zh else ': '}" + ("" if zh else " ").join(sentences))
    if len(rec.centers) > len(shown):
        more = ("、" if zh else ", ").join(_t(lang, c.name_en, c.name_zh) for c in rec.centers[len(shown):])
        lines.append(_t(lang, f"Also relevant: {more}.", f"另可参考：{more}。"))
    return "\n\n".join(lines), citations


def _relang(text: str, lang: str) -> str:
    """Text already built in the recommendation's language, in the script asked for."""
    if lang == "zh-Hant":
        return to_traditional(text)
    return to_simplified(text) if lang == "zh-Hans" else text


def recommendation_answer(directory: Directory, question: str, *, language: str | None = None) -> Answer:
    """The chat's `Answer` for a recommendation question (see `looks_like_recommendation`)."""
    rec = recommend(directory, question, language=language)
    text, cites = render_recommendation(rec)
    return Answer(
        answer=text,
        citations=[Citation(**c) for c in cites],
        grounded=rec.covered and bool(cites),
        backend="extractive",
    )


# =============================================================================== caching


class _DocumentsSource(Protocol):
    settings: Settings

    def documents(self) -> Sequence[Any]: ...


class DirectoryCache:
    """The directory of an assistant's documents, loaded on first use and reloaded when the
    indexed documents or centers.yaml change. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[Any, ...] | None = None
        self._directory: Directory | None = None

    def get(self, assistant: _DocumentsSource) -> Directory:
        docs = [info.document for info in assistant.documents()]
        corpus_dir = Path(assistant.settings.corpus_dir)
        path = corpus_dir / DIRECTORY_FILE
        try:
            stat = path.stat()
            file_key: tuple[Any, ...] = (stat.st_mtime_ns, stat.st_size)
        except OSError:
            file_key = ()
        key = (str(path), file_key, tuple((d.doc_id, len(d.text), hash(d.text)) for d in docs))
        with self._lock:
            if self._directory is not None and key == self._key:
                return self._directory
            directory = directory_from_documents(corpus_dir, docs)
            self._key, self._directory = key, directory
            return directory
