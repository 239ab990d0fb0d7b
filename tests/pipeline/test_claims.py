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
