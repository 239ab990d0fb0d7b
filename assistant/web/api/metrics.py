"""Prometheus metrics of one app, `GET /metrics`, and the server's access log line.

Each app has its own `Metrics` (`app.state.metrics`, its own `CollectorRegistry`, never
the process-wide default), made by `operations.install`:

- `http_requests_total{method,route,status}` and `http_request_duration_seconds{method,route}`,
  recorded by `MetricsMiddleware` for every HTTP response, those that other middleware
  answers (413, 401) and 500s included; `route` is the matched route's template
  (`/v1/documents/{doc_id}`; the Gradio mount as `/ui/{path}`), `other` when no route
  matches, and `method` one of the standard methods or `other`, so that clients cannot
  make new series; a stream's duration runs to its last byte;
- `retrieval_seconds{kind="chat|search"}`, `model_seconds` (time inside chat model calls per
  answer), `answers_total{grounded="true|false"}` (false: the documents do not state it,
  a refusal) and `chat_fallbacks_total{reason}`, which the service tells through
  `Assistant.observer` (`assistant.telemetry.observe`);
- `chat_queue_length` (chats holding a place in the chat model's queue: answering or
  waiting), `chat_queue_waiting`, `chat_queue_running`, `chat_queue_capacity` and
  `chat_queue_refused_total` (503 busy), read from the `ChatQueue` when scraped;
- `widget_rejections_total{reason}`: the widget's refusals (`widget_rejected`, called where
  `routers/widget.py` refuses), reasons in `WIDGET_REASONS`.

`GET /metrics` answers the text exposition format: open in development; in production
only with `Authorization: Bearer <ASSISTANT_ADMIN_TOKEN>` or `ASSISTANT_PUBLIC_METRICS=true`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from fastapi.routing import iter_route_contexts
from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant.llm.queue import ChatQueue
from assistant.telemetry.logs import ACCESS_LOGGER
from assistant.web.api.routers.admin import require_admin

log = logging.getLogger(__name__)
access_log = logging.getLogger(ACCESS_LOGGER)
router = APIRouter(tags=["operations"])
# No `_created` series beside every counter and histogram (a process-wide switch of the client).
disable_created_metrics()

# Seconds: from a cached search to a long streamed answer on a small CPU.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER = "other"
FALLBACK_REASONS = ("no_model", "queue_timeout", "model_error")
WIDGET_REASONS = (
    "origin_missing",  # no Origin header (403)
    "key_missing",  # no X-Partner-Key (401)
    "key_invalid",  # unknown or revoked key (401)
    "throttled",  # too many failed key checks (429)
    "origin",  # the origin is not on the partner's allowlist (403)
    "body",  # too large or not a valid chat request (413, 422)
    "busy",  # the chat model's queue is full, or no index (503)
    "quota_partner",  # the partner's per-minute or per-day quota (429)
    "quota_visitor",  # one visitor's share of it (429)
)
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})  # access-logged at DEBUG only


class Metrics:
    """One app's metrics; also the service's `observe.Observer`."""

    def __init__(self, queue: Callable[[], ChatQueue | None] = lambda: None) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.http_requests = Counter(
            "http_requests_total",
            "HTTP responses by method, route template and status.",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_duration = Histogram(
            "http_request_duration_seconds",
            "Time to the last byte of a response, by method and route template.",
            ["method", "route"],
            buckets=BUCKETS,
            registry=r,
        )
        self.retrieval_seconds = Histogram(
            "retrieval_seconds",
            "Retrieval (dense + BM25, fused) per chat turn or search.",
            ["kind"],
            buckets=BUCKETS,
            registry=r,
        )
        self.model_seconds = Histogram(
            "model_seconds",
            "Time inside chat model calls per answer (follow-up rewrite included).",
            buckets=BUCKETS,
            registry=r,
        )
        self.answers = Counter(
            "answers_total",
            "Chat answers; grounded=false: the documents do not state it (a refusal).",
            ["grounded"],
            registry=r,
        )
        self.fallbacks = Counter(
            "chat_fallbacks_total",
            "Answers from the documents' sentences when the chat model should have answered.",
            ["reason"],
            registry=r,
        )
        self.widget_rejections = Counter(
            "widget_rejections_total",
            "Widget requests refused, by reason.",
            ["reason"],
            registry=r,
        )
        for grounded in ("true", "false"):
            self.answers.labels(grounded)
        for reason in FALLBACK_REASONS:
            self.fallbacks.labels(reason)
        for reason in WIDGET_REASONS:
            self.widget_rejections.labels(reason)
        for kind in ("chat", "search"):
            self.retrieval_seconds.labels(kind)
        r.register(QueueCollector(queue))

    # ------------------------------------------------------------------ HTTP

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method if method in METHODS else OTHER
        self.http_requests.labels(method, route, str(status)).inc()
        self.http_duration.labels(method, route).observe(seconds)

    # ------------------------------------------------------------------ the service (observe.Observer)

    def retrieval(self, seconds: float, kind: str) -> None:
        self.retrieval_seconds.labels(kind if kind in ("chat", "search") else OTHER).observe(seconds)

    def model(self, seconds: float) -> None:
        self.model_seconds.observe(seconds)

    def answered(self, grounded: bool, fallback: str | None) -> None:
        self.answers.labels("true" if grounded else "false").inc()
        if fallback is not None:
            self.fallbacks.labels(fallback if fallback in FALLBACK_REASONS else OTHER).inc()

    # ------------------------------------------------------------------ the widget

    def widget_rejected(self, reason: str) -> None:
        self.widget_rejections.labels(reason if reason in WIDGET_REASONS else OTHER).inc()

    def exposition(self, accept: str = "") -> tuple[bytes, str]:
        """The metrics in the format `accept` asks for (Prometheus text 0.0.4 by default), and its content type."""
        encode, content_type = choose_encoder(accept)
        return encode(self.registry), content_type


class QueueCollector:
    """The chat model queue's state, read when scraped (zeros without a chat model)."""

    def __init__(self, queue: Callable[[], ChatQueue | None]) -> None:
        self.queue = queue

    def collect(self) -> Iterable[Metric]:
        try:
            chat_queue = self.queue()
        except Exception:  # no assistant yet, or one being replaced: report an empty queue
            chat_queue = None
        snap = chat_queue.snapshot() if chat_queue is not None else {}
        gauges = (
            (
                "chat_queue_length",
                "Chats holding a place in the chat model's queue (answering or waiting).",
                "admitted",
            ),
            ("chat_queue_waiting", "Chats waiting for the chat model.", "waiting"),
            ("chat_queue_running", "Chats the chat model is answering.", "running"),
            (
                "chat_queue_capacity",
                "Places in the queue (ASSISTANT_LLM_CONCURRENCY + ASSISTANT_MAX_QUEUE).",
                "capacity",
            ),
        )
        for name, text, key in gauges:
            yield GaugeMetricFamily(name, text, value=snap.get(key, 0))
        yield CounterMetricFamily(
            "chat_queue_refused",
            "Chats refused at once because the queue was full (503).",
            value=snap.get("refused", 0),
        )


def metrics_of(app: Any) -> Metrics | None:
    """The app's `Metrics`, or None (an app built without them)."""
    state = getattr(app, "state", None)
    found = getattr(state, "metrics", None)
    return found if isinstance(found, Metrics) else None


def widget_rejected(request: Request, reason: str) -> None:
    """Count one widget refusal on the request's app (the widget router's hook)."""
    found = metrics_of(request.app)
    if found is not None:
        found.widget_rejected(reason)


def route_template(app: FastAPI, scope: Scope) -> str:
    """The template of the route `scope` matches (first full match, else a method mismatch), or `other`."""
    partial: str | None = None
    for route in iter_route_contexts(app.routes):
        try:
            match, _ = route.matches(scope)
        except Exception:
            continue
        path = getattr(route, "path_format", None) or getattr(route, "path", None)
        if match == Match.FULL:
            return str(path) if path else OTHER
        if match == Match.PARTIAL and partial is None and path:
            partial = str(path)
    return partial or OTHER


class MetricsMiddleware:
    """Counts and times every HTTP response, and writes its access log line. Pure ASGI."""

    def __init__(self, app: ASGIApp, fastapi_app: FastAPI) -> None:
        self.app = app
        self.fastapi_app = fastapi_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        route = route_template(self.fastapi_app, scope)
        status = 500

        async def send_counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_counted)
        finally:
            seconds = time.perf_counter() - started
            method = str(scope.get("method", ""))
            found = metrics_of(self.fastapi_app)
            if found is not None:
                found.request(method, route, status, seconds)
            path = str(scope.get("path", ""))
            level = logging.DEBUG if route in QUIET_ROUTES else logging.INFO
            if access_log.isEnabledFor(level):
                access_log.log(
                    level,
                    "%s %s %d %.1f ms",
                    method,
                    path,
                    status,
                    seconds * 1000,
                    extra={
                        "method": method,
                        "route": route,
                        "path": path,
                        "status": status,
                        "duration_ms": round(seconds * 1000, 1),
                    },
                )


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """Prometheus text exposition: open in development, else the admin token or ASSISTANT_PUBLIC_METRICS."""
    settings = request.app.state.assistant.settings
    if settings.env != "development" and not settings.public_metrics:
        require_admin(request)
    found = metrics_of(request.app) or Metrics()
    body, content_type = found.exposition(request.headers.get("accept", ""))
    return Response(body, headers={"Content-Type": content_type})
