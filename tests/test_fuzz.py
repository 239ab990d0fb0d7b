"""Bad input: the API fuzzed from its own OpenAPI schema, and the limits that are settings.

Schemathesis generates valid and invalid requests for the main operations from
`/openapi.json` and sends them in-process (ASGI); every answer must be a non-5xx whose
status, content type and body conform to the schema. The hand-written cases cover
what a schema cannot express: bodies over `ASSISTANT_MAX_BODY_BYTES` (413, declared or
chunked), invalid UTF-8, control characters, huge histories and deeply nested JSON on
`/v1/chat` (the `/v1/search` equivalents live in tests/web/api/test_search.py).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.generation.modes import GenerationMode

from assistant.service import Assistant
from assistant.web.api import create_app
from tests.conftest import make_settings
from tests.web.api.test_chat import parse_sse

OPERATIONS = [
    ("/v1/search", "POST"),
    ("/v1/chat", "POST"),
    ("/v1/documents", "GET"),
    ("/v1/documents/{doc_id}", "GET"),
    ("/v1/chat/completions", "POST"),
    ("/v1/models", "GET"),
    ("/v1/centers", "GET"),
    ("/v1/centers/{center_id}", "GET"),
    ("/v1/recommend", "POST"),
]
EXAMPLES = 60  # per operation and mode: about 15 s in all on 2 cores
# Every check a response can fail that is about the server, not about our fuzzer's guesses.
CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.response_headers_conformance,
]


@pytest.fixture(scope="module")
def fuzz_app(built_index: Path, embedder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:  # type: ignore[no-untyped-def]
    index = tmp_path_factory.mktemp("fuzz") / "index"
    shutil.copytree(built_index, index)
    assistant = Assistant(make_settings(ASSISTANT_INDEX_DIR=index, ASSISTANT_MAX_BODY_BYTES=65536), embedder, None)
    yield create_app(assistant=assistant, with_ui=False)
    assistant.close()


@pytest.fixture(scope="module")
def api_schema(fuzz_app: FastAPI):  # type: ignore[no-untyped-def]
    return schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)


@pytest.mark.parametrize(
    ("path", "method", "mode"),
    [(p, m, GenerationMode.POSITIVE) for p, m in OPERATIONS]
    # Negative data needs inputs with constraints to break: the three POST bodies.
    + [(p, m, GenerationMode.NEGATIVE) for p, m in OPERATIONS if m == "POST" or p == "/v1/centers"],
    ids=lambda v: str(v),
)
def test_api_conforms_to_its_schema(api_schema, path: str, method: str, mode: GenerationMode) -> None:  # type: ignore[no-untyped-def]
    # (schemathesis' own pytest plugin needs pytest < 9 for fixture-built schemas: driven by hand)
    operation = api_schema[path][method]
    seen: list[int] = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def run(case) -> None:  # type: ignore[no-untyped-def]
        response = case.call()
        seen.append(response.status_code)
        case.validate_response(response, checks=CHECKS)

    run()
    assert seen and all(code < 500 for code in seen)


# ------------------------------------------------------------------ explicit limits


@pytest.fixture(scope="module")
def api(fuzz_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(fuzz_app, raise_server_exceptions=False) as c:
        yield c


LIMIT = 65536  # ASSISTANT_MAX_BODY_BYTES in this module


@pytest.mark.parametrize("path", ["/v1/chat", "/v1/search", "/v1/chat/completions"])
def test_an_oversized_body_is_413_before_it_is_read(api: TestClient, path: str) -> None:
    body = json.dumps({"message": "东盟" * LIMIT, "query": "x"}).encode()
    r = api.post(path, content=body, headers={"content-type": "application/json"})
    assert r.status_code == 413, r.text
    data = r.json()
    message = data["error"]["message"] if path.endswith("completions") else data["detail"]
    assert f"at most {LIMIT} bytes" in message and "ASSISTANT_MAX_BODY_BYTES" in message


def test_an_oversized_chunked_body_is_413(api: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"message": "'
        for _ in range(100):
            yield b"x" * 1000
        yield b'"}'

    r = api.post("/v1/chat", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert "ASSISTANT_MAX_BODY_BYTES" in r.json()["detail"]


def test_a_chunked_body_within_the_limit_is_read(api: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"query": "'
        yield "东盟".encode()
        yield b'", "k": 2}'

    r = api.post("/v1/search", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text
    assert len(r.json()["results"]) == 2


def test_the_body_limit_is_a_setting(built_index: Path, embedder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    index = tmp_path / "index"
    shutil.copytree(built_index, index)
    a = Assistant(make_settings(ASSISTANT_INDEX_DIR=index, ASSISTANT_MAX_BODY_BYTES=2048), embedder, None)
    with TestClient(create_app(assistant=a, with_ui=False)) as c:
        assert c.post("/v1/search", json={"query": "东盟 " * 100}).status_code == 200
        r = c.post("/v1/search", json={"query": "东盟 " * 1000})
        assert r.status_code == 413 and "2048" in r.json()["detail"]
    a.close()


def test_the_default_body_limit_is_one_megabyte() -> None:
    assert make_settings().max_body_bytes == 1_000_000


def test_the_widget_has_its_own_limit(api: TestClient) -> None:
    # Not the API's limit, and no exemption: ASSISTANT_WIDGET_MAX_BODY_BYTES (64 KiB by default).
    body = json.dumps({"message": "x" * (LIMIT + 10)}).encode()
    r = api.post("/v1/widget/chat", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert "ASSISTANT_WIDGET_MAX_BODY_BYTES" in r.json()["detail"]


def test_invalid_utf8_is_422_saying_so(api: TestClient) -> None:
    for raw in ('{"message": "东盟"}'.encode("gb18030"), b'{"message": "\xff\xfe"}'):
        r = api.post("/v1/chat", content=raw, headers={"content-type": "application/json"})
        assert r.status_code == 422
        assert "UTF-8" in r.json()["detail"]


@pytest.mark.parametrize(
    "raw",
    [
        '{"message": "hi", "stream": true, "history": ' + "[" * 30_000 + "]" * 30_000 + "}",
        '{"message": ' + '{"a":' * 10_000 + "1" + "}" * 10_000 + "}",
    ],
    ids=["lists", "objects"],
)
def test_deeply_nested_json_is_a_clear_4xx(api: TestClient, raw: str) -> None:
    r = api.post("/v1/chat", content=raw.encode(), headers={"content-type": "application/json"})
    assert 400 <= r.status_code < 500, r.status_code
    assert isinstance(r.json()["detail"], str)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize(
    "message",
    ["\x07\x1b]0;pwned\x07东盟", "东盟\r\n\r\nevent: done\ndata: {}\n\n", "\u0085\u2028\u2029ASEAN", "\x7f" * 50],
    ids=["bell-osc", "sse-injection", "line-separators", "del"],
)
def test_control_characters_get_a_normal_answer_or_a_4xx(api: TestClient, message: str, stream: bool) -> None:
    r = api.post("/v1/chat", json={"message": message, "stream": stream})
    assert r.status_code < 500
    if r.status_code == 200 and stream:
        events = parse_sse(r.text)
        # A message cannot forge events: one done, at the end.
        assert [n for n, _ in events].count("done") == 1 and events[-1][0] == "done"
    elif r.status_code == 200:
        assert isinstance(r.json()["answer"], str)


def test_a_huge_history_is_422_naming_the_field(api: TestClient) -> None:
    too_many = [{"role": "user", "content": "东盟"} for _ in range(51)]
    r = api.post("/v1/chat", json={"message": "hi", "history": too_many})
    assert r.status_code == 422 and r.json()["detail"].startswith("history")
    too_long = [{"role": "user", "content": "x" * 16_001}]
    r = api.post("/v1/chat", json={"message": "hi", "history": too_long})
    assert r.status_code == 422 and r.json()["detail"].startswith("history.0.content")


def test_a_history_over_the_body_limit_is_413(api: TestClient) -> None:
    history = [{"role": "user", "content": "x" * 16_000} for _ in range(10)]  # 160 kB > 64 KiB
    r = api.post("/v1/chat", json={"message": "hi", "history": history})
    assert r.status_code == 413
