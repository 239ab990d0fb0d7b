"""The shape of a feedback record, with a size limit on every field (422 beyond)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_COMMENT_CHARS = 2000
MAX_QUESTION_CHARS = 4000
MAX_ANSWER_CHARS = 20000
MAX_CITATIONS = 50
MAX_QUOTE_CHARS = 4000
MAX_TITLE_CHARS = 500
MAX_BACKEND_CHARS = 64
MAX_CONVERSATION_ID_CHARS = 128

Rating = Literal["up", "down"]
Source = Literal["api", "ui", "widget"]
SOURCES: tuple[Source, ...] = ("api", "ui", "widget")


class FeedbackCitation(BaseModel):
    """A citation of the rated answer, as `/v1/chat` returns it. Unknown keys are dropped."""

    model_config = ConfigDict(extra="ignore")

    n: int | None = Field(None, ge=0, le=10_000)
    chunk_id: str | None = Field(None, max_length=300)
    doc_id: str | None = Field(None, max_length=200)
    title: str | None = Field(None, max_length=MAX_TITLE_CHARS)
    quote: str | None = Field(None, max_length=MAX_QUOTE_CHARS)
    start: int | None = Field(None, ge=0)
    end: int | None = Field(None, ge=0)
    page: int | None = Field(None, ge=0)
    url: str | None = Field(None, max_length=2000)


class FeedbackIn(BaseModel):
    """`POST /v1/feedback` and `POST /v1/widget/feedback`: a rating of one answer."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "rating": "down",
                    "comment": "It named the wrong city.",
                    "question": "Which center should we contact first?",
                    "answer": "The documents name one center for this [1].",
                    "citations": [{"n": 1, "doc_id": "some-document", "start": 2873, "end": 2941}],
                    "backend": "local",
                    "conversation_id": "c-2f9d1b",
                }
            ]
        },
    )

    rating: Rating = Field(description="`up` (a good answer) or `down` (a bad one).")
    comment: str | None = Field(None, max_length=MAX_COMMENT_CHARS, description="What was wrong or right (optional).")
    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS, description="The question that was answered.")
    answer: str = Field(max_length=MAX_ANSWER_CHARS, description="The answer as shown.")
    citations: list[FeedbackCitation] = Field(default_factory=list, max_length=MAX_CITATIONS)
    backend: str = Field(
        "", max_length=MAX_BACKEND_CHARS, description="The answer's `backend` (local, openai, extractive, …)."
    )
    conversation_id: str | None = Field(
        None, max_length=MAX_CONVERSATION_ID_CHARS, pattern=r"^[A-Za-z0-9._:-]+$", description="Groups the turns of one chat."
    )

    @field_validator("question")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank: send the question that was answered")
        return value


class FeedbackRecord(FeedbackIn):
    """A stored feedback record."""

    model_config = ConfigDict(extra="ignore")

    id: int
    created: str = Field(description="When it was given, ISO 8601 UTC.")
    source: Source = Field(description="Where it came from: api, ui or widget.")
    partner_id: str | None = Field(None, description="The widget partner's id (source widget).")


class FeedbackSaved(BaseModel):
    id: int
    created: str


class FeedbackList(BaseModel):
    feedback: list[FeedbackRecord]
    count: int
