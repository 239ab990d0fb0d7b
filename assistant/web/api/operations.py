"""Operations for one app: request ids, Prometheus metrics, OpenTelemetry traces.

`install(app)` (called by `create_app` once its routes are in place):

- traces (`tracing.install`) when `OTEL_EXPORTER_OTLP_ENDPOINT` is set;
- `app.state.metrics` (`metrics.Metrics`), told by the service too (`Assistant.observer`),
  and `GET /metrics`;
- the request id and metrics middleware outside everything else, Starlette's error
  middleware included: `RequestIdMiddleware(MetricsMiddleware(<the app's stack>))`, so
  that every response (413, 401, 500, streams) carries `X-Request-ID` and is counted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from starlette.types import ASGIApp

from assistant.web.api import metrics, tracing
from assistant.web.api.request_id import RequestIdMiddleware

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter


def install(app: FastAPI) -> metrics.Metrics:
    assistant = app.state.assistant
    install_tracing(app)  # first: the instrumentation wraps Starlette's own stack
    recorder = metrics.Metrics(queue=lambda: app.state.assistant.queue)
    app.state.metrics = recorder
    assistant.observer = recorder
    app.include_router(metrics.router)
    _wrap(app)
    return recorder


def install_tracing(app: FastAPI, exporter: SpanExporter | None = None) -> Any:
    """`tracing.install` under this module's middleware (also after `install`: tests' exporters)."""
    inner = getattr(app.__dict__.get("build_middleware_stack"), "inner", None)
    if inner is not None:
        app.build_middleware_stack = inner  # type: ignore[method-assign]
    provider = tracing.install(app, app.state.assistant.settings, exporter)
    if inner is not None:
        _wrap(app)
    return provider


def _wrap(app: FastAPI) -> None:
    build = app.build_middleware_stack

    def build_middleware_stack() -> ASGIApp:
        return RequestIdMiddleware(metrics.MetricsMiddleware(build(), app))

    build_middleware_stack.inner = build  # type: ignore[attr-defined]
    app.build_middleware_stack = build_middleware_stack  # type: ignore[method-assign]
