"""The wording of a recommendation: each center's cited reasons and the note above them.

Every sentence is built in the goal's language ('en', 'zh-Hans', 'zh-Hant') from the
center's cited facts, and carries the quotes it rests on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from assistant.centers.concepts import Concept
from assistant.centers.model import Fact
from assistant.centers.places import Geography, Place
from assistant.centers.scoring import Scored
from assistant.text import to_traditional
from assistant.types import Quote


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


# ------------------------------------------------------------------ wording helpers


def pick(language: str, en: str, zh: str) -> str:
    """`en` or `zh` for `language`; Chinese in Traditional script for 'zh-Hant'."""
    if language == "zh-Hant":
        return to_traditional(zh)
    return zh if language.startswith("zh") else en


def list_names(names: Sequence[str], language: str) -> str:
    names = list(dict.fromkeys(names))
    if language.startswith("zh"):
        return "、".join(names)
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def _places_text(places: Sequence[Place], language: str) -> str:
    return list_names([p.name(language) for p in places], language)


def _join(parts: Sequence[str], lang: str) -> str:
    return " ".join(parts) if not lang.startswith("zh") else "".join(parts)


def _foreign_model(geography: Geography, lang: str, subject_en: str, subject_zh: str) -> str:
    return pick(
        lang,
        f"{subject_en} foreign organization the paper describes as a model; the documents do not say it works with {geography.home_companies_en}.",
        f"{subject_zh}论文作为借鉴介绍的国外机构，文档未说明其为{geography.home.name_zh}企业提供服务。",
    )


# ------------------------------------------------------------------ notes


def covered_note(
    geography: Geography,
    best: Scored,
    rest: Sequence[Scored],
    places: Sequence[Place],
    uncovered: Sequence[Place],
    unknown: Sequence[str],
    concepts: Sequence[Concept],
    lang: str,
) -> str:
    c = best.center
    reached = [*best.primary, *best.outreach]
    served = [r for r in c.regions("primary") if any(r in p.regions for p in best.primary)]
    outreach = [r for r in c.regions("outreach") if any(r in p.regions for p in best.outreach)]

    def region_name(code: str) -> str:
        region = geography.regions[code]
        return pick(lang, region.name_en, region.name_zh)

    region = list_names([region_name(r) for r in served or outreach], lang)
    also = list_names([region_name(r) for r in outreach], lang) if served and outreach else ""
    parts = [
        pick(
            lang,
            f"Best fit in the documents for {_places_text(reached, 'en')}: {c.name_en}, which serves {region}"
            + (f" and reaches {also} through its outreach." if also else "."),
            f"就{_places_text(reached, 'zh-Hans')}而言，文档中最合适的是{c.name_zh}，面向{region}"
            + (f"，并通过外联方向涉及{also}。" if also else "。"),
        )
        if best.primary
        else pick(
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
            parts.append(pick(lang, f"For {p.name('en')}: {other.center.name_en}.", f"{p.name('zh-Hans')}方面：{other.center.name_zh}。"))
    if c.is_foreign and best.primary:
        parts.append(_foreign_model(geography, lang, "It is a", "它是"))
    if uncovered:
        parts.append(pick(
            lang,
            f"No center in the documents serves {_places_text(uncovered, 'en')}.",
            f"文档中没有面向{_places_text(uncovered, 'zh-Hans')}的中心。",
        ))
    found = {h.concept.key: h.weight for h in best.sector_hits}
    missing = [k for k in concepts if k.specific and k.key not in found]
    weak = [k for k in concepts if k.specific and 0 < found.get(k.key, 0) < 1]
    if weak:
        parts.append(pick(
            lang,
            f"The documents link it to {list_names([k.label_en for k in weak], 'en')} only indirectly (see the reasons).",
            f"文档中其与{list_names([k.label_zh for k in weak], 'zh-Hans')}的联系是间接的（见理由）。",
        ))
    if missing:
        parts.append(pick(
            lang,
            f"The documents do not link {list_names([k.label_en for k in missing], 'en')} to this center; the services below are general.",
            f"文档未将{list_names([k.label_zh for k in missing], 'zh-Hans')}与该中心联系起来，以下为其一般服务。",
        ))
    parts.extend(_unknown_note(unknown, lang))
    return _join(parts, lang)


def uncovered_note(places: Sequence[Place], unknown: Sequence[str], lang: str) -> str:
    parts = [pick(
        lang,
        f"No center in the documents serves {_places_text(places, 'en')}. The organizations below are only the closest by sector or reach — they are not described as serving that place.",
        f"文档中没有面向{_places_text(places, 'zh-Hans')}的中心。以下仅为按领域或覆盖范围最接近的机构，文档并未说明它们服务该地区。",
    )]
    parts.extend(_unknown_note(unknown, lang))
    return _join(parts, lang)


def sector_note(concepts: Sequence[Concept], unknown: Sequence[str], lang: str) -> str:
    labels_en = list_names([c.label_en for c in concepts if c.specific], "en")
    labels_zh = list_names([c.label_zh for c in concepts if c.specific], "zh-Hans")
    parts = [pick(
        lang,
        f"No country or region named, so the ranking follows the sectors the documents give for each organization ({labels_en}). Name the countries you want to work with for a regional match.",
        f"未提及国家或地区，因此按文档所载各机构的领域排序（{labels_zh}）。请说明目标国家，以便按地区匹配。",
    )]
    parts.extend(_unknown_note(unknown, lang))
    return _join(parts, lang)


def no_place_note(concepts: Sequence[Concept], unknown: Sequence[str], lang: str) -> str:
    parts = [pick(
        lang,
        "No country or region is named, and no organization's documented focus clearly matches the goal. Name the countries you want to work with."
        + (" The organizations below are only the closest by services." if concepts else ""),
        "未提及国家或地区，文档所载各机构的重点领域也与该目标不明确相符。请说明目标国家。"
        + ("以下仅为按服务最接近的机构。" if concepts else ""),
    )]
    parts.extend(_unknown_note(unknown, lang))
    return _join(parts, lang)


def _unknown_note(unknown: Sequence[str], lang: str) -> list[str]:
    if not unknown:
        return []
    names = list_names(list(unknown), lang)
    return [pick(lang, f"Not recognised as a country or region: {names}.", f"未能识别为国家或地区：{names}。")]


# ------------------------------------------------------------------ reasons


def ranked(geography: Geography, s: Scored, match: str, places: Sequence[Place], lang: str) -> RankedCenter:
    """A scored center with its reasons: sentences in `lang` built from its cited fields."""
    c = s.center
    reasons: list[Reason] = []

    if match == "closest":
        reasons.append(Reason(
            pick(lang, f"Closest only: the documents do not say it serves {_places_text(places, 'en')}.",
                 f"仅为最接近：文档未说明其服务{_places_text(places, 'zh-Hans')}。")
            if places
            else pick(lang, "Closest only: no country or region was named.", "仅为最接近：未提及国家或地区。")
        ))
        fact = next((f for f in c.field("regions") if f.value in geography.worldwide), None)
        if fact is not None:
            reasons.append(Reason(pick(lang, "Reach: worldwide.", "覆盖范围：全球。"), _cite(fact)))

    # The region served, and where the user's places are.
    for reach, hit_places in (("primary", s.primary), ("outreach", s.outreach)):
        facts = [f for f in c.field("regions") if f.reach == reach and any(str(f.value) in p.regions for p in hit_places)]
        if not facts:
            continue
        fact = facts[0]
        region = geography.regions[str(fact.value)]
        region_en, region_zh = region.name_en, region.name_zh
        where_en, where_zh = _places_text(hit_places, "en"), _places_text(hit_places, "zh-Hans")
        verb = "is" if len(hit_places) == 1 else "are"
        same = len(hit_places) == 1 and (
            hit_places[0].name_en.lower() in region_en.lower() or hit_places[0].name_zh in region_zh
        )
        if reach == "primary":
            text = (
                pick(lang, f"Serves {region_en}.", f"面向{region_zh}。")
                if same
                else pick(lang, f"Serves {region_en} — where {where_en} {verb}.", f"面向{region_zh}，{where_zh}属于该地区。")
            )
        else:
            text = pick(
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
            reasons.append(Reason(pick(
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
            pick(lang, "; ".join(en_parts) + ".", "；".join(f"{labels[n][1]}：{f.text('zh-Hans')}" for n, f in stated) + "。"),
            tuple(quotes),
        ))

    # Sector fit: industries first, else kinds of service.
    hits = [h for h in s.sector_hits if h.concept.specific] or list(s.sector_hits)
    sector_facts: list[Fact] = []
    for h in hits:
        if h.fact not in sector_facts:
            sector_facts.append(h.fact)
    if hits:
        labels_en = list_names([h.concept.label_en for h in hits], "en")
        labels_zh = list_names([h.concept.label_zh for h in hits], "zh-Hans")
        direct = any(h.weight >= 1.0 for h in hits)
        reasons.append(Reason(
            pick(lang, f"{'Fits' if direct else 'Indirectly related to'} {labels_en}: "
                 + "; ".join(f.text("en") for f in sector_facts[:2]) + ".",
                 f"与{labels_zh}{'相关' if direct else '间接相关'}：" + "；".join(f.text("zh-Hans") for f in sector_facts[:2]) + "。"),
            tuple(q for f in sector_facts[:2] for q in _cite(f)),
        ))

    # What it offers.
    services = [f for f in c.field("services") if f not in sector_facts][:2]
    if services:
        reasons.append(Reason(
            pick(lang, "What it offers: " + "; ".join(f.text("en") for f in services) + ".",
                 "可提供：" + "；".join(f.text("zh-Hans") for f in services) + "。"),
            tuple(q for f in services for q in _cite(f)),
        ))
    elif not c.field("services"):
        reasons.append(Reason(pick(lang, "The documents do not describe its services.", "文档未介绍其服务内容。")))

    # Bilateral or overseas presence.
    overseas = c.first("overseas_centers")
    if overseas is not None and overseas.cited and overseas not in sector_facts:
        reasons.append(Reason(
            pick(lang, f"Bilateral or overseas centers: {overseas.text('en')}.", f"双边及境外中心：{overseas.text('zh-Hans')}。"),
            _cite(overseas),
        ))

    if c.is_foreign:
        reasons.append(Reason(_foreign_model(geography, lang, "A", ""), _cite(c.first("kind"))))

    return RankedCenter(c.id, c.name_zh, c.name_en, s.score, match, tuple(reasons), c.kind)


def _cite(fact: Fact | None) -> tuple[Quote, ...]:
    ref = fact.quote_ref() if fact is not None else None
    return (ref,) if ref is not None else ()
