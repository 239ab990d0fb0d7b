"""GET /healthz and /readyz, and how every endpoint behaves when there is no index."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from assistant.service import Assistant
from assistant.web.api import create_app
from tests.conftest import make_settings

NO_INDEX_FIX = "assistant ingest"


def _manifest_chunk_count(index_dir: Path) -> int:
    manifest = json.loads((index_dir / "manifest.json").read_text("utf-8"))
    return sum(len(entry["chunks"]) for entry in manifest["documents"].values())


@pytest.fixture
def empty_client(embedder, tmp_path: Path) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    """An app over an index folder that has never been built."""
    a = Assistant(make_settings(ASSISTANT_INDEX_DIR=tmp_path / "empty"), embedder, None)
    with TestClient(create_app(assistant=a, with_ui=False), raise_server_exceptions=False) as c:
        yield c
    a.close()


# --------------------------------------------------------------------------- healthy


def test_healthz_is_ok(client) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


def test_readyz_reports_the_loaded_index(client, index_dir: Path) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/readyz")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ready"
    assert body["backend"] == "extractive"
    assert isinstance(body["chunks"], int)
    assert body["chunks"] > 0
    assert body["chunks"] == _manifest_chunk_count(index_dir)


def test_root_redirects_to_the_api_docs_without_ui(client) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/", follow_redirects=False)
    assert r.status_code in (302, 307)
    assert r.headers["location"] == "/docs"
    assert client.get("/docs").status_code == 200


def test_openapi_lists_the_contract_paths(client) -> None:  # type: ignore[no-untyped-def]
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/v1/search", "/v1/chat", "/v1/documents", "/v1/documents/{doc_id}", "/healthz", "/readyz"):
        assert path in paths


class _LoadingModel:
    """A chat model that is still loading: the index is fine, the model is not ready."""

    backend = "local"

    def stream(self, messages, *, max_tokens, schema=None, token_bias=None, prefix=""):  # type: ignore[no-untyped-def]
        raise AssertionError("not called by /readyz")

    def complete(self, messages, *, max_tokens):  # type: ignore[no-untyped-def]
        raise AssertionError("not called by /readyz")

    def ready(self) -> tuple[bool, str]:
        return False, "still loading the model file"

    def close(self) -> None:
        pass


def test_readyz_is_503_with_the_reason_while_the_model_loads(settings, embedder) -> None:  # type: ignore[no-untyped-def]
    a = Assistant(settings, embedder, _LoadingModel())  # type: ignore[arg-type]
    try:
        with TestClient(create_app(assistant=a, with_ui=False)) as c:
            r = c.get("/readyz")
            assert r.status_code == 503
            body = r.json()
            assert body["status"] != "ready"
            assert "still loading the model file" in body["detail"]
            assert body["backend"] == "local"
            assert c.get("/healthz").status_code == 200
    finally:
        a.close()


# ------------------------------------------------------------------------- no index


def test_healthz_answers_without_an_index(empty_client: TestClient) -> None:
    r = empty_client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


def test_readyz_is_503_without_an_index(empty_client: TestClient) -> None:
    r = empty_client.get("/readyz")
    assert r.status_code == 503
    body = r.json()
    assert body["status"] != "ready"
    assert isinstance(body["detail"], str)
    assert NO_INDEX_FIX in body["detail"]


@pytest.mark.parametrize(
    ("method", "path", "payload"),
    [
        ("POST", "/v1/search", {"query": "东盟"}),
        ("POST", "/v1/chat", {"message": "哪个技术转移中心面向东盟国家？"}),
        ("POST", "/v1/chat", {"message": "哪个技术转移中心面向东盟国家？", "stream": True}),
        ("GET", "/v1/documents", None),
        ("GET", "/v1/documents/guangdong-cis-union", None),
        ("GET", "/sources/guangdong-cis-union?start=0&end=10", None),
    ],
    ids=["search", "chat", "chat-stream", "documents", "document", "source"],
)
def test_endpoints_are_503_naming_the_fix_without_an_index(
    empty_client: TestClient, method: str, path: str, payload: dict[str, object] | None
) -> None:
    r = empty_client.request(method, path, json=payload)
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith("application/json")
    detail = r.json()["detail"]
    assert isinstance(detail, str)
    assert NO_INDEX_FIX in detail


def test_validation_still_comes_before_the_missing_index(empty_client: TestClient) -> None:
    r = empty_client.post("/v1/search", json={"query": "x", "k": 0})
    assert r.status_code == 422
    assert "k" in r.json()["detail"]


def test_app_built_from_settings_alone_serves_health_without_an_index(tmp_path: Path) -> None:
    empty = make_settings(ASSISTANT_INDEX_DIR=tmp_path / "never-built")
    with TestClient(create_app(empty, with_ui=False)) as c:
        assert c.get("/healthz").status_code == 200
        r = c.get("/readyz")
        assert r.status_code == 503
        assert NO_INDEX_FIX in r.json()["detail"]
        r = c.post("/v1/search", json={"query": "东盟"})
        assert r.status_code == 503
        assert NO_INDEX_FIX in r.json()["detail"]
