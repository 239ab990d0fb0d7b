"""The centers directory (corpus/centers.yaml) and the recommendation (assistant/centers/).

The first tests are the guard on the directory: every quote must be a verbatim substring
of its document's text, and a broken quote must stop loading with a message naming the
entry and the field.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from assistant.centers.cache import DirectoryCache
from assistant.centers.chat import looks_like_recommendation, recommendation_answer, render_recommendation
from assistant.centers.concepts import CONCEPTS_FILE
from assistant.centers.directory import Directory
from assistant.centers.load import directory_from_documents, load_directory, verify_corpus_directory
from assistant.centers.model import FIELDS, DirectoryError
from assistant.centers.places import PLACES_FILE, Geography, load_geography
from assistant.centers.recommend import recommend
from assistant.pipeline.corpus import load_corpus
from assistant.text import is_traditional
from tests.conftest import CORPUS

EXPECTED_IDS = {
    "china-asean", "china-south-asia", "china-arab-states", "china-cee-virtual", "china-africa",
    "china-sco", "china-lac", "brics", "guangdong-cis", "nttc", "irc-een", "technomart", "kotec",
    "btg", "yet2", "innocentive", "xin-center",
}
FOREIGN = {"nttc", "irc-een", "technomart", "kotec", "btg", "yet2", "innocentive"}


@pytest.fixture(scope="module")
def texts() -> dict[str, str]:
    return {d.doc_id: d.text for d in load_corpus(CORPUS)}


@pytest.fixture(scope="module")
def directory() -> Directory:
    return directory_from_documents(CORPUS, load_corpus(CORPUS))


@pytest.fixture(scope="module")
def geography() -> Geography:
    return load_geography(CORPUS)


def _raw_facts() -> list[tuple[str, str, dict[str, Any]]]:
    """(entry id, field, fact) for every fact in the YAML, read without the loader."""
    raw = yaml.safe_load((CORPUS / "centers.yaml").read_text(encoding="utf-8"))
    out = []
    for entry in raw["entries"]:
        for name, value in entry.items():
            if name == "id":
                continue
            for fact in value if isinstance(value, list) else [value]:
                out.append((entry["id"], name, fact))
    return out


# ====================================================================== the guard


def test_every_quote_in_the_directory_is_verbatim_in_its_document(texts: dict[str, str]) -> None:
    quoted = 0
    for entry_id, name, fact in _raw_facts():
        if fact.get("quote") is None:
            continue
        quoted += 1
        assert fact["doc_id"] in texts, f"{entry_id}.{name}: unknown document {fact['doc_id']}"
        assert fact["quote"] in texts[fact["doc_id"]], f"{entry_id}.{name}: quote not in {fact['doc_id']}"
    assert quoted > 100


def test_loaded_offsets_point_at_the_quotes(directory: Directory, texts: dict[str, str]) -> None:
    for center in directory.centers:
        for name, facts in center.facts.items():
            for fact in facts:
                if fact.quote is None:
                    continue
                assert fact.start is not None and fact.end is not None
                assert texts[str(fact.doc_id)][fact.start : fact.end] == fact.quote, (center.id, name)


def test_quotes_keep_the_script_of_their_document(directory: Directory) -> None:
    """The ASEAN news report is Traditional: its quotes are too; the others are Simplified."""
    for center in directory.centers:
        for facts in center.facts.values():
            for fact in facts:
                if fact.quote is None or len(re.findall(r"[\u4e00-\u9fff]", fact.quote)) < 8:
                    continue
                assert is_traditional(fact.quote) == (fact.doc_id == "china-asean-conference-10th"), fact.quote


def test_quotes_match_the_texts_the_assistant_serves(assistant) -> None:  # type: ignore[no-untyped-def]
    docs = {info.document.doc_id: info.document.text for info in assistant.documents()}
    directory = DirectoryCache().get(assistant)
    for center in directory.centers:
        for facts in center.facts.values():
            for fact in facts:
                if fact.quote is not None:
                    assert docs[str(fact.doc_id)][fact.start : fact.end] == fact.quote


def test_the_directory_has_every_organization_and_every_field(directory: Directory) -> None:
    assert set(directory.ids) == EXPECTED_IDS
    for center in directory.centers:
        assert set(center.facts) == set(FIELDS)
        for name, facts in center.facts.items():
            for fact in facts:
                if fact.value is None:
                    assert fact.note and "not stated" in fact.note, (center.id, name)
                    assert fact.quote is None
                elif fact.translated:
                    assert name == "name_en"
                else:
                    assert fact.quote and fact.doc_id, (center.id, name)
        assert center.is_foreign == (center.id in FOREIGN)


def test_names_and_facts_of_some_centers(directory: Directory) -> None:
    arab = directory.get("china-arab-states")
    assert arab.name_zh == "中国—阿拉伯国家技术转移中心"
    assert arab.name_en_translated
    assert arab.value("founded") == "2015"
    assert arab.value("host") == "Ningxia"
    assert {"Saudi Arabia", "United Arab Emirates", "Jordan", "Oman", "Egypt", "Morocco", "Sudan"} <= set(arab.countries())
    bilateral = arab.first("overseas_centers")
    assert bilateral is not None and "阿拉伯国家联盟、沙特、阿联酋（迪拜）、约旦、阿曼、埃及、摩洛哥和苏丹" in str(bilateral.quote)
    sco = directory.get("china-sco")
    assert sco.regions("primary") == ("sco",)
    assert set(sco.regions("outreach")) == {"asean", "cee", "northeast-asia"}
    assert "青岛阿斯顿工程技术转移有限公司" in str(sco.value("operator", "zh-Hans"))
    cis = directory.get("guangdong-cis")
    assert not cis.name_en_translated and cis.name_en.startswith("Guangdong-CIS")
    assert cis.level == "provincial"
    # Fields the documents do not give say so.
    south_asia = directory.get("china-south-asia")
    assert south_asia.field("services") == ()
    assert south_asia.note("services") == "not stated in the documents"
    assert directory.get("brics").field("host") == ()
    assert "昆明" in str(directory.get("brics").note("host"))


def _broken_copy(tmp_path: Path, old: str, new: str) -> Path:
    target = tmp_path / "corpus"
    target.mkdir()
    text = (CORPUS / "centers.yaml").read_text(encoding="utf-8")
    assert old in text
    (target / "centers.yaml").write_text(text.replace(old, new, 1), encoding="utf-8")
    for name in (PLACES_FILE, CONCEPTS_FILE):
        shutil.copy(CORPUS / name, target / name)
    return target


def test_a_broken_quote_stops_loading_and_names_the_entry(tmp_path: Path, texts: dict[str, str]) -> None:
    corpus = _broken_copy(tmp_path, "由宁夏回族自治区对外科技交流中心负责日常运营和管理工作", "由宁夏回族自治区对外科技交流中心负责日常運營和管理工作")
    with pytest.raises(DirectoryError) as err:
        load_directory(corpus, texts)
    message = str(err.value)
    assert "'china-arab-states'" in message and "'operator'" in message
    assert "quote not found" in message and "Copy it exactly" in message
    assert "near match" in message  # the Simplified original is pointed out


def test_a_quote_in_a_list_field_is_named_with_its_index(tmp_path: Path, texts: dict[str, str]) -> None:
    corpus = _broken_copy(tmp_path, "中国—东盟 技术转移中心\\t2014 年", "中国—东盟技术转移中心\\t2014 年")
    with pytest.raises(DirectoryError, match=r"'china-asean', field 'funding\[0\]': quote not found"):
        load_directory(corpus, texts)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("doc_id: integrated-tech-transfer-network", "doc_id: no-such-doc", "is not a document id"),
        ("- {value: lac,", "- {value: latam,", "unknown region code 'latam'"),
        ("    targets: {value: null, note: not stated in the documents}\n\n  - id: china-south-asia",
         "\n  - id: china-south-asia", "field 'targets' is missing"),
        ("  - id: brics", "  - id: china-lac", "used twice"),
        ("value: [Russia, Uzbekistan", "value: [Rusia, Uzbekistan", "'Rusia' is not a country name"),
        ("    founded: {value: \"2016\", doc_id: chengdu-chongqing-belt-road-ttc, quote: \"中国—中东欧国家虚拟技术转移中心（2016年，江苏）\"}",
         "    founded: {value: \"2016\"}", "has no doc_id and quote"),
    ],
)
def test_other_mistakes_are_named(tmp_path: Path, texts: dict[str, str], old: str, new: str, expected: str) -> None:
    corpus = _broken_copy(tmp_path, old, new)
    with pytest.raises(DirectoryError, match=re.escape(expected)):
        load_directory(corpus, texts)


def test_missing_directory_file(tmp_path: Path, texts: dict[str, str]) -> None:
    with pytest.raises(DirectoryError, match="not found"):
        load_directory(tmp_path, texts)
    assert verify_corpus_directory(tmp_path) is None
    assert verify_corpus_directory(CORPUS) is not None


def test_cache_reloads_when_the_yaml_changes(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    docs = load_corpus(corpus)
    fake = SimpleNamespace(
        settings=SimpleNamespace(corpus_dir=corpus),
        documents=lambda: [SimpleNamespace(document=d) for d in docs],
    )
    cache = DirectoryCache()
    first = cache.get(fake)  # type: ignore[arg-type]
    assert cache.get(fake) is first  # type: ignore[arg-type]
    path = corpus / "centers.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    assert cache.get(fake) is not first  # type: ignore[arg-type]


# ====================================================================== places


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Vietnam", {"asean"}),
        ("越南", {"asean"}),
        ("Indonesia", {"asean"}),
        ("印度尼西亞", {"asean"}),
        ("India", {"south-asia", "sco", "brics"}),
        ("Kuwait", {"arab-states"}),
        ("科威特", {"arab-states"}),
        ("卡塔尔", {"arab-states"}),
        ("卡達", {"arab-states"}),  # Taiwan usage
        ("Egypt", {"arab-states", "africa"}),
        ("Russia", {"cis", "sco", "brics"}),
        ("俄罗斯", {"cis", "sco", "brics"}),
        ("俄羅斯", {"cis", "sco", "brics"}),
        ("Kazakhstan", {"cis", "sco"}),
        ("哈薩克", {"cis", "sco"}),
        ("Brazil", {"lac", "brics"}),
        ("巴西", {"lac", "brics"}),
        ("South America", {"lac"}),
        ("南美", {"lac"}),
        ("Central Asia", {"sco", "cis"}),
        ("東盟", {"asean"}),
        ("Poland", {"cee", "europe"}),
        ("Antarctica", set()),
        ("南极", set()),
        ("南極", set()),
    ],
)
def test_resolve_places_in_three_languages(geography: Geography, query: str, expected: set[str]) -> None:
    assert geography.resolve_places(query) == expected
    assert geography.resolve_places([query]) == expected


def test_places_in_a_sentence(geography: Geography) -> None:
    find_places = geography.find_places
    scan = find_places("We make water-treatment equipment and want to enter Vietnam and Indonesia — can it help us?")
    assert [p.name_en for p in scan.places] == ["Vietnam", "Indonesia"]  # "us" is not the US
    assert [p.name_en for p in find_places("我们想把智慧农业系统推广到科威特和卡塔尔").places] == ["Kuwait", "Qatar"]
    assert [p.name_en for p in find_places("東南亞和印度").places] == ["ASEAN", "India"]
    assert [p.name_en for p in find_places("Sell to the US and UAE").places] == ["United States", "United Arab Emirates"]
    # Word fragments that are not places.
    assert find_places("沿海地区的企业其中非常多").places == ()
    assert find_places("我们是内蒙古的企业，中国市场").places == ()
    antarctica = find_places("Antarctica research logistics").places
    assert [p.name_en for p in antarctica] == ["Antarctica"] and antarctica[0].regions == frozenset()


def test_unknown_list_items_are_reported(geography: Geography) -> None:
    scan = geography.find_places(["越南", "Atlantis", "us"])
    assert [p.name_en for p in scan.places] == ["Vietnam", "United States"]
    assert scan.unknown == ("Atlantis",)


# ====================================================================== ranking

# (goal, countries, sector, expected first center, covered)
GOALS: list[tuple[str, list[str] | None, str | None, str, bool]] = [
    # The four questions of the issue.
    ("We make water-treatment equipment and want to enter Vietnam and Indonesia — which center should we work with, and what can it do for us?",
     None, None, "china-asean", True),
    ("我们想把智慧农业系统推广到科威特和卡塔尔，可以找哪个平台？", None, None, "china-arab-states", True),
    ("We want to partner with research institutes in Russia and Kazakhstan on new materials. Which center can help us?",
     None, None, "china-sco", True),
    ("We sell solar inverters and want to expand across South America, starting with Brazil and Argentina. Which platform fits us?",
     None, None, "china-lac", True),
    # More goals, three languages.
    ("我们公司想进入俄罗斯和中亚市场，应该找哪个中心？", None, None, "china-sco", True),
    ("我們想在巴西和智利推廣新能源汽車，哪個中心適合？", None, None, "china-lac", True),
    ("我們公司想把醫療器械出口到肯尼亞和尼日利亞，應該找哪個平台？", None, None, "china-africa", True),
    ("哪個中心適合我們把水處理設備賣到越南？", None, None, "china-asean", True),
    ("我們想與沙烏地阿拉伯和阿聯酋的企業合作，找哪個平台？", None, None, "china-arab-states", True),
    ("我们想在埃及建一个联合实验室，哪个平台合适？", None, None, "china-arab-states", True),
    ("我们想与波兰、匈牙利的企业开展技术合作，找哪个中心？", None, None, "china-cee-virtual", True),
    ("We want to sell water pumps in Sri Lanka and Nepal. Who can help us?", None, None, "china-south-asia", True),
    ("Our company wants to open a sales office.", ["Thailand", "Malaysia"], "food processing", "china-asean", True),
    ("我们想拓展海外市场", ["Uzbekistan", "塔吉克斯坦"], None, "china-sco", True),
    ("Looking for partners", ["Belarus", "Ukraine"], None, "guangdong-cis", True),
    ("We want to license our technology in Japan — who can help?", None, None, "technomart", True),
    ("我們想與以色列高校聯合研發並推動成果商業化，有沒有合適的合作平台？", None, None, "xin-center", True),
    ("We make medical devices; which center can help us?", None, None, "china-africa", True),
]


@pytest.mark.parametrize(("goal", "countries", "sector", "first", "covered"), GOALS)
def test_ranking_puts_the_right_center_first(
    directory: Directory, texts: dict[str, str], goal: str, countries: list[str] | None, sector: str | None,
    first: str, covered: bool,
) -> None:
    rec = recommend(directory, goal, countries, sector)
    assert rec.covered is covered
    assert rec.centers, rec.note
    best = rec.centers[0]
    assert best.id == first, [(c.id, c.score) for c in rec.centers]
    assert best.match in ("region", "sector")
    assert best.reasons and best.reasons[0].citations  # the first reason is cited
    for c in rec.centers:
        for reason in c.reasons:
            assert reason.text.strip()
            for q in reason.citations:
                assert texts[q.doc_id][q.start : q.end] == q.quote
    scores = [c.score for c in rec.centers if c.match == best.match and c.id not in FOREIGN]
    assert scores == sorted(scores, reverse=True)


def test_reasons_are_in_the_goal_language(directory: Directory) -> None:
    en = recommend(directory, "We want to enter Kuwait. Which center should we work with?")
    zh = recommend(directory, "我们想进入科威特市场，找哪个中心？")
    hant = recommend(directory, "我們想進入科威特市場，找哪個中心？")
    assert (en.language, zh.language, hant.language) == ("en", "zh-Hans", "zh-Hant")
    assert en.centers[0].reasons[0].text.startswith("Serves the Arab states")
    assert zh.centers[0].reasons[0].text.startswith("面向阿拉伯国家")
    assert hant.centers[0].reasons[0].text.startswith("面向阿拉伯國家")
    assert is_traditional(hant.note) and not is_traditional(zh.note)


def test_foreign_models_never_rank_above_a_matching_regional_center(directory: Directory) -> None:
    for goal in ("我们想进入波兰和希腊市场，找哪个中心？", "Which center fits us for Europe and Russia?", "We want to enter the UK and Poland"):
        rec = recommend(directory, goal)
        ids = [c.id for c in rec.centers]
        regional = [i for i, c in enumerate(rec.centers) if c.id not in FOREIGN and c.match == "region"]
        foreign = [i for i, c in enumerate(rec.centers) if c.id in FOREIGN]
        assert regional, ids
        assert not foreign or max(regional) < min(foreign), ids


def test_egypt_prefers_the_center_with_a_bilateral_center_there(directory: Directory) -> None:
    rec = recommend(directory, "We want to enter Egypt")
    assert [c.id for c in rec.centers[:2]] == ["china-arab-states", "china-africa"]
    assert any("Egypt" in r.text for r in rec.centers[0].reasons)


@pytest.mark.parametrize(
    ("goal", "place"),
    [
        ("We want to set up Antarctica research logistics — which center can help us?", "Antarctica"),
        ("我们想开展南极科考物流，可以找哪个平台？", "南极洲"),
        ("我們想在南極建立科考後勤基地，哪個中心適合？", "南極洲"),
        ("We want to sell to Canada and Australia", "Canada"),
        ("Which center can help us enter Turkey?", "Turkey"),
        ("我们公司想进入土耳其市场，找哪个平台？", "土耳其"),
    ],
)
def test_uncovered_goals_are_answered_honestly(directory: Directory, goal: str, place: str) -> None:
    rec = recommend(directory, goal)
    assert rec.covered is False
    assert place in rec.note
    assert "No center in the documents" in rec.note or "文档中没有" in rec.note or "文檔中沒有" in rec.note
    assert len(rec.centers) <= 3
    assert all(c.match == "closest" for c in rec.centers)
    for c in rec.centers:
        assert c.reasons[0].text.startswith(("Closest only", "仅为最接近", "僅爲最接近", "僅為最接近"))


def test_partly_covered_goal_names_the_uncovered_place(directory: Directory) -> None:
    rec = recommend(directory, "We want to enter Vietnam and Antarctica")
    assert rec.covered and rec.centers[0].id == "china-asean"
    assert "No center in the documents serves Antarctica" in rec.note


def test_no_place_and_no_sector_is_not_covered(directory: Directory) -> None:
    rec = recommend(directory, "Which center should we work with?")
    assert rec.covered is False and rec.centers == ()
    assert "Name the countries" in rec.note


def test_sector_gap_is_stated(directory: Directory) -> None:
    rec = recommend(directory, "We want to bring smart agriculture to Kuwait")
    assert rec.centers[0].id == "china-arab-states"
    assert "do not link agriculture" in rec.note


# ====================================================================== chat


@pytest.mark.parametrize(
    "question",
    [
        "We make water-treatment equipment and want to enter Vietnam and Indonesia — which center should we work with, and what can it do for us?",
        "我们想把智慧农业系统推广到科威特和卡塔尔，可以找哪个平台？",
        "哪個中心適合我們進入越南市場？",
        "Our company wants to expand to Russia and Kazakhstan. Who can help us?",
        "我们企业想去巴西，推荐一个技术转移中心",
        "We want to set up Antarctica research logistics — which center can help us?",
        "Which platform is the best fit for our SME in Egypt?",
    ],
)
def test_recommendation_questions_are_recognised(question: str) -> None:
    assert looks_like_recommendation(question, CORPUS)


@pytest.mark.parametrize(
    "question",
    [
        "Which technology transfer center serves ASEAN countries?",
        "哪个技术转移中心面向东盟国家？",
        "哪個技術轉移中心面向東盟國家？",
        "When was the China–SCO Technology Transfer Center launched, and where?",
        "中国—阿拉伯国家技术转移中心建了哪些双边技术转移中心？",
        "Which center should we work with?",  # no place named
        "",
    ],
)
def test_other_questions_are_not(question: str) -> None:
    assert not looks_like_recommendation(question, CORPUS)


def test_render_numbers_the_citations_and_quotes_verbatim(directory: Directory, texts: dict[str, str]) -> None:
    rec = recommend(directory, "我们想把智慧农业系统推广到科威特和卡塔尔，可以找哪个平台？")
    text, cites = render_recommendation(rec)
    assert "中国—阿拉伯国家技术转移中心" in text
    markers = {int(n) for n in re.findall(r"\[(\d+)\]", text)}
    assert markers == {c["n"] for c in cites} == set(range(1, len(cites) + 1))
    for c in cites:
        assert c["chunk_id"].startswith("centers:")
        assert texts[c["doc_id"]][c["start"] : c["end"]] == c["quote"]
        assert c["title"] and c["title"] != c["doc_id"]
    hant, _ = render_recommendation(recommend(directory, "我們想把智慧農業系統推廣到科威特，可以找哪個平台？"))
    assert "中國—阿拉伯國家技術轉移中心" in hant


def test_recommendation_answer_has_the_chat_shape(directory: Directory) -> None:
    answer = recommendation_answer(directory, "Which center should we work with to enter Vietnam?")
    assert answer.grounded and answer.citations
    assert answer.citations[0].n == 1 and answer.citations[0].quote
    assert "China–ASEAN" in answer.answer
    honest = recommendation_answer(directory, "We want Antarctica research logistics — which center can help us?")
    assert not honest.grounded
    assert "No center in the documents serves Antarctica" in honest.answer


def test_region_codes_are_documented(geography: Geography) -> None:
    assert set(geography.regions) >= {"asean", "south-asia", "arab-states", "cee", "africa", "sco", "lac", "brics",
                                      "cis", "global", "usa", "europe", "japan", "korea", "uk"}


# ====================================================================== the UI tab


def test_directory_table_filters_and_links_every_value(directory: Directory) -> None:
    from assistant.web.ui.centers import render_directory_table

    page = render_directory_table(directory, "arab-states")
    assert "中国—阿拉伯国家技术转移中心" in page and "中国—东盟技术转移中心" not in page
    assert "/sources/chengdu-chongqing-belt-road-ttc?start=" in page
    everything = render_directory_table(directory, "all")
    assert all(c.name_zh.split(" ")[0] in everything for c in directory.centers)
    assert "not stated in the documents" in everything
    assert "美国国家技术转移中心" in render_directory_table(directory, "usa")
    assert "No organization" in render_directory_table(directory, "northeast-asia")  # outreach only


def test_comparison_shows_fields_as_rows_with_quotes(directory: Directory) -> None:
    from assistant.web.ui.centers import render_comparison

    page = render_comparison(directory, ["china-asean", "china-arab-states", "china-sco"])
    assert page.count("<th>") >= 3 and "Funding" in page and "Operating model" in page
    assert "由宁夏回族自治区对外科技交流中心负责日常运营和管理工作" in page
    assert "Choose two or three" in render_comparison(directory, ["china-asean"])


def test_document_text_is_escaped(directory: Directory) -> None:
    from dataclasses import replace

    from assistant.web.ui.centers import render_comparison, render_directory_table, render_recommendation_html

    center = directory.get("china-asean")
    evil = replace(center.facts["host"][0], value="<script>alert(1)</script>", quote="<b>x</b>")
    facts = dict(center.facts)
    facts["host"] = (evil,)
    hacked = replace(directory, centers=(replace(center, facts=facts), *directory.centers[1:]))
    for page in (render_directory_table(hacked), render_comparison(hacked, ["china-asean", "china-sco"])):
        assert "<script>" not in page and "&lt;script&gt;" in page
        assert "<b>x</b>" not in page
    rec = recommend(directory, "<img src=x> Vietnam, which center fits us?")
    assert "<img" not in render_recommendation_html(rec)


def test_the_picture_is_drawn_offline(directory: Directory) -> None:
    from assistant.web.ui.centers import render_region_map, render_regions_picture

    svg = render_region_map(directory, ["china-asean", "china-sco"])
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert svg.count("<path") == 5  # ASEAN: 1 region; SCO: 1 + 3 outreach
    assert 'stroke-dasharray' in svg
    page = render_regions_picture(directory)
    assert "●" in page and "○" in page
    urls = re.findall(r"(?:src|href)\s*=\s*[\"']?(https?:[^\"'\s>]+)", page) + re.findall(r"url\(", page)
    assert urls == []


def test_the_tab_builds_and_serves_without_remote_assets(assistant) -> None:  # type: ignore[no-untyped-def]
    import gradio as gr
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from assistant.web.ui.centers import build_centers_tab
    from assistant.web.ui.strings import gradio_i18n

    with gr.Blocks() as demo, gr.Tab("Centers"):
        build_centers_tab(assistant)
    app = FastAPI()
    gr.mount_gradio_app(app, demo, path="/ui", i18n=gradio_i18n())
    with TestClient(app) as client:
        page = client.get("/ui/")
        assert page.status_code == 200
        assert "fonts.googleapis" not in page.text
        config = client.get("/ui/config").json()
        labels = json.dumps([c.get("props", {}).get("label") for c in config["components"]])
        assert "tt.region" in labels and "tt.goal" in labels  # keys, shown in the page's language
        assert config["i18n_translations"]["zh-TW"]["tt.region"] == "地區"


def test_the_tab_builds_without_an_index() -> None:
    import gradio as gr

    from assistant.web.ui.centers import build_centers_tab

    fake = SimpleNamespace(documents=lambda: (_ for _ in ()).throw(RuntimeError("no index")))
    with gr.Blocks(), gr.Tab("Centers"):
        build_centers_tab(fake)  # type: ignore[arg-type]


# ====================================================================== the dev set


def _devset_recommend_questions() -> list[dict[str, Any]]:
    path = Path(__file__).parent.parent / "eval" / "questions.yaml"
    return [q for q in yaml.safe_load(path.read_text(encoding="utf-8"))["questions"] if q.get("type") == "recommend"]


@pytest.mark.parametrize("item", _devset_recommend_questions(), ids=lambda q: q["id"])
def test_devset_recommend_questions_are_routed_and_answered(directory: Directory, item: dict[str, Any]) -> None:
    """The dev set's SME questions: routed to the recommendation, the expected center first,
    and every required fact in the chat answer."""
    question = item["question"]
    assert looks_like_recommendation(question, CORPUS)
    text, _ = render_recommendation(recommend(directory, question))
    for alternatives in item["facts"]:
        assert any(a.lower() in text.lower() for a in alternatives), (alternatives, text)
    first = text.split("\n\n")[1]  # the first center's paragraph
    assert any(a.lower() in first.lower() for a in item["facts"][0])


def test_other_devset_questions_are_not_routed() -> None:
    path = Path(__file__).parent.parent / "eval" / "questions.yaml"
    for q in yaml.safe_load(path.read_text(encoding="utf-8"))["questions"]:
        if q.get("type") != "recommend":
            assert not looks_like_recommendation(q["question"], CORPUS), q["id"]
