"""OpenTelemetry: a span per request (named by route template, with the request id) when an
OTLP endpoint is set; nothing at all when it is not."""

from __future__ import annotations

from fastapi.testclient import TestClient
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from assistant.service import Assistant
from assistant.web.api import create_app, operations
from tests.conftest import make_settings

QUESTION = "Which technology transfer center serves ASEAN countries?"


def test_no_endpoint_no_tracing(client: TestClient) -> None:
    assert getattr(client.app.state, "tracer_provider", None) is None  # type: ignore[attr-defined]
    assert make_settings().otlp_endpoint is None
    assert make_settings(OTEL_EXPORTER_OTLP_ENDPOINT="").otlp_endpoint is None


def test_spans_are_named_by_route_and_carry_the_request_id(assistant: Assistant) -> None:
    app = create_app(assistant=assistant, with_ui=False)
    exporter = InMemorySpanExporter()
    operations.install_tracing(app, exporter=exporter)
    with TestClient(app) as c:
        r = c.post("/v1/search", json={"query": QUESTION, "k": 2}, headers={"X-Request-ID": "span-1"})
        assert r.status_code == 200 and r.headers["X-Request-ID"] == "span-1"
        c.get("/healthz")  # not traced
        c.get("/metrics")  # not traced
    spans = exporter.get_finished_spans()
    servers = [s for s in spans if s.name == "POST /v1/search"]
    assert servers, [s.name for s in spans]
    attrs = servers[0].attributes or {}
    assert attrs.get("http.route") == "/v1/search"
    assert attrs.get("http.request.id") == "span-1"
    assert not any("healthz" in s.name or "metrics" in s.name for s in spans)


def test_an_endpoint_installs_an_exporter(index_dir, embedder) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(ASSISTANT_INDEX_DIR=index_dir, OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9/")
    a = Assistant(settings, embedder, None)
    app = create_app(assistant=a, with_ui=False)
    provider = app.state.tracer_provider
    assert provider is not None
    provider.shutdown()  # nothing was traced: nothing to send to the (closed) port
