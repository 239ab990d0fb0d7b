"""The answer stage: citation checks, refusal, fallback, rewrite, language.

The chat model here is a scripted stand-in (this tests our own post-processing
logic); retrieval, embeddings and the index are the real ones. The real local model is
exercised in test_e2e_local.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest

from assistant.llm.base import ChatModelError
from assistant.pipeline.answer import NO_ANSWER, AnswerEngine, DoneEvent, TokenEvent, Turn
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

    def stream(self, messages, *, max_tokens: int) -> Iterator[str]:  # type: ignore[no-untyped-def]
        self.calls.append(messages)
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


@pytest.fixture(scope="module")
def retriever(built_index, embedder):  # type: ignore[no-untyped-def]
    snapshot = load_snapshot(built_index, store_factory_for(built_index, None, 0), embedder)
    return HybridRetriever(snapshot, embedder, synonyms=DOMAIN.synonyms)


def engine(retriever, model=None) -> AnswerEngine:  # type: ignore[no-untyped-def]
    return AnswerEngine(retriever, model, load_prompts(PROJECT_ROOT / "prompts"), names=DOMAIN.names)


def _check_citations(answer) -> None:  # type: ignore[no-untyped-def]
    docs = {}
    for c in answer.citations:
        if c.doc_id not in docs:
            docs[c.doc_id] = (PROJECT_ROOT / "corpus" / f"{c.doc_id}.md").read_text("utf-8").split("---\n", 2)[2]
        assert docs[c.doc_id][c.start : c.end] == c.quote
    assert [c.n for c in answer.citations] == list(range(1, len(answer.citations) + 1))


def test_model_answer_gets_verbatim_quotes(retriever) -> None:  # type: ignore[no-untyped-def]
    model = ScriptedModel(
        "The China–ASEAN Technology Transfer Center is the only state-approved international "
        "technology transfer body serving ASEAN countries [1]. It is operated by the Guangxi "
        "ASEAN Technology Transfer Center [1]."
    )
    answer = engine(retriever, model).answer(ASEAN_EN)
    assert answer.grounded and answer.backend == "openai"
    assert answer.answer.count("[1]") == 2
    assert "面向东盟国家" in answer.citations[0].quote
    _check_citations(answer)
    # The prompt carried numbered passages and the English instruction.
    system, user = model.calls[0]
    assert "English" in system["content"] and "[1]" in user["content"] and ASEAN_EN in user["content"]


def test_invented_numbers_and_bad_markers_are_dropped(retriever) -> None:  # type: ignore[no-untyped-def]
    model = ScriptedModel(
        "The China–ASEAN center serves ASEAN countries [1]. It has 350 employees [1]. "
        "It was praised by the United Nations [9]."
    )
    answer = engine(retriever, model).answer(ASEAN_EN)
    assert answer.grounded
    assert "350" not in answer.answer and "United Nations" not in answer.answer
    assert "[9]" not in answer.answer
    _check_citations(answer)


def test_unsupported_answer_becomes_not_grounded(retriever) -> None:  # type: ignore[no-untyped-def]
    model = ScriptedModel("The China–South Asia center has 120 employees [2].")
    answer = engine(retriever, model).answer("How many employees does the China–South Asia center have?")
    assert not answer.grounded and answer.citations == []
    assert answer.answer == "The documents do not cover this question."


def test_no_answer_sentinel_is_never_streamed(retriever) -> None:  # type: ignore[no-untyped-def]
    model = ScriptedModel(NO_ANSWER)
    events = list(engine(retriever, model).stream("中国—南亚技术转移中心有多少名员工？"))
    tokens = "".join(e.text for e in events if isinstance(e, TokenEvent))
    assert NO_ANSWER not in tokens
    done = events[-1]
    assert isinstance(done, DoneEvent) and not done.answer.grounded
    assert done.answer.answer == "文档中没有涉及这个问题。"


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
    model = ScriptedModel("中国—东盟技术转移中心是面向东盟国家的国际级技术转移机构[1]。")
    answer = engine(retriever, model).answer("哪個技術轉移中心面向東盟國家？")
    assert answer.grounded
    assert "東盟" in answer.answer and "东盟" not in answer.answer
    _check_citations(answer)


def test_uncited_sentence_gets_a_citation_when_a_passage_supports_it(retriever) -> None:  # type: ignore[no-untyped-def]
    model = ScriptedModel("中国—东盟技术转移中心是目前中国唯一一家经国家批准的面向东盟国家的国际级技术转移机构。")
    answer = engine(retriever, model).answer("哪个技术转移中心面向东盟国家？")
    assert answer.grounded and answer.citations and "[1]" in answer.answer


def test_follow_up_is_rewritten_with_the_model(retriever) -> None:  # type: ignore[no-untyped-def]
    def reply(prompt: str) -> str:
        # Cite whichever passage holds the founding year, as a real model would.
        passages = re.findall(r"Passage \[(\d+)\].*?(?=\n\nPassage \[|\Z)", prompt, re.S)
        bodies = re.split(r"\n\n(?=Passage \[\d+\])", prompt)
        assert len(passages) == 5
        n = next(int(m) for m, body in zip(passages, bodies, strict=True) if "2014年，广西" in body)
        return f"It was founded in 2014 [{n}]."

    model = ScriptedModel(reply, rewrite="When was the China–ASEAN Technology Transfer Center founded?")
    history = [Turn("user", ASEAN_EN), Turn("assistant", "The China–ASEAN Technology Transfer Center [1].")]
    answer = engine(retriever, model).answer("And when was it founded?", history)
    assert answer.query == "When was the China–ASEAN Technology Transfer Center founded?"
    assert "condense" not in str(model.calls[0]) and "Last question" in model.calls[0][0]["content"]
    assert answer.grounded and "2014" in answer.answer


def test_follow_up_without_a_model_uses_the_previous_question(retriever) -> None:  # type: ignore[no-untyped-def]
    history = [Turn("user", ASEAN_EN), Turn("assistant", "…")]
    answer = engine(retriever).answer("And when was it founded?", history)
    assert answer.query and ASEAN_EN in answer.query
    assert answer.grounded and any("东盟" in c.quote for c in answer.citations)


def test_extractive_answers_in_question_language(retriever) -> None:  # type: ignore[no-untyped-def]
    answer = engine(retriever).answer(ASEAN_EN)
    assert answer.backend == "extractive" and answer.grounded
    assert answer.answer.startswith("From the documents:")
    _check_citations(answer)
    zh = engine(retriever).answer("哪个技术转移中心面向东盟国家？")
    assert zh.answer.startswith("文档中的相关内容") and han_ratio(zh.answer) > 0.5


def test_split_answer_moves_trailing_markers() -> None:
    assert split_answer("中心在广西。[1] 它成立于2014年[2]。") == [("中心在广西。", [1]), ("它成立于2014年。", [2])]
    assert split_answer("It is in Guangxi [1][3]. Founded 2014 [2].") == [("It is in Guangxi.", [1, 3]), ("Founded 2014.", [2])]


def test_marker_styles_small_models_use_are_understood(retriever) -> None:  # type: ignore[no-untyped-def]
    model = ScriptedModel("中国—东盟技术转移中心是面向东盟国家的国际级技术转移机构^[1]。它由广西东盟技术转移中心负责日常运营[1], [2]。")
    answer = engine(retriever, model).answer("哪个技术转移中心面向东盟国家？")
    assert answer.grounded and "^" not in answer.answer and "," not in answer.answer
    assert answer.answer.count("[1]") == 2


def test_a_title_can_be_an_answer_but_an_echoed_section_heading_is_not(retriever) -> None:  # type: ignore[no-untyped-def]
    title = "第10屆中國—東盟技術轉移與創新合作大會在廣西南寧開幕"
    answer = engine(retriever, ScriptedModel(f"{title}。[1]")).answer("第10屆中國—東盟技術轉移與創新合作大會在哪裡開幕？")
    assert answer.grounded and "南寧" in answer.answer
    echo = engine(retriever, ScriptedModel("3.3 中非创新合作中心[1][2]")).answer("中非创新合作中心有多少员工？")
    assert not echo.grounded



def test_the_quote_shown_for_a_number_holds_that_number(retriever) -> None:  # type: ignore[no-untyped-def]
    def reply(prompt: str) -> str:
        bodies = re.split(r"\n\n(?=Passage \[\d+\])", prompt)
        n = next(i for i, body in enumerate(bodies, start=1) if "5亿元" in body)
        return f"该基金总规模5亿元，首期2亿元[{n}]。"

    answer = engine(retriever, ScriptedModel(reply)).answer("上合组织成员国科技成果转化基金总规模多少？")
    assert answer.grounded
    assert all("5亿元" in c.quote and "2亿元" in c.quote for c in answer.citations)
