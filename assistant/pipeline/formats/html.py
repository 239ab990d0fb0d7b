"""HTML (lxml): the article of a web page without the site's chrome.

Dropped: scripts and styles, navigation menus, breadcrumbs, share and print bars, side
bars, related links, comments, footers with copyright lines and ICP / public-security
record numbers (京ICP备…号, 京公网安备…号). Kept: the article's headings (as `#` lines),
paragraphs, list items and tables (`cell | cell` rows), one block per paragraph.

The article is the `<article>` (or `<main>`, or the content-like element) holding the
most text; a page without one is read from `<body>` with the chrome removed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from assistant.pipeline.formats import Extracted, clean_meta_value, date_string
from assistant.pipeline.formats.text import CorpusError

# Elements that are never article text.
_DROP_TAGS = (
    "script", "style", "noscript", "template", "iframe", "object", "embed", "svg", "canvas",
    "form", "button", "input", "select", "textarea", "nav", "aside", "footer", "menu", "dialog",
)  # fmt: skip
# class / id / role words that mark site chrome.
_CHROME_WORDS = re.compile(
    r"(?:^|[\s_-])(nav|navbar|navigation|menu|menubar|breadcrumbs?|crumbs?|share|sharing|social|"
    r"bshare|jiathis|print|toolbar|tools|footer|foot|copyright|sidebar|side|aside|related|"
    r"recommend|comments?|advert|ads?|banner|pagination|pager|prev|next|topbar|header|login|"
    r"search|subscribe|qrcode|weixin|wechat|fontsize|font-size|position|location|crumb|guide)(?:$|[\s_-])",
    re.IGNORECASE,
)
_ROLES = {"navigation", "banner", "contentinfo", "complementary", "search", "menu", "menubar"}
# Lines that are site chrome wherever they appear.
_CHROME_LINE = re.compile(
    r"(ICP\s*[备証证]\s*[\d-]+\s*号|公网安备|公網安備|ICP\s*License|版权所有|版權所有|All rights reserved|"
    r"^(©|copyright\b|\(c\)\s*\d{4})|"
    r"^(当前位置|当前的位置|您的位置|你的位置|您现在的位置|所在位置)\s*[:：]|"
    r"^(首页|首頁|主页|Home)\s*(>|›|»|/|＞)|"
    r"^(分享到|分享|打印|打印本页|关闭窗口|關閉窗口|返回顶部|返回頂部|字号|字體|字体|收藏)\s*([:：].{0,60})?$)",
    re.IGNORECASE,
)
_CHROME_LINE_MAX = 200  # a longer block is article text even if it mentions a copyright
_CONTENT_HINT = re.compile(r"(article|content|main|post|entry|detail|text|body|zoom|正文)", re.IGNORECASE)
_BLOCK_TAGS = {
    "p", "div", "section", "article", "main", "header", "li", "ul", "ol", "dl", "dt", "dd",
    "blockquote", "pre", "table", "thead", "tbody", "tfoot", "tr", "td", "th", "figure",
    "figcaption", "h1", "h2", "h3", "h4", "h5", "h6", "br", "hr", "center", "address", "caption",
}  # fmt: skip
_BR = "\u2028"  # a <br> while a block's text is collected
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_SPACE = re.compile(r"[ \t\r\n\u3000\xa0]+")
_TITLE_SEPARATORS = re.compile(r"\s+[-_|–—·]\s+|\s*[|｜_]\s*")


def read_html(path: Path) -> Extracted:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CorpusError(f"{path.name}: cannot be read ({exc.strerror}).") from exc
    return extract_html(raw, path.name)


def extract_html(raw: bytes | str, name: str = "<html>") -> Extracted:
    import lxml.html
    from lxml import etree

    if isinstance(raw, bytes):
        raw = _decode(raw, name)
    raw = re.sub(r"^\s*<\?xml[^>]*>", "", raw.lstrip("\ufeff"))
    try:
        root = lxml.html.document_fromstring(raw)
    except (etree.ParserError, ValueError) as exc:
        raise CorpusError(f"{name}: not a readable HTML page ({exc}).") from exc
    meta = _metadata(root)
    _drop_chrome(root)
    body = root.find("body")
    container = _article(body if body is not None else root)
    blocks = [b for b in _render(container) if not (len(b) < _CHROME_LINE_MAX and _CHROME_LINE.search(b))]
    text = "\n\n".join(_dedupe_title(blocks)) + "\n" if blocks else ""
    return Extracted(text=text, meta=meta)


def _decode(raw: bytes, name: str) -> str:
    head = raw[:4096].decode("ascii", "replace")
    declared = re.search(r"charset=[\"']?([A-Za-z0-9_-]+)", head)
    encodings = [declared.group(1)] if declared else []
    encodings += ["utf-8", "gb18030"]
    for enc in encodings:
        try:
            return raw.decode(enc)
        except (LookupError, UnicodeDecodeError):
            continue
    raise CorpusError(f"{name}: the page's text encoding could not be read. Save it as UTF-8.")


def _metadata(root: Any) -> dict[str, Any]:
    def meta(*names: str) -> str | None:
        for n in names:
            for el in root.iter("meta"):
                key = (el.get("property") or el.get("name") or el.get("itemprop") or "").lower()
                if key == n and el.get("content"):
                    return str(el.get("content"))
        return None

    title = meta("og:title", "dc.title", "citation_title")
    if not title:
        el = root.find(".//title")
        if el is not None and el.text_content().strip():
            # "Article — Site name": the first part is the article's.
            title = _TITLE_SEPARATORS.split(el.text_content().strip())[0]
    published = meta(
        "article:published_time", "pubdate", "publishdate", "publish_date", "dc.date",
        "dc.date.issued", "citation_publication_date", "date", "firstpublishedtime",
    )  # fmt: skip
    return {
        "title": clean_meta_value(title),
        "publisher": clean_meta_value(meta("author", "dc.creator", "citation_author")),
        "published": date_string(published) if published else None,
    }


def _drop_chrome(root: Any) -> None:
    from lxml import etree

    for el in list(root.iter(etree.Comment, etree.ProcessingInstruction)):
        _remove(el)
    for el in list(root.iter(*_DROP_TAGS)):
        _remove(el)
    body = root.find("body")
    total = _text_len(body if body is not None else root) or 1
    for el in list(root.iter()):
        if not isinstance(el.tag, str) or el.tag in ("html", "body", "article", "main"):
            continue
        if el.getparent() is None:
            continue
        role = (el.get("role") or "").lower()
        marks = f"{el.get('class') or ''} {el.get('id') or ''}"
        # "main-nav" is chrome; "article-content side" holding the text is not.
        chrome = bool(_CHROME_WORDS.search(marks)) and not (
            _CONTENT_HINT.search(marks) and _text_len(el) >= 0.3 * total
        )
        if role in _ROLES or chrome:
            _remove(el)
        elif el.tag == "header" and el.xpath("ancestor::article or ancestor::main") is False:
            _remove(el)  # the site's header; an article's own header keeps its h1
        elif (el.get("style") or "").replace(" ", "").lower().find("display:none") >= 0:
            _remove(el)


def _remove(el: Any) -> None:
    """Remove `el` but keep its tail text (which belongs to the parent)."""
    parent = el.getparent()
    if parent is None:
        return
    tail = el.tail
    if tail and tail.strip():
        prev = el.getprevious()
        if prev is not None:
            prev.tail = (prev.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail
    parent.remove(el)


def _text_len(el: Any) -> int:
    return len(_SPACE.sub("", el.text_content()))


def _article(body: Any) -> Any:
    """The element holding the article: the largest <article>/<main>, or content-like block."""
    total = _text_len(body) or 1
    for tags in (("article",), ("main",)):
        found = [el for tag in tags for el in body.iter(tag)]
        if found:
            best = max(found, key=_text_len)
            if _text_len(best) >= 0.2 * total or _text_len(best) >= 200:
                return best
    candidates = [
        el
        for el in body.iter("div", "section", "td")
        if _CONTENT_HINT.search(f"{el.get('class') or ''} {el.get('id') or ''}")
    ]
    if candidates:
        best = max(candidates, key=_text_len)
        if _text_len(best) >= 0.5 * total:
            return best
    return body


def _render(el: Any) -> list[str]:
    """The blocks of text under `el`, in document order."""
    blocks: list[str] = []
    inline: list[str] = []

    def flush() -> None:
        # A <br> is a line break within the block; source whitespace collapses to a space.
        lines = (_SPACE.sub(" ", line).strip() for line in "".join(inline).split(_BR))
        text = "\n".join(line for line in lines if line)
        inline.clear()
        if text:
            blocks.append(text)

    def walk(node: Any) -> None:
        tag = node.tag if isinstance(node.tag, str) else ""
        if tag in _HEADINGS:
            flush()
            text = _SPACE.sub(" ", node.text_content()).strip()
            if text:
                blocks.append(f"{'#' * _HEADINGS[tag]} {text}")
        elif tag == "table":
            flush()
            rows = _table_rows(node)
            if rows:
                blocks.append("\n".join(rows))
        elif tag == "pre":
            flush()
            text = node.text_content().strip("\n")
            if text.strip():
                blocks.append(text)
        elif tag == "br":
            inline.append(_BR)
        elif tag in _BLOCK_TAGS:
            flush()
            if node.text:
                inline.append(node.text)
            for child in node:
                walk(child)
            flush()
        else:
            if node.text:
                inline.append(node.text)
            for child in node:
                walk(child)
        if node is not el and node.tail:
            inline.append(node.tail)

    walk(el)
    flush()
    return blocks


def _table_rows(table: Any) -> list[str]:
    rows = []
    for tr in table.iter("tr"):
        cells = [_SPACE.sub(" ", c.text_content()).strip() for c in tr if c.tag in ("td", "th")]
        if any(cells):
            rows.append(" | ".join(cells))
    return rows


def _dedupe_title(blocks: list[str]) -> list[str]:
    # A page often repeats its title as a plain line right under the heading.
    out: list[str] = []
    for b in blocks:
        if out and out[-1].lstrip("#").strip() == b.strip():
            continue
        out.append(b)
    return out
