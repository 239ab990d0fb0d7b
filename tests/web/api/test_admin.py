"""Secrets and access: the admin token, the admin endpoint, and no secret in the logs.

- Outside `ASSISTANT_ENV=development` the app refuses to start without a real
  `ASSISTANT_ADMIN_TOKEN` (empty, placeholder, short) — at app creation, and `assistant
  serve` says so in one line.
- `POST /v1/admin/reindex` (incremental ingest + reload) needs
  `Authorization: Bearer <admin token>`: 401 without or with a wrong one (an API key is
  not an admin token), 403 when no admin token is configured, 503 naming the fix when
  an ingest is already running.
- No secret (API keys, the admin token, OPENAI_API_KEY) appears in any log record or
  response, even when an upstream model echoes the Authorization header in an error.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from assistant.cli.main import main
from assistant.llm import build_chat_model
from assistant.pipeline.index import ingest_lock
from assistant.service import Assistant
from assistant.web.api import create_app
from assistant.web.api.factory import InsecureSettings, check_admin_token
from tests.conftest import make_settings
from tests.fake_llm_server import fake_llm
from tests.web.api.test_chat import parse_sse

ADMIN = "adm-7f3c9e1b5d2a48c6b0e4f1a9d3c7e5b2"
API_KEY = "api-key-4b8e2d6f0a1c3e5b7d9f2a4c6e8b0d1f"
OPENAI_KEY = "sk-live-9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d"
QUESTION = "Which technology transfer center serves ASEAN countries?"


# --------------------------------------------------------------------- start-up check


@pytest.mark.parametrize(
    "token",
    [
        None,
        "",
        "   ",
        "changeme",
        "CHANGE_ME",
        "admin",
        "secret",
        "password",
        "Password!",
        "<admin-token>",
        "<set a long random token here please>",
        "replace-with-a-real-token-0123",
        "changeme-changeme-changeme",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "short-7Xq9z",  # under 16 characters
    ],
)
def test_production_refuses_a_missing_or_placeholder_admin_token(token: str | None) -> None:
    settings = make_settings(ASSISTANT_ENV="production", **({} if token is None else {"ASSISTANT_ADMIN_TOKEN": token}))
    with pytest.raises(InsecureSettings, match="ASSISTANT_ADMIN_TOKEN") as info:
        check_admin_token(settings)
    message = str(info.value)
    assert "ASSISTANT_ENV=development" in message  # says what to do
    if token and len(token) >= 10:
        assert token not in message  # never echoed


def test_production_refuses_at_app_creation(tmp_path: Path) -> None:
    settings = make_settings(ASSISTANT_ENV="production", ASSISTANT_INDEX_DIR=tmp_path / "none")
    with pytest.raises(InsecureSettings):
        create_app(settings, with_ui=False)


def test_production_refuses_an_app_around_an_assistant(assistant: Assistant) -> None:
    assistant.settings = assistant.settings.model_copy(update={"env": "production"})
    with pytest.raises(InsecureSettings):
        create_app(assistant=assistant, with_ui=False)


def test_production_starts_with_a_real_token(tmp_path: Path) -> None:
    settings = make_settings(
        ASSISTANT_ENV="production",
        ASSISTANT_ADMIN_TOKEN=ADMIN,
        ASSISTANT_API_KEYS=API_KEY,  # production also refuses to start without real API keys
        ASSISTANT_INDEX_DIR=tmp_path / "none",
    )
    with TestClient(create_app(settings, with_ui=False)) as c:
        assert c.get("/healthz").status_code == 200


def test_development_needs_no_token(tmp_path: Path) -> None:
    settings = make_settings(ASSISTANT_INDEX_DIR=tmp_path / "none")
    assert settings.env == "development" and settings.admin_token is None
    check_admin_token(settings)


def test_serve_refuses_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no .env file
    result = CliRunner().invoke(
        main,
        ["serve", "--port", "1"],
        env={
            "ASSISTANT_ENV": "production",
            "ASSISTANT_ADMIN_TOKEN": "changeme",
            "ASSISTANT_INDEX_DIR": str(tmp_path / "none"),
            "ASSISTANT_LLM": "extractive",
            "CHROMA_HOST": "",
        },
    )
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert "ASSISTANT_ADMIN_TOKEN is a placeholder" in result.output
    assert "changeme" not in result.output.replace("ASSISTANT_ADMIN_TOKEN", "")


# --------------------------------------------------------------------- admin endpoint


@pytest.fixture
def admin_client(index_dir: Path, embedder) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    settings = make_settings(
        ASSISTANT_INDEX_DIR=index_dir, ASSISTANT_ADMIN_TOKEN=ADMIN, ASSISTANT_API_KEYS=API_KEY
    )
    a = Assistant(settings, embedder, None)
    with TestClient(create_app(assistant=a, with_ui=False), raise_server_exceptions=False) as c:
        yield c
    a.close()


@pytest.mark.parametrize(
    "header",
    [None, "Bearer wrong-token-0000000000000000", f"Bearer {API_KEY}", f"Basic {ADMIN}", f"Bearer {ADMIN}x"],
    ids=["none", "wrong", "api-key", "basic", "longer"],
)
def test_reindex_needs_the_admin_token(admin_client: TestClient, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    r = admin_client.post("/v1/admin/reindex", headers=headers)
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert "ASSISTANT_ADMIN_TOKEN" in r.json()["detail"]
    assert ADMIN not in r.text


def test_reindex_with_the_token_ingests_and_reloads(admin_client: TestClient) -> None:
    r = admin_client.post("/v1/admin/reindex", headers={"Authorization": f"Bearer {ADMIN}"})
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["documents"] >= 5 and report["chunks"] > 0 and report["added"] == 0
    # Still serving (with the API key: the admin token is not one).
    r = admin_client.post("/v1/search", json={"query": "东盟"}, headers={"Authorization": f"Bearer {API_KEY}"})
    assert r.status_code == 200 and r.json()["results"]
    r = admin_client.post("/v1/search", json={"query": "东盟"}, headers={"Authorization": f"Bearer {ADMIN}"})
    assert r.status_code == 401


def test_reindex_while_an_ingest_runs_is_503_saying_so(admin_client: TestClient, index_dir: Path) -> None:
    with ingest_lock(index_dir):
        r = admin_client.post("/v1/admin/reindex", headers={"Authorization": f"Bearer {ADMIN}"})
    assert r.status_code == 503
    assert "Another ingest is running" in r.json()["detail"]
    assert "retry-after" in r.headers
    assert admin_client.post(
        "/v1/search", json={"query": "东盟"}, headers={"Authorization": f"Bearer {API_KEY}"}
    ).status_code == 200


def test_reindex_is_disabled_without_an_admin_token(client: TestClient) -> None:
    r = client.post("/v1/admin/reindex", headers={"Authorization": "Bearer anything-at-all-000000"})
    assert r.status_code == 403
    assert "ASSISTANT_ADMIN_TOKEN" in r.json()["detail"]


# --------------------------------------------------------------------- no secrets in logs


def test_no_secret_is_logged_or_echoed(
    built_index: Path, embedder, tmp_path: Path, caplog: pytest.LogCaptureFixture  # type: ignore[no-untyped-def]
) -> None:
    index = tmp_path / "index"
    shutil.copytree(built_index, index)
    secrets = [ADMIN, API_KEY, OPENAI_KEY]
    bodies: list[str] = []
    caplog.set_level(logging.DEBUG)  # everything, the libraries' debug logs included
    with fake_llm("error500") as fake:  # echoes the Authorization header it got
        settings = make_settings(
            ASSISTANT_INDEX_DIR=index,
            ASSISTANT_LLM="openai",
            OPENAI_BASE_URL=fake.base_url,
            OPENAI_API_KEY=OPENAI_KEY,
            ASSISTANT_ADMIN_TOKEN=ADMIN,
            ASSISTANT_API_KEYS=API_KEY,
            ASSISTANT_LLM_TIMEOUT=2,
        )
        a = Assistant(settings, embedder, build_chat_model(settings))
        auth = {"Authorization": f"Bearer {API_KEY}"}
        with TestClient(create_app(assistant=a, with_ui=False), raise_server_exceptions=False) as c:
            r = c.post("/v1/chat", json={"message": QUESTION}, headers=auth)
            assert r.json()["backend"] == "extractive" and "upstream exploded" in r.json()["notice"]
            bodies.append(r.text)
            r = c.post("/v1/chat", json={"message": QUESTION, "stream": True}, headers=auth)
            assert parse_sse(r.text)[-1][0] == "done"
            bodies.append(r.text)
            r = c.post(
                "/v1/chat/completions",
                json={"model": "techtransfer-assistant", "messages": [{"role": "user", "content": QUESTION}]},
                headers=auth,
            )
            bodies.append(r.text)
            for header in (f"Bearer {API_KEY}x", f"Bearer {ADMIN}", "Bearer nope"):
                bodies.append(c.post("/v1/search", json={"query": "x"}, headers={"Authorization": header}).text)
                bodies.append(c.post("/v1/admin/reindex", headers={"Authorization": header}).text)
            r = c.post("/v1/admin/reindex", headers={"Authorization": f"Bearer {ADMIN}"})
            assert r.status_code == 200
            bodies.append(r.text)
            bodies.append(c.get("/readyz").text)
        a.close()
        sent = {k.lower(): v for k, v in fake.chat_requests()[0]["headers"].items()}
        assert sent["authorization"] == f"Bearer {OPENAI_KEY}"  # it was sent, and echoed back
    assert any("upstream exploded" in rec.getMessage() for rec in caplog.records)  # the error was logged
    logged = "\n".join(rec.getMessage() for rec in caplog.records) + caplog.text
    for secret in secrets:
        assert secret not in logged
        for body in bodies:
            assert secret not in body


def test_settings_do_not_show_secrets() -> None:
    settings = make_settings(ASSISTANT_ADMIN_TOKEN=ADMIN, OPENAI_API_KEY=OPENAI_KEY)
    assert ADMIN not in repr(settings) and OPENAI_KEY not in repr(settings)
    assert ADMIN not in str(settings.model_dump())
