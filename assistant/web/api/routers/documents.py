"""The documents: list, one with its cleaned text, and an HTML view of a quoted passage."""

from __future__ import annotations

import html
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse

from assistant.errors import NotFound
from assistant.pipeline.formats import MEDIA_TYPES
from assistant.web.api.deps import AssistantDep
from assistant.web.api.schemas import DocumentDetail, DocumentList, ErrorBody, LibraryDocument
from assistant.web.api.session import PASSAGE_ONLY

router = APIRouter(tags=["documents"])

PASSAGE_CONTEXT = 600  # characters shown on each side of a passage opened by a signed link
PASSAGE_NOTE = (
    "This link shows the cited passage with some context. Log in to read the whole document. · "
    "此链接只显示所引段落及其上下文；登录后可阅读全文。"
)


class Forbidden(HTTPException):
    def __init__(self, detail: str) -> None:
        super().__init__(403, detail)


@router.get("/v1/documents", response_model=DocumentList, responses={503: {"model": ErrorBody}})
def list_documents(assistant: AssistantDep) -> DocumentList:
    return DocumentList(
        documents=[
            LibraryDocument(**info.as_dict(), library=assistant.in_library(info.document.doc_id))
            for info in assistant.documents()
        ]
    )


@router.get(
    "/v1/documents/{doc_id}",
    response_model=DocumentDetail,
    responses={404: {"model": ErrorBody}, 503: {"model": ErrorBody}},
)
def get_document(doc_id: str, assistant: AssistantDep) -> DocumentDetail:
    return DocumentDetail(**assistant.document(doc_id).as_dict(with_text=True), library=assistant.in_library(doc_id))


@router.get("/sources/{doc_id}", response_class=HTMLResponse, include_in_schema=False)
def view_source(
    doc_id: str,
    request: Request,
    assistant: AssistantDep,
    start: int | None = Query(None, ge=0),
    end: int | None = Query(None, ge=0),
) -> HTMLResponse:
    """The document as a page, the cited span highlighted and scrolled into view.

    Opened through a signed passage link without a login (`session.PASSAGE_ONLY`), the
    page shows only the cited passage with `PASSAGE_CONTEXT` characters around it.
    """
    info = assistant.document(doc_id)
    doc = info.document
    text = doc.text
    passage_only = request.scope.get(PASSAGE_ONLY) is not None
    if start is not None and end is not None and start < end <= len(text):
        before, after = 0, len(text)
        if passage_only:
            before = max(0, start - PASSAGE_CONTEXT)
            after = min(len(text), end + PASSAGE_CONTEXT)
        body = (
            ("… " if before else "")
            + html.escape(text[before:start])
            + '<mark id="quote">'
            + html.escape(text[start:end])
            + "</mark>"
            + html.escape(text[end:after])
            + (" …" if after < len(text) else "")
        )
        if passage_only:
            body += f'</pre><p class="notes">{PASSAGE_NOTE}</p><pre>'
    elif passage_only:
        raise Forbidden("This passage link names no passage of this document; log in to read it.")
    else:
        body = html.escape(text)
    page_line = ""
    page_no = doc.page_at(start) if start is not None and start < len(text) else None
    original = assistant.original_path(doc_id)
    href = f"/sources/{quote(doc_id, safe='')}/original"
    if page_no is not None:
        link = f' · <a href="{href}#page={page_no}">open the original at page {page_no}</a>' if original else ""
        page_line = f'<p class="page">page {page_no}{link}</p>'
    elif original is not None:
        page_line = f'<p class="page"><a href="{href}">open the original</a></p>'
    meta = " · ".join(
        html.escape(str(v))
        for v in (doc.kind.replace("_", " "), doc.publisher, doc.published or "date not stated")
        if v
    )
    page = f"""<!doctype html>
<html lang="zh"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(doc.title)}</title>
<style>
body{{font-family:system-ui,-apple-system,"Noto Sans CJK SC","PingFang SC",sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;line-height:1.7;color:#1f2328}}
h1{{font-size:1.3rem;line-height:1.4}} .meta{{color:#57606a;font-size:.9rem}}
pre{{white-space:pre-wrap;font-family:inherit;font-size:1rem}}
mark{{background:#fff3b0;padding:.1rem 0;scroll-margin-top:30vh}}
.page{{font-size:.9rem}}
.notes{{color:#57606a;font-size:.85rem;border-left:3px solid #d0d7de;padding-left:.75rem}}
</style></head><body>
<h1>{html.escape(doc.title)}</h1>
<p class="meta">{meta}</p>
{page_line}
{f'<p class="notes">{html.escape(doc.source_notes)}</p>' if doc.source_notes else ''}
<pre>{body}</pre>
</body></html>"""
    return HTMLResponse(page)


@router.get(
    "/sources/{doc_id}/original",
    include_in_schema=False,
    responses={404: {"model": ErrorBody}},
)
def original_file(doc_id: str, assistant: AssistantDep) -> FileResponse:
    """The document's original file (PDF, DOCX, HTML) as it was added to the corpus."""
    path = assistant.original_path(doc_id)
    if path is None:
        raise NotFound(f"Document {doc_id!r} has no original file (it was added as text).")
    media_type = MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream")
    filename = f"{doc_id}{path.suffix.lower()}"
    headers = {"Content-Disposition": f'inline; filename="{filename}"', "X-Content-Type-Options": "nosniff"}
    if media_type.startswith("text/html"):
        # A captured web page runs no scripts and gets no access to this site's origin.
        headers["Content-Security-Policy"] = "sandbox"
    return FileResponse(path, media_type=media_type, headers=headers)
