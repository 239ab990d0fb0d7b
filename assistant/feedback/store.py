"""Feedback records, in the feedback database (`assistant.db`): the SQLite file
`settings.state_dir / "feedback.db"` (WAL) by default, or the PostgreSQL database of
`ASSISTANT_DATABASE_URL`. SQLAlchemy Core, portable SQL only. A widget visitor is kept only
as the partner store's keyed hash of its address (for the per-visitor limits), never the
address itself; its records per day are an atomic counter (`assistant.db.counters`), so
the limit holds across replicas.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, RowMapping, text

from assistant.db import counters
from assistant.db.database import FEEDBACK, SQLITE_FILES, Database, Databases
from assistant.feedback.schemas import FeedbackIn, FeedbackRecord, Rating, Source

if TYPE_CHECKING:
    from assistant.settings import Settings

DB_NAME = SQLITE_FILES[FEEDBACK]
COUNTERS = "feedback_counters"
WINDOW_S = 60.0
DAY_S = 86400.0
PRUNE_EVERY_S = 3600.0

_RELATIVE = re.compile(r"^(\d{1,5})\s*([dhm])$")


class SinceError(ValueError):
    """A `since` that is neither ISO 8601 nor a relative age like 7d."""


def parse_since(text: str | None, now: float | None = None) -> float | None:
    """`since` as epoch seconds: an ISO 8601 date or date-time (UTC when no offset is
    given), or an age: `7d`, `12h`, `30m`. None or blank: no bound."""
    if text is None or not text.strip():
        return None
    text = text.strip()
    m = _RELATIVE.match(text.lower())
    if m:
        amount, unit = int(m.group(1)), m.group(2)
        delta = {"d": timedelta(days=amount), "h": timedelta(hours=amount), "m": timedelta(minutes=amount)}[unit]
        return (time.time() if now is None else now) - delta.total_seconds()
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise SinceError(
            f"since: {text[:40]!r} is not a date; use ISO 8601 (2026-01-31 or 2026-01-31T08:00:00Z) or an age (7d, 12h)"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class FeedbackStore:
    """`database`: a `Database`, or the path of a SQLite file (its own, closed with the store)."""

    def __init__(self, database: Path | Database, *, clock: Callable[[], float] = time.time) -> None:
        self._owns_db = not isinstance(database, Database)
        self.db = database if isinstance(database, Database) else Database.sqlite(database, branches=(FEEDBACK,))
        self.path = self.db.path  # the SQLite file; None for a server database
        self.clock = clock
        self._lock = threading.Lock()
        self._pruned = -math.inf

    @classmethod
    def from_settings(cls, settings: Settings, database: Database | None = None) -> FeedbackStore:
        store = cls(database or Databases.from_settings(settings).feedback)
        store._owns_db = database is None
        return store

    def close(self) -> None:
        """Close the store's own database (a `Database` passed in is its owner's to close)."""
        if self._owns_db:
            self.db.dispose()

    # ------------------------------------------------------------------ write

    def add(
        self,
        item: FeedbackIn,
        source: Source,
        *,
        partner_id: str | None = None,
        visitor: str | None = None,
        limits: tuple[int, int] | None = None,
    ) -> FeedbackRecord | int:
        """Store `item`; returns the record. With `limits` (per minute, per day) for a
        `visitor` of `partner_id`, returns instead the seconds to wait when they are used up."""
        now = self.clock()
        citations = json.dumps([c.model_dump(exclude_none=True) for c in item.citations], ensure_ascii=False)
        with self.db.write() as db:
            self._prune(db, now)
            if limits is not None and visitor is not None:
                wait = self._wait(db, partner_id, visitor, now, *limits)
                if wait:
                    return wait
            row_id = db.execute(
                text(
                    "INSERT INTO feedback (ts, source, partner_id, visitor, rating, comment, question, answer,"
                    " citations, backend, conversation_id) VALUES (:ts, :source, :partner_id, :visitor, :rating,"
                    " :comment, :question, :answer, :citations, :backend, :conversation_id) RETURNING id"
                ),
                {
                    "ts": now, "source": source, "partner_id": partner_id, "visitor": visitor,
                    "rating": item.rating, "comment": item.comment, "question": item.question,
                    "answer": item.answer, "citations": citations, "backend": item.backend,
                    "conversation_id": item.conversation_id,
                },
            ).scalar_one()
        return FeedbackRecord(
            **item.model_dump(), id=int(row_id), created=iso(now), source=source, partner_id=partner_id
        )

    @staticmethod
    def _wait(db: Connection, partner_id: str | None, visitor: str, now: float, per_minute: int, per_day: int) -> int:
        """Seconds to wait (0: counted, go on): the day counter first (its row lock serialises
        this visitor across replicas), then the sliding minute over the stored records."""
        day = counters.day_of(now)
        subject = f"v:{partner_id or ''}:{visitor}"
        if not counters.take(db, COUNTERS, subject, day, per_day):
            return max(1, math.ceil(day + DAY_S - now))
        where = ("partner_id = :partner_id" if partner_id is not None else "partner_id IS NULL") + " AND visitor = :visitor"
        params: dict[str, Any] = {"visitor": visitor, "since": now - WINDOW_S}
        if partner_id is not None:
            params["partner_id"] = partner_id
        recent = [float(r[0]) for r in db.execute(text(f"SELECT ts FROM feedback WHERE {where} AND ts > :since ORDER BY ts"), params)]
        if len(recent) >= per_minute:
            counters.give_back(db, COUNTERS, subject, day)
            return max(1, math.ceil(recent[len(recent) - per_minute] + WINDOW_S - now))
        return 0

    def _prune(self, db: Connection, now: float) -> None:
        """Counters of past days go (at most once an hour per process); records are kept."""
        with self._lock:
            if now - self._pruned < PRUNE_EVERY_S:
                return
            self._pruned = now
        counters.prune(db, COUNTERS, counters.day_of(now) - counters.DAY_S)

    # ------------------------------------------------------------------- read

    def records(
        self,
        *,
        rating: Rating | None = None,
        since: float | None = None,
        source: Source | None = None,
        limit: int | None = None,
    ) -> list[FeedbackRecord]:
        """Records, newest first, filtered by rating, time (epoch seconds) and source."""
        clauses: list[str] = []
        params: dict[str, Any] = {}
        if rating is not None:
            clauses.append("rating = :rating")
            params["rating"] = rating
        if since is not None:
            clauses.append("ts >= :since")
            params["since"] = since
        if source is not None:
            clauses.append("source = :source")
            params["source"] = source
        sql = "SELECT * FROM feedback"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY ts DESC, id DESC"
        if limit is not None:
            sql += " LIMIT :limit"
            params["limit"] = int(limit)
        with self.db.read() as db:
            rows = [r._mapping for r in db.execute(text(sql), params)]
        return [_record(r) for r in rows]


def _record(row: RowMapping) -> FeedbackRecord:
    data: dict[str, Any] = {
        "id": int(row["id"]),
        "created": iso(float(row["ts"])),
        "source": row["source"],
        "partner_id": row["partner_id"],
        "rating": row["rating"],
        "comment": row["comment"],
        "question": row["question"],
        "answer": row["answer"],
        "citations": json.loads(row["citations"] or "[]"),
        "backend": row["backend"],
        "conversation_id": row["conversation_id"],
    }
    return FeedbackRecord.model_validate(data)
