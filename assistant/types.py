"""Plain data types shared by the pipeline stages."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Kind = Literal["policy_paper", "news_report", "unknown"]
Language = Literal["en", "zh-Hans", "zh-Hant"]


@dataclass(frozen=True)
class Document:
    """A cleaned document: `text` is exactly what is shown and quoted."""

    doc_id: str
    title: str
    text: str
    kind: str = "unknown"
    publisher: str | None = None
    published: str | None = None
    language: str = "zh-Hans"
    source_notes: str | None = None
    source_file: str | None = None
    # Paged formats (PDF): the offset in `text` where page i+1 starts (pages[0] == 0).
    pages: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.pages is not None and not isinstance(self.pages, tuple):
            # Loaded from JSON (`Document(**json)`): a list.
            object.__setattr__(self, "pages", tuple(int(p) for p in self.pages))

    def page_at(self, offset: int) -> int | None:
        """The page (1-based) that the text at `offset` is on; None for unpaged formats."""
        if not self.pages:
            return None
        return max(1, bisect_right(self.pages, offset))

    def meta(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("text")
        return data


@dataclass(frozen=True)
class Chunk:
    """A contiguous slice of a document: `text == document.text[start:end]`."""

    chunk_id: str
    doc_id: str
    start: int
    end: int
    text: str
    heading: str | None = None
    language: str = "zh-Hans"
    is_table: bool = False


@dataclass(frozen=True)
class SearchHit:
    rank: int
    chunk: Chunk
    document: Document
    score: float
    dense_score: float | None = None
    keyword_score: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "chunk_id": self.chunk.chunk_id,
            "doc_id": self.document.doc_id,
            "title": self.document.title,
            "kind": self.document.kind,
            "published": self.document.published,
            "text": self.chunk.text,
            "score": round(self.score, 6),
            "start": self.chunk.start,
            "end": self.chunk.end,
            "heading": self.chunk.heading,
            "page": self.document.page_at(self.chunk.start),
        }

    def as_source(self, n: int) -> dict[str, Any]:
        """The passage as a source card: what a face shows while the answer is written."""
        return {
            "n": n,
            "chunk_id": self.chunk.chunk_id,
            "doc_id": self.document.doc_id,
            "title": self.document.title,
            "kind": self.document.kind,
            "published": self.document.published,
            "page": self.document.page_at(self.chunk.start),  # None for unpaged formats
            "text": self.chunk.text,
        }


@dataclass(frozen=True)
class Quote:
    """A verbatim span of a document: `document.text[start:end] == quote`."""

    doc_id: str
    quote: str
    start: int
    end: int

    def as_dict(self) -> dict[str, Any]:
        return {"doc_id": self.doc_id, "quote": self.quote, "start": self.start, "end": self.end}


@dataclass(frozen=True)
class Citation:
    n: int
    chunk_id: str
    doc_id: str
    title: str
    quote: str
    start: int
    end: int
    kind: str = "unknown"
    published: str | None = None
    page: int | None = None  # where the quote starts, for paged formats (PDF)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Answer:
    answer: str
    citations: list[Citation] = field(default_factory=list)
    grounded: bool = False
    backend: str = "extractive"
    notice: str | None = None
    query: str | None = None
    # When the documents do not answer: the closest things they do state (cited).
    related: list[Citation] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "answer": self.answer,
            "citations": [c.as_dict() for c in self.citations],
            "grounded": self.grounded,
            "backend": self.backend,
            "related": [c.as_dict() for c in self.related],
        }
        if self.notice:
            data["notice"] = self.notice
        if self.query:
            data["query"] = self.query
        return data
