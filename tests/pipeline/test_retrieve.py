"""Hybrid retrieval over the real index: cross-language, cross-script, filters."""

from __future__ import annotations

import pytest

from assistant.pipeline.domain import Synonyms, load_synonyms
from assistant.pipeline.index import load_snapshot, store_factory_for
from assistant.pipeline.keyword import query_tokens, tokenize
from assistant.pipeline.retrieve import Filters, HybridRetriever
from assistant.settings import PROJECT_ROOT

ASEAN_EVIDENCE = ("面向东盟国家的国际级技术转移机构", "中國—東盟技術轉移中心", "中国—东盟技术转移中心")


@pytest.fixture(scope="module")
def synonyms() -> Synonyms:
    """The glossary of the corpus the index is built from (corpus/synonyms.yaml)."""
    return load_synonyms(PROJECT_ROOT / "corpus")


@pytest.fixture(scope="module")
def retriever(built_index, embedder, synonyms):  # type: ignore[no-untyped-def]
    snapshot = load_snapshot(built_index, store_factory_for(built_index, None, 0), embedder)
    return HybridRetriever(snapshot, embedder, synonyms=synonyms)


@pytest.mark.parametrize(
    "question",
    [
        "Which technology transfer center serves ASEAN countries?",
        "哪个技术转移中心面向东盟国家？",
        "哪個技術轉移中心面向東盟國家？",
    ],
)
def test_asean_question_in_three_languages(retriever, question: str) -> None:  # type: ignore[no-untyped-def]
    hits = retriever.search(question, k=5)
    assert len(hits) == 5
    assert any(e in hits[0].chunk.text for e in ASEAN_EVIDENCE)
    assert [h.rank for h in hits] == [1, 2, 3, 4, 5]
    assert all(hits[i].score >= hits[i + 1].score for i in range(4))


def test_traditional_question_finds_simplified_passage(retriever) -> None:  # type: ignore[no-untyped-def]
    hits = retriever.search("中國—阿拉伯國家技術轉移中心建設了哪些雙邊技術轉移中心？", k=3)
    assert any("沙特、阿联酋（迪拜）、约旦、阿曼、埃及、摩洛哥和苏丹" in h.chunk.text for h in hits)


def test_english_question_over_chinese_text(retriever) -> None:  # type: ignore[no-untyped-def]
    hits = retriever.search("Who operates the China-SCO technology transfer center day to day?", k=5)
    assert any("青岛阿斯顿工程技术转移有限公司" in h.chunk.text for h in hits)


def test_keyword_signal_finds_exact_names(retriever) -> None:  # type: ignore[no-untyped-def]
    hits = retriever.search("KOTEC", k=3)
    assert "KOTEC" in hits[0].chunk.text


@pytest.mark.parametrize(
    ("filters", "check"),
    [
        (Filters(doc_id="china-sco-ttc-qingdao"), lambda h: h.chunk.doc_id == "china-sco-ttc-qingdao"),
        (Filters(kind="news_report"), lambda h: h.document.kind == "news_report"),
        (Filters(kind="policy_paper"), lambda h: h.document.kind == "policy_paper"),
        (Filters(language="en"), lambda h: h.chunk.language == "en"),
        (Filters(language="zh-Hant"), lambda h: h.chunk.doc_id == "china-asean-conference-10th"),
    ],
)
def test_filters(retriever, filters: Filters, check) -> None:  # type: ignore[no-untyped-def]
    hits = retriever.search("technology transfer center 技术转移中心", k=10, filters=filters)
    assert hits and all(check(h) for h in hits)


def test_filter_with_no_match_returns_nothing(retriever) -> None:  # type: ignore[no-untyped-def]
    assert retriever.search("东盟", k=5, filters=Filters(doc_id="no-such-doc")) == []


def test_scores_and_offsets(retriever) -> None:  # type: ignore[no-untyped-def]
    for h in retriever.search("上合组织技术转移中心的运营模式", k=5):
        assert h.document.text[h.chunk.start : h.chunk.end] == h.chunk.text
        assert h.dense_score is not None and -1.0 <= h.dense_score <= 1.0


def test_tokenizer_is_chinese_aware_and_script_blind(synonyms: Synonyms) -> None:
    assert "东盟" in tokenize("中國—東盟技術轉移中心")
    assert tokenize("技術轉移") == tokenize("技术转移")
    assert "东盟" in query_tokens("Which center serves ASEAN?", synonyms)
    assert "上合" in query_tokens("What does the SCO center do?", synonyms)


def test_dictionary_expands_only_english_questions(retriever) -> None:  # type: ignore[no-untyped-def]
    assert retriever.expansion_tokens("哪个技术转移中心面向东盟国家？") == []
    tokens = retriever.expansion_tokens("Which technology transfer center serves ASEAN countries?")
    assert "技术" in tokens and "国家" in tokens


def test_english_question_without_the_dictionary(built_index, embedder, synonyms) -> None:  # type: ignore[no-untyped-def]
    snapshot = load_snapshot(built_index, store_factory_for(built_index, None, 0), embedder)
    plain = HybridRetriever(snapshot, embedder, synonyms=synonyms, use_dictionary=False)
    assert plain.expansion_tokens("Which technology transfer center serves ASEAN countries?") == []
    hits = plain.search("Which technology transfer center serves ASEAN countries?", k=5)
    assert any(e in h.chunk.text for h in hits for e in ASEAN_EVIDENCE)


def test_reference_lists_rank_after_every_statement(retriever) -> None:  # type: ignore[no-untyped-def]
    from assistant.text import is_reference_list

    assert any(is_reference_list(c.text) for c in retriever.snapshot.chunks)  # the paper's 参考文献
    # Words and a year only the reference list holds together: still statements first.
    hits = retriever.search("国际技术转移服务资源池构建与应用研究 广东科技 2022", k=5)
    assert len(hits) == 5 and not any(is_reference_list(h.chunk.text) for h in hits)
    everything = retriever.search("国际技术转移服务资源池构建与应用研究 广东科技 2022", k=len(retriever.snapshot.chunks))
    assert is_reference_list(everything[-1].chunk.text)  # found, but last
