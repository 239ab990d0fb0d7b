"""GET /v1/centers, GET /v1/centers/{id}, POST /v1/recommend.

The shared `client` fixture builds the app without this router, so these tests build a
small app of their own: the router plus the app's error handlers (as `create_app` does).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from assistant.service import Assistant
from assistant.web.api.errors import add_error_handlers
from assistant.web.api.routers.centers import router
from tests.conftest import CORPUS, make_settings


def _app(assistant: Assistant) -> FastAPI:
    app = FastAPI()
    app.state.assistant = assistant
    app.include_router(router)
    add_error_handlers(app)
    return app


@pytest.fixture(scope="module")
def api(built_index: Path, embedder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    index = tmp_path_factory.mktemp("api-centers") / "index"
    shutil.copytree(built_index, index)
    a = Assistant(make_settings(ASSISTANT_INDEX_DIR=index), embedder, None)
    with TestClient(_app(a), raise_server_exceptions=False) as c:
        c.app_state_assistant = a  # type: ignore[attr-defined]
        yield c
    a.close()


@pytest.fixture(scope="module")
def texts(api: TestClient) -> dict[str, str]:
    a: Assistant = api.app_state_assistant  # type: ignore[attr-defined]
    return {info.document.doc_id: info.document.text for info in a.documents()}


def _detail(r: Any) -> str:
    body = r.json()
    assert isinstance(body["detail"], str) and body["detail"]
    return str(body["detail"])


# ---------------------------------------------------------------------- GET /v1/centers


def test_lists_every_center(api: TestClient) -> None:
    r = api.get("/v1/centers")
    assert r.status_code == 200
    centers = r.json()["centers"]
    assert len(centers) == 17
    by_id = {c["id"]: c for c in centers}
    asean = by_id["china-asean"]
    assert asean["name_zh"] == "中国—东盟技术转移中心"
    assert asean["regions"] == ["asean"] and asean["founded"] == "2014" and asean["host"] == "Guangxi"
    assert asean["name_en_translated"] is True
    assert by_id["technomart"]["name_en_translated"] is False
    assert by_id["brics"]["host"] is None


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("region=asean", ["china-asean"]),
        ("region=arab-states", ["china-arab-states"]),
        ("region=cis", ["guangdong-cis"]),
        ("country=Vietnam", ["china-asean"]),
        ("country=越南", ["china-asean"]),
        ("country=科威特", ["china-arab-states"]),
        ("country=Brazil", ["china-lac", "brics"]),
        ("country=Russia", ["china-sco", "brics", "guangdong-cis"]),
        ("country=Antarctica", []),
        ("region=sco&country=Russia", ["china-sco"]),
    ],
)
def test_filters(api: TestClient, query: str, expected: list[str]) -> None:
    r = api.get(f"/v1/centers?{query}")
    assert r.status_code == 200, r.text
    assert [c["id"] for c in r.json()["centers"]] == expected


def test_unknown_region_lists_the_valid_codes(api: TestClient) -> None:
    r = api.get("/v1/centers?region=mars")
    assert r.status_code == 422
    detail = _detail(r)
    assert "'mars'" in detail and "asean" in detail and "arab-states" in detail and "lac" in detail


@pytest.mark.parametrize("country", ["Atlantis", "%20%20", "x" * 101])
def test_bad_country(api: TestClient, country: str) -> None:
    r = api.get(f"/v1/centers?country={country}")
    assert r.status_code == 422
    _detail(r)


# ---------------------------------------------------------------------- GET /v1/centers/{id}


def test_detail_has_every_field_with_verbatim_quotes(api: TestClient, texts: dict[str, str]) -> None:
    r = api.get("/v1/centers/china-arab-states")
    assert r.status_code == 200
    body = r.json()
    assert body["id"] == "china-arab-states"
    fields = body["fields"]
    assert list(fields)[:3] == ["kind", "name_zh", "name_en"]
    assert fields["focus_fields"] == [
        {"value": None, "note": "not stated in the documents", "translated": False, "value_zh": None, "context": None,
         "context_zh": None, "doc_id": None, "quote": None, "start": None, "end": None, "reach": None}
    ]
    assert fields["name_en"][0]["translated"] is True
    quoted = 0
    for facts in fields.values():
        for f in facts:
            if f["quote"] is not None:
                quoted += 1
                assert texts[f["doc_id"]][f["start"] : f["end"]] == f["quote"]
    assert quoted >= 10
    assert any("阿拉伯国家联盟" in f["quote"] for f in fields["overseas_centers"])


def test_unknown_center_is_404(api: TestClient) -> None:
    r = api.get("/v1/centers/atlantis-center")
    assert r.status_code == 404
    assert "GET /v1/centers" in _detail(r)


# ---------------------------------------------------------------------- POST /v1/recommend


def test_recommend_vietnam_indonesia(api: TestClient, texts: dict[str, str]) -> None:
    goal = (
        "We make water-treatment equipment and want to enter Vietnam and Indonesia — which center should "
        "we work with, and what can it do for us?"
    )
    r = api.post("/v1/recommend", json={"goal": goal})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["goal"] == goal and body["covered"] is True and body["language"] == "en"
    assert body["places"] == ["Vietnam", "Indonesia"]
    first = body["centers"][0]
    assert first["id"] == "china-asean" and first["name_zh"] == "中国—东盟技术转移中心"
    assert first["score"] >= body["centers"][-1]["score"]
    for center in body["centers"]:
        assert set(center) >= {"id", "name_zh", "name_en", "score", "reasons"}
        for reason in center["reasons"]:
            for q in reason["citations"]:
                assert set(q) == {"doc_id", "quote", "start", "end"}
                assert texts[q["doc_id"]][q["start"] : q["end"]] == q["quote"]
    assert first["reasons"][0]["citations"]


def test_recommend_with_countries_and_sector(api: TestClient) -> None:
    r = api.post("/v1/recommend", json={"goal": "我们想拓展市场", "countries": ["科威特", "Qatar"], "sector": "智慧农业"})
    assert r.status_code == 200
    body = r.json()
    assert body["centers"][0]["id"] == "china-arab-states"
    assert body["language"] == "zh-Hans"
    assert "农业" in body["note"]


def test_recommend_uncovered(api: TestClient) -> None:
    r = api.post("/v1/recommend", json={"goal": "Antarctica research logistics"})
    assert r.status_code == 200
    body = r.json()
    assert body["covered"] is False
    assert "No center in the documents serves Antarctica" in body["note"]
    assert len(body["centers"]) <= 3 and all(c["match"] == "closest" for c in body["centers"])


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "goal"),
        ({"goal": ""}, "goal"),
        ({"goal": "   "}, "goal"),
        ({"goal": "x" * 2001}, "goal"),
        ({"goal": "ok\x00"}, "goal"),
        ({"goal": 5}, "goal"),
        ({"goal": "ok", "countries": ["Vietnam"] * 31}, "countries"),
        ({"goal": "ok", "countries": ["x" * 101]}, "countries"),
        ({"goal": "ok", "countries": [""]}, "countries"),
        ({"goal": "ok", "countries": "Vietnam"}, "countries"),
        ({"goal": "ok", "sector": "x" * 201}, "sector"),
        ({"goal": "ok", "extra": 1}, "extra"),
    ],
)
def test_recommend_rejects_bad_requests(api: TestClient, payload: dict[str, Any], field: str) -> None:
    r = api.post("/v1/recommend", json=payload)
    assert r.status_code == 422
    assert field in _detail(r)


def test_recommend_rejects_invalid_json(api: TestClient) -> None:
    r = api.post("/v1/recommend", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert "not valid JSON" in _detail(r)


# ---------------------------------------------------------------------- unavailable


def test_no_index_is_503(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    a = Assistant(make_settings(ASSISTANT_INDEX_DIR=tmp_path / "empty-index"), embedder, None)
    with TestClient(_app(a)) as c:
        for r in (c.get("/v1/centers"), c.get("/v1/centers/china-asean"), c.post("/v1/recommend", json={"goal": "Vietnam"})):
            assert r.status_code == 503
            _detail(r)
    a.close()


def test_broken_directory_is_503_naming_the_entry(tmp_path: Path, index_dir: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    path = corpus / "centers.yaml"
    path.write_text(
        path.read_text(encoding="utf-8").replace("由湖北省对外科技交流中心负责日常运营和管理工作", "由湖北省对外科技交流中心负责运营"),
        encoding="utf-8",
    )
    a = Assistant(make_settings(ASSISTANT_INDEX_DIR=index_dir, ASSISTANT_CORPUS_DIR=corpus), embedder, None)
    with TestClient(_app(a)) as c:
        r = c.get("/v1/centers")
        assert r.status_code == 503
        detail = _detail(r)
        assert "'china-africa'" in detail and "'operator'" in detail and "quote not found" in detail
    a.close()
