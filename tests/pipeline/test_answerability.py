"""What a question asks for, and whether evidence holds it (prompts/answer_kinds.yaml)."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.pipeline.answerability import AnswerKindsError, coverage, load_answer_kinds, stem
from assistant.settings import PROJECT_ROOT

KINDS = load_answer_kinds(PROJECT_ROOT / "prompts")


@pytest.mark.parametrize(
    ("question", "kinds"),
    [
        ("When was the center set up?", ["date"]),
        ("上合組織技術轉移中心是什麼時候啟用的？", ["date"]),
        ("How many member institutions does the alliance have?", ["number"]),
        ("中国—南亚技术转移中心有多少名员工？", ["number"]),
        ("有哪几种方式？", []),  # a list, not a number
        ("What is the email address of the center?", ["contact"]),
        ("中國—上合組織技術轉移中心的聯繫電話是多少？", ["contact", "number"]),
        ("Who is the director of the China–ASEAN center?", ["person"]),
        ("中关村技术经理人协会的会长是谁？", ["person"]),
        ("科技部副部长黄卫介绍了哪些国家？", ["place"]),  # a title in passing is not "who"
        ("Which fund management company will manage the fund?", ["organization"]),
        ("由谁负责日常运营？", ["organization"]),
        ("When and where will the conference be held?", ["date", "place"]),
        ("Why was Ningxia chosen?", ["reason"]),
        ("What does the union do?", []),
        ("專項行動的預算是多少？", ["money", "number"]),
        ("How much had the city governments invested in the center?", ["money", "number"]),
        ("How is the Technomart funded?", []),  # a way of funding, not an amount
        ("第10屆東創會共有多少家企業參展？", ["number"]),
    ],
)
def test_what_a_question_asks_for(question: str, kinds: list[str]) -> None:
    assert [k.name for k in KINDS.asked(question)] == kinds


def _kind(name: str):  # type: ignore[no-untyped-def]
    return next(k for k in KINDS.kinds if k.name == name)


def test_evidence_holds_a_kind_only_when_its_shape_is_there() -> None:
    assert _kind("date").held_by("中国—东盟技术转移中心（2014年，广西）")  # a year before 年 counts
    assert not _kind("date").held_by("由广西东盟技术转移中心负责日常具体运营和管理工作")
    assert _kind("contact").held_by("联系电话：0771-1234567")
    assert _kind("contact").held_by("write to info@example.org")
    assert not _kind("contact").held_by("中心主要面向阿拉伯国家开展国际技术转移")
    assert _kind("number").held_by("Five joint projects were transferred.")
    assert _kind("reason").held_by("由于地处沿海，青岛被选为总部。")
    assert not _kind("reason").held_by("青岛是总部所在地。")
    assert _kind("place").label("zh-Hant") == "具體地點"


def test_what_a_claim_adds_to_the_question() -> None:
    q = "Who heads the Qingdao Science and Technology Bureau?"
    assert KINDS.beyond("The Qingdao Science and Technology Bureau is headed by the Qingdao Science and Technology Bureau.", q) == ""
    assert KINDS.beyond("It was founded in 2014.", "When was the center founded?") == "2014"
    added = KINDS.beyond("上合组织技术转移中心2023年的营业收入是政府购买服务", "上合组织技术转移中心2023年的营业收入是多少？")
    assert "2023" not in added and "政府" in added


def test_subject_terms_leave_question_words_out() -> None:
    assert KINDS.subject_terms("When was the China–ASEAN center founded?") == ["china", "asean", "center", "founded"]
    terms = KINDS.subject_terms("王志刚在东创会上提出的三点倡议是什么？")
    assert "王志刚" in terms and "什么" not in terms


def test_coverage_folds_scripts_and_stems() -> None:
    assert coverage(["王志刚", "倡议"], "王志剛提出三點倡議") == 1.0
    assert coverage(["南亚", "中心"], "中非创新合作中心") == 0.5
    assert coverage([], "anything") == 1.0
    assert stem("heads") == stem("headed") == "head"
    assert stem("announced") == stem("announce") == stem("announces")  # "China announced the plan" restates "announce"


def test_a_claim_that_says_something_is_missing_is_recognised() -> None:
    assert KINDS.states_absence("The email address is not provided in the evidence.")
    assert KINDS.states_absence("文档中没有提到该中心的邮箱。")
    assert not KINDS.states_absence("It is run by the Guangxi ASEAN Technology Transfer Center.")


def test_a_malformed_file_names_itself(tmp_path: Path) -> None:
    (tmp_path / "answer_kinds.yaml").write_text("kinds:\n  date:\n    cues: ['(']\n", "utf-8")
    with pytest.raises(AnswerKindsError, match=r"answer_kinds.yaml: kind 'date', cues pattern"):
        load_answer_kinds(tmp_path)
    missing = tmp_path / "none"
    missing.mkdir()
    with pytest.raises(AnswerKindsError, match="ASSISTANT_PROMPTS_DIR"):
        load_answer_kinds(missing)


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("When will the 11th conference be held?", {("ordinal", 11)}),
        ("第十一届大会在哪里举行？", {("ordinal", 11)}),
        ("第10屆東創會共有多少家企業參展？", {("ordinal", 10)}),
        ("2022年百花奖最佳影片是哪部？", {("year", 2022)}),
        ("What was the output in 2022?", {("year", 2022)}),
        ("第二十一次会议于2019年召开", {("ordinal", 21), ("year", 2019)}),
        ("12345 units, 3 times", set()),  # neither a year nor an ordinal
    ],
)
def test_years_and_ordinals_that_narrow_a_question(text: str, found: set[tuple[str, int]]) -> None:
    assert KINDS.qualifiers(text) == found


def test_evidence_must_name_the_questions_year_or_edition() -> None:
    assert KINDS.qualified("Who opened the 10th conference?", "第十届中国—东盟技术转移与创新合作大会开幕")
    assert not KINDS.qualified("Where will the 11th conference be held?", "第十届中国—东盟技术转移与创新合作大会")
    assert not KINDS.qualified("2022年百花奖最佳影片奖由谁获得？", "2021年百花奖最佳影片奖由《长津湖》获得")
    assert KINDS.qualified("What did the center do?", "anything at all")  # nothing to narrow


def test_a_bad_qualifier_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "answer_kinds.yaml").write_text(
        "kinds:\n  date:\n    cues: ['when']\nqualifiers:\n  - kind: year\n    pattern: '(19|20)[0-9]{2}'\n", "utf-8"
    )
    with pytest.raises(AnswerKindsError, match=r"\(\?P<n>"):
        load_answer_kinds(tmp_path)


@pytest.mark.parametrize(
    ("question", "anchors"),
    [
        ("《流浪地球2》的导演是谁？", ["流浪地球2"]),
        ("KF-21战斗机的研发国家是？", ["kf-21"]),
        ("按照「1+N」體系，總部中心在哪裡？", ["1+n"]),
        ("What does the “1+N” structure mean?", ["1+n"]),
        ('What is the "One Belt One Road" plan?', []),  # the asker's rendering: no anchor
        ("Who spoke at the 10th conference?", []),  # an ordinal is a qualifier, not a name
        ("中国—东盟技术转移中心是哪一年成立的？", []),
    ],
)
def test_names_a_question_writes_unmistakably(question: str, anchors: list[str]) -> None:
    assert KINDS.anchors(question) == anchors


def test_evidence_must_hold_the_questions_anchors() -> None:
    assert KINDS.anchored("《流浪地球2》的导演是谁？", "《流浪地球2》由郭帆执导")
    assert not KINDS.anchored("《流浪地球2》的导演是谁？", "《胡同儿》的导演是王羽铮")
    assert KINDS.anchored("What is KF-21?", "KF-21是韩国研制的战斗机")


def test_a_date_is_no_answer_to_how_many() -> None:
    number = _kind("number")
    assert not number.held_by("中国—南亚技术转移中心（2014年，云南）")
    assert not number.held_by("The plan runs to 2025.")
    assert not number.held_by("科技部布局了一批区域性国际技术转移中心")  # "a number of"
    assert number.held_by("遴选了1000项技术") and number.held_by("In 2019 it had 35 staff.")
    assert number.held_by("总规模5亿元") and number.held_by("已与5国建立双边技术转移中心")


def test_a_count_is_no_answer_to_how_much_money() -> None:
    money = _kind("money")
    assert money.required
    assert not money.held_by("會議宣佈啟動專項行動，遴選了1000項先進適用技術")
    assert money.held_by("市区两级已投入3000余万元支持“中心”建设")
    assert money.held_by("项目总经费 2000 万元") and money.held_by("a budget of 20 million yuan")
    assert money.held_by("总规模5亿元，首期2亿元") and money.held_by("US$ 5 million")


def test_a_question_of_several_parts_is_split_after_its_question_marks() -> None:
    assert KINDS.parts("上合青岛峰会是什么时候召开的？中心又是何时正式启用的？") == [
        "上合青岛峰会是什么时候召开的？",
        "中心又是何时正式启用的？",
    ]
    assert KINDS.parts("When was it set up, and who runs it?") == ["When was it set up, and who runs it?"]


def test_counts_keep_their_measure_word() -> None:
    assert KINDS.counts("第10届东创会共有4家企业参展，遴选1,000项技术") == {"4家", "1000项"}
    assert KINDS.counts("第4届论坛") == set()  # an ordinal is not a count
    assert KINDS.counts_supported("建置120年", ["建置120余年的市南区"])
    assert not KINDS.counts_supported("共有4家企业", ["第4屆10+3青年科學家論壇"])


def test_the_roles_a_text_names_are_found_in_either_script() -> None:
    person = next(k for k in KINDS.kinds if k.name == "person")
    assert person.found_in("《人世間》導演李路與首席運營官王五") == {"导演", "首席运营官"}
    assert person.held_by("编剧") and not person.held_by("技术转移")
    assert person.found_in("该中心成立于2014年。") == set()
