"""GET /metrics: per-route requests and latency, retrieval and model time, the queue, fallbacks,
refusals and the widget's rejections, with route templates as labels; refused in production
without the admin token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from assistant.llm.base import ChatModelError
from assistant.llm.queue import ChatQueue
from assistant.partners.store import PartnerStore
from assistant.service import Assistant
from assistant.web.api import create_app
from assistant.web.api.metrics import Metrics, route_template
from tests.conftest import make_settings

QUESTION = "Which technology transfer center serves ASEAN countries?"
PAGE = "https://www.partner.example"
ADMIN = "adm-7f3c9e1b5d2a48c6b0e4f1a9d3c7e5b2"
API_KEY = "api-key-4b8e2d6f0a1c3e5b7d9f2a4c6e8b0d1f"


def samples(client: TestClient, **headers: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """The scrape as {(sample name, labels): value}."""
    r = client.get("/metrics", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    found = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            found[(s.name, frozenset(s.labels.items()))] = s.value
    return found


def value(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


class QueuedModel:
    """A chat model behind the real queue; `fail` makes every call a ChatModelError."""

    backend = "openai"

    def __init__(self, fail: bool = False) -> None:
        self.queue = ChatQueue(concurrency=1, max_waiting=0, wait_timeout=5)
        self.fail = fail

    def stream(self, messages: object, *, max_tokens: int, schema: object = None, token_bias: object = None, prefix: str = "") -> Iterator[str]:
        with self.queue.turn():
            if self.fail:
                raise ChatModelError("the model is down")
            yield "The China–ASEAN Technology Transfer Center serves ASEAN countries [1]."

    def complete(self, messages: object, *, max_tokens: int) -> str:
        return "".join(self.stream(messages, max_tokens=max_tokens))

    def ready(self) -> tuple[bool, str]:
        return True, "queued"

    def close(self) -> None:
        pass


@pytest.fixture
def queued(index_dir: Path, embedder, tmp_path: Path) -> Iterator[tuple[Assistant, QueuedModel]]:  # type: ignore[no-untyped-def]
    model = QueuedModel()
    settings = make_settings(
        ASSISTANT_INDEX_DIR=index_dir, ASSISTANT_LLM="openai", ASSISTANT_STATE_DIR=tmp_path / "s"
    )
    a = Assistant(settings, embedder, model)  # type: ignore[arg-type]
    yield a, model
    a.close()


def test_requests_are_counted_by_route_template_and_status(client: TestClient) -> None:
    assert client.post("/v1/search", json={"query": QUESTION, "k": 3}).status_code == 200
    chat = client.post("/v1/chat", json={"message": QUESTION})
    assert chat.status_code == 200
    assert client.get("/v1/documents/no-such-document").status_code == 404
    big = b'{"message": "' + b"x" * 1_100_000 + b'"}'
    assert (
        client.post("/v1/chat", content=big, headers={"Content-Type": "application/json"}).status_code == 413
    )
    assert client.get("/no/such/page").status_code == 404

    m = samples(client)
    assert value(m, "http_requests_total", method="POST", route="/v1/search", status="200") == 1
    assert value(m, "http_requests_total", method="POST", route="/v1/chat", status="200") == 1
    assert value(m, "http_requests_total", method="GET", route="/v1/documents/{doc_id}", status="404") == 1
    assert value(m, "http_requests_total", method="POST", route="/v1/chat", status="413") == 1
    assert value(m, "http_requests_total", method="GET", route="other", status="404") == 1
    assert value(m, "http_request_duration_seconds_count", method="POST", route="/v1/search") == 1
    # Never the raw path: bounded label values.
    routes = {dict(labels).get("route") for name, labels in m if name == "http_requests_total"}
    assert not any("no-such" in str(r) for r in routes), routes
    # The service's own numbers: one search, one chat turn (extractive: no model time).
    assert value(m, "retrieval_seconds_count", kind="search") == 1
    assert value(m, "retrieval_seconds_count", kind="chat") == 1
    grounded = "true" if chat.json()["grounded"] else "false"
    assert value(m, "answers_total", grounded=grounded) == 1
    assert value(m, "model_seconds_count") == 0
    assert value(m, "chat_fallbacks_total", reason="model_error") == 0
    assert value(m, "chat_queue_length") == 0


def test_a_refusal_is_an_answer_not_grounded(client: TestClient) -> None:
    r = client.post("/v1/chat", json={"message": "What is the boiling point of mercury on Mars?"})
    assert r.status_code == 200 and r.json()["grounded"] is False
    assert value(samples(client), "answers_total", grounded="false") == 1


def test_each_app_has_its_own_registry(assistant: Assistant) -> None:
    with TestClient(create_app(assistant=assistant, with_ui=False)) as one:
        one.get("/healthz")
        one.get("/healthz")
    with TestClient(create_app(assistant=assistant, with_ui=False)) as two:
        two.get("/healthz")
        assert value(samples(two), "http_requests_total", method="GET", route="/healthz", status="200") == 1


def test_the_queue_gauge_shows_a_held_place_and_refusals(queued: tuple[Assistant, QueuedModel]) -> None:
    a, model = queued
    with TestClient(create_app(assistant=a, with_ui=False)) as c:
        m = samples(c)
        assert value(m, "chat_queue_length") == 0
        assert value(m, "chat_queue_capacity") == 1
        ticket = model.queue.admit()  # a chat holds the only place
        try:
            m = samples(c)
            assert value(m, "chat_queue_length") == 1
            assert c.post("/v1/chat", json={"message": QUESTION}).status_code == 503
            m = samples(c)
            assert value(m, "chat_queue_refused_total") == 1
            assert value(m, "http_requests_total", method="POST", route="/v1/chat", status="503") == 1
        finally:
            ticket.release()
        assert value(samples(c), "chat_queue_length") == 0


def test_model_time_is_recorded_per_answer(queued: tuple[Assistant, QueuedModel]) -> None:
    a, _ = queued
    with TestClient(create_app(assistant=a, with_ui=False)) as c:
        r = c.post("/v1/chat", json={"message": QUESTION, "stream": True})
        assert r.status_code == 200
        m = samples(c)
    assert value(m, "model_seconds_count") == 1
    assert value(m, "retrieval_seconds_count", kind="chat") == 1
    assert value(m, "answers_total", grounded="true") + value(m, "answers_total", grounded="false") == 1
    assert sum(v for (name, _), v in m.items() if name == "chat_fallbacks_total") == 0


def test_a_failed_model_call_counts_as_a_fallback(queued: tuple[Assistant, QueuedModel]) -> None:
    a, model = queued
    model.fail = True
    with TestClient(create_app(assistant=a, with_ui=False)) as c:
        r = c.post("/v1/chat", json={"message": QUESTION})
        assert r.status_code == 200 and r.json()["backend"] == "extractive"
        m = samples(c)
    assert value(m, "chat_fallbacks_total", reason="model_error") == 1


def test_no_model_at_start_counts_as_a_fallback(index_dir: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(ASSISTANT_INDEX_DIR=index_dir, ASSISTANT_LLM="openai")
    a = Assistant(settings, embedder, None, chat_error="no server")
    with TestClient(create_app(assistant=a, with_ui=False)) as c:
        assert c.post("/v1/chat", json={"message": QUESTION}).status_code == 200
        assert value(samples(c), "chat_fallbacks_total", reason="no_model") == 1


def test_widget_rejections_are_counted_by_reason(assistant: Assistant, tmp_path: Path) -> None:
    app = create_app(assistant=assistant, with_ui=False)
    store = PartnerStore.from_settings(make_settings(ASSISTANT_STATE_DIR=tmp_path / "state"))
    _, key = store.add("partner", [PAGE], per_minute=1, per_day=100)
    app.state.partners = store
    try:
        with TestClient(app) as c:
            chat = "/v1/widget/chat"
            body = {"message": QUESTION}
            assert c.post(chat, json=body, headers={"X-Partner-Key": key}).status_code == 403
            assert c.post(chat, json=body, headers={"Origin": PAGE}).status_code == 401
            assert (
                c.post(chat, json=body, headers={"Origin": PAGE, "X-Partner-Key": "pk_nope"}).status_code
                == 401
            )
            assert (
                c.post(
                    chat, json=body, headers={"Origin": "https://evil.example", "X-Partner-Key": key}
                ).status_code
                == 403
            )
            assert (
                c.post(chat, json={"message": ""}, headers={"Origin": PAGE, "X-Partner-Key": key}).status_code
                == 422
            )
            assert c.post(chat, json=body, headers={"Origin": PAGE, "X-Partner-Key": key}).status_code == 200
            assert c.post(chat, json=body, headers={"Origin": PAGE, "X-Partner-Key": key}).status_code == 429
            big = b'{"message": "' + b"x" * 70_000 + b'"}'
            headers = {"Origin": PAGE, "X-Partner-Key": key, "Content-Type": "application/json"}
            assert c.post(chat, content=big, headers=headers).status_code == 413
            m = samples(c)
    finally:
        store.close()
    counted = {
        dict(labels)["reason"]: v for (name, labels), v in m.items() if name == "widget_rejections_total"
    }
    assert counted["origin_missing"] == 1
    assert counted["key_missing"] == 1
    assert counted["key_invalid"] == 1
    assert counted["origin"] == 1
    assert counted["body"] == 2  # the 422 and the middleware's 413
    assert counted["quota_partner"] == 1


def production(index_dir: Path, embedder, **extra: object) -> Assistant:  # type: ignore[no-untyped-def]
    settings = make_settings(
        ASSISTANT_INDEX_DIR=index_dir,
        ASSISTANT_ENV="production",
        ASSISTANT_ADMIN_TOKEN=ADMIN,
        ASSISTANT_API_KEYS=API_KEY,
        **extra,
    )
    return Assistant(settings, embedder, None)


def test_production_metrics_need_the_admin_token(index_dir: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    a = production(index_dir, embedder)
    with TestClient(create_app(assistant=a, with_ui=False)) as c:
        assert c.get("/metrics").status_code == 401
        assert c.get("/metrics", headers={"Authorization": f"Bearer {API_KEY}"}).status_code == 401
        assert c.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        ok = c.get("/metrics", headers={"Authorization": f"Bearer {ADMIN}"})
        assert ok.status_code == 200 and "http_requests_total" in ok.text
        assert ADMIN not in ok.text and API_KEY not in ok.text


def test_production_metrics_can_be_made_public(index_dir: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    a = production(index_dir, embedder, ASSISTANT_PUBLIC_METRICS=True)
    with TestClient(create_app(assistant=a, with_ui=False)) as c:
        assert c.get("/metrics").status_code == 200


def test_openmetrics_is_served_when_asked(client: TestClient) -> None:
    r = client.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/openmetrics-text")
    assert r.text.rstrip().endswith("# EOF")


def test_route_templates_of_unknown_methods_and_mounts(client: TestClient) -> None:
    app = client.app
    scope = {"type": "http", "method": "BREW", "path": "/v1/search", "root_path": "", "headers": []}
    assert route_template(app, scope) == "/v1/search"  # type: ignore[arg-type]
    client.request("BREW", "/v1/search")
    assert (
        value(samples(client), "http_requests_total", method="other", route="/v1/search", status="405") == 1
    )


def test_metrics_without_a_queue_are_zero() -> None:
    body, content_type = Metrics().exposition()
    assert b"chat_queue_length 0.0" in body
    assert content_type.startswith("text/plain")
