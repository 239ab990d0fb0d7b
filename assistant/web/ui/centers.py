"""The Centers tab of the Gradio UI: the "which center fits my goal?" form first, then
the cited directory, a side-by-side comparison and a picture of the regions each center serves.

Codes are shown with their labels from `corpus/labels.yaml` (kinds, outreach) and
`places.yaml` (regions); quotes open with a tap (`<details>`), not on hover only; wide
tables scroll sideways inside their own box on a phone. Everything around the documents'
values is in the page's language (`lang`: en, zh-Hans or zh-Hant; strings.yaml); the
organizations keep both their names.

`build_centers_tab(assistant, language=...)` is called inside an open `gr.Blocks`/`gr.Tab`
context. The rendering is done by the pure functions below (`render_directory_table`,
`render_comparison`, `render_region_map`, `render_region_matrix`,
`render_recommendation_html`), which take a `Directory` and return HTML in which every
piece of document text is escaped. The picture is an inline SVG drawn here: no tile
servers, no remote assets.
"""

from __future__ import annotations

import html
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote as url_quote

import gradio as gr
import yaml

from assistant.centers.cache import DirectoryCache
from assistant.centers.directory import Directory
from assistant.centers.labels import Labels, load_labels
from assistant.centers.model import (
    DIRECTORY_FILE,
    FIELDS,
    NOT_STATED,
    Center,
    DirectoryError,
    Fact,
    Region,
)
from assistant.centers.places import Geography, load_geography
from assistant.centers.recommend import Recommendation, recommend
from assistant.text import to_traditional
from assistant.types import Quote
from assistant.web.ui.strings import label, t

if TYPE_CHECKING:
    from assistant.service import Assistant

log = logging.getLogger(__name__)

SOURCES_PATH = "/sources"
ALL_REGIONS = "all"

CENTERS_CSS = """
.tt-scroll { overflow-x: auto; -webkit-overflow-scrolling: touch; max-width: 100%; }
.tt-scroll > table { min-width: 44rem; }
table { border-collapse: collapse; width: 100%; font-size: 0.92em; }
th, td { text-align: left; padding: 0.35em 0.55em; border-bottom: 1px solid var(--border-color-primary); vertical-align: top; }
th { font-weight: 600; }
.tt-missing { color: var(--body-text-color-subdued); font-style: italic; }
.tt-src { font-size: 0.85em; white-space: nowrap; }
.tt-zh { color: var(--body-text-color-subdued); }
.tt-tag { display: inline-block; padding: 0 0.4em; margin: 0 0.2em 0.2em 0; border-radius: 0.6em; border: 1px solid var(--border-color-primary); font-size: 0.85em; }
.tt-note { padding: 0.5em 0.75em; border-left: 3px solid var(--color-accent); margin: 0.5em 0; }
.tt-uncovered { border-left-color: #d97706; }
.tt-center { margin: 0.75em 0; }
blockquote { margin: 0.3em 0; padding-left: 0.6em; border-left: 3px solid var(--border-color-primary); }
details summary { cursor: pointer; }
details.tt-quote { display: inline-block; vertical-align: top; }
details.tt-quote summary { font-size: 0.85em; color: var(--link-text-color, #0550ae); }
details.tt-quote[open] { display: block; }
details.tt-quote summary { min-height: 24px; }
.tt-matrix td.tt-dot { text-align: center; }
"""

# The middle of the schematic map's 1000 × 450 canvas: where the home country is drawn
# when places.yaml gives it no `map`.
_HOME_SPOT = (500.0, 225.0)
_PALETTE = (
    "#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777",
    "#4f46e5", "#65a30d", "#0d9488", "#b91c1c", "#7c3aed", "#c2410c", "#0369a1", "#a16207",
    "#475569", "#be185d",
)


# ---------------------------------------------------------------------- helpers


def _e(text: object) -> str:
    return html.escape(str(text))


def _in(lang: str, en: str, zh: str) -> str:
    """A pair of names (English, Simplified Chinese) in `lang`."""
    return en if lang == "en" else _zh(zh, lang)


def _zh(name: str, lang: str) -> str:
    """A Chinese name in the page's script: Traditional on a zh-Hant page, else as written."""
    return to_traditional(name) if lang == "zh-Hant" else name


def _not_stated(lang: str) -> str:
    return f'<span class="tt-missing">{_e(t("not_stated", lang))}</span>'


def _source_url(doc_id: str, start: int, end: int, base: str = SOURCES_PATH, lang: str = "en") -> str:
    return f"{base}/{url_quote(doc_id, safe='')}?start={int(start)}&end={int(end)}&lang={url_quote(lang)}#quote"


def _quote_link(q: Quote, base: str, label: str, lang: str = "en") -> str:
    href = _e(_source_url(q.doc_id, q.start, q.end, base, lang))
    return (
        f'<a class="tt-src" href="{href}" target="_blank" rel="noopener noreferrer" '
        f'title="{_e(q.quote)}">{_e(label)}</a>'
    )


def _quote_details(q: Quote, base: str, lang: str, cls: str = "tt-quote") -> str:
    """The quote behind a value, opened by a tap or a click (not on hover only), with its passage link."""
    opening = f'<details class="{cls}">' if cls else "<details>"
    return (
        f"{opening}<summary>{_e(t('quote', lang))}</summary><blockquote>{_e(q.quote)}</blockquote>"
        f"{_quote_link(q, base, t('open_passage', lang), lang)}</details>"
    )


def _fact_inline(fact: Fact | None, base: str, note: str | None = None, lang: str = "en") -> str:
    """A value with its quote (a tap opens it) and a link to the passage, or 'not stated'."""
    if fact is None:
        if note and note.strip() != NOT_STATED:
            return f'<span class="tt-missing">{_e(note)}</span>'
        return _not_stated(lang)
    parts = [_e(fact.text(lang))]
    ref = fact.quote_ref()
    if ref is not None:
        parts.append(_quote_details(ref, base, lang))
    return " ".join(parts)


def _fact_block(fact: Fact, base: str, shown: str | None = None, labels: Labels | None = None, lang: str = "en") -> str:
    """A value with its quote shown (for the comparison); `shown` replaces a code's text."""
    if not fact.stated:
        note = fact.note if fact.note and fact.note.strip() != NOT_STATED else t("not_stated", lang)
        return f'<span class="tt-missing">{_e(note)}</span>'
    value = shown or fact.text(lang)
    if fact.reach != "primary":
        value += f" — {_outreach(labels, lang)}"
    if fact.translated:
        value += " " + t("our_translation", lang)
    out = [f"<div>{_e(value)}</div>"]
    if fact.context:
        out.append(f'<div class="tt-zh">{_e(fact.context_text(lang))}</div>')
    ref = fact.quote_ref()
    if ref is not None:
        out.append(_quote_details(ref, base, lang, cls=""))
    return "".join(out)


def _region_label(region: Region, lang: str = "en") -> str:
    return _in(lang, region.name_en, region.name_zh)


def region_choices(geography: Geography | None, lang: str = "en") -> list[tuple[str, str]]:
    """The region picker's (label, code) pairs: all regions, then each of the place table."""
    regions = geography.regions.values() if geography is not None else ()
    return [(t("all_regions", lang), ALL_REGIONS)] + [(_region_label(r, lang), r.code) for r in regions]


# ---------------------------------------------------------------------- directory table


def _outreach(labels: Labels | None, lang: str = "en") -> str:
    if labels is not None and "outreach" in labels.reach:
        return labels.reach_of("outreach", lang)
    return t("outreach_only", lang)


def _serves(labels: Labels | None, lang: str = "en") -> str:
    if labels is not None and "primary" in labels.reach:
        return labels.reach_of("primary", lang)
    return t("serves", lang)


def _kind_label(directory: Directory, kind: str, labels: Labels | None, lang: str = "en") -> tuple[str, str]:
    """(label, description) of a kind: labels.yaml's "Regional center", else the directory's words."""
    about = _in(lang, *directory.kind_label(kind))
    if labels is not None and kind in labels.kinds:
        return labels.kind(kind, lang), about
    return about, ""


def render_directory_table(
    directory: Directory, region: str | None = None, base: str = SOURCES_PATH, labels: Labels | None = None,
    lang: str = "en",
) -> str:
    """The directory as an HTML table, optionally only the centers serving `region`."""
    centers = directory.filter(region=region) if region and region != ALL_REGIONS else list(directory.centers)
    known = directory.regions
    if not centers:
        name = _region_label(known[region], lang) if region is not None and region in known else str(region)
        return f"<p>{_e(t('no_center_serves', lang, region=name))}</p>"
    rows = []
    for c in centers:
        regions = "".join(
            f'<span class="tt-tag">{_e(_region_label(known[str(f.value)], lang))}'
            f'{" — " + _e(_outreach(labels, lang)) if f.reach != "primary" else ""}</span>'
            for f in c.field("regions")
        ) or _not_stated(lang)
        translated = f' <span class="tt-missing">{_e(t("name_translated", lang))}</span>'
        name_en = _e(c.name_en) + (translated if c.name_en_translated else "")
        kind, about = _kind_label(directory, c.kind, labels, lang)
        rows.append(
            "<tr>"
            f"<td><strong>{_e(_zh(c.name_zh, lang))}</strong><br>{name_en}</td>"
            f'<td>{_e(kind)}{f"<br><span class=tt-zh>{_e(about)}</span>" if about else ""}</td>'
            f"<td>{regions}</td>"
            f"<td>{_fact_inline(c.first('host'), base, c.note('host'), lang)}</td>"
            f"<td>{_fact_inline(c.first('founded'), base, c.note('founded'), lang)}</td>"
            f"<td>{_fact_inline(c.first('operator'), base, c.note('operator'), lang)}</td>"
            "</tr>"
        )
    columns = ("col_name", "col_kind", "regions_served", "col_host", "col_founded", "col_operator")
    head = "<thead><tr>" + "".join(f"<th>{_e(t(key, lang))}</th>" for key in columns) + "</tr></thead>"
    note = f"<p class='tt-missing'>{_e(t('directory_note', lang))}</p>"
    return (
        f'<div class="tt-directory">{note}<div class="tt-scroll" tabindex="0" role="region" '
        f'aria-label="{_e(t("directory", lang))}"><table class="tt-centers">{head}<tbody>{"".join(rows)}</tbody></table></div></div>'
    )


# ---------------------------------------------------------------------- comparison


def render_comparison(
    directory: Directory, ids: Sequence[str], base: str = SOURCES_PATH, labels: Labels | None = None,
    lang: str = "en",
) -> str:
    """Two or three centers side by side: fields as rows, values with their quotes."""
    centers: list[Center] = []
    for center_id in ids:
        try:
            centers.append(directory.get(center_id))
        except KeyError:
            continue
    if len(centers) < 2:
        return f"<p>{_e(t('choose_two', lang))}</p>"
    centers = centers[:3]
    head = f"<th>{_e(t('col_field', lang))}</th>" + "".join(
        f"<th>{_e(_zh(c.name_zh, lang))}<br><span class='tt-zh'>{_e(c.name_en)}</span></th>" for c in centers
    )
    rows = []
    for name, (label_en, label_zh) in FIELDS.items():
        if name in ("name_zh", "name_en"):
            continue
        cells = []
        for c in centers:
            facts = c.facts.get(name, ())
            blocks = (_fact_block(f, base, _shown(directory, name, f, labels, lang), labels, lang) for f in facts)
            cells.append("<td>" + "<hr>".join(blocks) + "</td>")
        rows.append(f"<tr><th>{_e(_in(lang, label_en, label_zh))}</th>{''.join(cells)}</tr>")
    table = f'<table class="tt-compare"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
    return f'<div class="tt-scroll" tabindex="0" role="region" aria-label="{_e(t("compare", lang))}">{table}</div>'


def _shown(directory: Directory, field: str, fact: Fact, labels: Labels | None, lang: str = "en") -> str | None:
    """A code's label: a kind ("Regional center"), a region (its places.yaml names); None: not a code."""
    if not fact.stated:
        return None
    if field == "kind":
        return _kind_label(directory, str(fact.value), labels, lang)[0]
    if field == "regions" and str(fact.value) in directory.regions:
        return _region_label(directory.regions[str(fact.value)], lang)
    return None


# ---------------------------------------------------------------------- the picture


def _fit(text: str, size: float, room: float) -> str:
    """SVG attributes that squeeze `text` (drawn at `size`) into `room` px when it would be
    wider: a label never runs out of its shape or off the canvas."""
    width = sum(size if ord(ch) >= 0x2E80 else size * (0.68 if ch.isupper() else 0.56) for ch in text)
    if width <= room:
        return ""
    return f' textLength="{room:.0f}" lengthAdjust="spacingAndGlyphs"'



def render_region_map(directory: Directory, ids: Sequence[str] | None = None, lang: str = "en") -> str:
    """A schematic world map (inline SVG): a blob per region and a line from the home country
    to each region a center serves (dashed: outreach only). All centers when `ids` is empty.
    The places of the regions and of the home country are their `map` in places.yaml; a
    region without one is left off."""
    geography = directory.geography
    spots = {code: r.map for code, r in geography.regions.items() if r.map is not None}
    centers = [c for c in directory.centers if not ids or c.id in ids]
    colors = {c.id: _PALETTE[i % len(_PALETTE)] for i, c in enumerate(directory.centers)}
    used = {str(f.value) for c in centers for f in c.field("regions")}
    legend_rows = max(1, math.ceil(len(centers) / 4))
    height = 450 + 14 + legend_rows * 18
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1000 {height}" role="img" '
        f'aria-label="{_e(t("map_label", lang))}" '
        'style="width:100%;min-width:600px;height:auto;background:#eef4fb;border-radius:8px;font-family:system-ui,sans-serif">',
        '<rect x="0" y="0" width="1000" height="450" fill="#eef4fb"/>',
    ]
    cx, cy = geography.home_map or _HOME_SPOT
    rings: dict[str, int] = {}
    for n, c in enumerate(centers):
        color = colors[c.id]
        for f in c.field("regions"):
            if str(f.value) not in spots:
                continue
            tx, ty = spots[str(f.value)]
            if c.is_foreign:
                # A foreign organization works in its own region: a ring there, no line from home.
                k = rings[str(f.value)] = rings.get(str(f.value), 0) + 1
                parts.append(
                    f'<ellipse cx="{tx}" cy="{ty}" rx="{58 + 4 * k}" ry="{27 + 4 * k}" fill="none" '
                    f'stroke="{color}" stroke-width="2.2"><title>{_e(c.name_en)}</title></ellipse>'
                )
                continue
            # Bend each center's lines a little differently so that shared routes stay apart,
            # and never by more than 90 px (long routes would leave the picture).
            bend = 0.18 + 0.07 * (n % 4)
            length = math.hypot(tx - cx, ty - cy) or 1.0
            bend = min(bend, 90 / length)
            mx = (cx + tx) / 2 - (ty - cy) * bend
            my = (cy + ty) / 2 + (tx - cx) * bend
            dash = ' stroke-dasharray="6 4"' if f.reach != "primary" else ""
            parts.append(
                f'<path d="M{cx:.0f},{cy:.0f} Q{mx:.0f},{my:.0f} {tx:.0f},{ty:.0f}" fill="none" '
                f'stroke="{color}" stroke-width="2.2" opacity="0.9"{dash}><title>{_e(c.name_en)} → '
                f"{_e(geography.regions[str(f.value)].name_en)}</title></path>"
            )
    for code, (x, y) in spots.items():
        active = code in used
        region = geography.regions[code]
        name_zh = _zh(region.name_zh, lang)
        parts.append(
            f'<ellipse cx="{x}" cy="{y}" rx="58" ry="27" fill="{"#ffffff" if active else "#f5f8fc"}" '
            f'stroke="{"#475569" if active else "#cbd5e1"}" stroke-width="{1.5 if active else 1}"/>'
            f'<text x="{x}" y="{y - 3}" font-size="12" text-anchor="middle"{_fit(name_zh, 12, 104)} '
            f'fill="{"#0f172a" if active else "#94a3b8"}">{_e(name_zh)}</text>'
            f'<text x="{x}" y="{y + 11}" font-size="9" text-anchor="middle"{_fit(region.short_en, 9, 100)} '
            f'fill="{"#334155" if active else "#a3b1c2"}">{_e(region.short_en)}</text>'
        )
    parts.append(f'<circle cx="{cx:.0f}" cy="{cy:.0f}" r="10" fill="#b91c1c"/>')
    home = geography.home
    parts.append(
        f'<text x="{cx:.0f}" y="{cy + 26:.0f}" font-size="12" text-anchor="middle" fill="#7f1d1d">'
        f"{_e(_zh(home.name_zh, lang))} {_e(home.name_en)}</text>"
    )
    footnote = t("map_note", lang)
    parts.append(
        f'<text x="990" y="440" font-size="10" text-anchor="end" fill="#64748b"{_fit(footnote, 10, 975)}>{_e(footnote)}</text>'
    )
    parts.append(f'<rect x="0" y="450" width="1000" height="{height - 450}" fill="#ffffff"/>')
    for i, c in enumerate(centers):
        x = 12 + (i % 4) * 247
        y = 470 + (i // 4) * 18
        parts.append(f'<rect x="{x}" y="{y - 6}" width="14" height="4" fill="{colors[c.id]}"/>')
        name = _zh(c.name_zh, lang)
        legend = name if len(name) <= 20 else name[:19] + "…"
        parts.append(f'<text x="{x + 19}" y="{y}" font-size="10.5" fill="#1e293b"{_fit(legend, 10.5, 222)}>{_e(legend)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def render_region_matrix(directory: Directory, labels: Labels | None = None, lang: str = "en") -> str:
    """Centers × regions: ● serves, ○ outreach only."""
    regions = directory.regions
    codes = [code for code in regions if any(code in c.regions(None) for c in directory.centers)]
    head = f"<th>{_e(t('col_center', lang))}</th>" + "".join(
        f"<th title='{_e(regions[code].name_en)}'>{_e(_region_label(regions[code], lang))}</th>"
        for code in codes
    )
    rows = []
    for c in directory.centers:
        primary, outreach = set(c.regions("primary")), set(c.regions("outreach"))
        cells = "".join(
            '<td class="tt-dot">' + ("●" if code in primary else "○" if code in outreach else "") + "</td>"
            for code in codes
        )
        rows.append(f"<tr><td>{_e(_zh(c.name_zh, lang))}</td>{cells}</tr>")
    return (
        f'<div class="tt-scroll" tabindex="0" role="region" aria-label="{_e(t("regions_served", lang))}">'
        f'<table class="tt-matrix"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'
        f"<p class='tt-missing'>● {_e(_serves(labels, lang))} &nbsp; ○ {_e(_outreach(labels, lang))}</p>"
    )


def render_regions_picture(
    directory: Directory, ids: Sequence[str] | None = None, labels: Labels | None = None, lang: str = "en"
) -> str:
    map_label = _e(t("map", lang))
    picture = (
        f'<div class="tt-scroll" tabindex="0" role="region" aria-label="{map_label}">'
        f"{render_region_map(directory, ids, lang)}</div>"
    )
    return picture + render_region_matrix(directory, labels, lang)


# ---------------------------------------------------------------------- recommendation


def render_recommendation_html(rec: Recommendation, base: str = SOURCES_PATH, lang: str = "en") -> str:
    """A recommendation as HTML: the note, then each center with its cited reasons."""
    cls = "tt-note" if rec.covered else "tt-note tt-uncovered"
    out = [f'<div class="{cls}">{_e(rec.note)}</div>']
    if not rec.centers:
        return "".join(out)
    numbers: dict[tuple[str, int, int], int] = {}
    matches = {"closest": t("closest_only", lang), "outreach": t("through_outreach", lang)}
    for i, c in enumerate(rec.centers, 1):
        match = f" — {matches[c.match]}" if c.match in matches else ""
        items = []
        for r in c.reasons:
            marks = []
            for q in r.citations:
                n = numbers.setdefault((q.doc_id, q.start, q.end), len(numbers) + 1)
                marks.append(_quote_link(q, base, f"[{n}] ↗", lang))
            items.append(f"<li>{_e(r.text)} {' '.join(marks)}</li>")
        out.append(
            f'<div class="tt-center"><strong>{i}. {_e(_zh(c.name_zh, lang))}</strong> · {_e(c.name_en)}{_e(match)}'
            f"<ul>{''.join(items)}</ul></div>"
        )
    if numbers:
        sources = []
        for (doc_id, start, end), n in numbers.items():
            info = rec.sources.get(doc_id)
            title = info.title if info else doc_id
            quote = next(
                q.quote for c in rec.centers for r in c.reasons for q in r.citations
                if (q.doc_id, q.start, q.end) == (doc_id, start, end)
            )
            sources.append(
                f"<details><summary>[{n}] {_e(title)}</summary><blockquote>{_e(quote)}</blockquote>"
                f"{_quote_link(Quote(doc_id, quote, start, end), base, t('open_passage', lang), lang)}</details>"
            )
        out.append(f"<p><strong>{_e(t('sources', lang))}</strong></p>" + "".join(sources))
    return "".join(out)


# ---------------------------------------------------------------------- the tab


def _directory_file(corpus_dir: Path | None) -> dict[str, Any]:
    """centers.yaml as read, unchecked ({} when there is none or it cannot be read)."""
    if corpus_dir is None:
        return {}
    try:
        raw = yaml.safe_load((Path(corpus_dir) / DIRECTORY_FILE).read_text(encoding="utf-8"))
    except Exception:
        log.warning("cannot read the centers directory", exc_info=True)
        return {}
    return raw if isinstance(raw, dict) else {}


def center_choices(corpus_dir: Path | None) -> list[tuple[str, str]]:
    """(label, id) of the directory's entries, read from the YAML's names (for the picker).

    Only the names are read here, so the picker can be built before the index is loaded;
    everything shown comes from the checked directory.
    """
    try:
        choices = []
        for entry in _directory_file(corpus_dir).get("entries", []):
            name_zh = (entry.get("name_zh") or {}).get("value") or entry["id"]
            name_en = (entry.get("name_en") or {}).get("value") or ""
            choices.append((f"{name_zh} · {name_en}" if name_en else str(name_zh), str(entry["id"])))
        return choices
    except Exception:
        log.warning("cannot read the centers directory's names", exc_info=True)
        return []


def ui_settings(corpus_dir: Path | None) -> dict[str, Any]:
    """The `ui` section of centers.yaml: the entries compared first and the goal form's
    examples (the corpus's own words, as written), with generic defaults in the page's
    language for what it does not give."""
    ui = _directory_file(corpus_dir).get("ui")
    ui = ui if isinstance(ui, dict) else {}
    return {
        "compare": [str(i) for i in ui.get("compare") or []],
        "goal_example": str(ui.get("goal_example") or "") or label("goal_example"),
        "countries_example": str(ui.get("countries_example") or "") or label("countries_example"),
    }


def _places_of(corpus_dir: Path | None) -> Geography | None:
    if corpus_dir is None:
        return None
    try:
        return load_geography(corpus_dir)
    except DirectoryError:
        log.warning("cannot read the place table; the region picker lists no regions", exc_info=True)
        return None


def _labels_of(corpus_dir: Path | None) -> Labels:
    """labels.yaml beside the corpus; without it (or when it is broken, logged) codes show as written."""
    try:
        return load_labels(corpus_dir)
    except DirectoryError:
        log.warning("cannot read the labels file; codes are shown as written", exc_info=True)
        return Labels()


def _unavailable(exc: Exception, lang: str = "en") -> str:
    return f"<p>⚠️ {_e(t('centers_unavailable', lang, reason=str(exc)))}</p>"


@dataclass
class CentersTab:
    """What the page renders in its language, on load and on a switch: `render(lang, *values
    of inputs)` -> values of `outputs`."""

    render: Callable[..., list[Any]]
    inputs: list[Any]
    outputs: list[Any]


def build_centers_tab(
    assistant: Assistant, *, sources_path: str = SOURCES_PATH, language: Any = None
) -> CentersTab:
    """The Centers tab's components and events; call inside `with gr.Tab(...)`.

    `language` is the page's language switcher (a component whose value is en, zh-Hans or
    zh-Hant); without one the tab is in English. The tables are rendered by the returned
    `CentersTab`, which the page calls on load and on a switch of language.
    """
    cache = DirectoryCache()
    settings = getattr(assistant, "settings", None)
    corpus_dir = getattr(settings, "corpus_dir", None)
    language = language if language is not None else gr.State("en")

    def with_directory(render: Any, lang: str, *args: Any) -> str:
        try:
            return str(render(cache.get(assistant), *args))
        except DirectoryError as exc:
            return _unavailable(exc, lang)
        except Exception as exc:
            log.exception("centers tab failed")
            return _unavailable(RuntimeError(str(exc) or type(exc).__name__), lang)

    labels = _labels_of(corpus_dir)
    geography = _places_of(corpus_dir)

    def table(region: str | None, lang: str) -> str:
        return with_directory(render_directory_table, lang, region or ALL_REGIONS, sources_path, labels, lang)

    def compare(ids: Sequence[str] | None, lang: str) -> tuple[str, str]:
        ids = list(ids or [])
        return (
            with_directory(render_comparison, lang, ids, sources_path, labels, lang),
            with_directory(render_regions_picture, lang, ids, labels, lang),
        )

    def advise(goal: str, countries: str, sector: str, lang: str) -> str:
        goal = (goal or "").strip()
        if not goal:
            return f"<p>{_e(t('describe_goal', lang))}</p>"
        places = [p.strip() for p in (countries or "").replace("，", ",").replace("、", ",").split(",") if p.strip()]

        def run(directory: Directory) -> str:
            rec = recommend(directory, goal[:2000], places[:30] or None, (sector or "").strip()[:200] or None)
            return render_recommendation_html(rec, sources_path, lang)

        return with_directory(run, lang)

    def render(lang: str, region: str | None, ids: Sequence[str] | None, goal: str, countries: str, sector: str) -> list[Any]:
        """Everything the tab renders, in `lang` (a recommendation only when one was asked for)."""
        comparison, picture = compare(ids, lang)
        advice = advise(goal, countries, sector, lang) if (goal or "").strip() else ""
        choices = gr.update(choices=region_choices(geography, lang))
        return [choices, table(region, lang), comparison, picture, advice]

    # First what most visitors come for: which center fits a goal. The directory follows.
    ui = ui_settings(corpus_dir)
    gr.Markdown("### " + label("goal_heading"))
    with gr.Row():
        goal = gr.Textbox(
            label=label("goal"),
            placeholder=ui["goal_example"],
            scale=4,
            lines=2,
            max_lines=6,
        )
        with gr.Column(scale=2, min_width=240):
            countries = gr.Textbox(label=label("countries"), placeholder=ui["countries_example"])
            sector = gr.Textbox(label=label("sector"), placeholder=label("sector_example"))
    advise_button = gr.Button(label("recommend"), variant="primary")
    advice_html = gr.HTML("", css_template=CENTERS_CSS, js_on_load=None)

    gr.Markdown("### " + label("directory"))
    gr.Markdown(label("directory_intro"))
    with gr.Row():
        region = gr.Dropdown(
            choices=region_choices(geography), value=ALL_REGIONS, label=label("region"), scale=1, filterable=False
        )
    directory_html = gr.HTML("", css_template=CENTERS_CSS, js_on_load=None)

    gr.Markdown("### " + label("compare"))
    choices = center_choices(corpus_dir)
    default_pair: list[str] = [i for i in ui["compare"] if i in {c[1] for c in choices}]
    picker = gr.Dropdown(
        choices=choices,
        value=default_pair,
        multiselect=True,
        max_choices=3,
        label=label("compare_pick"),
    )
    comparison_html = gr.HTML("", css_template=CENTERS_CSS, js_on_load=None)

    gr.Markdown("### " + label("regions_served"))
    picture_html = gr.HTML("", css_template=CENTERS_CSS, js_on_load=None)

    private: dict[str, Any] = {"api_visibility": "private"}
    region.change(table, [region, language], [directory_html], **private)
    picker.change(compare, [picker, language], [comparison_html, picture_html], **private)
    advise_button.click(advise, [goal, countries, sector, language], [advice_html], **private)
    goal.submit(advise, [goal, countries, sector, language], [advice_html], **private)
    return CentersTab(
        render,
        [region, picker, goal, countries, sector],
        [region, directory_html, comparison_html, picture_html, advice_html],
    )
