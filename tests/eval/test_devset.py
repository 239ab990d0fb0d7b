"""The dev set (`tests/eval/questions.yaml`) is well formed and grounded in the corpus.

Fast and model-free: loads the YAML, the corpus and the real chunker, and checks that
every evidence quote is verbatim document text that lands inside one chunk, that every
fact is backed by its evidence, and that the set has the promised mix of languages and
question types.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from assistant.offline import apply_offline_env
from assistant.pipeline.chunking import ChunkerConfig, chunk_document
from assistant.pipeline.corpus import load_corpus
from assistant.settings import PROJECT_ROOT
from assistant.text import detect_language, normalize
from assistant.types import Document

DEVSET = Path(__file__).with_name("questions.yaml")
CORPUS = PROJECT_ROOT / "corpus"

LANGUAGES = ("en", "zh-Hans", "zh-Hant")
TYPES = ("single", "multi", "table", "recommend", "unanswerable")
ID_PREFIX = {"en": "en-", "zh-Hans": "hans-", "zh-Hant": "hant-"}
ID_FORMAT = re.compile(r"^(en|hans|hant)-\d{3}$")

MIN_PER_LANGUAGE = 22
MIN_TOTAL = 84
MIN_BY_TYPE = {"unanswerable": 12, "table": 6, "recommend": 5, "multi": 8}
EVIDENCE_CHARS = (4, 60)
MAX_FACTS = 3

_PARAGRAPH_BREAK = re.compile(r"\n[ \t\u3000\xa0]*\n")
_SPACES = re.compile(r"\s+")


def _load_questions() -> list[dict[str, Any]]:
    data = yaml.safe_load(DEVSET.read_text(encoding="utf-8"))
    assert isinstance(data, dict) and isinstance(data.get("questions"), list), (
        f"{DEVSET.name} must be a mapping with one list under `questions:`"
    )
    return data["questions"]


QUESTIONS = _load_questions()
ANSWERABLE = [q for q in QUESTIONS if q.get("type") != "unanswerable"]
WITH_EVIDENCE = [(q, i, ev) for q in QUESTIONS for i, ev in enumerate(q.get("evidence") or [])]


def _qid(q: dict[str, Any]) -> str:
    return str(q.get("id"))


def _evid(item: tuple[dict[str, Any], int, dict[str, Any]]) -> str:
    return f"{_qid(item[0])}#{item[1]}"


@lru_cache(maxsize=1)
def _documents() -> dict[str, Document]:
    return {doc.doc_id: doc for doc in load_corpus(CORPUS)}


@lru_cache(maxsize=1)
def _chunk_texts() -> dict[str, tuple[str, ...]]:
    apply_offline_env(PROJECT_ROOT / ".cache")  # tiktoken reads its BPE file from the cache
    config = ChunkerConfig()
    return {
        doc_id: tuple(chunk.text for chunk in chunk_document(doc, config))
        for doc_id, doc in _documents().items()
    }


def _fold(text: str) -> str:
    """Simplified script, lower case, full-width folded, no whitespace."""
    return _SPACES.sub("", normalize(text))


def _paragraph_of(doc: Document, text: str) -> int:
    start = doc.text.index(text)
    return len(_PARAGRAPH_BREAK.findall(doc.text[:start]))


# --------------------------------------------------------------------------- the set


def test_ids_are_unique_and_well_formed() -> None:
    ids = [_qid(q) for q in QUESTIONS]
    duplicates = sorted(i for i, n in Counter(ids).items() if n > 1)
    assert not duplicates, f"duplicate ids: {duplicates}"
    bad = [i for i in ids if not ID_FORMAT.match(i)]
    assert not bad, f"ids must look like en-001, hans-001 or hant-001: {bad}"


def test_counts_by_language_and_type() -> None:
    assert len(QUESTIONS) >= MIN_TOTAL
    by_language = Counter(q.get("language") for q in QUESTIONS)
    for language in LANGUAGES:
        assert by_language[language] >= MIN_PER_LANGUAGE, (language, by_language)
    by_type = Counter(q.get("type") for q in QUESTIONS)
    for kind, minimum in MIN_BY_TYPE.items():
        assert by_type[kind] >= minimum, (kind, by_type)
    # Unanswerable questions come in every language.
    unanswerable = Counter(q["language"] for q in QUESTIONS if q.get("type") == "unanswerable")
    assert all(unanswerable[language] >= 2 for language in LANGUAGES), unanswerable


def test_every_document_is_used() -> None:
    used = {ev["doc_id"] for _, _, ev in WITH_EVIDENCE}
    assert used == set(_documents()), sorted(set(_documents()) - used)


# --------------------------------------------------------------------------- each question


@pytest.mark.parametrize("q", QUESTIONS, ids=_qid)
def test_question_fields(q: dict[str, Any]) -> None:
    assert set(q) == {"id", "language", "question", "type", "evidence", "facts"}, sorted(q)
    assert q["language"] in LANGUAGES
    assert q["type"] in TYPES
    assert str(q["id"]).startswith(ID_PREFIX[q["language"]]), "id prefix must match the language"
    assert isinstance(q["question"], str) and q["question"].strip()
    assert isinstance(q["evidence"], list)
    assert isinstance(q["facts"], list)


@pytest.mark.parametrize("q", QUESTIONS, ids=_qid)
def test_language_matches_detector(q: dict[str, Any]) -> None:
    assert detect_language(q["question"]) == q["language"]


@pytest.mark.parametrize("q", QUESTIONS, ids=_qid)
def test_evidence_and_facts_by_type(q: dict[str, Any]) -> None:
    if q["type"] == "unanswerable":
        assert q["evidence"] == [] and q["facts"] == []
        return
    assert len(q["evidence"]) >= 1, "an answerable question needs evidence"
    assert 1 <= len(q["facts"]) <= MAX_FACTS, "an answerable question needs 1-3 facts"
    for ev in q["evidence"]:
        assert isinstance(ev, dict) and set(ev) == {"doc_id", "text"}, ev
    if q["type"] == "multi":
        assert len(q["evidence"]) >= 2, "a multi question needs two or more evidence entries"


@pytest.mark.parametrize("q", ANSWERABLE, ids=_qid)
def test_facts_are_lists_of_strings(q: dict[str, Any]) -> None:
    for fact in q["facts"]:
        assert isinstance(fact, list) and fact, f"a fact is a non-empty list: {fact!r}"
        for alternative in fact:
            assert isinstance(alternative, str) and alternative.strip(), f"empty alternative in {fact!r}"
        assert len(set(fact)) == len(fact), f"repeated alternative in {fact!r}"


@pytest.mark.parametrize("q", ANSWERABLE, ids=_qid)
def test_facts_are_backed_by_evidence(q: dict[str, Any]) -> None:
    """Some alternative of each fact occurs in the question's evidence (script-folded)."""
    evidence = _fold(" ".join(ev["text"] for ev in q["evidence"]))
    for fact in q["facts"]:
        assert any(_fold(alt) in evidence for alt in fact), f"no alternative of {fact} in the evidence"


@pytest.mark.parametrize("q", [q for q in QUESTIONS if q.get("type") == "multi"], ids=_qid)
def test_multi_evidence_spans_passages(q: dict[str, Any]) -> None:
    docs = _documents()
    places = {(ev["doc_id"], _paragraph_of(docs[ev["doc_id"]], ev["text"])) for ev in q["evidence"]}
    assert len(places) >= 2, "a multi question's evidence must come from two or more passages"


# --------------------------------------------------------------------------- each evidence


@pytest.mark.parametrize("item", WITH_EVIDENCE, ids=_evid)
def test_evidence_is_verbatim(item: tuple[dict[str, Any], int, dict[str, Any]]) -> None:
    _, _, ev = item
    docs = _documents()
    assert ev["doc_id"] in docs, f"unknown doc_id {ev['doc_id']!r}"
    text = ev["text"]
    assert isinstance(text, str)
    low, high = EVIDENCE_CHARS
    assert low <= len(text) <= high, f"evidence is {len(text)} chars: {text!r}"
    assert text == text.strip(), f"evidence has surrounding whitespace: {text!r}"
    assert text in docs[ev["doc_id"]].text, f"not verbatim in {ev['doc_id']}: {text!r}"


@pytest.mark.parametrize("item", WITH_EVIDENCE, ids=_evid)
def test_evidence_lies_inside_a_chunk(item: tuple[dict[str, Any], int, dict[str, Any]]) -> None:
    _, _, ev = item
    chunks = _chunk_texts()[ev["doc_id"]]
    assert any(ev["text"] in chunk for chunk in chunks), (
        f"{ev['text']!r} is split across chunks of {ev['doc_id']} (default ChunkerConfig)"
    )
