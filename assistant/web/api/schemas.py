"""Request and response models of the HTTP API (the contract in README.md)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator

# How many history turns a request may carry at all; how many are used, and every
# length limit, come from the settings (`assistant.admission`).
MAX_HISTORY_TURNS = 50


def not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty or only whitespace")
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


class SearchFilters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    doc_id: str | None = Field(None, max_length=128)
    kind: Literal["policy_paper", "news_report", "unknown"] | None = None
    language: Literal["en", "zh", "zh-Hans", "zh-Hant"] | None = None


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(..., min_length=1, description="At most ASSISTANT_MAX_MESSAGE_CHARS characters.")
    k: StrictInt = Field(5, ge=1, le=50)
    filters: SearchFilters | None = None

    _check_query = field_validator("query")(not_blank)


class SearchResult(BaseModel):
    rank: int
    chunk_id: str
    doc_id: str
    title: str
    kind: str
    published: str | None
    text: str
    score: float
    start: int
    end: int
    heading: str | None = None
    page: int | None = Field(None, description="The page the passage starts on (PDF); null for unpaged formats.")


class SearchResponse(BaseModel):
    query: str
    results: list[SearchResult]


class HistoryTurn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "assistant"]
    content: str = Field(..., description="At most 4 × ASSISTANT_MAX_MESSAGE_CHARS characters.")


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str = Field(..., min_length=1, description="At most ASSISTANT_MAX_MESSAGE_CHARS characters.")
    history: list[HistoryTurn] = Field(default_factory=list, max_length=MAX_HISTORY_TURNS)
    stream: StrictBool = False

    _check_message = field_validator("message")(not_blank)


class CitationOut(BaseModel):
    n: int
    chunk_id: str
    doc_id: str
    title: str
    quote: str
    start: int
    end: int
    kind: str | None = None
    published: str | None = None
    page: int | None = Field(None, description="The page the quote starts on (PDF); null for unpaged formats.")


class ChatResponse(BaseModel):
    answer: str
    citations: list[CitationOut]
    grounded: bool
    backend: Literal["openai", "local", "extractive"]
    notice: str | None = None
    query: str | None = None
    related: list[CitationOut] = Field(
        default_factory=list,
        description="With grounded=false: the closest things the documents do state, cited.",
    )


class DocumentSummary(BaseModel):
    doc_id: str
    title: str
    kind: str
    publisher: str | None
    published: str | None
    language: str
    chunks: int


class LibraryDocument(DocumentSummary):
    library: bool = Field(
        False, description="Added through the API (can be changed and deleted there); false: from the corpus folder."
    )


class DocumentList(BaseModel):
    documents: list[LibraryDocument]


class DocumentUploaded(LibraryDocument):
    library: bool = True
    file: str = Field(description="The file's name in the library folder.")
    ingest: dict[str, Any] = Field(description="The ingest report: documents, chunks, added, removed, seconds, skipped.")


class DocumentPatch(BaseModel):
    """Metadata to change; fields left out stay as they are."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(None, max_length=500)
    kind: str | None = Field(None, description="policy_paper, news_report or unknown")
    published: str | None = Field(None, description="YYYY, YYYY-MM or YYYY-MM-DD")
    language: str | None = Field(None, description="en, zh-Hans or zh-Hant")
    publisher: str | None = Field(None, max_length=500)


class DocumentDetail(LibraryDocument):
    source_notes: str | None = None
    text: str


class Health(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    status: Literal["ready"]
    chunks: int
    backend: str


class ErrorBody(BaseModel):
    detail: str


class TranslateRequest(BaseModel):
    """POST /v1/translate: machine translation of a passage (an evidence quote) to read it."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(..., description="At most ASSISTANT_MAX_MESSAGE_CHARS characters.")
    target: Literal["en", "zh-Hans", "zh-Hant"]


class TranslateResponse(BaseModel):
    translation: str
    target: Literal["en", "zh-Hans", "zh-Hant"]
    source_language: str = Field(..., description="en, zh-Hans or zh-Hant, as detected.")
    machine_translation: Literal[True] = Field(
        True, description="Always true: a machine translation, not the document's own words."
    )
    backend: str = Field(..., description="The model that translated (local, openai), or opencc / none.")
