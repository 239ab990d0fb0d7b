"""Feedback on answers: 👍/👎 and an optional comment.

- `POST /v1/feedback`: the API and the chat UI (the same API keys as `/v1/chat`); stored
  with `source: "api"`. In-process callers (the Gradio UI) may instead call
  `record(app, item, "ui")`.
- `POST /v1/widget/feedback`: the widget, with the same checks as `/v1/widget/chat`
  (`Origin`, `X-Partner-Key`, the origin on the key's allowlist, failed-key throttling) and
  per-visitor limits (`ASSISTANT_WIDGET_VISITOR_PER_MINUTE` / `_PER_DAY`, counted over
  feedback only); CORS for allowed origins, preflight included. Stored with `source:
  "widget"` and the partner's id.
- `GET /v1/admin/feedback?rating=down&since=2026-01-01&source=widget&limit=100`: the admin
  token; newest first.

Every field has a size limit (`assistant.feedback.schemas`): 422 naming the field beyond it.
"""

from __future__ import annotations

import json
from typing import Literal

from fastapi import APIRouter, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from assistant.feedback.schemas import FeedbackIn, FeedbackList, FeedbackRecord, FeedbackSaved, Source
from assistant.feedback.store import FeedbackStore, SinceError, parse_since
from assistant.web.api.auth import api_key_dependencies
from assistant.web.api.deps import state_once
from assistant.web.api.errors import validation_detail
from assistant.web.api.routers import widget
from assistant.web.api.routers.admin import require_admin
from assistant.web.api.schemas import ErrorBody

router = APIRouter(tags=["feedback"])
FEEDBACK_PATH = "/v1/feedback"
WIDGET_FEEDBACK_PATH = "/v1/widget/feedback"
ADMIN_FEEDBACK_PATH = "/v1/admin/feedback"
MAX_LIST = 10_000

def get_feedback(app: FastAPI) -> FeedbackStore:
    """The app's feedback store (`app.state.feedback`), opened from the settings on first use."""

    def make() -> FeedbackStore:
        databases = getattr(app.state, "databases", None)  # the factory's; else the store's own
        return FeedbackStore.from_settings(app.state.assistant.settings, databases.feedback if databases is not None else None)

    return state_once(app.state, "feedback", make)


def record(app: FastAPI, item: FeedbackIn, source: Source = "ui") -> FeedbackRecord:
    """Store one feedback record from inside the process (the chat UI)."""
    saved = get_feedback(app).add(item, source)
    assert isinstance(saved, FeedbackRecord)
    return saved


# ---------------------------------------------------------------------------- API


@router.post(
    FEEDBACK_PATH,
    response_model=FeedbackSaved,
    status_code=201,
    dependencies=api_key_dependencies(),
    responses={401: {"model": ErrorBody}, 413: {"model": ErrorBody}, 422: {"model": ErrorBody}},
)
async def post_feedback(item: FeedbackIn, request: Request) -> FeedbackSaved:
    """Rate one answer: `rating` up or down, an optional `comment`, and the question, answer,
    citations and backend it is about."""
    saved = await run_in_threadpool(record, request.app, item, "api")
    return FeedbackSaved(id=saved.id, created=saved.created)


@router.get(
    ADMIN_FEEDBACK_PATH,
    response_model=FeedbackList,
    responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}, 422: {"model": ErrorBody}},
)
async def list_feedback(
    request: Request,
    rating: Literal["up", "down"] | None = Query(None, description="Only this rating."),
    since: str | None = Query(None, max_length=40, description="ISO 8601 date/date-time (UTC) or an age: 7d, 12h."),
    source: Literal["api", "ui", "widget"] | None = Query(None, description="Only this source."),
    limit: int = Query(1000, ge=1, le=MAX_LIST, description="At most this many, newest first."),
) -> FeedbackList:
    """Feedback records, newest first (admin token)."""
    require_admin(request)
    try:
        after = parse_since(since)
    except SinceError as exc:
        raise HTTPException(422, str(exc)) from None
    store = get_feedback(request.app)
    items = await run_in_threadpool(lambda: store.records(rating=rating, since=after, source=source, limit=limit))
    return FeedbackList(feedback=items, count=len(items))


# ---------------------------------------------------------------------------- widget

# The same preflight as the chat route: answered only for origins some active partner allows.
router.add_api_route(WIDGET_FEEDBACK_PATH, widget.widget_preflight, methods=["OPTIONS"], include_in_schema=False)


_error = widget.error_response


@router.post(
    WIDGET_FEEDBACK_PATH,
    response_model=FeedbackSaved,
    status_code=201,
    responses={
        401: {"model": ErrorBody, "description": "Missing, unknown or revoked partner key."},
        403: {"model": ErrorBody, "description": "Origin missing or not allowed for this key."},
        422: {"model": ErrorBody},
        429: {"model": ErrorBody, "description": "Over the visitor's feedback limit; `Retry-After`."},
    },
    openapi_extra={
        "parameters": [
            {"name": widget.KEY_HEADER, "in": "header", "required": True, "schema": {"type": "string"}},
            {"name": "Origin", "in": "header", "required": True, "schema": {"type": "string"}},
        ],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/FeedbackIn"}}},
        },
    },
)
async def widget_feedback(request: Request) -> Response:
    """Feedback from the widget on a partner page: partner key and Origin checked as for the chat."""
    partners = widget.get_partners(request)
    caller = await widget.authenticate(request, partners)
    if isinstance(caller, Response):
        return caller
    partner, address, cors = caller.partner, caller.address, caller.cors
    try:
        data = json.loads(await request.body())
        item = FeedbackIn.model_validate(data)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        detail = (
            validation_detail(exc.errors())
            if isinstance(exc, ValidationError)
            else "body: not valid JSON; send a UTF-8 JSON object."
        )
        await run_in_threadpool(partners.log_refusal, partner.id, 422, "feedback")
        return _error(422, detail, cors)
    settings = request.app.state.assistant.settings
    limits = (settings.widget_visitor_per_minute, settings.widget_visitor_per_day)
    visitor = partners.visitor_id(address)
    store = get_feedback(request.app)
    saved = await run_in_threadpool(
        lambda: store.add(item, "widget", partner_id=partner.id, visitor=visitor, limits=limits)
    )
    if not isinstance(saved, FeedbackRecord):
        await run_in_threadpool(partners.log_refusal, partner.id, 429, "feedback")
        return _error(
            429, f"Too much feedback from this visitor; retry in {saved} s.", {**cors, "Retry-After": str(saved)}
        )
    return JSONResponse(FeedbackSaved(id=saved.id, created=saved.created).model_dump(), status_code=201, headers=cors)
