"""DOCX (python-docx): paragraphs in order, headings as `#` lines, tables as `cell | cell` rows.

Blocks are separated by a blank line (as paragraphs are in a Markdown corpus file), the
rows of a table by a newline, so the chunker sees headings, paragraphs and tables.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Any

from assistant.pipeline.formats import Extracted, clean_meta_value, date_string, read_head
from assistant.pipeline.formats.text import CorpusError

_HEADING_STYLE = re.compile(r"^(?:heading|标题|標題)\s*([1-6])$", re.IGNORECASE)
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # encrypted OOXML and old .doc files


def read_docx(path: Path) -> Extracted:
    name = path.name
    head = read_head(path, 8)
    if head.startswith(_OLE_MAGIC):
        raise CorpusError(
            f"{name}: encrypted (password-protected) or an old Word .doc file; "
            "save an unprotected .docx copy and add that instead."
        )
    if not zipfile.is_zipfile(path):
        raise CorpusError(f"{name}: corrupt or not a .docx file. Save it again from Word as .docx.")
    import docx

    try:
        document = docx.Document(str(path))
    except Exception as exc:  # python-docx raises several kinds on a broken package
        raise CorpusError(f"{name}: corrupt .docx file ({str(exc)[:120]}). Save it again from Word.") from exc
    blocks = list(_blocks(document))
    text = "\n\n".join(blocks) + "\n" if blocks else ""
    return Extracted(text=text, meta=_metadata(document))


def _blocks(document: Any) -> Any:
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    body = document.element.body
    for child in body.iterchildren():
        tag = child.tag.rsplit("}", 1)[-1]
        if tag == "p":
            block = _paragraph(Paragraph(child, document))
            if block:
                yield block
        elif tag == "tbl":
            rows = _table_rows(Table(child, document))
            if rows:
                yield "\n".join(rows)


def _paragraph(paragraph: Any) -> str:
    text = _one_line(paragraph.text)
    if not text:
        return ""
    style = (paragraph.style.name if paragraph.style is not None else "") or ""
    if style.lower() == "title":
        return f"# {text}"
    match = _HEADING_STYLE.match(style.strip())
    if match:
        return f"{'#' * int(match.group(1))} {text}"
    return text


def _table_rows(table: Any) -> list[str]:
    rows = []
    for row in table.rows:
        cells: list[str] = []
        seen: list[Any] = []
        for cell in row.cells:
            if any(cell._tc is tc for tc in seen):  # a merged cell repeats across its columns
                continue
            seen.append(cell._tc)
            cells.append(_one_line(cell.text))
        if any(cells):
            rows.append(" | ".join(cells))
    return rows


def _one_line(text: str) -> str:
    return re.sub(r"[ \t\u3000\xa0]*\n[ \t\u3000\xa0]*", " ", text).strip()


def _metadata(document: Any) -> dict[str, Any]:
    props = document.core_properties
    # python-docx's own template: its author and date are not the document's.
    template = props.author == "python-docx"
    return {
        "title": clean_meta_value(props.title),
        "publisher": None if template else clean_meta_value(props.author),
        "published": None if template else date_string(props.created),
    }
