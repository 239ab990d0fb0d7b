"""The documents: list, one with its cleaned text, and an HTML view of a quoted passage."""

from __future__ import annotations

import html

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from assistant.web.api.deps import AssistantDep
from assistant.web.api.schemas import DocumentDetail, DocumentList, DocumentSummary, ErrorBody

router = APIRouter(tags=["documents"])


@router.get("/v1/documents", response_model=DocumentList, responses={503: {"model": ErrorBody}})
def list_documents(assistant: AssistantDep) -> DocumentList:
    return DocumentList(
        documents=[DocumentSummary(**info.as_dict()) for info in assistant.documents()]
    )


@router.get(
    "/v1/documents/{doc_id}",
    response_model=DocumentDetail,
    responses={404: {"model": ErrorBody}, 503: {"model": ErrorBody}},
)
def get_document(doc_id: str, assistant: AssistantDep) -> DocumentDetail:
    return DocumentDetail(**assistant.document(doc_id).as_dict(with_text=True))


@router.get("/sources/{doc_id}", response_class=HTMLResponse, include_in_schema=False)
def view_source(
    doc_id: str,
    assistant: AssistantDep,
    start: int | None = Query(None, ge=0),
    end: int | None = Query(None, ge=0),
) -> HTMLResponse:
    """The document as a page, the cited span highlighted and scrolled into view."""
    info = assistant.document(doc_id)
    doc = info.document
    text = doc.text
    if start is not None and end is not None and start < end <= len(text):
        body = (
            html.escape(text[:start])
            + '<mark id="quote">'
            + html.escape(text[start:end])
            + "</mark>"
            + html.escape(text[end:])
        )
    else:
        body = html.escape(text)
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
.notes{{color:#57606a;font-size:.85rem;border-left:3px solid #d0d7de;padding-left:.75rem}}
</style></head><body>
<h1>{html.escape(doc.title)}</h1>
<p class="meta">{meta}</p>
{f'<p class="notes">{html.escape(doc.source_notes)}</p>' if doc.source_notes else ''}
<pre>{body}</pre>
</body></html>"""
    return HTMLResponse(page)
