"""POST /v1/search: result shape, spans that match the documents, filters, input errors."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from assistant.service import Assistant
from assistant.web.api import create_app
from tests.conftest import make_settings

RESULT_KEYS = {"rank", "chunk_id", "doc_id", "title", "kind", "published", "text", "score", "start", "end"}
ENGLISH_DOCS = {"guangdong-cis-union", "chengdu-chongqing-belt-road-ttc"}
TRADITIONAL_DOC = "china-asean-conference-10th"
HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
LATIN = re.compile(r"[A-Za-z]")


@pytest.fixture(scope="module")
def api(built_index: Path, embedder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    """One app for the many read-only bad-input cases; a server error comes back as a 500."""
    index = tmp_path_factory.mktemp("api-search") / "index"
    shutil.copytree(built_index, index)
    a = Assistant(make_settings(ASSISTANT_INDEX_DIR=index), embedder, None)
    with TestClient(create_app(assistant=a, with_ui=False), raise_server_exceptions=False) as c:
        yield c
    a.close()


def _search(client: TestClient, query: str, k: int | None = None, **filters: str) -> list[dict]:
    body: dict[str, object] = {"query": query}
    if k is not None:
        body["k"] = k
    if filters:
        body["filters"] = filters
    r = client.post("/v1/search", json=body)
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["query"] == query
    return data["results"]


def _documents(client: TestClient) -> dict[str, dict]:
    return {d["doc_id"]: d for d in client.get("/v1/documents").json()["documents"]}


def _text(client: TestClient, doc_id: str, cache: dict[str, str]) -> str:
    if doc_id not in cache:
        r = client.get(f"/v1/documents/{doc_id}")
        assert r.status_code == 200
        cache[doc_id] = r.json()["text"]
    return cache[doc_id]


# ---------------------------------------------------------------------------- results


def test_results_have_the_contract_fields_and_exact_spans(client) -> None:  # type: ignore[no-untyped-def]
    results = _search(client, "中国—东盟技术转移中心", k=8)
    assert len(results) == 8
    docs = _documents(client)
    texts: dict[str, str] = {}
    for i, hit in enumerate(results, start=1):
        assert hit.keys() >= RESULT_KEYS
        assert hit["rank"] == i
        assert isinstance(hit["score"], float)
        assert hit["doc_id"] in docs
        meta = docs[hit["doc_id"]]
        assert (hit["title"], hit["kind"], hit["published"]) == (
            meta["title"],
            meta["kind"],
            meta["published"],
        )
        assert 0 <= hit["start"] < hit["end"]
        assert hit["text"] == _text(client, hit["doc_id"], texts)[hit["start"] : hit["end"]]
    assert len({h["chunk_id"] for h in results}) == len(results)
    scores = [h["score"] for h in results]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize(
    "query",
    ["中国—东盟技术转移中心", "中國—東盟技術轉移中心", "China-ASEAN technology transfer center"],
    ids=["simplified", "traditional", "english"],
)
def test_the_best_result_is_about_the_query(client, query: str) -> None:  # type: ignore[no-untyped-def]
    results = _search(client, query, k=3)
    assert any("东盟" in h["text"] or "東盟" in h["text"] for h in results)


@pytest.mark.parametrize("k", [1, 2, 7, 50])
def test_k_limits_the_number_of_results(api: TestClient, k: int) -> None:
    total = api.get("/readyz").json()["chunks"]
    assert len(_search(api, "国际技术转移", k=k)) == min(k, total)


def test_k_defaults_to_five(client) -> None:  # type: ignore[no-untyped-def]
    assert len(_search(client, "国际技术转移")) == 5


def test_query_of_exactly_4000_characters_is_accepted(client) -> None:  # type: ignore[no-untyped-def]
    query = ("技术转移" * 1000)[:4000]
    assert len(query) == 4000
    assert len(_search(client, query, k=3)) == 3


# ---------------------------------------------------------------------------- filters


def test_doc_id_filter_restricts_to_that_document(client) -> None:  # type: ignore[no-untyped-def]
    doc_id = "china-sco-ttc-qingdao"
    chunks = _documents(client)[doc_id]["chunks"]
    results = _search(client, "国际技术转移", k=50, doc_id=doc_id)
    assert results
    assert {h["doc_id"] for h in results} == {doc_id}
    # Every chunk of the document is a candidate, and nothing else is.
    assert len(results) == min(50, chunks)


@pytest.mark.parametrize("kind", ["news_report", "policy_paper"])
def test_kind_filter_returns_only_that_kind(client, kind: str) -> None:  # type: ignore[no-untyped-def]
    docs = _documents(client)
    of_kind = {d for d, meta in docs.items() if meta["kind"] == kind}
    assert of_kind and of_kind != set(docs)
    results = _search(client, "国际技术转移 technology transfer", k=50, kind=kind)
    assert results
    assert {h["kind"] for h in results} == {kind}
    assert {h["doc_id"] for h in results} <= of_kind


def test_english_filter_returns_english_chunks_only(client) -> None:  # type: ignore[no-untyped-def]
    results = _search(client, "international technology cooperation", k=50, language="en")
    assert results
    assert {h["doc_id"] for h in results} <= ENGLISH_DOCS
    for h in results:
        assert len(LATIN.findall(h["text"])) > 5 * len(HAN.findall(h["text"])), h["text"][:200]
    # Without the filter the same query also finds Chinese chunks.
    unfiltered = _search(client, "international technology cooperation", k=50)
    assert len(unfiltered) > len(results)


def test_english_filter_finds_english_chunks_for_a_chinese_query(client) -> None:  # type: ignore[no-untyped-def]
    results = _search(client, "国际科技合作", k=50, language="en")
    assert results
    assert {h["doc_id"] for h in results} <= ENGLISH_DOCS


def test_traditional_filter_returns_only_the_traditional_document(client) -> None:  # type: ignore[no-untyped-def]
    chunks = _documents(client)[TRADITIONAL_DOC]["chunks"]
    results = _search(client, "技术转移", k=50, language="zh-Hant")
    assert {h["doc_id"] for h in results} == {TRADITIONAL_DOC}
    assert len(results) == min(50, chunks)


def test_simplified_filter_excludes_traditional_and_english_chunks(client) -> None:  # type: ignore[no-untyped-def]
    results = _search(client, "技术转移 technology transfer", k=50, language="zh-Hans")
    assert results
    assert TRADITIONAL_DOC not in {h["doc_id"] for h in results}
    for h in results:
        assert HAN.search(h["text"]), h["text"][:200]


def test_filters_combine(client) -> None:  # type: ignore[no-untyped-def]
    results = _search(client, "technology", k=50, doc_id="guangdong-cis-union", language="en")
    assert results
    assert {h["doc_id"] for h in results} == {"guangdong-cis-union"}
    # A document that has no Traditional chunks: nothing matches both.
    assert _search(client, "technology", k=50, doc_id="guangdong-cis-union", language="zh-Hant") == []


def test_unknown_doc_id_finds_nothing(client) -> None:  # type: ignore[no-untyped-def]
    r = client.post("/v1/search", json={"query": "东盟", "filters": {"doc_id": "nope"}})
    assert r.status_code < 500
    if r.status_code == 200:
        assert r.json()["results"] == []
    else:
        assert "doc_id" in r.json()["detail"]


def test_null_and_empty_filters_mean_no_filter(client) -> None:  # type: ignore[no-untyped-def]
    plain = _search(client, "东盟", k=5)
    for filters in (None, {}):
        r = client.post("/v1/search", json={"query": "东盟", "k": 5, "filters": filters})
        assert r.status_code == 200
        assert [h["chunk_id"] for h in r.json()["results"]] == [h["chunk_id"] for h in plain]


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"query": ""}, "query"),
        ({"query": "   \n\t "}, "query"),
        ({"query": "x" * 4001}, "query"),
        ({"query": "a\x00b"}, "query"),
        ({}, "query"),
        ({"query": 42}, "query"),
        ({"query": "东盟", "k": 0}, "k"),
        ({"query": "东盟", "k": 51}, "k"),
        ({"query": "东盟", "k": -3}, "k"),
        ({"query": "东盟", "k": "five"}, "k"),
        ({"query": "东盟", "k": 2.5}, "k"),
        ({"query": "东盟", "k": None}, "k"),
        ({"query": "东盟", "filters": {"author": "x"}}, "filters.author"),
        ({"query": "东盟", "filters": {"kind": "blog_post"}}, "filters.kind"),
        ({"query": "东盟", "filters": {"language": "fr"}}, "filters.language"),
        ({"query": "东盟", "filters": {"language": "EN"}}, "filters.language"),
        ({"query": "东盟", "filters": {"doc_id": ["a", "b"]}}, "filters.doc_id"),
        ({"query": "东盟", "filters": {"doc_id": "x" * 500}}, "filters.doc_id"),
        ({"query": "东盟", "filters": [1, 2]}, "filters"),
        ({"query": "东盟", "filters": "news_report"}, "filters"),
        ({"query": "东盟", "limit": 3}, "limit"),
    ],
    ids=lambda v: None if isinstance(v, str) else repr(v)[:40],
)
def test_bad_requests_are_422_naming_the_field(api: TestClient, body: dict, field: str) -> None:
    r = api.post("/v1/search", json=body)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/json")
    detail = r.json()["detail"]
    assert isinstance(detail, str)
    assert detail.startswith(field) or f"; {field}" in detail, detail


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b'{"query": "x",}', b'{"query": "x"} trailing', b"", b"null", b"[]", b'"x"'],
    ids=["broken", "trailing-comma", "trailing-text", "empty", "null", "array", "string"],
)
def test_a_body_that_is_not_a_json_object_is_422(api: TestClient, raw: bytes) -> None:
    r = api.post("/v1/search", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert isinstance(detail, str)
    assert detail.startswith("body")


@pytest.mark.parametrize(
    "body",
    [
        {"query": "\x01\x02\x1b[31m\x7f"},
        {"query": "🤖🚀💡 technology 技术 🌏"},
        {"query": "？？？！！！。。。"},
        {"query": "\u200b\u200d\ufeff东盟"},
        {"query": "مرحبا بالعالم"},
        {"query": "' OR 1=1; DROP TABLE chunks; --"},
        {"query": "东盟", "filters": {"doc_id": {"$ne": "x"}}},
        {"query": "东盟", "filters": {"doc_id": {"a": [1, {"b": None}]}, "kind": [[]]}},
        {"query": "东盟", "filters": {"doc_id": "../../etc/passwd"}},
        {"query": "东盟", "filters": {"doc_id": "' OR '1'='1"}},
        {"query": "东盟", "k": 10**30},
        {"query": "东盟", "k": [5]},
        {"query": {"$regex": ".*"}},
    ],
    ids=lambda v: repr(v)[:40],
)
def test_odd_inputs_never_cause_a_server_error(api: TestClient, body: dict) -> None:
    r = api.post("/v1/search", json=body)
    assert r.status_code < 500, r.text
    assert isinstance(r.json().get("results", r.json().get("detail")), (list, str))


def test_deeply_nested_json_is_not_a_server_error(api: TestClient) -> None:
    raw = '{"query": "x", "filters": {"doc_id": ' + "[" * 5000 + "]" * 5000 + "}}"
    r = api.post("/v1/search", content=raw.encode(), headers={"content-type": "application/json"})
    assert 400 <= r.status_code < 500
    assert isinstance(r.json()["detail"], str)


@pytest.mark.parametrize(
    "raw",
    [r'{"query": "\ud83e"}', r'{"query": "ok", "filters": {"doc_id": "\udc00"}}'],
    ids=["query", "filter"],
)
def test_a_lone_surrogate_is_422_not_500(api: TestClient, raw: str) -> None:
    r = api.post("/v1/search", content=raw.encode(), headers={"content-type": "application/json"})
    assert r.status_code == 422, r.status_code
    assert isinstance(r.json()["detail"], str)


@pytest.mark.parametrize(
    "raw", [b'{"query": "x", "k": 1e999}', b'{"query": "x", "k": NaN}'], ids=["inf", "nan"]
)
def test_a_non_finite_number_is_422_not_500(api: TestClient, raw: bytes) -> None:
    r = api.post("/v1/search", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.status_code
    assert "k" in r.json()["detail"]


def test_a_body_that_is_not_utf8_is_422_saying_so(api: TestClient) -> None:
    raw = '{"query": "东盟"}'.encode("gb18030")
    r = api.post("/v1/search", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert "UTF-8" in r.json()["detail"]
