"""`assistant model-server`: one chat model for several replicas, behind the bounded queue.

A small FastAPI app in front of an OpenAI-compatible server (the bundled model's llama.cpp
server, started here, or any other with `--upstream`): `POST /v1/chat/completions` takes a
place in a `ChatQueue` (ASSISTANT_LLM_CONCURRENCY answering, ASSISTANT_MAX_QUEUE waiting;
one more gets 503 + `Retry-After` at once, a wait past ASSISTANT_QUEUE_TIMEOUT too), holds
it while the upstream answers, and passes the answer through unchanged, streamed or not.
The place is given back when the answer ends or the client goes away (the upstream
connection is closed, so llama.cpp stops generating). `GET /v1/models` is passed through;
`/healthz` and `/readyz` say whether it and the upstream are up.

Replicas use it as any OpenAI-compatible endpoint:
`ASSISTANT_LLM=openai OPENAI_BASE_URL=http://model-host:8002/v1`.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from assistant.llm.queue import ChatQueue, ChatQueueFull, ChatQueueTimeout, Ticket
from assistant.settings import Settings

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 4_000_000  # a chat request: messages and history, never a file


def _error(status: int, message: str, kind: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """An error in OpenAI's shape, which every OpenAI client reads."""
    return JSONResponse({"error": {"message": message, "type": kind, "code": status}}, status, headers=headers)


def create_proxy(
    upstream: str,
    queue: ChatQueue,
    *,
    model: str | None = None,
    api_key: str | None = None,
    upstream_key: str | None = None,
    timeout: float = 300.0,
    ensure: Callable[[], object] | None = None,
) -> FastAPI:
    """The app: `upstream` is the OpenAI base URL (…/v1); `model` replaces the request's
    model name (the bundled server's own name); `api_key` is required as Bearer when set;
    `ensure` runs before each forwarded request (restarts a dead bundled server)."""
    base = upstream.rstrip("/")
    forward_headers = {"content-type": "application/json"}
    if upstream_key:
        forward_headers["authorization"] = f"Bearer {upstream_key}"

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        limits = httpx.Timeout(connect=10.0, read=timeout, write=timeout, pool=timeout)
        async with httpx.AsyncClient(timeout=limits, trust_env=False) as client:
            app.state.client = client
            yield

    app = FastAPI(title="assistant model-server", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.queue = queue

    def refused(request: Request) -> JSONResponse | None:
        if not api_key:
            return None
        given = request.headers.get("authorization", "")
        if hmac.compare_digest(given.encode(), f"Bearer {api_key}".encode()):
            return None
        return _error(401, "A valid Bearer key (ASSISTANT_MODEL_SERVER_KEY) is required.", "invalid_request_error")

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"ok": True, "queue": queue.snapshot()}

    @app.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        try:
            r = await request.app.state.client.get(f"{base}/models", headers=forward_headers, timeout=5.0)
            ok = r.status_code == 200
        except httpx.HTTPError:
            ok = False
        return JSONResponse({"ready": ok, "queue": queue.snapshot()}, 200 if ok else 503)

    @app.get("/v1/models")
    async def models(request: Request) -> Response:
        if (denied := refused(request)) is not None:
            return denied
        try:
            r = await request.app.state.client.get(f"{base}/models", headers=forward_headers)
        except httpx.HTTPError as exc:
            return _error(502, f"The model server's upstream cannot be reached ({type(exc).__name__}).", "server_error")
        return Response(r.content, r.status_code, media_type=r.headers.get("content-type"))

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        if (denied := refused(request)) is not None:
            return denied
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return _error(413, f"The request is larger than {MAX_BODY_BYTES} bytes.", "invalid_request_error")
        try:
            payload = json.loads(body)
            if not isinstance(payload, dict):
                raise ValueError("not an object")
        except ValueError:
            return _error(400, "The body must be a JSON object.", "invalid_request_error")
        if model:
            payload["model"] = model
            body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        stream = bool(payload.get("stream"))

        try:
            ticket = queue.admit()
        except ChatQueueFull as exc:
            return _error(503, str(exc), "server_busy", {"Retry-After": str(exc.retry_after)})
        try:
            await run_in_threadpool(ticket.acquire)
        except ChatQueueTimeout as exc:
            ticket.release()
            return _error(503, str(exc), "server_busy", {"Retry-After": str(queue.retry_after())})
        except BaseException:
            ticket.release()
            raise
        return await _forward(request, ticket, body, stream)

    async def _forward(request: Request, ticket: Ticket, body: bytes, stream: bool) -> Response:
        client: httpx.AsyncClient = request.app.state.client
        upstream_response: httpx.Response | None = None

        async def done() -> None:
            ticket.release()
            if upstream_response is not None:
                await upstream_response.aclose()

        try:
            if await request.is_disconnected():  # gave up while it waited
                await done()
                return Response(status_code=499)
            if ensure is not None:
                await run_in_threadpool(ensure)
            req = client.build_request("POST", f"{base}/chat/completions", content=body, headers=forward_headers)
            upstream_response = await client.send(req, stream=True)
        except Exception as exc:
            await done()
            log.warning("model-server upstream failed: %s", exc)
            return _error(502, f"The model server's upstream failed ({type(exc).__name__}).", "server_error")
        media_type = upstream_response.headers.get("content-type", "application/json")
        if not stream or "text/event-stream" not in media_type:
            try:
                content = await upstream_response.aread()
            except httpx.HTTPError as exc:
                return _error(502, f"The model server's upstream broke off ({type(exc).__name__}).", "server_error")
            finally:
                await done()
            return Response(content, upstream_response.status_code, media_type=media_type)

        response = upstream_response

        async def relay() -> AsyncIterator[bytes]:
            try:
                async for part in response.aiter_raw():
                    yield part
            except httpx.HTTPError as exc:  # the upstream broke off: end the stream as it did
                log.warning("model-server upstream stream broke: %s", exc)
            finally:
                await done()

        # `done` runs as the background task too: when the client goes away before the
        # stream starts, the generator's `finally` never runs (release is idempotent).
        return StreamingResponse(
            relay(),
            status_code=response.status_code,
            media_type=media_type,
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            background=BackgroundTask(done),
        )

    return app


def serve_model(settings: Settings, *, host: str, port: int, upstream: str | None) -> None:
    """Run the model server until interrupted: the bundled model (started here and stopped
    on exit) or `upstream`, behind the queue the settings ask for."""
    import click
    import uvicorn

    from assistant.llm.base import ChatModelError
    from assistant.llm.model_file import ModelFileError, ensure_model_file
    from assistant.llm.queue import queue_for
    from assistant.llm.server import LocalModelError, LocalModelServer

    server: LocalModelServer | None = None
    if upstream is None:
        try:
            path = ensure_model_file(settings.models_dir, custom_path=settings.local_model_path, progress=True)
            server = LocalModelServer(
                path,
                threads=settings.local_threads,
                n_ctx=settings.local_ctx,
                log_path=settings.cache_dir / "llama-server.log",
                start_timeout=settings.local_start_timeout,
            )
            click.echo(f"Starting the bundled model ({path.name})…", err=True)
            server.start()
        except (ModelFileError, LocalModelError) as exc:
            raise ChatModelError(str(exc)) from exc
    queue = queue_for(settings, "local" if server is not None else "openai")
    key = settings.model_server_key.get_secret_value() if settings.model_server_key else None
    upstream_key = settings.openai_api_key.get_secret_value() if settings.openai_api_key and upstream else None
    app = create_proxy(
        server.base_url if server is not None else str(upstream),
        queue,
        model=server.model_name if server is not None else None,
        api_key=key,
        upstream_key=upstream_key,
        timeout=settings.llm_deadline,
        ensure=server.ensure_running if server is not None else None,
    )
    click.echo(
        f"Model server on http://{host}:{port}/v1 ({queue.concurrency} answering, {queue.max_waiting} waiting; "
        f"upstream {'the bundled model' if server is not None else upstream})",
        err=True,
    )
    try:
        uvicorn.run(app, host=host, port=port, timeout_graceful_shutdown=3, log_level="info", access_log=False)
    finally:
        if server is not None:
            server.stop()
