"""POST /v1/translate: machine translation of a quote, so a reader of the other language can read it."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from assistant.web.api.deps import AssistantDep
from assistant.web.api.schemas import ErrorBody, TranslateRequest, TranslateResponse

router = APIRouter(prefix="/v1", tags=["translate"])


@router.post(
    "/translate",
    response_model=TranslateResponse,
    responses={422: {"model": ErrorBody}, 503: {"model": ErrorBody}},
)
async def translate(body: TranslateRequest, assistant: AssistantDep) -> TranslateResponse:
    # Admission (blank, NUL, lone surrogates, ASSISTANT_MAX_MESSAGE_CHARS) is the service's.
    result = await run_in_threadpool(assistant.translate, body.text, body.target)
    return TranslateResponse(**result.as_dict())
