"""The embeddable chat widget: GET /widget.js and POST /v1/widget/chat (partner key + Origin).

Every widget request is checked in this order, each failure a JSON `{"detail": …}`:

1. `Origin` present and a web origin, else 403;
2. `X-Partner-Key` names an active partner, else 401; after too many failed key checks
   from one client address (or for one key id, wrong secrets only) 429 with
   `Retry-After`, without checking (see `assistant.partners.store`);
3. the Origin is on that partner's allowlist, else 403 with one generic text (and no
   CORS header: the browser hides the answer from a page that is not allowed);
4. the body is a valid chat request, else 422;
5. the partner's per-minute and per-day quotas, and the visitor's below them, have
   room, else 429 with `Retry-After`.

The client address is the socket peer's, or with `ASSISTANT_TRUSTED_PROXY_HEADER` set
(behind a reverse proxy) the right-most address of that header: the one the proxy
appended, which a client cannot choose. Refusals of a known partner are counted per
day and reason, never stored per request (`PartnerStore.log_refusal`).

Then the answer streams exactly like `POST /v1/chat` (`token` events, one `done`).
CORS is answered only for allowed origins, preflights included.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from assistant.admission import admit
from assistant.errors import AssistantError
from assistant.partners.origins import request_origin
from assistant.partners.store import KeyCheck, Partner, PartnerStore
from assistant.pipeline.answer import Turn
from assistant.service import Assistant
from assistant.web.api.deps import client_address, state_once
from assistant.web.api.errors import validation_detail
from assistant.web.api.metrics import widget_rejected
from assistant.web.api.schemas import ChatRequest, ChatResponse, ErrorBody
from assistant.web.api.session import passage_link
from assistant.web.api.turns import respond

log = logging.getLogger(__name__)
router = APIRouter(tags=["widget"])

WIDGET_JS = Path(__file__).resolve().parents[2] / "static" / "widget.js"
CHAT_PATH = "/v1/widget/chat"
KEY_HEADER = "X-Partner-Key"
ALLOWED_HEADERS = f"Content-Type, {KEY_HEADER}"
PREFLIGHT_MAX_AGE = "600"
MAX_BODY_BYTES = 4_000_000  # a message and 50 history turns of Chinese text fit
NOT_ALLOWED = "This page's origin is not allowed to use the widget with this partner key."

def get_partners(request: Request) -> PartnerStore:
    """The app's partner store (`app.state.partners`), opened from the settings on first use."""
    state = request.app.state

    def make() -> PartnerStore:
        databases = getattr(state, "databases", None)  # the factory's; else the store's own
        return PartnerStore.from_settings(state.assistant.settings, databases.partners if databases is not None else None)

    return state_once(state, "partners", make)


# ---------------------------------------------------------------------- widget.js


@router.get(
    "/widget.js",
    response_class=Response,
    responses={200: {"content": {"text/javascript": {}}, "description": "The chat widget script."}},
)
def widget_js(request: Request) -> Response:
    """The embeddable widget: one `<script src=…/widget.js data-partner-key=…>` on a partner page."""
    body = WIDGET_JS.read_bytes()
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {
        "Cache-Control": "public, max-age=300",
        "ETag": etag,
        "X-Content-Type-Options": "nosniff",
        # Partners load it cross-origin, also from pages with COEP.
        "Cross-Origin-Resource-Policy": "cross-origin",
        "Access-Control-Allow-Origin": "*",
    }
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="text/javascript; charset=utf-8", headers=headers)


# ---------------------------------------------------------------------------- CORS


def _cors(origin: str) -> dict[str, str]:
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Expose-Headers": "Retry-After",
        "Vary": "Origin",
    }


def error_response(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """A widget route's error: `{"detail"}` with `Vary: Origin` and the CORS headers given."""
    return JSONResponse({"detail": detail}, status_code=status, headers={"Vary": "Origin", **(headers or {})})


_error = error_response


@router.options(CHAT_PATH, include_in_schema=False)
async def widget_preflight(request: Request) -> Response:
    """CORS preflight: answered only for origins that some active partner allows."""
    raw = request.headers.get("origin")
    origin = request_origin(raw)
    store = get_partners(request)
    if raw is None or origin is None or not await run_in_threadpool(store.origin_known, origin):
        return _error(403, "This page's origin is not allowed to use the widget.")
    return Response(
        status_code=204,
        headers={
            "Access-Control-Allow-Origin": raw,
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": ALLOWED_HEADERS,
            "Access-Control-Max-Age": PREFLIGHT_MAX_AGE,
            "Vary": "Origin",
        },
    )


# ---------------------------------------------------------------------------- chat


@dataclass(frozen=True)
class Caller:
    """A widget request that passed the partner checks: whose, from which page and address,
    and the CORS headers its answers carry."""

    partner: Partner
    origin: str
    address: str
    cors: dict[str, str]


async def authenticate(request: Request, store: PartnerStore) -> Caller | Response:
    """The partner checks every widget route makes (Origin, `X-Partner-Key`, the failure
    throttle, the partner's allowed origins), or the error response that refuses it."""
    raw = request.headers.get("origin")
    origin = request_origin(raw)
    if raw is None or origin is None:
        widget_rejected(request, "origin_missing")
        return _error(403, "Origin header missing: the widget answers only pages of allowed partner sites.")
    known = await run_in_threadpool(store.origin_known, origin)
    cors = _cors(raw) if known else {}
    key = request.headers.get(KEY_HEADER, "").strip()
    if not key:
        widget_rejected(request, "key_missing")
        return _error(401, f"{KEY_HEADER} header missing: set data-partner-key on the widget's script tag.", cors)
    address = client_address(request)
    # A throttled address is answered here, without a thread or a database read.
    check = KeyCheck(None, store.address_retry_after(address))
    if not check.retry_after:
        check = await run_in_threadpool(store.check_key, key, address)
    if wait := check.retry_after:
        widget_rejected(request, "throttled")
        return _error(
            429,
            f"Too many failed partner key checks; retry in {wait} s.",
            {**cors, "Retry-After": str(wait)},
        )
    partner = check.partner
    if partner is None:
        widget_rejected(request, "key_invalid")
        return _error(401, "Partner key not valid or revoked; ask the assistant's operator for a key.", cors)
    if not partner.allows(origin):
        # Counted per day, not logged with the (attacker-chosen) Origin; the text names no origin.
        await run_in_threadpool(store.log_refusal, partner.id, 403, "origin")
        widget_rejected(request, "origin")
        return _error(403, NOT_ALLOWED)
    return Caller(partner, origin, address, _cors(raw))


@router.post(
    CHAT_PATH,
    response_model=ChatResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "Like POST /v1/chat: JSON, or with stream=true `token` events then one `done`.",
        },
        401: {"model": ErrorBody, "description": "Missing, unknown or revoked partner key."},
        403: {"model": ErrorBody, "description": "Origin missing or not allowed for this key."},
        422: {"model": ErrorBody},
        429: {
            "model": ErrorBody,
            "description": "Over the partner's or the visitor's quota, or too many failed key checks;"
            " `Retry-After` says when to retry.",
        },
        503: {"model": ErrorBody},
    },
    openapi_extra={
        "parameters": [
            {"name": KEY_HEADER, "in": "header", "required": True, "schema": {"type": "string"}},
            {"name": "Origin", "in": "header", "required": True, "schema": {"type": "string"}},
        ],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ChatRequest"}}},
        },
    },
)
async def widget_chat(request: Request) -> Response:
    """A cited answer for a partner page: `X-Partner-Key` and `Origin` are checked on every request."""
    started = time.perf_counter()
    store = get_partners(request)
    caller = await authenticate(request, store)
    if isinstance(caller, Response):
        return caller
    partner, origin, address, cors = caller.partner, caller.origin, caller.address, caller.cors
    try:
        return await _answer(request, store, partner, origin, address, cors, started)
    except Exception:  # never a bare 500 without CORS headers: the widget could not read it
        log.exception("widget chat failed")
        return _error(500, "The answer failed on the server; try again.", cors)


async def _answer(
    request: Request,
    store: PartnerStore,
    partner: Partner,
    origin: str,
    address: str,
    cors: dict[str, str],
    started: float,
) -> Response:
    def ms() -> float:
        return (time.perf_counter() - started) * 1000

    assistant: Assistant = request.app.state.assistant
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        await run_in_threadpool(store.log_refusal, partner.id, 413, "body")
        widget_rejected(request, "body")
        return _error(413, f"body: at most {MAX_BODY_BYTES} bytes.", cors)
    body, problem = _parse(await request.body())
    if body is None:
        await run_in_threadpool(store.log_refusal, partner.id, 422, "body")
        widget_rejected(request, "body")
        return _error(422, problem, cors)
    try:
        turn = admit(assistant, body.message, [Turn(t.role, t.content) for t in body.history])
    except AssistantError as exc:
        await run_in_threadpool(store.log_refusal, partner.id, exc.status, "busy")
        widget_rejected(request, "body" if exc.status == 422 else "busy")
        return _error(exc.status, str(exc), {**cors, **exc.headers()})
    admission = await run_in_threadpool(store.admit, partner, origin, address)
    if not admission.ok:
        turn.release()
        widget_rejected(request, f"quota_{admission.scope}")
        whose = "this visitor" if admission.scope == "visitor" else "this partner"
        return _error(
            429,
            f"Quota exceeded for {whose} ({admission.reason}); retry in {admission.retry_after} s.",
            {**cors, "Retry-After": str(admission.retry_after)},
        )

    def finished(status: int) -> None:
        store.finish(admission.request_id, status, ms())

    try:
        return await respond(turn, stream=body.stream, headers=cors, on_end=finished, link=passage_link(request.app))
    except AssistantError as exc:
        return _error(exc.status, str(exc), {**cors, **exc.headers()})


def _parse(raw: bytes) -> tuple[ChatRequest | None, str]:
    """The chat request, or None and what is wrong with it (the same words as /v1/chat)."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None, "body: not valid JSON; send a UTF-8 JSON object."
    try:
        body = ChatRequest.model_validate(data)
    except ValidationError as exc:
        return None, validation_detail(exc.errors())
    return body, ""
