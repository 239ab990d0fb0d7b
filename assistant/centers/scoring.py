"""Scoring one organization against a goal's places and sector concepts.

The region match dominates (10 for full coverage of the places named; an outreach region
counts `OUTREACH_WEIGHT`); a country the documents name for the center adds up to 1.5;
the overlap of the goal's sectors with its cited services and focus fields up to 3; the
level (national, provincial) breaks ties, then how well the center is documented.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from assistant.centers.concepts import Concept, Concepts
from assistant.centers.model import Center, Fact
from assistant.centers.places import Place, PlaceScan

OUTREACH_WEIGHT = 0.4


@dataclass(frozen=True)
class SectorHit:
    concept: Concept
    fact: Fact
    weight: float  # the weight of the fact's field (concepts.yaml, sector_fields)


@dataclass
class Scored:
    center: Center
    primary: list[Place]
    outreach: list[Place]
    region_score: float
    countries: list[Place]
    sector_score: float
    sector_hits: list[SectorHit]
    strong_sector: bool
    score: float = 0.0


def merge(a: PlaceScan, b: PlaceScan) -> PlaceScan:
    places = list(a.places)
    places.extend(p for p in b.places if p not in places)
    return PlaceScan(tuple(places), a.unknown + b.unknown)


def score(center: Center, places: Sequence[Place], concepts: Sequence[Concept], vocabulary: Concepts) -> Scored:
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
    hits: list[SectorHit] = []
    strong = False
    for c in concepts:
        facts = vocabulary.center_facts(center, c)
        if not facts:
            continue
        weight, fact = max(facts, key=lambda wf: wf[0])
        sector += (1.5 if c.specific else 0.4) * weight
        hits.append(SectorHit(c, fact, weight))
        strong = strong or (c.specific and weight >= 1.0)
    sector_score = min(sector, 3.0)

    level_bonus = {"national": 0.3, "provincial": 0.15}.get(center.level or "", 0.0)
    total = 10 * region_score + sector_score + level_bonus
    if countries:
        total += 1.5 * len(countries) / len(places)
    if center.is_foreign and not places:
        total *= 0.8  # a model the paper compares, not a service described for the user's companies
    evidence = len(center.stated_fields()) / 100  # tie-break: the better-documented first
    return Scored(center, primary, outreach, region_score, countries, sector_score, hits, strong,
                  round(total + evidence, 3))


def closest(scored: Sequence[Scored], worldwide: frozenset[str]) -> list[Scored]:
    """At most three organizations nearest by sector or worldwide reach (`worldwide`: the
    region codes that stand for the whole world); none when nothing relates to the goal."""

    def global_reach(s: Scored) -> bool:
        return bool(worldwide & set(s.center.regions(None)))

    def key(s: Scored) -> tuple[float, bool, float, str]:
        return (-(s.sector_score + (0.2 if global_reach(s) else 0.0)), s.center.is_foreign, -s.score, s.center.id)

    ranked = sorted(scored, key=key)
    useful = [s for s in ranked if s.sector_score > 0 or global_reach(s)]
    return useful[:3]
