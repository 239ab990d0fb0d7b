"""`recommend()`: rank the directory's organizations for an SME's goal, with cited reasons."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from assistant.centers.directory import Directory
from assistant.centers.model import DocInfo
from assistant.centers.places import Place
from assistant.centers.reasons import (
    RankedCenter,
    covered_note,
    no_place_note,
    ranked,
    sector_note,
    uncovered_note,
)
from assistant.centers.scoring import closest, merge, score
from assistant.text import detect_language


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
    model never ranks above a center of the home country whose region matches. When no
    organization serves the places named — or no place is named and no sector match is
    strong — the result is `covered=False` with at most three organizations labelled
    "closest". The reasons and the note are in `language`, else in the goal's language.
    """
    geo = directory.geography
    lang = _language(language, goal)
    scan = geo.find_places(goal) if not countries else merge(geo.find_places(goal), geo.find_places(countries))
    places = scan.places
    concepts = directory.concepts.goal_concepts(goal + " " + (sector or ""))
    scored = [score(c, places, concepts, directory.concepts) for c in directory.centers]
    docs = directory.documents

    if places:
        matched = [s for s in scored if s.primary or s.outreach]
        reached = {id(p) for s in matched for p in (*s.primary, *s.outreach)}
        uncovered = tuple(p for p in places if id(p) not in reached)
        if matched:
            matched.sort(key=lambda s: (not (s.primary and not s.center.is_foreign), -s.score, s.center.id))
            chosen = matched[:limit]
            centers = tuple(ranked(geo, s, "region" if s.primary else "outreach", places, lang) for s in chosen)
            note = covered_note(geo, chosen[0], matched[1:], places, uncovered, scan.unknown, concepts, lang)
            return Recommendation(goal, True, note, centers, lang, places, uncovered, scan.unknown, docs)
        note = uncovered_note(places, scan.unknown, lang)
        centers = tuple(ranked(geo, s, "closest", places, lang) for s in closest(scored, geo.worldwide))
        return Recommendation(goal, False, note, centers, lang, places, places, scan.unknown, docs)

    if any(s.strong_sector for s in scored):
        by_sector = sorted(
            (s for s in scored if s.sector_score > 0),
            key=lambda s: (-s.score, s.center.is_foreign, s.center.id),
        )[:limit]
        note = sector_note(concepts, scan.unknown, lang)
        centers = tuple(ranked(geo, s, "sector", places, lang) for s in by_sector)
        return Recommendation(goal, True, note, centers, lang, (), (), scan.unknown, docs)
    nearest = closest(scored, geo.worldwide) if concepts else []
    note = no_place_note(concepts, scan.unknown, lang)
    centers = tuple(ranked(geo, s, "closest", places, lang) for s in nearest)
    return Recommendation(goal, False, note, centers, lang, (), (), scan.unknown, docs)
