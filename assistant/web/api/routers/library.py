"""Add, change and remove documents over HTTP (admin token): the library.

`POST /v1/documents` (multipart: `file`, optional `title`, `kind`, `published`,
`language`, `publisher`) → 201 with the document, searchable at once;
`PATCH /v1/documents/{doc_id}` (JSON metadata) → 200; `DELETE /v1/documents/{doc_id}` →
204. The Library page (`/library`) calls these same routes from the browser.

Uploads may be larger than other requests (`ASSISTANT_MAX_UPLOAD_BYTES`), but only a
request carrying the admin token gets that limit (`upload_limit`, used by the body-limit
middleware), so nobody else can make the server read a large body.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, Response, UploadFile
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import Scope

from assistant.service import Assistant
from assistant.settings import Settings
from assistant.web.api.auth import key_matches
from assistant.web.api.routers.admin import require_admin
from assistant.web.api.schemas import (
    DocumentList,
    DocumentPatch,
    DocumentUploaded,
    ErrorBody,
    LibraryDocument,
)

router = APIRouter(tags=["library"])
UPLOAD_PATH = "/v1/documents"
LIBRARY_HTML = Path(__file__).resolve().parents[2] / "static" / "library.html"
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (401, 403, 404, 409, 413, 415, 422, 503)
}


def upload_limit(settings: Settings, scope: Scope) -> int | None:
    """The upload limit for an upload that carries the admin token; None for anything else."""
    if scope.get("path") != UPLOAD_PATH or scope.get("method") != "POST" or settings.admin_token is None:
        return None
    token = settings.admin_token.get_secret_value()
    for key, value in scope.get("headers") or []:
        if key.lower() == b"authorization":
            scheme, _, given = bytes(value).decode("latin-1").strip().partition(" ")
            if token and scheme.lower() == "bearer" and key_matches(given.strip(), [token]):
                return settings.max_upload_bytes
    return None


@router.get("/v1/admin/documents", response_model=DocumentList, responses=_ERRORS)
def list_library(request: Request) -> DocumentList:
    """Every indexed document, library or corpus folder, for the Library page (admin token:
    it is not an API key, so the page needs no second secret)."""
    require_admin(request)
    assistant: Assistant = request.app.state.assistant
    return DocumentList(
        documents=[
            LibraryDocument(**info.as_dict(), library=assistant.in_library(info.document.doc_id))
            for info in assistant.documents()
        ]
    )


@router.post(UPLOAD_PATH, status_code=201, response_model=DocumentUploaded, responses=_ERRORS)
async def upload_document(
    request: Request,
    file: Annotated[UploadFile, File(description="PDF (with a text layer), DOCX, HTML, Markdown or text.")],
    title: Annotated[str | None, Form()] = None,
    kind: Annotated[str | None, Form(description="policy_paper, news_report or unknown")] = None,
    published: Annotated[str | None, Form(description="YYYY, YYYY-MM or YYYY-MM-DD")] = None,
    language: Annotated[str | None, Form(description="en, zh-Hans or zh-Hant (detected when unset)")] = None,
    publisher: Annotated[str | None, Form()] = None,
) -> DocumentUploaded:
    """Add a document to the library and index it; it is searchable when this returns."""
    require_admin(request)
    assistant: Assistant = request.app.state.assistant
    meta = {"title": title, "kind": kind, "published": published, "language": language, "publisher": publisher}
    try:
        result = await run_in_threadpool(assistant.add_document, file.filename or "", file.file, meta)
    finally:
        await file.close()
    return DocumentUploaded(**result)


@router.patch("/v1/documents/{doc_id}", response_model=LibraryDocument, responses=_ERRORS)
async def update_document(doc_id: str, patch: DocumentPatch, request: Request) -> LibraryDocument:
    """Change a library document's title, kind, date, language or publisher."""
    require_admin(request)
    assistant: Assistant = request.app.state.assistant
    result = await run_in_threadpool(assistant.update_document, doc_id, patch.model_dump(exclude_none=True))
    return LibraryDocument(**result, library=True)


@router.delete("/v1/documents/{doc_id}", status_code=204, responses=_ERRORS)
async def delete_document(doc_id: str, request: Request) -> Response:
    """Remove a library document; it is gone from search when this returns."""
    require_admin(request)
    assistant: Assistant = request.app.state.assistant
    await run_in_threadpool(assistant.delete_document, doc_id)
    return Response(status_code=204)


@router.get("/library", response_class=HTMLResponse, include_in_schema=False)
def library() -> HTMLResponse:
    """The Library page: upload with progress, list and filter, edit, delete, re-index."""
    return HTMLResponse(LIBRARY_HTML.read_text("utf-8"))
