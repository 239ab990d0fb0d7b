"""PDF: the text layer of each page (pypdf), pages joined by a blank line.

The document records where each page starts in its text (`Document.pages`), so a
passage can be cited with its page. A PDF without a text layer (a scan), an encrypted
one and a broken one are refused with the reason and what to do.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from assistant.pipeline.formats import Extracted, clean_meta_value, date_string, read_head
from assistant.pipeline.formats.text import CorpusError

log = logging.getLogger(__name__)

# From this many pages on, reading a PDF shows a progress bar (with progress=True).
PROGRESS_MIN_PAGES = 20
_TRAILING_SPACE = re.compile(r"[ \t]+\n")
_BLANK_RUNS = re.compile(r"\n[ \t\u3000\xa0]*(?:\n[ \t\u3000\xa0]*){2,}")


def read_pdf(path: Path, *, progress: bool = False) -> Extracted:
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError

    name = path.name
    head = read_head(path, 1024)
    if b"%PDF-" not in head:
        raise CorpusError(f"{name}: corrupt or not a PDF (no PDF header). Export the PDF again.")
    try:
        reader = PdfReader(str(path))
        if reader.is_encrypted:
            # An owner password alone (empty user password) still lets anyone read it.
            try:
                opened = reader.decrypt("")
            except (DependencyError, NotImplementedError) as exc:
                raise CorpusError(_encrypted(name)) from exc
            if not opened:
                raise CorpusError(_encrypted(name))
        pages = list(reader.pages)
        meta = _metadata(reader)
    except CorpusError:
        raise
    except FileNotDecryptedError as exc:
        raise CorpusError(_encrypted(name)) from exc
    except Exception as exc:  # pypdf raises many kinds of errors on a broken file
        raise CorpusError(f"{name}: corrupt PDF ({_reason(exc)}). Export the PDF again.") from exc
    if not pages:
        raise CorpusError(f"{name}: the PDF has no pages.")

    from tqdm import tqdm

    texts: list[str] = []
    bar = tqdm(
        pages,
        desc=f"Reading {name}",
        unit="page",
        leave=False,
        disable=not progress or len(pages) < PROGRESS_MIN_PAGES,
    )
    try:
        for number, page in enumerate(bar, start=1):
            try:
                raw = page.extract_text() or ""
            except Exception as exc:  # one bad page must not lose the others
                log.warning("%s: page %d has unreadable text (%s); left out", name, number, exc)
                raw = ""
            texts.append(_tidy(raw))
    finally:
        bar.close()
    if not any(t.strip() for t in texts):
        raise CorpusError(f"{name}: no text layer (scanned?); run OCR first, then add the OCR'd PDF.")
    text, starts = join_pages(texts)
    return Extracted(text=text, meta=meta, pages=starts)


def join_pages(texts: list[str]) -> tuple[str, tuple[int, ...]]:
    """The pages' texts joined by a blank line, and the offset where each page starts.

    An empty page starts where the next text does (so a passage is never put on it).
    """
    parts: list[str] = []
    starts: list[int] = []
    pending = 0  # empty pages waiting for the next text's start
    pos = 0
    for t in texts:
        if not t:
            pending += 1
            continue
        if parts:
            parts.append("\n\n")
            pos += 2
        starts.extend([pos] * (pending + 1))
        pending = 0
        parts.append(t)
        pos += len(t)
    starts.extend([pos] * pending)
    return "".join(parts) + "\n", tuple(starts)


def _tidy(raw: str) -> str:
    text = raw.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    text = _TRAILING_SPACE.sub("\n", text)
    return _BLANK_RUNS.sub("\n\n", text).strip()


def _metadata(reader: Any) -> dict[str, Any]:
    info = reader.metadata
    if info is None:
        return {}
    meta: dict[str, Any] = {}
    for key, attr in (("title", "title"), ("publisher", "author")):
        try:
            meta[key] = clean_meta_value(getattr(info, attr))
        except Exception:  # a malformed info entry is no reason to refuse the text
            meta[key] = None
    try:
        meta["published"] = date_string(info.creation_date)
    except Exception:
        meta["published"] = date_string(info.get("/CreationDate"))
    return meta


def _encrypted(name: str) -> str:
    return f"{name}: encrypted (password-protected); save an unprotected copy and add that instead."


def _reason(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text[:120]
