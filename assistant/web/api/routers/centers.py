"""The centers directory and the recommendation: GET /v1/centers, GET /v1/centers/{id},
POST /v1/recommend.

The directory (corpus/centers.yaml, every value quoted from a document) is loaded once per
app from the assistant's indexed documents and cached on `app.state`; it is reloaded when
the indexed documents or the YAML file change. A directory that does not check out is a
503 whose detail names the entry and field to fix.
"""

from __future__ import annotations

import threading
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from assistant.centers.cache import DirectoryCache
from assistant.centers.directory import Directory
from assistant.centers.model import DirectoryError
from assistant.centers.recommend import recommend
from assistant.errors import NotFound, Unavailable
from assistant.web.api.deps import AssistantDep
from assistant.web.api.schemas import ErrorBody, not_blank

router = APIRouter(tags=["centers"])

MAX_GOAL_CHARS = 2000
MAX_COUNTRIES = 30
MAX_COUNTRY_CHARS = 100
MAX_SECTOR_CHARS = 200

_STATE_LOCK = threading.Lock()


def get_directory(request: Request, assistant: AssistantDep) -> Directory:
    """The app's directory, loaded lazily (thread-safe) and cached on `app.state`."""
    state = request.app.state
    cache = getattr(state, "centers_cache", None)
    if cache is None:
        with _STATE_LOCK:
            cache = getattr(state, "centers_cache", None)
            if cache is None:
                cache = DirectoryCache()
                state.centers_cache = cache
    try:
        directory: Directory = cache.get(assistant)
    except DirectoryError as exc:
        raise Unavailable(f"The centers directory cannot be loaded: {exc}") from exc
    return directory


DirectoryDep = Annotated[Directory, Depends(get_directory)]


# ---------------------------------------------------------------------- models


Country = Annotated[str, StringConstraints(min_length=1, max_length=MAX_COUNTRY_CHARS)]


class RecommendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    goal: str = Field(..., min_length=1, max_length=MAX_GOAL_CHARS, description="What the company wants to do, in English or Chinese.")
    countries: list[Country] | None = Field(
        None, max_length=MAX_COUNTRIES, description="Target countries or regions, English or Chinese names."
    )
    sector: str | None = Field(None, max_length=MAX_SECTOR_CHARS, description="The company's sector.")

    _check_goal = field_validator("goal")(not_blank)

    @field_validator("countries")
    @classmethod
    def _check_countries(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            for item in value:
                not_blank(item)
        return value

    @field_validator("sector")
    @classmethod
    def _check_sector(cls, value: str | None) -> str | None:
        if value is not None and "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value


class QuoteOut(BaseModel):
    doc_id: str
    quote: str
    start: int
    end: int


class ReasonOut(BaseModel):
    text: str
    citations: list[QuoteOut]


class RecommendedCenter(BaseModel):
    id: str
    name_zh: str
    name_en: str
    score: float
    match: str = Field(description="region, outreach, sector, or closest (not serving the places named)")
    kind: str
    reasons: list[ReasonOut]


class RecommendResponse(BaseModel):
    goal: str
    covered: bool
    note: str
    language: str
    places: list[str]
    centers: list[RecommendedCenter]


class CenterSummary(BaseModel):
    id: str
    kind: str
    name_zh: str
    name_en: str
    name_en_translated: bool
    regions: list[str]
    outreach_regions: list[str]
    countries: list[str]
    host: str | None
    founded: str | None


class CenterList(BaseModel):
    centers: list[CenterSummary]


class FactOut(BaseModel):
    value: str | list[str] | None
    value_zh: str | None = None
    context: str | None = None
    context_zh: str | None = None
    doc_id: str | None = None
    quote: str | None = None
    start: int | None = None
    end: int | None = None
    note: str | None = None
    translated: bool = False
    reach: str | None = None


class CenterDetail(CenterSummary):
    fields: dict[str, list[FactOut]]


# ---------------------------------------------------------------------- routes


@router.get(
    "/v1/centers",
    response_model=CenterList,
    responses={422: {"model": ErrorBody}, 503: {"model": ErrorBody}},
)
def list_centers(
    directory: DirectoryDep,
    region: str | None = Query(None, max_length=50, description="A region code (the `regions` of the centers listed)."),
    country: str | None = Query(None, max_length=MAX_COUNTRY_CHARS, description="A country or region name, English or Chinese."),
) -> CenterList:
    regions = directory.geography.regions
    if region is not None and region not in regions:
        raise HTTPException(422, f"region: unknown code {region!r}; use one of {', '.join(regions)}.")
    if country is not None:
        if not country.strip():
            raise HTTPException(422, "country: must not be empty or only whitespace.")
        scan = directory.geography.find_places([country])
        if scan.unknown:
            raise HTTPException(422, f"country: {country!r} is not a country or region name this service knows; "
                                f"use an English or Chinese name{_example(directory)}.")
    centers = directory.filter(region=region, country=country)
    return CenterList(centers=[CenterSummary(**c.summary()) for c in centers])


def _example(directory: Directory) -> str:
    """", such as '<a country>' or '<its Chinese name>'", from the place table; '' if it has none."""
    countries = directory.geography.countries
    return f" such as {countries[0].name_en!r} or {countries[0].name_zh!r}" if countries else ""


@router.get(
    "/v1/centers/{center_id}",
    response_model=CenterDetail,
    responses={404: {"model": ErrorBody}, 503: {"model": ErrorBody}},
)
def get_center(center_id: str, directory: DirectoryDep) -> CenterDetail:
    try:
        center = directory.get(center_id)
    except KeyError:
        raise NotFound(f"No center with id {center_id!r}. GET /v1/centers lists the ids.") from None
    return CenterDetail(**center.detail())


@router.post(
    "/v1/recommend",
    response_model=RecommendResponse,
    responses={422: {"model": ErrorBody}, 503: {"model": ErrorBody}},
)
def recommend_centers(body: RecommendRequest, directory: DirectoryDep) -> RecommendResponse:
    rec = recommend(directory, body.goal, body.countries, body.sector)
    data: dict[str, Any] = rec.as_dict()
    return RecommendResponse(**data)
