"""The documents: list, one with its cleaned text, and an HTML view of a quoted passage."""

from __future__ import annotations

import html
import re
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse

from assistant.errors import NotFound
from assistant.pipeline.formats import MEDIA_TYPES
from assistant.web.api.deps import AssistantDep
from assistant.web.api.schemas import DocumentDetail, DocumentList, ErrorBody, LibraryDocument
from assistant.web.api.session import PASSAGE_ONLY
from assistant.web.languages import LANGUAGE_NAMES, LANGUAGES, page_language

router = APIRouter(tags=["documents"])

PASSAGE_CONTEXT = 600  # characters shown on each side of a passage opened by a signed link
SOURCE_LABELS: dict[str, dict[str, Any]] = {
    "en": {
        "back": "← Back to chat",
        "nav": "Page",
        "page": "page {page}",
        "original_at": "open the original at page {page}",
        "original": "open the original",
        "undated": "date not stated",
        "kinds": {"policy_paper": "policy paper", "news_report": "news report", "unknown": "document"},
        "passage_note": "This link shows the cited passage with some context. Log in to read the whole document.",
    },
    "zh-Hans": {
        "back": "← 返回对话",
        "nav": "页面",
        "page": "第 {page} 页",
        "original_at": "在第 {page} 页打开原文件",
        "original": "打开原文件",
        "undated": "未注明日期",
        "kinds": {"policy_paper": "政策文件", "news_report": "新闻报道", "unknown": "文档"},
        "passage_note": "此链接只显示所引段落及其上下文；登录后可阅读全文。",
    },
    "zh-Hant": {
        "back": "← 返回對話",
        "nav": "頁面",
        "page": "第 {page} 頁",
        "original_at": "在第 {page} 頁開啟原始檔案",
        "original": "開啟原始檔案",
        "undated": "未註明日期",
        "kinds": {"policy_paper": "政策文件", "news_report": "新聞報導", "unknown": "文件"},
        "passage_note": "此連結只顯示所引段落及其上下文；登入後可閱讀全文。",
    },
}
# Kept for callers of the bilingual note.
PASSAGE_NOTE = SOURCE_LABELS["en"]["passage_note"] + " · " + SOURCE_LABELS["zh-Hans"]["passage_note"]
_URL = re.compile(r"(?:https?://|www\.)[^\s<>\"'，。、；）)]+")


def _text_html(text: str) -> str:
    """Document text, escaped; long URLs may break anywhere, words never do."""
    out, last = [], 0
    for m in _URL.finditer(text):
        out.append(html.escape(text[last : m.start()]))
        out.append(f'<span class="url">{html.escape(m.group(0))}</span>')
        last = m.end()
    out.append(html.escape(text[last:]))
    return "".join(out)


def _with_lang(request: Request, language: str) -> str:
    """This page's URL (its path and query, a signed link's too) in another language."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"] + [("lang", language)]
    return f"{request.url.path}?{urlencode(params)}" + ("#quote" if "start" in request.query_params else "")


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
    lang: str | None = Query(None, max_length=35),
) -> HTMLResponse:
    """The document as a page, the cited span highlighted and scrolled into view.

    Its labels are English, Simplified or Traditional Chinese: `?lang=` (en, zh-Hans,
    zh-Hant), else the browser's `Accept-Language`; links switch between them and lead back
    to the chat. The document's internal notes (`source_notes`) are not shown here (the
    API's document detail has them).

    Opened through a signed passage link without a login (`session.PASSAGE_ONLY`), the
    page shows only the cited passage with `PASSAGE_CONTEXT` characters around it.
    """
    info = assistant.document(doc_id)
    doc = info.document
    text = doc.text
    language = page_language(lang, request.headers.get("accept-language"))
    t = SOURCE_LABELS[language]
    passage_only = request.scope.get(PASSAGE_ONLY) is not None
    note = ""
    if start is not None and end is not None and start < end <= len(text):
        before, after = 0, len(text)
        if passage_only:
            before = max(0, start - PASSAGE_CONTEXT)
            after = min(len(text), end + PASSAGE_CONTEXT)
        body = (
            ("… " if before else "")
            + _text_html(text[before:start])
            + '<mark id="quote">'
            + _text_html(text[start:end])
            + "</mark>"
            + _text_html(text[end:after])
            + (" …" if after < len(text) else "")
        )
        if passage_only:
            note = f'<p class="notes">{html.escape(t["passage_note"])}</p>'
    elif passage_only:
        raise Forbidden("This passage link names no passage of this document; log in to read it.")
    else:
        body = _text_html(text)
    page_line = ""
    page_no = doc.page_at(start) if start is not None and start < len(text) else None
    original = assistant.original_path(doc_id)
    href = f"/sources/{quote(doc_id, safe='')}/original"
    if page_no is not None:
        link = f' · <a href="{href}#page={page_no}">{t["original_at"].format(page=page_no)}</a>' if original else ""
        page_line = f'<p class="page">{t["page"].format(page=page_no)}{link}</p>'
    elif original is not None:
        page_line = f'<p class="page"><a href="{href}">{t["original"]}</a></p>'
    kind = t["kinds"].get(doc.kind, t["kinds"]["unknown"])
    meta = " · ".join(html.escape(str(v)) for v in (kind, doc.publisher, doc.published or t["undated"]) if v)
    switch = " · ".join(
        f'<span aria-current="true">{LANGUAGE_NAMES[code]}</span>'
        if code == language
        else f'<a href="{html.escape(_with_lang(request, code))}" hreflang="{code}" lang="{code}">{LANGUAGE_NAMES[code]}</a>'
        for code in LANGUAGES
    )
    page = f"""<!doctype html>
<html lang="{language}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(doc.title)}</title>
<style>
body{{font-family:system-ui,-apple-system,"Noto Sans CJK SC","PingFang SC",sans-serif;max-width:46rem;margin:1rem auto 2rem;padding:0 1rem;line-height:1.7;color:#1f2328}}
nav.top{{display:flex;flex-wrap:wrap;justify-content:space-between;gap:.5rem;font-size:.9rem;border-bottom:1px solid #d0d7de;padding-bottom:.5rem}}
nav.top a{{color:#0550ae}}
h1{{font-size:1.3rem;line-height:1.4}} .meta{{color:#57606a;font-size:.9rem}}
.doc{{white-space:pre-wrap;word-break:normal;overflow-wrap:break-word;line-break:auto;font-family:inherit;font-size:1rem;margin:1rem 0}}
.doc .url{{overflow-wrap:anywhere}}
mark{{background:#fff3b0;padding:.1rem 0;scroll-margin-top:30vh}}
.page{{font-size:.9rem}}
.notes{{color:#57606a;font-size:.85rem;border-left:3px solid #d0d7de;padding-left:.75rem}}
</style></head><body>
<nav class="top" aria-label="{t["nav"]}"><a href="/ui/" class="back">{t["back"]}</a><span class="langs">{switch}</span></nav>
<h1>{html.escape(doc.title)}</h1>
<p class="meta">{meta}</p>
{page_line}
<pre class="doc">{body}</pre>
{note}
</body></html>"""
    return HTMLResponse(page, headers={"Content-Language": language, "Vary": "Accept-Language"})


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
