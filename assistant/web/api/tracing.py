"""OpenTelemetry traces of every request, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.

With the setting (an OTLP/HTTP collector's base URL, e.g. `http://localhost:4318`), the
app is instrumented with `opentelemetry-instrumentation-fastapi` (one server span per
request, named by its route template) and spans are exported in batches to
`<endpoint>/v1/traces`, as service `OTEL_SERVICE_NAME`. The tracer provider is the app's
own (never the process-wide one). Without the setting nothing of OpenTelemetry is imported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

from assistant.settings import Settings
from assistant.telemetry.logs import current_request_id

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

# Not traced: probes and scrapes (regexes, as the instrumentation takes them).
EXCLUDED_URLS = "/healthz,/readyz,/metrics"


def install(app: FastAPI, settings: Settings, exporter: SpanExporter | None = None) -> Any:
    """Instrument `app` when an endpoint is set (or `exporter` is given); its tracer provider, or None."""
    if not settings.otlp_endpoint and exporter is None:
        return None
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": settings.otel_service_name}))
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = str(settings.otlp_endpoint).rstrip("/") + "/v1/traces"
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    else:  # tests: an in-memory exporter, spans at once
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=provider, excluded_urls=EXCLUDED_URLS, server_request_hook=_with_request_id
    )
    app.state.tracer_provider = provider
    return provider


def _with_request_id(span: Any, scope: dict[str, Any]) -> None:
    """The request id (X-Request-ID) on the request's span, to find its log lines."""
    rid = current_request_id()
    if rid and span is not None and span.is_recording():
        span.set_attribute("http.request.id", rid)
