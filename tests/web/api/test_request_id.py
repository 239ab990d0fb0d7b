"""X-Request-ID: echoed when sane, made otherwise, on every response (streams, 401, 413, 500 too),
and on the log records made while serving the request, on the chat turn's own thread too."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from assistant.service import Assistant
from assistant.telemetry.logs import JsonFormatter, RequestIdFilter
from assistant.web.api import create_app
from tests.conftest import make_settings

QUESTION = "Which technology transfer center serves ASEAN countries?"
GENERATED = re.compile(r"[0-9a-f]{32}")
API_KEY = "api-key-4b8e2d6f0a1c3e5b7d9f2a4c6e8b0d1f"


@pytest.fixture
def lines() -> Iterator[list[str]]:
    """JSON log lines of everything logged (at INFO and above) during the test."""
    out: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            out.append(self.format(record))

    handler = Collect(logging.INFO)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    access = logging.getLogger("assistant.access")
    old_root, old_access = root.level, access.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    access.setLevel(logging.INFO)
    try:
        yield out
    finally:
        root.removeHandler(handler)
        root.setLevel(old_root)
        access.setLevel(old_access)


def test_an_id_is_made_when_none_is_sent(client: TestClient) -> None:
    one = client.get("/healthz").headers["X-Request-ID"]
    two = client.get("/healthz").headers["X-Request-ID"]
    assert GENERATED.fullmatch(one) and GENERATED.fullmatch(two) and one != two


@pytest.mark.parametrize("sent", ["abc", "trace-01.A_b", "x" * 64, "0af7651916cd43dd8448eb211c80319c"])
def test_a_sane_id_is_echoed(client: TestClient, sent: str) -> None:
    assert client.get("/healthz", headers={"X-Request-ID": sent}).headers["X-Request-ID"] == sent


@pytest.mark.parametrize("sent", ["x" * 65, "a b", "id;drop", "<script>", "ünï".encode("latin-1"), ""])
def test_an_odd_id_is_replaced(client: TestClient, sent: str | bytes) -> None:
    got = client.get("/healthz", headers={"X-Request-ID": sent}).headers["X-Request-ID"]
    assert got != sent and GENERATED.fullmatch(got)


def test_streams_and_errors_carry_it(client: TestClient) -> None:
    h = {"X-Request-ID": "req-1"}
    with client.stream("POST", "/v1/chat", json={"message": QUESTION, "stream": True}, headers=h) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["X-Request-ID"] == "req-1"
        assert "event: done" in r.read().decode()
    assert client.get("/v1/documents/nope", headers=h).headers["X-Request-ID"] == "req-1"  # 404
    assert client.post("/v1/chat", json={"message": ""}, headers=h).headers["X-Request-ID"] == "req-1"  # 422
    big = b'{"message": "' + b"x" * 1_100_000 + b'"}'
    r = client.post("/v1/chat", content=big, headers={**h, "Content-Type": "application/json"})
    assert r.status_code == 413 and r.headers["X-Request-ID"] == "req-1"  # the body-limit middleware's


def test_a_401_and_a_500_carry_it(index_dir: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    a = Assistant(make_settings(ASSISTANT_INDEX_DIR=index_dir, ASSISTANT_API_KEYS=API_KEY), embedder, None)
    app = create_app(assistant=a, with_ui=False)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("boom")

    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.post("/v1/search", json={"query": QUESTION}, headers={"X-Request-ID": "r401"})
        assert r.status_code == 401 and r.headers["X-Request-ID"] == "r401"
        r = c.get("/boom", headers={"X-Request-ID": "r500"})
        assert r.status_code == 500 and r.headers["X-Request-ID"] == "r500"
        assert GENERATED.fullmatch(c.get("/boom").headers["X-Request-ID"])


def test_log_lines_carry_the_id(client: TestClient, lines: list[str]) -> None:
    client.post("/v1/search", json={"query": QUESTION, "k": 2}, headers={"X-Request-ID": "find-me"})
    records = [json.loads(line) for line in lines]
    access = [r for r in records if r["logger"] == "assistant.access" and r["request_id"] == "find-me"]
    assert len(access) == 1, records
    assert access[0]["route"] == "/v1/search" and access[0]["status"] == 200 and access[0]["method"] == "POST"
    assert access[0]["duration_ms"] >= 0
    assert all(
        r["request_id"] is None for r in records if r["logger"] != "assistant.access" and "find-me" in str(r)
    )


class LoggingModel:
    """A chat model that logs from the chat turn's thread."""

    backend = "openai"
    queue = None

    def stream(self, messages: object, *, max_tokens: int, schema: object = None, token_bias: object = None, prefix: str = "") -> Iterator[str]:
        logging.getLogger("tests.model").warning("model called")
        yield "The China–ASEAN Technology Transfer Center serves ASEAN countries [1]."

    def complete(self, messages: object, *, max_tokens: int) -> str:
        return "".join(self.stream(messages, max_tokens=max_tokens))

    def ready(self) -> tuple[bool, str]:
        return True, "ok"

    def close(self) -> None:
        pass


@pytest.mark.parametrize("stream", [False, True])
def test_the_chat_turns_thread_logs_with_the_id(
    index_dir: Path, embedder, lines: list[str], stream: bool
) -> None:  # type: ignore[no-untyped-def]
    a = Assistant(
        make_settings(ASSISTANT_INDEX_DIR=index_dir, ASSISTANT_LLM="openai"), embedder, LoggingModel()
    )  # type: ignore[arg-type]
    with TestClient(create_app(assistant=a, with_ui=False)) as c:
        r = c.post(
            "/v1/chat", json={"message": QUESTION, "stream": stream}, headers={"X-Request-ID": "turn-7"}
        )
        assert r.status_code == 200
    model = [json.loads(line) for line in lines if '"tests.model"' in line]
    assert model and all(m["request_id"] == "turn-7" for m in model), model
