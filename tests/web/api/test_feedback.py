"""Feedback on answers against the real app: POST /v1/feedback (API keys), POST
/v1/widget/feedback (partner key + Origin, CORS, per-visitor limits), GET /v1/admin/feedback
(admin token, filters) and `assistant feedback export`; the offline API docs pages."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi import FastAPI
from fastapi.testclient import TestClient

from assistant.cli.main import main
from assistant.feedback.store import FeedbackStore, parse_since
from assistant.partners.store import PartnerStore
from assistant.service import Assistant
from assistant.web.api import create_app
from tests.conftest import make_settings

ADMIN = "adm-7f3c9e1b5d2a48c6b0e4f1a9d3c7e5b2"
API_KEY = "api-key-4b8e2d6f0a1c3e5b7d9f2a4c6e8b0d1f"
PAGE = "https://www.partner.example"
EVIL = "https://evil.example"
QUESTION = "Which technology transfer center serves ASEAN countries?"
ANSWER = "The China–ASEAN Technology Transfer Center serves ASEAN countries [1]."
CITATION = {
    "n": 1,
    "chunk_id": "chengdu-chongqing-belt-road-ttc#12",
    "doc_id": "chengdu-chongqing-belt-road-ttc",
    "title": "成渝协同共建“一带一路”国际技术转移中心路径研究",
    "quote": "中国—东盟技术转移中心（2014年，广西）",
    "start": 2873,
    "end": 2941,
    "kind": "policy_paper",  # a /v1/chat citation's extra keys are accepted and dropped
}
VISITOR_PER_MINUTE = 3


def body(**overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "rating": "down",
        "comment": "Wrong city.",
        "question": QUESTION,
        "answer": ANSWER,
        "citations": [CITATION],
        "backend": "extractive",
        "conversation_id": "conv-1",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


@pytest.fixture(scope="module")
def app(built_index: Path, embedder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("api-feedback")
    shutil.copytree(built_index, root / "index")
    settings = make_settings(
        ASSISTANT_INDEX_DIR=root / "index",
        ASSISTANT_STATE_DIR=root / "var",
        ASSISTANT_ADMIN_TOKEN=ADMIN,
        ASSISTANT_API_KEYS=API_KEY,
        ASSISTANT_WIDGET_VISITOR_PER_MINUTE=VISITOR_PER_MINUTE,
    )
    a = Assistant(settings, embedder, None)
    yield create_app(assistant=a, with_ui=False)
    a.close()


@pytest.fixture
def store(app: FastAPI, tmp_path: Path) -> Iterator[FeedbackStore]:
    s = FeedbackStore(tmp_path / "feedback.db")
    app.state.feedback = s
    yield s
    s.close()
    del app.state.feedback


@pytest.fixture
def partners(app: FastAPI, tmp_path: Path) -> Iterator[PartnerStore]:
    s = PartnerStore(tmp_path / "partners.db")
    app.state.partners = s
    yield s
    s.close()
    del app.state.partners


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.fixture
def key(partners: PartnerStore) -> str:
    _, k = partners.add("partner", [PAGE], per_minute=100, per_day=1000)
    return k


def api(client: TestClient, data: object, key: str | None = API_KEY):  # type: ignore[no-untyped-def]
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return client.post("/v1/feedback", json=data, headers=headers)


def admin(client: TestClient, token: str | None = ADMIN, **params: str):  # type: ignore[no-untyped-def]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.get("/v1/admin/feedback", params=params, headers=headers)


def widget(client: TestClient, key: str | None, origin: str | None, data: object):  # type: ignore[no-untyped-def]
    headers = {}
    if key is not None:
        headers["X-Partner-Key"] = key
    if origin is not None:
        headers["Origin"] = origin
    return client.post("/v1/widget/feedback", json=data, headers=headers)


# ---------------------------------------------------------------------------- the API


def test_feedback_is_stored_with_its_source_and_time(client: TestClient, store: FeedbackStore) -> None:
    before = time.time()
    r = api(client, body())
    assert r.status_code == 201, r.text
    saved = r.json()
    assert saved["id"] >= 1 and saved["created"].endswith("Z")
    [record] = store.records()
    assert record.source == "api" and record.partner_id is None
    assert record.rating == "down" and record.comment == "Wrong city."
    assert record.question == QUESTION and record.answer == ANSWER and record.backend == "extractive"
    assert record.conversation_id == "conv-1"
    assert record.citations[0].doc_id == CITATION["doc_id"] and record.citations[0].start == 2873
    assert parse_since(record.created) >= before - 1  # type: ignore[operator]
    # The minimal body: no comment, no citations, no conversation.
    r = api(client, {"rating": "up", "question": QUESTION, "answer": ANSWER, "backend": "local"})
    assert r.status_code == 201, r.text


def test_feedback_needs_the_same_api_keys_as_chat(client: TestClient, store: FeedbackStore) -> None:
    assert api(client, body(), key=None).status_code == 401
    assert api(client, body(), key="not-a-key-0000000000000000000").status_code == 401
    assert api(client, body(), key=ADMIN).status_code == 401  # the admin token is not an API key
    assert store.records() == []


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"rating": "meh"}, "rating", "'up' or 'down'"),
        ({"rating": None}, "rating", "required"),
        ({"comment": "x" * 2001}, "comment", "at most 2000 characters"),
        ({"question": "   "}, "question", "must not be blank"),
        ({"question": "q" * 4001}, "question", "at most 4000 characters"),
        ({"answer": "a" * 20001}, "answer", "at most 20000 characters"),
        ({"citations": [CITATION] * 51}, "citations", "at most 50 items"),
        ({"citations": [{**CITATION, "quote": "q" * 4001}]}, "citations.0.quote", "at most 4000 characters"),
        ({"backend": "b" * 65}, "backend", "at most 64 characters"),
        ({"conversation_id": "has spaces"}, "conversation_id", "match pattern"),
        ({"conversation_id": "c" * 129}, "conversation_id", "at most 128 characters"),
        ({"stars": 5}, "stars", "Extra inputs"),
    ],
)
def test_bad_fields_get_a_422_naming_them(client: TestClient, store: FeedbackStore, change: dict, field: str, words: str) -> None:  # type: ignore[type-arg]
    data = body()
    for k, v in change.items():
        if v is None:
            data.pop(k, None)
        else:
            data[k] = v
    r = api(client, data)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert detail.startswith(f"{field}: "), detail
    assert words in detail, detail
    assert store.records() == []


def test_a_body_that_is_not_json_is_422(client: TestClient, store: FeedbackStore) -> None:
    r = client.post("/v1/feedback", content=b"{nope", headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"})
    assert r.status_code == 422


# ---------------------------------------------------------------------------- admin list


def test_admin_lists_feedback_newest_first_with_filters(client: TestClient, store: FeedbackStore) -> None:
    assert api(client, body(rating="up", comment=None)).status_code == 201
    assert api(client, body(question="Second?")).status_code == 201
    r = admin(client)
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["count"] == 2
    assert [f["question"] for f in data["feedback"]] == ["Second?", QUESTION]
    assert data["feedback"][0]["source"] == "api"
    down = admin(client, rating="down").json()
    assert [f["question"] for f in down["feedback"]] == ["Second?"]
    assert admin(client, since="2000-01-01").json()["count"] == 2
    assert admin(client, since="2999-01-01T00:00:00Z").json()["count"] == 0
    assert admin(client, since="1d").json()["count"] == 2
    assert admin(client, source="widget").json()["count"] == 0
    assert admin(client, limit="1").json()["count"] == 1
    bad = admin(client, since="last tuesday")
    assert bad.status_code == 422 and "ISO 8601" in bad.json()["detail"]
    assert admin(client, rating="meh").status_code == 422


def test_admin_list_needs_the_admin_token(client: TestClient, store: FeedbackStore) -> None:
    assert admin(client, token=None).status_code == 401
    assert admin(client, token=API_KEY).status_code == 401


# ---------------------------------------------------------------------------- widget


def test_the_widget_route_stores_feedback_for_its_partner_with_cors(
    client: TestClient, store: FeedbackStore, key: str, partners: PartnerStore
) -> None:
    pre = client.options(
        "/v1/widget/feedback",
        headers={"Origin": PAGE, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type, x-partner-key"},
    )
    assert pre.status_code == 204
    assert pre.headers["access-control-allow-origin"] == PAGE
    r = widget(client, key, PAGE, body())
    assert r.status_code == 201, r.text
    assert r.headers["access-control-allow-origin"] == PAGE
    [record] = store.records()
    assert record.source == "widget"
    assert record.partner_id == partners.get("partner").id
    assert admin(client, source="widget").json()["count"] == 1


def test_the_widget_route_checks_key_and_origin(client: TestClient, store: FeedbackStore, key: str) -> None:
    no_origin = widget(client, key, None, body())
    assert no_origin.status_code == 403
    evil = widget(client, key, EVIL, body())
    assert evil.status_code == 403 and "access-control-allow-origin" not in evil.headers
    missing = widget(client, None, PAGE, body())
    assert missing.status_code == 401 and missing.headers["access-control-allow-origin"] == PAGE
    bad = widget(client, "ttw_000000000000_" + "A" * 43, PAGE, body())
    assert bad.status_code == 401
    invalid = widget(client, key, PAGE, body(comment="x" * 2001))
    assert invalid.status_code == 422 and invalid.json()["detail"].startswith("comment: ")
    assert invalid.headers["access-control-allow-origin"] == PAGE  # the widget can read why
    assert store.records() == []
    pre = client.options("/v1/widget/feedback", headers={"Origin": EVIL, "Access-Control-Request-Method": "POST"})
    assert pre.status_code == 403


def test_a_widget_visitor_is_limited(client: TestClient, store: FeedbackStore, key: str) -> None:
    for _ in range(VISITOR_PER_MINUTE):
        assert widget(client, key, PAGE, body()).status_code == 201
    r = widget(client, key, PAGE, body())
    assert r.status_code == 429, r.text
    assert 1 <= int(r.headers["retry-after"]) <= 60
    assert r.headers["access-control-allow-origin"] == PAGE
    assert "visitor" in r.json()["detail"]
    assert len(store.records()) == VISITOR_PER_MINUTE
    # The API route is not the widget's: its callers hold API keys.
    assert api(client, body()).status_code == 201


def test_a_widget_body_over_the_widget_limit_is_413(client: TestClient, store: FeedbackStore, key: str) -> None:
    r = widget(client, key, PAGE, body(answer="a" * 70_000))
    assert r.status_code == 413


# ---------------------------------------------------------------------------- the CLI


def test_export_csv_and_json(client: TestClient, app: FastAPI, tmp_path: Path) -> None:
    state = tmp_path / "state"
    s = FeedbackStore(state / "feedback.db")
    app.state.feedback = s
    try:
        assert api(client, body(rating="up", comment=None, question="Good one?")).status_code == 201
        assert api(client, body(comment='He said "no", twice\nand left')).status_code == 201
    finally:
        s.close()
        del app.state.feedback
    env = {"ASSISTANT_STATE_DIR": str(state)}
    as_json = CliRunner().invoke(main, ["feedback", "export", "--format", "json", "--rating", "down"], env=env)
    assert as_json.exit_code == 0, as_json.output
    rows = json.loads(as_json.output)
    assert [r["question"] for r in rows] == [QUESTION]
    assert rows[0]["citations"][0]["quote"] == CITATION["quote"] and rows[0]["source"] == "api"
    as_csv = CliRunner().invoke(main, ["feedback", "export", "--format", "csv", "--since", "2000-01-01"], env=env)
    assert as_csv.exit_code == 0, as_csv.output
    table = list(csv.DictReader(io.StringIO(as_csv.output)))
    assert [r["question"] for r in table] == ["Good one?", QUESTION]  # oldest first
    assert table[1]["comment"] == 'He said "no", twice\nand left'
    assert json.loads(table[1]["citations"])[0]["doc_id"] == CITATION["doc_id"]
    later = CliRunner().invoke(main, ["feedback", "export", "--since", "2999-01-01"], env=env)
    assert later.exit_code == 0 and json.loads(later.output) == []
    bad = CliRunner().invoke(main, ["feedback", "export", "--since", "someday"], env=env)
    assert bad.exit_code == 2 and "--since" in bad.output


# ---------------------------------------------------------------------------- API docs offline


def test_docs_pages_reference_only_local_assets_which_are_served(client: TestClient) -> None:
    for page in ("/docs", "/redoc"):
        r = client.get(page)
        assert r.status_code == 200
        urls = re.findall(r"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)['"]""", r.text)
        assert urls, r.text
        assert not re.search(r"https?://|//cdn|googleapis", r.text), r.text
        for url in urls:
            assert url.startswith("/"), url
            got = client.get(url)
            assert got.status_code == 200, url
            assert len(got.content) > 100
    js = client.get("/static/docs/swagger-ui-bundle.js")
    assert js.headers["content-type"].startswith("text/javascript")
    assert client.get("/static/docs/LICENSE.redoc").status_code == 404  # only the assets
    assert client.get("/static/docs/..%2Fwidget.js").status_code == 404
