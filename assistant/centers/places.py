"""Geography: which places a goal names and which of the directory's regions they lie in.

The table is the corpus's `places.yaml` (its header documents the format): the region
codes with their display names, the home country (recognised and ignored: the user is
there), the countries and the region names a goal may use, in English and Chinese. It is
general knowledge used only to match a user's places to the regions the documents say
each organization serves; it is never shown as a fact about an organization.

`load_geography(corpus_dir)` reads and checks the file once per corpus folder (again when
it changes); `Geography.find_places` and `Geography.resolve_places` do the matching.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from assistant.centers.datafile import FileCache, describe, read_yaml
from assistant.centers.model import DirectoryError, Region
from assistant.text import normalize, to_traditional

PLACES_FILE = "places.yaml"

# How fully a center serving a place's wider grouping (a code under "also") covers it, so
# that the center for the place's own region comes first.
SECONDARY_REGION_WEIGHT = 0.85

_CODE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_FULLWIDTH = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)}

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


@dataclass(frozen=True)
class Place:
    name_en: str
    name_zh: str
    regions: frozenset[str]
    kind: str  # "country", "region" or "home"
    secondary: frozenset[str] = frozenset()  # the codes listed under "also"

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
    places: tuple[Place, ...]  # places outside the home country, in order of first mention
    unknown: tuple[str, ...] = ()  # list items that name no known place

    @property
    def regions(self) -> set[str]:
        return set().union(*(p.regions for p in self.places)) if self.places else set()


# ------------------------------------------------------------------ the file's schema


class _RegionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: Annotated[str, Field(pattern=_CODE.pattern)]
    en: Name
    zh: Name
    short: Name | None = None
    map: tuple[float, float] | None = None
    worldwide: bool = False


class _PlaceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    en: Name
    aliases: list[Name] = []
    cased: list[Name] = []
    zh: list[Name] = Field(min_length=1)
    regions: list[str] = []
    also: list[str] = []


class _HomeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    en: Name
    adjective: Name | None = None
    aliases: list[Name] = []
    zh: list[Name] = Field(min_length=1)
    map: tuple[float, float] | None = None


class _GuardIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    not_preceded_by: str = ""
    not_followed_by: str = ""


class _PlacesFileIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    regions: list[_RegionIn] = Field(min_length=1)
    home: _HomeIn
    countries: list[_PlaceIn] = []
    region_names: list[_PlaceIn] = []
    zh_guards: dict[str, _GuardIn] = {}


# ------------------------------------------------------------------ the index


class Geography:
    """The place table of one corpus, compiled for matching English and Chinese text."""

    def __init__(self, data: _PlacesFileIn, path: Path) -> None:
        self.path = path
        self.regions: Mapping[str, Region] = {
            r.code: Region(r.code, r.en, r.zh, r.short or r.en.removeprefix("the "), r.map, r.worldwide)
            for r in data.regions
        }
        self.worldwide = frozenset(r.code for r in data.regions if r.worldwide)
        self.home = Place(data.home.en, data.home.zh[0], frozenset(), "home")
        self.home_map = data.home.map
        self.home_companies_en = f"{data.home.adjective} companies" if data.home.adjective else f"companies from {data.home.en}"
        self._by_name: dict[str, Place] = {}
        self._zh_names: dict[str, Place] = {}
        self._cased: dict[str, Place] = {}
        rows: list[tuple[str, Place, list[str], list[str], list[str]]] = [
            ("home", self.home, [data.home.en, *filter(None, [data.home.adjective]), *data.home.aliases], [], data.home.zh)
        ]
        for section, kind in (("countries", "country"), ("region_names", "region")):
            for i, row in enumerate(getattr(data, section)):
                place = Place(
                    row.en, row.zh[0], frozenset(row.regions) | frozenset(row.also), kind, frozenset(row.also)
                )
                rows.append((f"{section}[{i}] ({row.en!r})", place, [row.en, *row.aliases], row.cased, row.zh))
        for where, place, names, cased, zh in rows:
            for name in names:
                for key in {name.lower(), fold_latin(name)}:
                    self._claim(self._by_name, key, place, where, name)
            for name in cased:
                self._claim(self._cased, name.lower(), place, where, name)
            for name in zh:
                self._claim(self._zh_names, normalize(name), place, where, name)
        self.countries = tuple(p for _, p, *_ in rows if p.kind == "country")

        en_names = sorted(self._by_name, key=len, reverse=True)
        self._en_pattern = re.compile(
            r"(?<![a-z0-9])(" + "|".join(re.escape(n) for n in en_names) + r")(?![a-z0-9])"
        )
        guards = {normalize(k): (normalize(g.not_preceded_by), normalize(g.not_followed_by))
                  for k, g in data.zh_guards.items()}
        zh_parts = []
        for z in sorted(self._zh_names, key=len, reverse=True):
            before, after = guards.get(z, ("", ""))
            part = re.escape(z)
            if before:
                part = f"(?<![{re.escape(before)}])" + part
            if after:
                part = part + f"(?![{re.escape(after)}])"
            zh_parts.append(part)
        self._zh_pattern = re.compile("(" + "|".join(zh_parts) + ")")
        cased_names = sorted({n for _, _, _, cased, _ in rows for n in cased}, key=len, reverse=True)
        self._cased_pattern = (
            re.compile(r"(?<![A-Za-z0-9])(" + "|".join(re.escape(n) for n in cased_names) + r")(?![A-Za-z0-9])")
            if cased_names
            else None
        )

    def _claim(self, names: dict[str, Place], key: str, place: Place, where: str, name: str) -> None:
        other = names.setdefault(key, place)
        if other is not place:
            raise DirectoryError(
                f"{self.path.name}: {where}: the name {name!r} is already used for {other.name_en!r}; "
                "each name may belong to one row only."
            )

    def country(self, name: str) -> Place | None:
        """The country an English name (as in the table) stands for; None if it names none."""
        place = self._by_name.get(name.strip().lower())
        return place if place is not None and place.kind == "country" else None

    def find_places(self, query: str | Iterable[str]) -> PlaceScan:
        """The countries and regions named in a text or a list of names, English or Chinese.

        A list item that is not a known place name is reported in `unknown`; the home
        country is left out (the user is there). Places in no region of the directory are
        kept: they are named but no center covers them.
        """
        found: list[Place] = []
        unknown: list[str] = []
        items = [query] if isinstance(query, str) else list(query)
        for item in items:
            item = str(item)
            stripped = item.strip()
            whole = (
                self._cased.get(stripped.lower())
                or self._by_name.get(fold_latin(stripped))
                or self._zh_names.get(normalize(stripped))
            )
            hits = [whole] if whole is not None else self._scan(item)
            if not isinstance(query, str) and not hits and stripped:
                unknown.append(stripped)
            for place in hits:
                if place.kind != "home" and place not in found:
                    found.append(place)
        return PlaceScan(tuple(found), tuple(unknown))

    def resolve_places(self, query: str | Iterable[str]) -> set[str]:
        """The region codes of the places named in a text or a list (see `find_places`)."""
        return self.find_places(query).regions

    def _scan(self, text: str) -> list[Place]:
        hits: list[tuple[int, Place]] = []
        latin = fold_latin(text.translate(_FULLWIDTH))
        hits.extend((m.start(), self._by_name[m.group(1)]) for m in self._en_pattern.finditer(latin))
        if self._cased_pattern is not None:
            hits.extend((m.start(), self._cased[m.group(1).lower()]) for m in self._cased_pattern.finditer(text))
        hits.extend((m.start(), self._zh_names[m.group(1)]) for m in self._zh_pattern.finditer(normalize(text)))
        return [p for _, p in sorted(hits, key=lambda h: h[0])]


def fold_latin(text: str) -> str:
    """Lower case without accents, curly apostrophes made straight ("Côte d’Ivoire")."""
    decomposed = unicodedata.normalize("NFKD", text.replace("’", "'"))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()



# ------------------------------------------------------------------ loading


def load_geography(corpus_dir: Path | str) -> Geography:
    """The checked place table of `corpus_dir/places.yaml`, cached per file.

    Raises `DirectoryError` naming the file, the row and what is wrong."""
    return _CACHE.get(Path(corpus_dir) / PLACES_FILE)


def _read(path: Path) -> Geography:
    raw = read_yaml(path, "the place table is a YAML file next to the documents (see corpus/places.yaml)")
    try:
        data = _PlacesFileIn.model_validate(raw)
    except ValidationError as exc:
        raise DirectoryError(describe(path.name, exc, raw)) from exc
    _check_references(data, path.name)
    return Geography(data, path)


def _check_references(data: _PlacesFileIn, file: str) -> None:
    codes = [r.code for r in data.regions]
    seen: set[str] = set()
    for i, code in enumerate(codes):
        if code in seen:
            raise DirectoryError(f"{file}: regions[{i}]: the code {code!r} is used twice; codes must be unique.")
        seen.add(code)
    for section in ("countries", "region_names"):
        rows: Sequence[_PlaceIn] = getattr(data, section)
        for i, row in enumerate(rows):
            where = f"{file}: {section}[{i}] ({row.en!r})"
            for key in ("regions", "also"):
                bad = [c for c in getattr(row, key) if c not in seen]
                if bad:
                    raise DirectoryError(
                        f"{where}, {key}: unknown region code {bad[0]!r}; use one of {', '.join(codes)}."
                    )
            both = set(row.regions) & set(row.also)
            if both:
                raise DirectoryError(f"{where}: {sorted(both)[0]!r} is under both regions and also; keep one.")
    named: list[_HomeIn | _PlaceIn] = [data.home, *data.countries, *data.region_names]
    zh_names = {normalize(z) for row in named for z in row.zh}
    for name in data.zh_guards:
        if normalize(name) not in zh_names:
            raise DirectoryError(f"{file}: zh_guards, {name!r}: not a Chinese name of any row; guard a name the table has.")


_CACHE: FileCache[Geography] = FileCache(_read)
