"""Logins for /ui and /sources, and signed passage links (issue 14, item 3).

The attack: with API keys set, `POST /ui/gradio_api/call/chat` answered questions and
`GET /sources/{doc}` served whole documents without a key. Reproduced against a real
server on loopback: without a login both are refused (401 JSON, or a redirect to the
login page for a browser); with a login cookie (an API key or a UI user) they work; a
signed passage link opens its passage without a login, and a changed or expired one is 403.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from assistant.partners.store import PartnerStore
from assistant.service import Assistant
from assistant.web.api import create_app
from assistant.web.api.session import (
    COOKIE,
    LINK_INVALID,
    Signer,
    check_login,
    get_signer,
    hash_password,
    passage_url,
    safe_next,
)
from tests.conftest import make_settings
from tests.live_server import live_server

KEY = "k3y-" + "Zq7Rx2Lm9Tv4Wb8Np1Yc6Hd5"  # 28 characters, not a placeholder
USER, PASSWORD = "researcher", "correct horse battery staple"
PAGE = "https://www.partner.example"
HTML = {"Accept": "text/html,application/xhtml+xml"}


def _settings(index: Path, state: Path, **extra: Any):  # type: ignore[no-untyped-def]
    return make_settings(
        ASSISTANT_INDEX_DIR=index,
        ASSISTANT_STATE_DIR=state,
        ASSISTANT_API_KEYS=KEY,
        ASSISTANT_UI_USERS=f"{USER}:{hash_password(PASSWORD)}",
        **extra,
    )


def _doc_and_range(a: Assistant) -> tuple[str, int, int]:
    hit = a.search("Which technology transfer center serves ASEAN countries?", 1)[0]
    return hit.document.doc_id, hit.chunk.start, hit.chunk.end


# --------------------------------------------------------------------------- no server


def test_next_is_only_ever_a_local_path() -> None:
    assert safe_next("/sources/x?start=1&end=2") == "/sources/x?start=1&end=2"
    assert safe_next("/ui/") == "/ui/"
    for bad in ("//evil.example/", "/\\evil.example", "https://evil.example/", "javascript:alert(1)", "", None,
                "ui", "/ui/\r\nSet-Cookie: x=1"):
        assert safe_next(bad) == "/ui/", bad


def test_session_tokens_expire_and_cannot_be_forged() -> None:
    now = [1_000_000.0]
    signer = Signer(b"s" * 32, clock=lambda: now[0])
    token, exp = signer.session("key:abc", hours=1)
    assert exp == 1_000_000 + 3600
    assert signer.session_subject(token) == "key:abc"
    assert Signer(b"t" * 32, clock=lambda: now[0]).session_subject(token) is None  # other secret
    stamp, subject, mac = token.split(".")
    assert signer.session_subject(f"{int(stamp) + 9999}.{subject}.{mac}") is None  # longer life
    assert signer.session_subject("garbage") is None
    now[0] += 3601
    assert signer.session_subject(token) is None


def test_passage_signatures_cover_document_range_and_expiry() -> None:
    now = [1_000_000.0]
    signer = Signer(b"s" * 32, clock=lambda: now[0])
    exp = 1_000_100
    sig = signer.passage_sig("doc", 10, 20, exp)
    ok = {"start": "10", "end": "20", "exp": str(exp), "sig": sig}
    assert signer.passage_problem("doc", ok) is None
    assert signer.passage_problem("other", ok) == LINK_INVALID
    assert signer.passage_problem("doc", {**ok, "end": "9999"}) == LINK_INVALID
    assert signer.passage_problem("doc", {**ok, "exp": str(exp + 10**6)}) == LINK_INVALID
    assert signer.passage_problem("doc", {**ok, "sig": "x"}) == LINK_INVALID
    assert signer.passage_problem("doc", {"start": "10"}) == LINK_INVALID
    now[0] = exp + 1
    assert "expired" in (signer.passage_problem("doc", ok) or "")


def test_logins_take_a_configured_key_or_a_user(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "i", tmp_path / "s")
    assert (check_login(settings, KEY, "", "") or "").startswith("key:")
    assert check_login(settings, KEY + "x", "", "") is None
    assert check_login(settings, "", USER, PASSWORD) is not None
    assert check_login(settings, "", USER, PASSWORD + "x") is None
    assert check_login(settings, "", "nobody", PASSWORD) is None


def test_without_keys_or_with_a_public_ui_the_pages_stay_open(index_dir: Path, embedder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    for settings in (
        make_settings(ASSISTANT_INDEX_DIR=index_dir, ASSISTANT_STATE_DIR=tmp_path / "a"),
        _settings(index_dir, tmp_path / "b", ASSISTANT_PUBLIC_UI=True),
    ):
        a = Assistant(settings, embedder, None)
        try:
            with TestClient(create_app(assistant=a, with_ui=False)) as c:
                doc, start, end = _doc_and_range(a)
                assert c.get(f"/sources/{doc}").status_code == 200
                url = passage_url(c.app, doc, start, end)  # type: ignore[arg-type]
                assert "sig=" not in url and "exp=" not in url
                assert url == f"/sources/{doc}?start={start}&end={end}#quote"
        finally:
            a.close()


# --------------------------------------------------------------------------- live server


class Server(NamedTuple):
    base: str
    assistant: Assistant
    app: FastAPI


@pytest.fixture(scope="module")
def server(built_index: Path, embedder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:  # type: ignore[no-untyped-def]
    """The whole app (Gradio UI included) with API keys and one UI user, on loopback."""
    root = tmp_path_factory.mktemp("session")
    shutil.copytree(built_index, root / "index")
    a = Assistant(_settings(root / "index", root / "state", ASSISTANT_LOGIN_FAILURES=3), embedder, None)
    app = create_app(assistant=a, with_ui=True)
    with live_server(app, timeout=120) as base:
        yield Server(base, a, app)
    a.close()


def _http(base: str) -> httpx.Client:
    return httpx.Client(base_url=base, trust_env=False, timeout=60, follow_redirects=False)


def _login(http: httpx.Client, **body: str) -> httpx.Response:
    r = http.post("/login", json=body)
    assert r.status_code == 200, r.text
    return r


@pytest.mark.slow
def test_sources_and_ui_calls_need_a_login(server: Server) -> None:
    base, a, _ = server
    doc, start, end = _doc_and_range(a)
    with _http(base) as http:
        # The attack: whole documents and answers without a key.
        r = http.get(f"/sources/{doc}")
        assert r.status_code == 401 and "Log in" in r.json()["detail"]
        r = http.post("/ui/gradio_api/call/chat", json={"data": ["Which center serves ASEAN?", [], []]})
        assert r.status_code == 401, r.text
        assert r.headers["content-type"].startswith("application/json")
        assert http.get("/ui/gradio_api/info").status_code == 401
        assert http.get("/ui/config").status_code == 401
        # A browser is sent to the login page, with a relative redirect back.
        r = http.get(f"/sources/{doc}?start={start}&end={end}", headers=HTML)
        assert r.status_code == 303
        location = r.headers["location"]
        assert location.startswith("/login?")
        assert parse_qs(urlsplit(location).query)["next"] == [f"/sources/{doc}?start={start}&end={end}"]
        r = http.get("/ui/", headers=HTML)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?")
        # Gradio's API calls are never redirected, even from a browser.
        assert http.get("/ui/gradio_api/info", headers=HTML).status_code == 401
        # A wrong cookie is no login.
        http.cookies.set(COOKIE, "1999999999.a2V5OmFiYw.forged")
        assert http.get(f"/sources/{doc}").status_code == 401
        # The login form is served.
        page = http.get("/login?next=/ui/", headers=HTML)
        assert page.status_code == 200 and 'name="api_key"' in page.text and 'value="/ui/"' in page.text


@pytest.mark.slow
def test_an_api_key_login_opens_the_ui_and_the_sources(server: Server) -> None:
    base, a, _ = server
    doc, _, _ = _doc_and_range(a)
    with _http(base) as http:
        r = _login(http, api_key=KEY)
        cookie = r.headers["set-cookie"]
        assert f"{COOKIE}=" in cookie
        lowered = cookie.lower()
        assert "httponly" in lowered and "samesite=lax" in lowered and "max-age=43200" in lowered
        assert "secure" not in lowered  # plain http on loopback
        page = http.get(f"/sources/{doc}")
        assert page.status_code == 200 and "Log in to read the whole document" not in page.text
        r = http.post("/ui/gradio_api/call/chat", json={"data": ["Which center serves ASEAN?", [], []]})
        assert r.status_code == 200, r.text
        assert "event_id" in r.json()
        assert http.get("/ui/", headers=HTML).status_code == 200
        # The UI's own API calls (translate, feedback) go with the cookie, no key in the page.
        r = http.post("/v1/translate", json={"text": "中国—东盟", "target": "zh-Hant"})
        assert r.status_code == 200, r.text
        # Logging out ends it.
        r = http.post("/logout", headers={"Accept": "application/json"})
        assert r.status_code == 200 and COOKIE in r.headers["set-cookie"]
        assert http.get(f"/sources/{doc}").status_code == 401
        assert http.post("/v1/translate", json={"text": "中国—东盟", "target": "zh-Hant"}).status_code == 401


@pytest.mark.slow
def test_a_user_logs_in_with_the_form_and_comes_back(server: Server) -> None:
    base, a, _ = server
    doc, start, end = _doc_and_range(a)
    target = f"/sources/{doc}?start={start}&end={end}"
    with _http(base) as http:
        r = http.post("/login", data={"user": USER, "password": PASSWORD, "next": target})
        assert r.status_code == 303, r.text
        assert r.headers["location"] == target
        assert http.get(target).status_code == 200
    with _http(base) as http:  # an off-site `next` lands on the UI instead
        r = http.post("/login", data={"user": USER, "password": PASSWORD, "next": "//evil.example/x"})
        assert r.status_code == 303 and r.headers["location"] == "/ui/"
    with _http(base) as http:  # a bearer API key works without a cookie
        assert http.get(f"/sources/{doc}", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200


@pytest.mark.slow
def test_signed_passage_links_open_without_a_login_and_tampering_is_403(server: Server) -> None:
    base, a, app = server
    doc, start, end = _doc_and_range(a)
    app_signer = get_signer(app)
    with _http(base) as http:
        url = passage_url(app, doc, start, end)
        query = parse_qs(urlsplit(url).query)
        assert set(query) == {"start", "end", "exp", "sig"}
        r = http.get(url, headers=HTML)
        assert r.status_code == 200, r.text
        assert '<mark id="quote">' in r.text and "Log in to read the whole document" in r.text
        text = a.document(doc).document.text
        assert len(r.text) < len(text) + 4000 or len(text) < 2000  # the passage, not the whole document
        # A wider range, another document, a later expiry: 403 with what to do.
        for tampered in (
            url.replace(f"end={end}", f"end={len(text)}"),
            url.replace(f"start={start}", "start=0"),
            url.replace(f"exp={query['exp'][0]}", f"exp={int(query['exp'][0]) + 86400 * 365}"),
            url.replace(f"/sources/{doc}", "/sources/some-other-doc"),
        ):
            r = http.get(tampered, headers=HTML)
            assert r.status_code == 403, tampered
            assert "not valid" in r.text
            assert http.get(tampered).json()["detail"] == LINK_INVALID
        # Expired: signed correctly, but in the past.
        exp = 1_000_000
        old = f"/sources/{doc}?start={start}&end={end}&exp={exp}&sig={app_signer.passage_sig(doc, start, end, exp)}"
        r = http.get(old)
        assert r.status_code == 403 and "expired" in r.json()["detail"]
        # The link shows that passage only: the signed range without start/end is refused.
        assert http.get(url.split("?")[0] + f"?exp={query['exp'][0]}&sig={query['sig'][0]}").status_code == 403


@pytest.mark.slow
def test_widget_citations_carry_signed_links_that_open(server: Server) -> None:
    base, a, app = server
    store = PartnerStore.from_settings(a.settings)
    app = app
    app.state.partners = store
    _, key = store.add("partner", [PAGE], per_minute=100, per_day=1000)
    with _http(base) as http:
        r = http.post(
            "/v1/widget/chat",
            json={"message": "Which technology transfer center serves ASEAN countries?"},
            headers={"X-Partner-Key": key, "Origin": PAGE},
        )
        assert r.status_code == 200, r.text
        citations = r.json()["citations"] + r.json()["related"]
        assert citations
        for c in citations:
            assert c["url"].startswith(f"/sources/{c['doc_id']}?start={c['start']}&end={c['end']}&exp=")
            page = http.get(c["url"], headers=HTML)  # a visitor, no login
            assert page.status_code == 200 and '<mark id="quote">' in page.text


@pytest.mark.slow
def test_failed_logins_are_throttled(server: Server) -> None:
    base, _, app = server
    with _http(base) as http:
        for _ in range(3):  # ASSISTANT_LOGIN_FAILURES=3
            r = http.post("/login", json={"api_key": "wrong-" + "x" * 30})
            assert r.status_code == 401 and r.json()["detail"]
        r = http.post("/login", json={"api_key": KEY})  # even the right key waits now
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
        assert COOKIE not in r.headers.get("set-cookie", "")
    app.state.login_throttle = None  # the other tests log in from the same address


def test_get_signer_keeps_its_secret_in_the_state_dir(index_dir: Path, embedder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a = Assistant(_settings(index_dir, tmp_path / "state"), embedder, None)
    try:
        app = create_app(assistant=a, with_ui=False)
        signer = get_signer(app)
        secret = tmp_path / "state" / "session_secret"
        assert secret.exists() and secret.stat().st_mode & 0o077 == 0
        token, _ = signer.session("key:x", 1)
        again = create_app(assistant=a, with_ui=False)
        assert get_signer(again).session_subject(token) == "key:x"  # same secret after a restart
    finally:
        a.close()
