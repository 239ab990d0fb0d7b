"""Structured answers: parsing the model's JSON, the draft, and the checks on each claim."""

from __future__ import annotations

import json

import pytest

from assistant.pipeline.claims import (
    ANSWER_SCHEMA,
    Claim,
    _is_pinyin,
    _unsupported_names,
    draft_text,
    parse_free_text,
    parse_reply,
    parse_structured,
)


def test_the_schema_puts_evidence_before_text_and_bounds_the_claims() -> None:
    item = ANSWER_SCHEMA["properties"]["claims"]["items"]
    assert list(item["properties"]) == ["evidence", "text"]
    assert ANSWER_SCHEMA["properties"]["claims"]["maxItems"] == 4
    assert ANSWER_SCHEMA["required"] == ["claims", "answerable"]


def test_structured_answers_parse_from_json_with_or_without_a_fence() -> None:
    body = {"claims": [{"evidence": [2, "x", True], "text": " It was founded in 2014. "}], "answerable": True}
    for raw in (json.dumps(body), "```json\n" + json.dumps(body, indent=2) + "\n```", "Sure: " + json.dumps(body)):
        parsed = parse_structured(raw)
        assert parsed is not None and parsed.structured and parsed.answerable is True
        assert parsed.claims == [Claim("It was founded in 2014.", [2])]  # only real ints survive
    assert parse_structured("It was founded in 2014 [1].") is None
    assert parse_structured('{"claims": "no"}') is None


def test_broken_json_gives_its_text_fields_never_its_raw_text() -> None:
    raw = '{"claims": [{"evidence":, "text": "王志剛部長"}, {"evidence": [2], "text": "中心成立於\\"2014\\"年"}], "answerable": true}'
    parsed = parse_reply(raw)
    assert parsed.structured and parsed.answerable is True
    assert parsed.claims == [Claim("王志剛部長", []), Claim('中心成立於"2014"年', [2])]
    assert parse_reply('```json\n{"claims": [{"evidence": [1' ).claims == []  # cut short: nothing to read
    prose = parse_reply("It was founded in 2014 [1].")  # no JSON at all: free text
    assert not prose.structured and prose.claims[0].evidence == [1]


def test_a_string_closed_with_a_curly_quote_still_parses() -> None:
    raw = '{"claims": [{"evidence": [4], "text": "他说：“形成开放格局。”}], "answerable": true}'
    parsed = parse_reply(raw)
    assert parsed.answerable is True and parsed.claims == [Claim("他说：“形成开放格局。", [4])]
    # Inside a string that ends properly, curly quotes stay.
    assert parse_reply('{"claims": [{"evidence": [1], "text": "“格局”}"}], "answerable": true}').claims[0].text == "“格局”}"


def test_free_text_becomes_claims_with_their_markers() -> None:
    parsed = parse_free_text("中心在广西。[1] 它成立于2014年[2]，[3]。")
    assert not parsed.structured and parsed.answerable is None
    assert parsed.claims[0] == Claim("中心在广西。", [1])
    assert parsed.claims[1].evidence == [2, 3]


def test_the_draft_is_the_claim_text_written_so_far() -> None:
    raw = '{"claims": [{"evidence": [1], "text": "It was founded'
    assert draft_text(raw) == "It was founded"
    assert draft_text(raw + ' in 2014."}, {"evidence": [2], "text": "It is in') == "It was founded in 2014. It is in"
    assert draft_text("") == "" and draft_text("not json") == ""
    assert draft_text('```json\n{\n  "claims": [\n    {\n      "evidence": [1],\n      "text": "It was') == "It was"


@pytest.mark.parametrize(("word", "pinyin"), [("Guangxi", True), ("Qingdao", True), ("Soviet", False), ("ASEAN", False), ("Technology", False)])
def test_romanized_chinese_names_are_recognised(word: str, pinyin: bool) -> None:
    assert _is_pinyin(word) is pinyin


def test_names_must_stand_in_the_evidence() -> None:
    evidence = ["由广西东盟技术转移中心负责日常具体运营和管理工作"]
    assert _unsupported_names("It is run by the Sichuan exchange center.", "Who runs it?", evidence) == ["Sichuan"]
    assert _unsupported_names("It is run by the Guangxi center.", "Who runs it?", evidence) == []
    # Same script: every name of the claim must be in the evidence or the question.
    latin = ["The center is run by the Guangxi ASEAN Technology Transfer Center."]
    assert _unsupported_names("It is run by the Yunnan Center.", "Who runs it?", latin) == ["Yunnan"]
    assert _unsupported_names("湖北省对外科技交流中心负责运营。", "谁负责运营？", ["由广西东盟技术转移中心负责"]) == ["湖北省"]


def test_a_misread_magnitude_is_told_from_a_made_up_figure() -> None:
    from assistant.pipeline.citations import misread_amounts

    fund = ["上海合作组织成员国科技成果转化基金,总规模5亿元,首期2亿元"]
    assert misread_amounts("The fund totals 5 billion yuan, its first phase 2 billion.", "q", fund)
    assert not misread_amounts("The fund totals 8 billion yuan.", "q", fund)  # other digits
    assert not misread_amounts("The fund has 5 members.", "q", fund)  # no amount: not a magnitude slip
    assert not misread_amounts("In 2021 the fund totals 5 billion yuan.", "q", fund)  # a year it lacks
    assert not misread_amounts("The 2021 fund totals 5 billion yuan.", "What was the 2021 fund?", ["总规模6亿元"])


def test_amounts_are_checked_by_value_across_magnitude_words() -> None:
    from assistant.pipeline.citations import _numbers_supported

    fund = ["上海合作组织成员国科技成果转化基金,总规模5亿元,首期2亿元"]
    assert _numbers_supported("The fund totals 500 million yuan; its first phase 200 million.", "q", fund)
    assert _numbers_supported("The fund totals 0.5 billion yuan.", "q", fund)
    assert _numbers_supported("总规模5亿元，首期2亿元。", "q", fund)
    assert not _numbers_supported("The fund totals 5 billion yuan.", "q", fund)  # 亿 is 10^8
    funding = ["项目总经费 2000 万元"]
    assert _numbers_supported("Its total funding was 20 million yuan.", "q", funding)
    assert not _numbers_supported("Its total funding was 2000 million yuan.", "q", funding)
    assert _numbers_supported("More than 30 million yuan was invested.", "q", ["市区两级已投入3000余万元支持"])


def test_a_chinese_claim_must_find_its_added_words_in_its_evidence() -> None:
    from assistant.pipeline.claims import unstated

    q = "中国—东盟技术转移中心由哪个机构负责日常运营？"
    right = "由广西东盟技术转移中心负责日常具体运营和管理工作"
    share, absent = unstated("中国—东盟技术转移中心由广西东盟技术转移中心负责日常具体运营。", q, [right])
    assert share == 1.0 and absent == 0
    share, absent = unstated("中国—东盟技术转移中心由南宁市高新区管委会负责运营。", q, [right])
    assert share < 0.35 and absent >= 4
    assert unstated("It is run by the Guangxi center.", q, [right]) == (1.0, 0)  # another script: not checked
