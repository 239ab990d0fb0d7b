"""POST /v1/search: hybrid retrieval over the index."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from assistant.admission import check_text
from assistant.pipeline.retrieve import Filters
from assistant.telemetry.observe import timed_search
from assistant.web.api.deps import AssistantDep
from assistant.web.api.schemas import ErrorBody, SearchRequest, SearchResponse, SearchResult

router = APIRouter(prefix="/v1", tags=["search"])


@router.post(
    "/search",
    response_model=SearchResponse,
    responses={422: {"model": ErrorBody}, 503: {"model": ErrorBody}},
)
async def search(body: SearchRequest, assistant: AssistantDep) -> SearchResponse:
    check_text(body.query, field="query", limit=assistant.settings.max_message_chars)
    f = body.filters
    filters = Filters(f.doc_id, f.kind, f.language) if f else Filters()
    with timed_search(assistant.observer):  # retrieval_seconds{kind="search"} (not the warm-up's)
        hits = await run_in_threadpool(assistant.search, body.query, body.k, filters)
    return SearchResponse(
        query=body.query, results=[SearchResult(**h.as_dict()) for h in hits]
    )
