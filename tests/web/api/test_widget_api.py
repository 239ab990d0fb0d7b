"""The widget API: /widget.js, POST /v1/widget/chat (key + Origin, CORS, quotas), framing headers."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.responses import PlainTextResponse

from assistant.partners.store import PartnerStore
from assistant.service import Assistant
from assistant.web.api import create_app
from assistant.web.api.middleware import security_headers
from assistant.web.api.routers import widget
from tests.conftest import make_settings
from tests.web.api.test_chat import parse_sse

PAGE = "https://www.partner.example"
OTHER = "https://other-partner.example"
EVIL = "https://evil.example"
CHAT = "/v1/widget/chat"
QUESTION = "Which technology transfer center serves ASEAN countries?"
T0 = 1_767_225_600.0 + 8 * 3600  # 2026-01-01 08:00 UTC


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def with_widget(app: FastAPI) -> FastAPI:
    """The widget router and framing headers, unless create_app already installs them."""
    if not any(getattr(r, "path", None) == widget.CHAT_PATH for r in app.routes):
        app.include_router(widget.router)
    return security_headers(app)


@pytest.fixture(scope="module")
def app(built_index: Path, embedder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:  # type: ignore[no-untyped-def]
    index = tmp_path_factory.mktemp("api-widget") / "index"
    shutil.copytree(built_index, index)
    a = Assistant(make_settings(ASSISTANT_INDEX_DIR=index), embedder, None)
    yield with_widget(create_app(assistant=a, with_ui=False))
    a.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(app: FastAPI, tmp_path: Path, clock: Clock) -> Iterator[PartnerStore]:
    s = PartnerStore(tmp_path / "partners.db", clock=clock)
    app.state.partners = s
    yield s
    s.close()
    del app.state.partners


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.fixture
def key(store: PartnerStore) -> str:
    _, k = store.add("partner", [PAGE], per_minute=100, per_day=1000)
    store.add("other", [OTHER])
    return k


def post(client: TestClient, key: str | None, origin: str | None, **body: object):  # type: ignore[no-untyped-def]
    headers = {}
    if key is not None:
        headers["X-Partner-Key"] = key
    if origin is not None:
        headers["Origin"] = origin
    return client.post(CHAT, json={"message": QUESTION, **body}, headers=headers)


def assert_no_cors(response) -> None:  # type: ignore[no-untyped-def]
    assert "access-control-allow-origin" not in response.headers


def assert_error(response, status: int, *words: str) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    detail = response.json()["detail"]
    assert isinstance(detail, str) and detail
    for w in words:
        assert w in detail, detail


# ---------------------------------------------------------------------------- widget.js


def test_widget_js_is_served_with_cache_headers(client: TestClient) -> None:
    r = client.get("/widget.js")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/javascript; charset=utf-8"
    assert "max-age=" in r.headers["cache-control"]
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cross-origin-resource-policy"] == "cross-origin"
    assert "content-security-policy" not in r.headers  # a script is not framed; partners load it
    assert "attachShadow" in r.text
    again = client.get("/widget.js", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""


def test_widget_js_never_parses_content_as_html_nor_loads_remote_code(client: TestClient) -> None:
    source = client.get("/widget.js").text
    code = re.sub(r"/\*.*?\*/", "", source, flags=re.DOTALL)  # the usage comment names URLs
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
                 "import(", "importScripts", "@import", "url("):
        assert sink not in code, sink
    assert set(re.findall(r"https?://[^\s\"')]+", code)) == {"http://www.w3.org/2000/svg"}


# ----------------------------------------------------------------------- answering


def test_allowed_origin_with_a_good_key_streams_like_v1_chat(client: TestClient, key: str) -> None:
    r = post(client, key, PAGE, stream=True)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["access-control-allow-origin"] == PAGE
    assert "Origin" in r.headers["vary"]
    events = parse_sse(r.text)
    names = [n for n, _ in events]
    assert names[0] == "sources" and names[1] == "token" and names[-1] == "done" and names.count("done") == 1
    done = events[-1][1]
    assert isinstance(done, dict)
    assert done["grounded"] is True
    assert done["citations"] and {"n", "title", "quote", "doc_id", "start", "end"} <= done["citations"][0].keys()
    # The widget's citations also carry `url`, their passage page (plain: no API keys here).
    for c in done["citations"] + done["related"]:
        assert c.pop("url") == f"/sources/{c['doc_id']}?start={c['start']}&end={c['end']}#quote"
    reference = parse_sse(client.post("/v1/chat", json={"message": QUESTION, "stream": True}).text)
    assert events == reference


def test_json_answers_too(client: TestClient, key: str) -> None:
    r = post(client, key, PAGE)
    assert r.status_code == 200, r.text
    assert r.headers["access-control-allow-origin"] == PAGE
    answer = r.json()
    for c in answer["citations"] + answer["related"]:
        assert c.pop("url").startswith(f"/sources/{c['doc_id']}?start=")
    assert answer == client.post("/v1/chat", json={"message": QUESTION}).json()


def test_history_is_accepted(client: TestClient, key: str) -> None:
    history = [{"role": "user", "content": QUESTION}, {"role": "assistant", "content": "The China–ASEAN center [1]."}]
    r = post(client, key, PAGE, history=history, message="When was it founded?")
    assert r.status_code == 200, r.text


# ------------------------------------------------------------------------- refusals


def test_a_missing_key_is_401(client: TestClient, key: str) -> None:
    r = post(client, None, PAGE)
    assert_error(r, 401, "X-Partner-Key")
    assert r.headers["access-control-allow-origin"] == PAGE  # so the widget can read why


@pytest.mark.parametrize("bad", ["nonsense", "ttw_000000000000_" + "A" * 43])
def test_a_bad_key_is_401(client: TestClient, key: str, bad: str) -> None:
    assert_error(post(client, bad, PAGE), 401, "not valid")


def test_a_revoked_key_is_401(client: TestClient, store: PartnerStore, key: str) -> None:
    assert post(client, key, PAGE).status_code == 200
    store.revoke("partner")
    assert_error(post(client, key, PAGE), 401, "revoked")


def test_a_bad_key_from_an_unknown_origin_gets_no_cors(client: TestClient, key: str) -> None:
    r = post(client, "nonsense", EVIL)
    assert r.status_code == 401
    assert_no_cors(r)


def test_a_disallowed_origin_is_403_without_cors(client: TestClient, key: str) -> None:
    r = post(client, key, EVIL)
    assert_error(r, 403, "not allowed")
    assert PAGE not in r.text and EVIL not in r.text  # one generic text: the allowlist is not shown
    assert_no_cors(r)


def test_another_partners_origin_is_403_without_cors(client: TestClient, key: str) -> None:
    r = post(client, key, OTHER)
    assert_error(r, 403, "not allowed")
    assert_no_cors(r)


@pytest.mark.parametrize("origin", [None, "null", "file://"])
def test_a_request_without_a_web_origin_is_403(client: TestClient, key: str, origin: str | None) -> None:
    r = post(client, key, origin)
    assert_error(r, 403, "Origin")
    assert_no_cors(r)


def test_a_key_with_no_origins_serves_nobody(client: TestClient, store: PartnerStore) -> None:
    _, key = store.add("empty", [])
    for origin in (PAGE, EVIL, "http://localhost:8000"):
        r = post(client, key, origin)
        assert_error(r, 403, "not allowed")
        assert r.json() == post(client, key, EVIL).json()  # the same generic text
        assert_no_cors(r)
    assert client.options(CHAT, headers={"Origin": PAGE, "Access-Control-Request-Method": "POST"}).status_code == 403


def test_invalid_bodies_are_refused_with_cors_and_do_not_count(client: TestClient, store: PartnerStore) -> None:
    _, key = store.add("tight", [PAGE], per_minute=1)
    headers = {"X-Partner-Key": key, "Origin": PAGE}
    for body, words in (
        ({"message": ""}, "message"),
        ({"message": "hi", "stream": "yes"}, "stream"),
        ({"message": "hi", "extra": 1}, "extra"),
        ({"message": "x" * 4001}, "message"),
    ):
        r = client.post(CHAT, json=body, headers=headers)
        assert_error(r, 422, words)
        assert r.headers["access-control-allow-origin"] == PAGE
    r = client.post(CHAT, content=b"{not json", headers={**headers, "Content-Type": "application/json"})
    assert_error(r, 422, "not valid JSON")
    big = b'{"message": "' + b"x" * 4_100_000 + b'"}'
    r = client.post(CHAT, content=big, headers={**headers, "Content-Type": "application/json"})
    assert_error(r, 413, "at most")
    assert r.headers["access-control-allow-origin"] == PAGE
    assert post(client, key, PAGE).status_code == 200  # the quota of 1 is still there


# ------------------------------------------------------------------------------- CORS


def test_preflight_for_an_allowed_origin(client: TestClient, key: str) -> None:
    r = client.options(
        CHAT,
        headers={
            "Origin": PAGE,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-partner-key",
        },
    )
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == PAGE
    assert "Origin" in r.headers["vary"]
    assert "POST" in r.headers["access-control-allow-methods"]
    allowed = {h.strip().lower() for h in r.headers["access-control-allow-headers"].split(",")}
    assert {"content-type", "x-partner-key"} <= allowed
    assert int(r.headers["access-control-max-age"]) > 0
    assert "access-control-allow-credentials" not in r.headers


@pytest.mark.parametrize("origin", [EVIL, None])
def test_preflight_for_other_origins_is_403_without_cors(client: TestClient, key: str, origin: str | None) -> None:
    headers = {"Access-Control-Request-Method": "POST"}
    if origin:
        headers["Origin"] = origin
    r = client.options(CHAT, headers=headers)
    assert_error(r, 403, "not allowed")
    assert_no_cors(r)


def test_preflight_stops_when_the_partner_is_revoked(client: TestClient, store: PartnerStore, key: str) -> None:
    store.revoke("partner")
    r = client.options(CHAT, headers={"Origin": PAGE, "Access-Control-Request-Method": "POST"})
    assert r.status_code == 403


# ----------------------------------------------------------------------------- quotas


def test_over_the_per_minute_quota_is_429_with_retry_after(
    client: TestClient, store: PartnerStore, clock: Clock
) -> None:
    _, key = store.add("tight", [PAGE], per_minute=2, per_day=100)
    assert post(client, key, PAGE).status_code == 200
    clock.now += 20
    assert post(client, key, PAGE, stream=True).status_code == 200
    clock.now += 10
    r = post(client, key, PAGE)
    assert_error(r, 429, "2 requests per minute", "retry in 30 s")
    assert r.headers["retry-after"] == "30"
    assert r.headers["access-control-allow-origin"] == PAGE
    assert "Retry-After" in r.headers["access-control-expose-headers"]
    clock.now += 30
    assert post(client, key, PAGE).status_code == 200


def test_over_the_per_day_quota_is_429_until_midnight_utc(
    client: TestClient, store: PartnerStore, clock: Clock
) -> None:
    _, key = store.add("daily", [PAGE], per_minute=100, per_day=2)
    assert post(client, key, PAGE).status_code == 200
    assert post(client, key, PAGE).status_code == 200
    r = post(client, key, PAGE)
    assert_error(r, 429, "2 requests per day")
    assert r.headers["retry-after"] == str(16 * 3600)


def test_usage_is_logged_per_partner(client: TestClient, store: PartnerStore) -> None:
    _, key = store.add("logged", [PAGE], per_minute=2, per_day=100)
    post(client, key, PAGE, stream=True)
    post(client, key, PAGE)
    post(client, key, PAGE)  # 429
    post(client, key, EVIL)  # 403
    post(client, "nonsense", PAGE)  # 401: no partner to log it under
    row = next(r for r in store.usage() if r.name == "logged")
    assert (row.requests, row.answered, row.limited, row.refused, row.failed) == (4, 2, 1, 1, 0)
    assert row.avg_ms is not None and row.avg_ms > 0


def test_no_index_is_503_with_cors(embedder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(ASSISTANT_INDEX_DIR=tmp_path / "no-index", ASSISTANT_STATE_DIR=tmp_path / "var")
    a = Assistant(settings, embedder, None)
    _, key = PartnerStore.from_settings(settings).add("p", [PAGE])
    # No app.state.partners: the router opens settings.state_dir / "partners.db" itself.
    with TestClient(with_widget(create_app(assistant=a, with_ui=False))) as c:
        for stream in (True, False):
            r = post(c, key, PAGE, stream=stream)
            assert_error(r, 503, "assistant ingest")
            assert r.headers["access-control-allow-origin"] == PAGE
            assert r.headers["retry-after"]
    a.close()


# -------------------------------------------------------------------- framing headers


@pytest.mark.parametrize("path", ["/healthz", "/v1/documents", "/docs", "/openapi.json"])
def test_api_responses_forbid_framing_by_other_sites(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 200
    assert "frame-ancestors 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "SAMEORIGIN"


def test_search_and_errors_forbid_framing(client: TestClient) -> None:
    for r in (
        client.post("/v1/search", json={"query": QUESTION, "k": 1}),
        client.post("/v1/search", json={"query": ""}),
        client.get("/v1/documents/nope"),
    ):
        assert r.headers["content-security-policy"] == "frame-ancestors 'self'"


def test_an_existing_csp_gains_frame_ancestors() -> None:
    app = FastAPI()

    @app.get("/page")
    def page() -> PlainTextResponse:
        return PlainTextResponse("hi", headers={"Content-Security-Policy": "default-src 'self'"})

    security_headers(security_headers(app))  # installing twice is harmless
    with TestClient(app) as c:
        r = c.get("/page")
    assert r.headers["content-security-policy"] == "default-src 'self'; frame-ancestors 'self'"
    assert r.headers.get_list("x-frame-options") == ["SAMEORIGIN"]


def test_the_gradio_ui_forbids_framing(assistant) -> None:  # type: ignore[no-untyped-def]
    app = with_widget(create_app(assistant=assistant, with_ui=True))
    with TestClient(app) as c:
        for path in ("/ui/", "/ui/config"):
            r = c.get(path)
            assert r.status_code == 200, path
            assert "frame-ancestors 'self'" in r.headers["content-security-policy"]
            assert r.headers["x-frame-options"] == "SAMEORIGIN"
        assert "content-security-policy" not in c.get("/widget.js").headers


def test_deeply_nested_json_is_a_parse_error_not_a_crash() -> None:
    raw = ('{"message": "hi", "history": ' + "[" * 100_000 + "]" * 100_000 + "}").encode()
    body, problem = widget._parse(raw)
    assert body is None and problem.startswith("body: not valid JSON")
