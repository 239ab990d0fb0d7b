"""What an outside review of a running server found exposed (issue 14), probed on loopback.

- Limits while reading: a body is counted as it arrives (chunked or not) and refused
  with 413 past its route's limit, the widget's own (`ASSISTANT_WIDGET_MAX_BODY_BYTES`,
  with CORS for a partner page) included, and Gradio's under /ui; Gradio's upload
  routes are closed.
- Production start: no empty, placeholder or short API key, none equal to the admin
  token; /docs, /redoc and /openapi.json off unless `ASSISTANT_PUBLIC_DOCS=true`.
- Every response says `nosniff` and `Referrer-Policy`; /readyz and 503s show no server
  paths; a forged `Host` never becomes a redirect's target.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from assistant.partners.store import PartnerStore
from assistant.service import Assistant
from assistant.settings import Settings
from assistant.web.api import create_app
from assistant.web.api.factory import InsecureSettings, check_api_keys
from tests.conftest import make_settings
from tests.live_server import live_server

PAGE = "https://www.partner.example"
EVIL = "https://evil.example"
QUESTION = "Which technology transfer center serves ASEAN countries?"
ADMIN = "adm-7f3c9e1b5d2a48c6b0e4f1a9d3c7e5b2"
API_KEY = "api-Qm4t8ZrW2xLk9bNc6VhJ3sPd"  # 28 characters, random-looking
FLOOD = 64 * 1024 * 1024  # what an attacker offers; the server must stop long before
CHUNK = 64 * 1024
MB = 1024 * 1024


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def module_index(built_index: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    index = tmp_path_factory.mktemp("exposure") / "index"
    shutil.copytree(built_index, index)
    return index


@pytest.fixture(scope="module")
def server(module_index: Path, embedder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """A development server with the UI, a partner for PAGE: (base URL, partner key)."""
    a = Assistant(make_settings(ASSISTANT_INDEX_DIR=module_index), embedder, None)
    app = create_app(assistant=a, with_ui=True)
    store = PartnerStore(tmp_path_factory.mktemp("partners") / "partners.db")
    _, key = store.add("partner", [PAGE], per_minute=1000, per_day=10000)
    app.state.partners = store
    with live_server(app) as base:
        yield base, key
    store.close()
    a.close()


@pytest.fixture
def http(server: tuple[str, str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server[0], timeout=60, trust_env=False) as c:
        yield c


class Flood:
    """A chunked body of `FLOOD` bytes that counts what the client got to send."""

    def __init__(self, total: int = FLOOD) -> None:
        self.total = total
        self.sent = 0

    def __iter__(self) -> Iterator[bytes]:
        yield b'{"message": "'
        while self.sent < self.total:
            self.sent += CHUNK
            yield b"x" * CHUNK
        yield b'"}'


class PeakRss:
    """The process's largest resident size while the block runs (the server is a thread of it)."""

    def __enter__(self) -> PeakRss:
        self.base = self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())

    @property
    def growth(self) -> int:
        return self.peak - self.base


def _rss() -> int:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def send_flood(http: httpx.Client, path: str, headers: dict[str, str]) -> tuple[httpx.Response, Flood, PeakRss]:
    flood = Flood()
    with PeakRss() as rss:
        r = http.post(path, content=iter(flood), headers={"Content-Type": "application/json", **headers})
    return r, flood, rss


# ------------------------------------------------------------------ limits while reading


def test_a_chunked_flood_on_the_widget_is_413_before_it_is_read(http: httpx.Client, server: tuple[str, str]) -> None:
    # The review's attack: the public partner key, an allowed (forged) Origin, no Content-Length.
    r, flood, rss = send_flood(http, "/v1/widget/chat", {"X-Partner-Key": server[1], "Origin": PAGE})
    assert r.status_code == 413, r.text
    assert "ASSISTANT_WIDGET_MAX_BODY_BYTES" in r.json()["detail"]
    assert r.headers["access-control-allow-origin"] == PAGE  # the widget can read why
    assert flood.sent < FLOOD // 2, flood.sent  # refused while sending, not after
    assert rss.growth < 50 * MB, rss.growth


def test_a_chunked_flood_on_the_api_is_413_before_it_is_read(http: httpx.Client) -> None:
    r, flood, rss = send_flood(http, "/v1/chat", {})
    assert r.status_code == 413, r.text
    assert "ASSISTANT_MAX_BODY_BYTES" in r.json()["detail"]
    assert flood.sent < FLOOD // 2, flood.sent
    assert rss.growth < 50 * MB, rss.growth


def test_a_widget_413_for_an_unknown_origin_has_no_cors(http: httpx.Client, server: tuple[str, str]) -> None:
    r, _, _ = send_flood(http, "/v1/widget/chat", {"X-Partner-Key": server[1], "Origin": EVIL})
    assert r.status_code == 413
    assert "access-control-allow-origin" not in r.headers


def test_a_declared_length_over_the_widget_limit_is_413_at_once(http: httpx.Client, server: tuple[str, str]) -> None:
    body = json.dumps({"message": "东盟" * 40_000}).encode()  # 240 kB: under the API's limit, over the widget's
    r = http.post(
        "/v1/widget/chat",
        content=body,
        headers={"X-Partner-Key": server[1], "Origin": PAGE, "Content-Type": "application/json"},
    )
    assert r.status_code == 413
    assert "at most 65536 bytes" in r.json()["detail"]
    assert r.headers["access-control-allow-origin"] == PAGE


def test_a_widget_body_within_its_limit_is_answered(http: httpx.Client, server: tuple[str, str]) -> None:
    history = [{"role": "user", "content": "东盟技术转移中心" * 200}] * 4  # ~19 kB of Chinese history
    body = json.dumps({"message": QUESTION, "history": history}, ensure_ascii=False).encode()

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(body), 1000):
            yield body[i : i + 1000]

    r = http.post(
        "/v1/widget/chat",
        content=chunks(),
        headers={"X-Partner-Key": server[1], "Origin": PAGE, "Content-Type": "application/json"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["answer"]


def test_the_widget_limit_is_a_setting() -> None:
    assert make_settings().widget_max_body_bytes == 65_536
    assert make_settings(ASSISTANT_WIDGET_MAX_BODY_BYTES=4096).widget_max_body_bytes == 4096


def test_gradio_bodies_are_limited_too(http: httpx.Client) -> None:
    r, flood, _ = send_flood(http, "/ui/gradio_api/queue/join", {})
    assert r.status_code == 413, r.text
    assert flood.sent < FLOOD // 2


@pytest.mark.parametrize(
    "path",
    [
        "/ui/gradio_api/upload",
        "/ui/gradio_api/upload?upload_id=abc",
        "/ui/gradio_api/upload/",
        "/ui//gradio_api//upload",
        "/ui/upload",
        "/ui/gradio_api/process_recording",
    ],
)
def test_gradio_uploads_are_closed(http: httpx.Client, path: str) -> None:
    r = http.post(path, files={"files": ("note.html", b"<script>alert(1)</script>", "text/html")})
    assert r.status_code == 404, r.text
    assert "uploads are closed" in r.json()["detail"]


def test_no_file_form_reaches_gradio(http: httpx.Client) -> None:
    r = http.post("/ui/gradio_api/component_server", files={"files": ("a.txt", b"hello", "text/plain")})
    assert r.status_code == 415
    assert "takes no files" in r.json()["detail"]


def test_the_ui_still_loads(http: httpx.Client) -> None:
    assert http.get("/ui/").status_code == 200
    assert http.get("/ui/config").status_code == 200


# ---------------------------------------------------------------------- small findings


def test_every_response_says_nosniff_and_referrer_policy(http: httpx.Client, server: tuple[str, str]) -> None:
    responses = [
        http.get("/healthz"),
        http.get("/readyz"),
        http.get("/no-such-page"),
        http.get("/widget.js"),
        http.get("/ui/"),
        http.post("/v1/chat", json={}),  # 422
        http.post("/v1/widget/chat", json={"message": "hi"}, headers={"Origin": PAGE}),  # 401
        http.post("/v1/widget/chat", content=b"x" * 100_000, headers={"Origin": PAGE}),  # 413
        http.post("/ui/gradio_api/upload", files={"files": ("a.txt", b"a")}),  # 404
    ]
    for r in responses:
        assert r.headers.get("x-content-type-options") == "nosniff", r.url
        assert r.headers.get("referrer-policy") == "strict-origin-when-cross-origin", r.url


@pytest.mark.parametrize("path", ["/v1/documents/", "/v1/centers/", "/ui"])
def test_a_forged_host_is_never_a_redirect_target(http: httpx.Client, path: str) -> None:
    r = http.get(path, headers={"Host": "evil.example"}, follow_redirects=False)
    if r.is_redirect:
        location = r.headers["location"]
        assert "evil.example" not in location, location
        assert location.startswith("/") and not location.startswith("//"), location
        assert http.get(location).status_code == 200  # and it still leads somewhere


def test_readyz_and_503s_show_no_server_path(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    missing = tmp_path / "nowhere" / "index"
    a = Assistant(make_settings(ASSISTANT_INDEX_DIR=missing), embedder, None)
    app = create_app(assistant=a, with_ui=False)
    store = PartnerStore(tmp_path / "partners.db")
    _, key = store.add("partner", [PAGE])
    app.state.partners = store
    try:
        with live_server(app) as base, httpx.Client(base_url=base, timeout=30, trust_env=False) as c:
            replies = [
                c.get("/readyz"),
                c.post("/v1/chat", json={"message": QUESTION}),
                c.post("/v1/search", json={"query": "ASEAN"}),
                c.post("/v1/widget/chat", json={"message": QUESTION}, headers={"X-Partner-Key": key, "Origin": PAGE}),
            ]
    finally:
        store.close()
        a.close()
    for r in replies:
        assert r.status_code == 503, (r.url, r.text)
        detail = r.json()["detail"]
        assert str(tmp_path) not in r.text and "nowhere" not in r.text, r.text
        assert "ASSISTANT_INDEX_DIR" in detail and "assistant ingest" in detail  # still says what to do


def test_a_broken_index_file_is_named_relative_to_the_index(index_dir: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    victim = sorted((index_dir / "docs").glob("*.json"))[0]
    victim.unlink()
    a = Assistant(make_settings(ASSISTANT_INDEX_DIR=index_dir), embedder, None)
    try:
        with live_server(create_app(assistant=a, with_ui=False)) as base:
            r = httpx.get(f"{base}/readyz", trust_env=False)
    finally:
        a.close()
    assert r.status_code == 503
    detail = r.json()["detail"]
    assert str(index_dir) not in r.text
    # Where to look, relative to the setting that names the folder; never the server's path.
    assert f"docs/{victim.name}" in detail and "ASSISTANT_INDEX_DIR" in detail and "--rebuild" in detail


# -------------------------------------------------------------------- production start


def production(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "ASSISTANT_ENV": "production",
        "ASSISTANT_ADMIN_TOKEN": ADMIN,
        "ASSISTANT_API_KEYS": API_KEY,
    }
    values.update(overrides)
    return make_settings(**values)


@pytest.mark.parametrize(
    "keys",
    [
        "",
        " , ",
        "changeme",
        "change-me",
        "CHANGE_ME_CHANGE_ME_CHANGE_ME",
        "secret",
        "password",
        "password-password-password-1",
        "test",
        "example",
        "example-api-key-0123456789abcdef",
        "xxx",
        "xxxx-xxxx-xxxx-xxxx-xxxx-xxxx",
        "<your-api-key>",
        "replace-me-with-a-real-key-0123",
        "Qm4t8ZrW2xLk9bNc",  # random-looking, but under 24 characters
        f"{API_KEY},changeme",  # one good key does not excuse a bad one
        ADMIN,  # the admin token as an API key
    ],
)
def test_production_refuses_weak_api_keys(keys: str) -> None:
    with pytest.raises(InsecureSettings) as info:
        check_api_keys(production(ASSISTANT_API_KEYS=keys))
    message = str(info.value)
    assert "ASSISTANT_API_KEYS" in message
    assert "secrets.token_urlsafe(32)" in message  # says how to make a good one
    for key in keys.split(","):
        if len(key.strip()) >= 10:
            assert key.strip() not in message  # never echoed
    if keys == ADMIN:
        assert "ASSISTANT_ADMIN_TOKEN" in message


def test_production_refuses_weak_api_keys_at_app_creation(tmp_path: Path) -> None:
    with pytest.raises(InsecureSettings, match="ASSISTANT_API_KEYS"):
        create_app(production(ASSISTANT_API_KEYS="changeme", ASSISTANT_INDEX_DIR=tmp_path / "none"), with_ui=False)


def test_production_accepts_random_keys_and_development_anything() -> None:
    check_api_keys(production(ASSISTANT_API_KEYS=f"{API_KEY}, key-b-Zx81mQp4Lr7TnW2vKc9Yd3"))
    check_api_keys(make_settings(ASSISTANT_API_KEYS="changeme"))
    check_api_keys(make_settings())


def _docs_status(settings: Settings, embedder) -> dict[str, int]:  # type: ignore[no-untyped-def]
    a = Assistant(settings, embedder, None)
    try:
        with live_server(create_app(assistant=a, with_ui=False)) as base:
            return {p: httpx.get(base + p, trust_env=False).status_code for p in ("/docs", "/redoc", "/openapi.json")}
    finally:
        a.close()


def test_docs_are_off_in_production(index_dir: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    closed = _docs_status(production(ASSISTANT_INDEX_DIR=index_dir), embedder)
    assert closed == {"/docs": 404, "/redoc": 404, "/openapi.json": 404}
    opened = _docs_status(production(ASSISTANT_INDEX_DIR=index_dir, ASSISTANT_PUBLIC_DOCS="true"), embedder)
    assert opened == {"/docs": 200, "/redoc": 200, "/openapi.json": 200}
    assert set(_docs_status(make_settings(ASSISTANT_INDEX_DIR=index_dir), embedder).values()) == {200}


def test_the_openapi_schema_names_each_body_limit(index_dir: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    a = Assistant(make_settings(ASSISTANT_INDEX_DIR=index_dir), embedder, None)
    try:
        schema = create_app(assistant=a, with_ui=False).openapi()
    finally:
        a.close()
    widget = schema["paths"]["/v1/widget/chat"]["post"]["responses"]["413"]["description"]
    api = schema["paths"]["/v1/chat"]["post"]["responses"]["413"]["description"]
    assert "ASSISTANT_WIDGET_MAX_BODY_BYTES" in widget and "ASSISTANT_MAX_BODY_BYTES" in api

