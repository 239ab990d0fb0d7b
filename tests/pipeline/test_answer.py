"""The answer stage: evidence, structured claims and their checks, refusal, fallback, rewrite.

The chat model here is a scripted stand-in (this tests our own post-processing
logic); retrieval, embeddings and the index are the real ones. The real local model is
exercised in test_e2e_local.py.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator

import pytest
import yaml

from assistant.llm.base import ChatModelError
from assistant.pipeline.answer import AnswerEngine, DoneEvent, SourcesEvent, TokenEvent, Turn
from assistant.pipeline.answerability import load_answer_kinds
from assistant.pipeline.citations import split_answer
from assistant.pipeline.domain import load_domain
from assistant.pipeline.index import load_snapshot, store_factory_for
from assistant.pipeline.prompts import load_prompts
from assistant.pipeline.retrieve import HybridRetriever
from assistant.settings import PROJECT_ROOT
from assistant.text import han_ratio

ASEAN_EN = "Which technology transfer center serves ASEAN countries?"
# The glossary and English names of the corpus the index is built from.
DOMAIN = load_domain(PROJECT_ROOT / "corpus")


class ScriptedModel:
    """Replies with fixed text, token by token; records the prompts it got."""

    backend = "openai"

    def __init__(self, reply: str | Callable[[str], str] = "", fail: bool = False, rewrite: str = "") -> None:
        self.reply, self.fail, self.rewrite = reply, fail, rewrite
        self.calls: list[list[dict[str, str]]] = []
        self.schemas: list[object] = []
        self.biases: list[object] = []
        self.prefixes: list[str] = []

    def stream(self, messages, *, max_tokens: int, schema=None, token_bias=None, prefix="") -> Iterator[str]:  # type: ignore[no-untyped-def]
        self.calls.append(messages)
        self.schemas.append(schema)
        self.biases.append(token_bias)
        self.prefixes.append(prefix)
        if self.fail:
            raise ChatModelError("The chat model at http://127.0.0.1:9 cannot be reached (ConnectError).")
        reply = self.reply(messages[-1]["content"]) if callable(self.reply) else self.reply
        for i in range(0, len(reply), 5):
            yield reply[i : i + 5]

    def complete(self, messages, *, max_tokens: int) -> str:  # type: ignore[no-untyped-def]
        self.calls.append(messages)
        return self.rewrite

    def ready(self) -> tuple[bool, str]:
        return True, "scripted"

    def close(self) -> None:
        pass


def evidence_lines(prompt: str) -> dict[int, str]:
    """The numbered evidence sentences of an answer prompt."""
    return {int(n): text for n, text in re.findall(r"^\[(\d+)\] (.*)$", prompt, re.M)}


def n_of(prompt: str, needle: str) -> int:
    """The number of the evidence sentence holding `needle` (as a model would pick it)."""
    return next(n for n, text in evidence_lines(prompt).items() if needle in text)


def claims(*pairs: tuple[str, str], answerable: bool = True) -> Callable[[str], str]:
    """A JSON reply: each (claim text, needle of its evidence sentence)."""

    def reply(prompt: str) -> str:
        items = [{"evidence": [n_of(prompt, needle)] if needle else [99], "text": text} for text, needle in pairs]
        return json.dumps({"claims": items, "answerable": answerable}, ensure_ascii=False)

    return reply


@pytest.fixture(scope="module")
def retriever(built_index, embedder):  # type: ignore[no-untyped-def]
    snapshot = load_snapshot(built_index, store_factory_for(built_index, None, 0), embedder)
    return HybridRetriever(snapshot, embedder, synonyms=DOMAIN.synonyms)


def engine(retriever, model=None, **kw) -> AnswerEngine:  # type: ignore[no-untyped-def]
    return AnswerEngine(
        retriever,
        model,
        load_prompts(PROJECT_ROOT / "prompts"),
        kinds=load_answer_kinds(PROJECT_ROOT / "prompts"),
        names=DOMAIN.names,
        **kw,
    )


def _check_citations(answer) -> None:  # type: ignore[no-untyped-def]
    docs = {}
    for c in [*answer.citations, *answer.related]:
        if c.doc_id not in docs:
            docs[c.doc_id] = (PROJECT_ROOT / "corpus" / f"{c.doc_id}.md").read_text("utf-8").split("---\n", 2)[2]
        assert docs[c.doc_id][c.start : c.end] == c.quote
    assert [c.n for c in answer.citations] == list(range(1, len(answer.citations) + 1))


def test_claims_get_their_evidence_as_verbatim_quotes(retriever) -> None:  # type: ignore[no-untyped-def]
    model = ScriptedModel(
        claims(
            ("The China–ASEAN Technology Transfer Center is the only state-approved international "
             "technology transfer body serving ASEAN countries.", "面向东盟国家"),
            ("It is run day to day by the Guangxi ASEAN Technology Transfer Center.", "广西东盟技术转移中心负责"),
        )
    )
    answer = engine(retriever, model).answer(ASEAN_EN)
    assert answer.grounded and answer.backend == "openai"
    assert "Guangxi" in answer.answer and answer.related == []
    assert any("面向东盟国家" in c.quote for c in answer.citations)
    _check_citations(answer)
    # The model was asked for the JSON schema; the prompt carried numbered evidence.
    assert model.schemas[0] is not None
    system, user = model.calls[0]
    assert "JSON" in system["content"] and "[1]" in user["content"] and ASEAN_EN in user["content"]


def test_the_system_message_is_the_same_for_every_question(retriever) -> None:  # type: ignore[no-untyped-def]
    model = ScriptedModel(claims(("x", "")))
    eng = engine(retriever, model)
    eng.answer(ASEAN_EN)
    eng.answer("上合组织技术转移中心在哪里？")
    assert model.calls[0][0] == model.calls[1][0]  # llama.cpp reuses the evaluated prefix


def test_the_prompt_stays_within_its_token_budget(retriever) -> None:  # type: ignore[no-untyped-def]
    model = ScriptedModel(claims(("x", "")))
    eng = engine(retriever, model, prompt_tokens=400)
    eng.answer("中国—东盟技术转移中心是哪一年成立的，由谁负责日常运营？")
    used = sum(eng.count_tokens(m["content"]) for m in model.calls[0])
    lines = len(evidence_lines(model.calls[0][1]["content"]))
    assert used <= 400 or lines == 1  # one sentence always goes in
    eng.prompt_tokens = 1500
    eng.answer("中国—东盟技术转移中心是哪一年成立的，由谁负责日常运营？")
    assert lines < len(evidence_lines(model.calls[-1][1]["content"])) <= 8


def test_invented_numbers_names_and_bad_ids_are_dropped(retriever) -> None:  # type: ignore[no-untyped-def]
    model = ScriptedModel(
        claims(
            ("The China–ASEAN center serves ASEAN countries.", "面向东盟国家"),
            ("It has 350 employees.", "面向东盟国家"),
            ("It is run by the Sichuan Technical Exchange Center.", "广西东盟技术转移中心负责"),
            ("It was praised by the United Nations.", ""),
        )
    )
    answer = engine(retriever, model).answer(ASEAN_EN)
    assert answer.grounded
    for invented in ("350", "Sichuan", "United Nations"):
        assert invented not in answer.answer
    _check_citations(answer)


def test_a_claim_that_only_restates_the_question_is_not_an_answer(retriever) -> None:  # type: ignore[no-untyped-def]
    q = "What is the email address of the China–Arab States Technology Transfer Center?"
    model = ScriptedModel(claims(("The email address of the China–Arab States Technology Transfer Center is", "阿拉伯")))
    answer = engine(retriever, model).answer(q)
    assert not answer.grounded and answer.citations == []
    assert answer.answer.startswith("The documents do not state contact details")


def test_unanswerable_question_gets_a_refusal_with_the_closest_facts(retriever) -> None:  # type: ignore[no-untyped-def]
    q = "What is the email address of the China–Arab States Technology Transfer Center?"
    model = ScriptedModel(
        claims(("It is run by the foreign science and technology exchange center of Ningxia.", "宁夏回族自治区对外科技交流中心"))
    )
    answer = engine(retriever, model).answer(q)
    assert not answer.grounded and answer.citations == []
    assert answer.answer.startswith("The documents do not state contact details")
    assert "Ningxia" in answer.answer and "[1]" in answer.answer
    assert answer.related and "宁夏" in answer.related[0].quote
    _check_citations(answer)


def test_the_model_saying_unanswerable_is_a_refusal(retriever) -> None:  # type: ignore[no-untyped-def]
    model = ScriptedModel(claims(("湖北省对外科技交流中心负责日常运营和管理工作。", "湖北省对外科技交流中心"), answerable=False))
    answer = engine(retriever, model).answer("中非创新合作中心的主任是谁？")
    assert not answer.grounded
    assert answer.answer.startswith("文档中没有写明") and answer.related


def test_claims_that_only_say_something_is_missing_are_not_related_facts(retriever) -> None:  # type: ignore[no-untyped-def]
    q = "What is the email address of the China–Arab States Technology Transfer Center?"
    model = ScriptedModel(claims(("The email address is not provided in the given evidence.", "阿拉伯"), answerable=False))
    answer = engine(retriever, model).answer(q)
    assert not answer.grounded and "not provided" not in answer.answer
    assert answer.related  # the closest evidence sentence, quoted instead


def test_sources_come_first_then_the_draft_then_the_checked_answer(retriever) -> None:  # type: ignore[no-untyped-def]
    model = ScriptedModel(claims(("中国—东盟技术转移中心是面向东盟国家的国际级技术转移机构。", "面向东盟国家")))
    events = list(engine(retriever, model).stream("哪个技术转移中心面向东盟国家？"))
    assert isinstance(events[0], SourcesEvent) and len(events[0].hits) >= 1
    sources = events[0].as_dict()["sources"]
    assert sources[0]["n"] == 1 and {"chunk_id", "doc_id", "title", "kind", "published", "page", "text"} <= set(sources[0])
    draft = "".join(e.text for e in events if isinstance(e, TokenEvent))
    assert draft == "中国—东盟技术转移中心是面向东盟国家的国际级技术转移机构。"  # the claim, not the JSON
    assert isinstance(events[-1], DoneEvent) and events[-1].answer.grounded


def test_free_text_from_an_endpoint_without_json_is_checked_the_same_way(retriever) -> None:  # type: ignore[no-untyped-def]
    def reply(prompt: str) -> str:
        return f"中国—东盟技术转移中心面向东盟国家[{n_of(prompt, '面向东盟国家')}]。它有350名员工[1]。"

    answer = engine(retriever, ScriptedModel(reply)).answer("哪个技术转移中心面向东盟国家？")
    assert answer.grounded and "350" not in answer.answer
    _check_citations(answer)


def test_off_topic_question_skips_the_model(retriever) -> None:  # type: ignore[no-untyped-def]
    model = ScriptedModel("irrelevant")
    answer = engine(retriever, model).answer("What is the weather in Paris tomorrow?")
    assert not answer.grounded and model.calls == []


def test_model_failure_falls_back_to_extractive_with_notice(retriever) -> None:  # type: ignore[no-untyped-def]
    answer = engine(retriever, ScriptedModel(fail=True)).answer(ASEAN_EN)
    assert answer.backend == "extractive" and answer.grounded
    assert answer.notice and "cannot be reached" in answer.notice
    _check_citations(answer)


def test_traditional_question_gets_traditional_answer(retriever) -> None:  # type: ignore[no-untyped-def]
    model = ScriptedModel(claims(("中国—东盟技术转移中心是面向东盟国家的国际级技术转移机构。", "面向东盟国家")))
    answer = engine(retriever, model).answer("哪個技術轉移中心面向東盟國家？")
    assert answer.grounded
    assert "東盟" in answer.answer and "东盟" not in answer.answer
    _check_citations(answer)


def test_an_uncited_claim_takes_the_evidence_sentence_that_states_it(retriever) -> None:  # type: ignore[no-untyped-def]
    model = ScriptedModel(
        json.dumps({"claims": [{"evidence": [], "text": "中国—东盟技术转移中心是目前中国唯一一家经国家批准的面向东盟国家的国际级技术转移机构。"}], "answerable": True}, ensure_ascii=False)
    )
    answer = engine(retriever, model).answer("哪个技术转移中心面向东盟国家？")
    assert answer.grounded and answer.citations and "[1]" in answer.answer


def test_follow_up_is_rewritten_with_the_model(retriever) -> None:  # type: ignore[no-untyped-def]
    model = ScriptedModel(
        claims(("It was founded in 2014.", "2014年，广西")),
        rewrite="When was the China–ASEAN Technology Transfer Center founded?",
    )
    history = [Turn("user", ASEAN_EN), Turn("assistant", "The China–ASEAN Technology Transfer Center [1].")]
    answer = engine(retriever, model).answer("And when was it founded?", history)
    assert answer.query == "When was the China–ASEAN Technology Transfer Center founded?"
    assert "Last question" in model.calls[0][0]["content"]
    assert answer.grounded and "2014" in answer.answer


def test_follow_up_without_a_model_uses_the_previous_question(retriever) -> None:  # type: ignore[no-untyped-def]
    history = [Turn("user", ASEAN_EN), Turn("assistant", "…")]
    answer = engine(retriever).answer("And when was it founded?", history)
    assert answer.query and ASEAN_EN in answer.query
    assert any("东盟" in c.quote for c in [*answer.citations, *answer.related])  # the subject stays


def test_extractive_answers_in_question_language(retriever) -> None:  # type: ignore[no-untyped-def]
    answer = engine(retriever).answer(ASEAN_EN)
    assert answer.backend == "extractive" and answer.grounded
    assert answer.answer.startswith("From the documents:")
    _check_citations(answer)
    zh = engine(retriever).answer("哪个技术转移中心面向东盟国家？")
    assert zh.answer.startswith("文档中的相关内容") and han_ratio(zh.answer) > 0.5


def test_extractive_obeys_the_same_answerability_rule(retriever) -> None:  # type: ignore[no-untyped-def]
    answer = engine(retriever).answer("中国—阿拉伯国家技术转移中心的电子邮箱是什么？")
    assert answer.backend == "extractive" and not answer.grounded
    assert answer.answer.startswith("文档中没有写明这个问题所问的联系方式") and answer.related
    _check_citations(answer)


def test_evidence_about_another_edition_does_not_answer(retriever) -> None:  # type: ignore[no-untyped-def]
    # The documents describe the 10th conference; a claim from it is no answer about the 11th.
    claim = ("The China–ASEAN Technology Transfer Alliance was formally founded.", "聯盟正式成立")
    q11 = "What was founded at the 11th China–ASEAN Technology Transfer and Innovation Cooperation Conference?"
    answer = engine(retriever, ScriptedModel(claims(claim))).answer(q11)
    assert not answer.grounded and answer.citations == []
    answer = engine(retriever, ScriptedModel(claims(claim))).answer(q11.replace("11th", "10th"))
    assert answer.grounded and "Alliance" in answer.answer


def test_a_question_asking_for_two_things_gets_the_part_the_documents_hold(retriever) -> None:  # type: ignore[no-untyped-def]
    q = "When was the China–ASEAN Technology Transfer Center set up, and which organization runs it day to day?"
    model = ScriptedModel(claims(("It is run day to day by the Guangxi ASEAN Technology Transfer Center.", "广西东盟技术转移中心负责")))
    answer = engine(retriever, model).answer(q)
    assert answer.grounded and "Guangxi" in answer.answer and answer.citations
    assert answer.answer.endswith("The documents do not state the date this question asks for.")
    _check_citations(answer)


def test_any_other_number_is_no_answer_to_a_phone_number(retriever) -> None:  # type: ignore[no-untyped-def]
    model = ScriptedModel(claims(("中國—東盟技術轉移中心的協作網絡覆蓋中國和東盟10國。", "东盟10国")))
    answer = engine(retriever, model).answer("中國—東盟技術轉移中心的聯繫電話是多少？")
    assert not answer.grounded and answer.answer.startswith("文件中沒有寫明這個問題所問的聯繫方式")


def test_split_answer_moves_trailing_markers() -> None:
    assert split_answer("中心在广西。[1] 它成立于2014年[2]。") == [("中心在广西。", [1]), ("它成立于2014年。", [2])]
    assert split_answer("It is in Guangxi [1][3]. Founded 2014 [2].") == [("It is in Guangxi.", [1, 3]), ("Founded 2014.", [2])]


def test_the_quote_shown_for_a_number_holds_that_number(retriever) -> None:  # type: ignore[no-untyped-def]
    model = ScriptedModel(claims(("该基金总规模5亿元，首期2亿元。", "5亿元")))
    answer = engine(retriever, model).answer("上合组织成员国科技成果转化基金总规模多少？")
    assert answer.grounded
    assert all("5亿元" in c.quote for c in answer.citations)


def test_a_claim_repeating_part_of_an_earlier_one_is_left_out(retriever) -> None:  # type: ignore[no-untyped-def]
    model = ScriptedModel(claims(("该基金总规模5亿元，首期2亿元。", "5亿元"), ("首期2亿元。", "5亿元")))
    answer = engine(retriever, model).answer("上合组织成员国科技成果转化基金总规模多少？")
    assert answer.grounded and answer.answer.count("首期2亿元") == 1, answer.answer


# ---------------------------------------------------------------------- query translation

SCO_OPENING_EN = "In which district did the SCO platform open its doors?"


def test_an_english_question_is_searched_with_its_chinese_translation(retriever) -> None:  # type: ignore[no-untyped-def]
    asked: list[str] = []

    def translator(question: str) -> str:
        asked.append(question)
        return "中国—上海合作组织技术转移中心在哪个区启用"

    translated = engine(retriever, query_translator=translator)
    assert translated.search_text(SCO_OPENING_EN) == f"中国—上海合作组织技术转移中心在哪个区启用 {SCO_OPENING_EN}"
    asked.clear()
    events = translated.stream(SCO_OPENING_EN)
    first = next(events)
    # The passages found without the translation come first, before the model is asked.
    assert isinstance(first, SourcesEvent) and not first.revised and asked == []
    sources = [e for e in events if isinstance(e, SourcesEvent)]
    assert asked == [SCO_OPENING_EN]
    final = sources[-1] if sources else first
    assert all(s.revised for s in sources) and len(sources) <= 1
    assert any("市南区正式启用" in h.chunk.text for h in final.hits), [h.chunk.text[:40] for h in final.hits]


def test_chinese_questions_and_failed_translations_are_searched_as_they_are(retriever) -> None:  # type: ignore[no-untyped-def]
    calls: list[str] = []

    def translator(question: str) -> str | None:
        calls.append(question)
        return None  # the model could not say (no model, a full queue, a failure)

    e = engine(retriever, query_translator=translator)
    assert e.search_text("上合组织技术转移中心在哪里") == "上合组织技术转移中心在哪里" and calls == []
    assert e.search_text(SCO_OPENING_EN) == SCO_OPENING_EN and calls == [SCO_OPENING_EN]
    assert engine(retriever).search_text(SCO_OPENING_EN) == SCO_OPENING_EN  # no translator: nothing asked


def test_a_follow_up_translates_its_own_question_not_the_previous_one(retriever) -> None:  # type: ignore[no-untyped-def]
    calls: list[str] = []

    def translator(question: str) -> str:
        calls.append(question)
        return "谁负责日常运营"

    e = engine(retriever, query_translator=translator)
    assert e.search_text("Who runs it day to day?", ASEAN_EN) == f"谁负责日常运营 Who runs it day to day? {ASEAN_EN}"
    assert calls == ["Who runs it day to day?"]


def test_a_claim_about_another_entity_under_the_questions_name_is_no_answer(retriever) -> None:  # type: ignore[no-untyped-def]
    # The sentence is about the ASEAN center; the question asks about the South Asia one.
    claim = ("中国—南亚技术转移中心由广西东盟技术转移中心负责日常运营。", "广西东盟技术转移中心负责")
    answer = engine(retriever, ScriptedModel(claims(claim))).answer("中国—南亚技术转移中心由哪个机构负责日常运营？")
    assert not answer.grounded and answer.citations == []
    right = ("中国—东盟技术转移中心由广西东盟技术转移中心负责日常运营。", "广西东盟技术转移中心负责")
    answer = engine(retriever, ScriptedModel(claims(right))).answer("中国—东盟技术转移中心由哪个机构负责日常运营？")
    assert answer.grounded and answer.citations
    _check_citations(answer)


def test_a_count_does_not_answer_a_question_about_money(retriever) -> None:  # type: ignore[no-untyped-def]
    claim = ("会议遴选了1000项可持续领域先进适用技术。", "1000項")
    answer = engine(retriever, ScriptedModel(claims(claim))).answer("中国—东盟技术转移专项行动的预算是多少？")
    assert not answer.grounded and answer.answer.startswith("文档中没有写明这个问题所问的具体金额")


def test_a_wrong_magnitude_is_dropped(retriever) -> None:  # type: ignore[no-untyped-def]
    # (Asked in Chinese: without the translator in these tests an English question does
    # not find the fund; the check itself does not depend on the question's language.)
    q = "上合组织成员国科技成果转化基金总规模多少？"
    wrong = engine(retriever, ScriptedModel(claims(("The fund totals 5 billion yuan.", "5亿元")))).answer(q)
    # The misread claim goes; the sentence it cited answers instead, quoted.
    assert wrong.grounded and "billion" not in wrong.answer, wrong.answer
    assert wrong.answer.startswith("文档写道：“") and "总规模5亿元" in wrong.answer
    _check_citations(wrong)
    invented = engine(retriever, ScriptedModel(claims(("The fund totals 8 billion yuan.", "5亿元")))).answer(q)
    assert not invented.grounded  # other digits: made up, not misread
    right = engine(retriever, ScriptedModel(claims(("The fund totals 500 million yuan.", "5亿元")))).answer(q)
    assert right.grounded and "500 million" in right.answer


def test_a_part_the_model_left_out_is_quoted_from_the_evidence(retriever) -> None:  # type: ignore[no-untyped-def]
    q = "上合组织青岛峰会在哪一年召开？中国—上合组织技术转移中心何时正式启用？"
    model = ScriptedModel(claims(("上合组织峰会于2018年召开", "2018年上合组织峰会")))
    answer = engine(retriever, model).answer(q)
    assert answer.grounded
    assert answer.answer.startswith("上合组织峰会于2018年召开[1]。")  # a claim ends like a sentence
    assert "文档还写道：“2020年12月" in answer.answer and len(answer.citations) == 2
    assert "没有写明" not in answer.answer
    _check_citations(answer)


def test_a_claim_citing_a_sentence_without_its_words_moves_or_goes(retriever) -> None:  # type: ignore[no-untyped-def]
    q = "中国—东盟技术转移中心由哪个机构负责日常运营？"
    text = "中国—东盟技术转移中心是目前中国唯一一家经国家批准的面向东盟国家的国际级技术转移机构。"

    def cites_the_arab_sentence(prompt: str) -> str:
        return json.dumps({"claims": [{"evidence": [n_of(prompt, "宁夏")], "text": text}], "answerable": True}, ensure_ascii=False)

    answer = engine(retriever, ScriptedModel(cites_the_arab_sentence)).answer(q)
    assert answer.grounded and "唯一一家经国家批准" in answer.citations[0].quote  # moved to its sentence
    invented = "中国—东盟技术转移中心由南宁市高新区管委会与东盟各国科技部共同负责运营。"
    answer = engine(retriever, ScriptedModel(claims((invented, "广西东盟技术转移中心负责")))).answer(q)
    assert not answer.grounded


def test_a_count_needs_the_same_measure_word_in_its_evidence(retriever) -> None:  # type: ignore[no-untyped-def]
    # "第4届…论坛" holds a 4, but no count of 4 companies.
    model = ScriptedModel(claims(("第10届东创会共有4家企业参展。", "第4屆")))
    answer = engine(retriever, model).answer("第10届东创会共有多少家企业参展？")
    assert not answer.grounded


def test_a_restated_question_is_answered_with_the_sentence_it_cites(retriever) -> None:  # type: ignore[no-untyped-def]
    q = "中国-上海合作组织技术转移中心是何时在青岛市市南区正式启用的？"
    model = ScriptedModel(claims(("中国-上海合作组织技术转移中心在青岛市市南区正式启用。", "正式启用")))
    answer = engine(retriever, model).answer(q)
    # The model pointed at the date but did not write it: the sentence, quoted, answers.
    assert answer.grounded and answer.answer.startswith("文档写道：“"), answer.answer
    assert "2020年12月" in answer.answer
    _check_citations(answer)


def test_a_restated_question_citing_a_sentence_without_what_it_asks_is_refused(retriever) -> None:  # type: ignore[no-untyped-def]
    q = "中国—东盟技术转移中心的负责人是谁？"
    model = ScriptedModel(claims(("中国—东盟技术转移中心的负责人是中国—东盟技术转移中心。", "面向东盟国家")))
    answer = engine(retriever, model).answer(q)
    assert not answer.grounded and answer.answer.startswith("文档中没有写明这个问题所问的具体人员")


def test_a_short_claim_citing_the_wrong_sentence_moves_to_the_one_with_its_words(retriever) -> None:  # type: ignore[no-untyped-def]
    q = "東盟秘書長是誰？"
    def miscited(prompt: str) -> str:
        lines = evidence_lines(prompt)
        wrong = next(n for n, text in lines.items() if "林玉" not in text)
        assert any("林玉輝" in text for text in lines.values())  # the right one is there too
        return json.dumps({"claims": [{"evidence": [wrong], "text": "東盟秘書長是林玉輝。"}], "answerable": True}, ensure_ascii=False)

    answer = engine(retriever, ScriptedModel(miscited)).answer(q)
    assert answer.grounded and "林玉輝" in answer.answer
    assert "林玉輝" in answer.citations[0].quote
    _check_citations(answer)


def test_the_questions_role_given_to_the_holder_of_another_role_is_dropped(retriever) -> None:  # type: ignore[no-untyped-def]
    q = "東盟秘書長是誰？他在東創會上以什麼方式發表主旨演講？"
    wrong = engine(retriever, ScriptedModel(claims(("東盟秘書長是王志剛部長。", "王志剛部長")))).answer(q)
    assert "王志剛" not in wrong.answer  # the sentence names him 部長, not 秘書長
    right = engine(retriever, ScriptedModel(claims(("東盟秘書長是林玉輝。", "林玉輝")))).answer(q)
    assert right.grounded and "林玉輝" in right.answer


def test_a_year_in_one_part_does_not_narrow_the_other(retriever) -> None:  # type: ignore[no-untyped-def]
    q = "中国—阿拉伯国家技术转移中心由哪个单位负责日常运营？2017年提出的目标是什么？"
    claim = ("中国—阿拉伯国家技术转移中心由宁夏回族自治区对外科技交流中心负责日常运营。", "宁夏回族自治区对外科技交流中心")
    answer = engine(retriever, ScriptedModel(claims(claim))).answer(q)
    # The operator's sentence says nothing of 2017, which only the second part asks about.
    assert answer.grounded and "宁夏" in answer.answer, answer.answer
    _check_citations(answer)


def test_a_claim_also_cites_the_sentence_that_holds_all_its_words(retriever) -> None:  # type: ignore[no-untyped-def]
    q = "表2所列英国技术集团（BTG）的主要业务是什么？"
    claim = ("英国技术集团（BTG）专注于卫生健康服务与医药产品的技术开发、技术转让与商业化的风险投资。", "私营科技中介")
    answer = engine(retriever, ScriptedModel(claims(claim))).answer(q)
    assert answer.grounded and len(answer.citations) == 2, answer
    # The body text it cited holds half its words; the table row holds them all.
    assert any("私营科技中介" in c.quote for c in answer.citations)
    assert any("技术开发、技术转让与商业化" in c.quote for c in answer.citations)
    _check_citations(answer)


@pytest.mark.parametrize(("least", "bias"), [(0.5, None), (0.99, math.log(99))])
def test_the_answerable_threshold_becomes_a_bias_against_true(retriever, least: float, bias: float | None) -> None:  # type: ignore[no-untyped-def]
    model = ScriptedModel(claims(("The China–ASEAN center serves ASEAN countries.", "东盟")))
    engine(retriever, model, answerable_min=least).answer("Which technology transfer center serves ASEAN countries?")
    if bias is None:
        assert model.biases == [None]
    else:
        assert model.biases[0] == pytest.approx({" false": bias, "false": bias})


def test_the_reply_is_asked_to_start_with_the_data_files_opening_for_its_language(retriever) -> None:  # type: ignore[no-untyped-def]
    model = ScriptedModel(claims(("The China–ASEAN center serves ASEAN countries.", "东盟")))
    engine(retriever, model).answer("Which technology transfer center serves ASEAN countries?")
    engine(retriever, model).answer("哪個技術轉移中心面向東盟國家？")
    openings = yaml.safe_load((PROJECT_ROOT / "prompts" / "answer_start.yaml").read_text("utf-8"))
    assert model.prefixes == [openings["en"], openings["zh-Hant"]]
    assert all('"claims"' in opening for opening in model.prefixes)


def test_the_reminder_asks_for_every_part_and_item(retriever) -> None:  # type: ignore[no-untyped-def]
    model = ScriptedModel(claims(("南宁", "")))
    engine(retriever, model).answer("第10届中国—东盟技术转移与创新合作大会在哪座城市开幕？由哪些单位共同主办？")
    tail = model.calls[-1][-1]["content"].rsplit("？", 1)[1]
    assert "2 件事" in tail and "每一项" in tail


def test_a_follow_up_is_reminded_of_its_own_parts_only(retriever) -> None:  # type: ignore[no-untyped-def]
    model = ScriptedModel(claims(("It is run by the Guangxi center.", "")), rewrite="Who runs the China–ASEAN center?")
    history = [Turn("user", "Which center serves ASEAN countries?"), Turn("assistant", "The China–ASEAN center [1].")]
    engine(retriever, model).answer("And who runs it?", history)
    answer_prompt = next(c for c in model.calls if "Evidence:" in c[-1]["content"])[-1]["content"]
    assert "follow-up to" in answer_prompt and "things" not in answer_prompt
