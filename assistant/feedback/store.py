"""Feedback records in SQLite: `settings.state_dir / "feedback.db"` (WAL), created on first use.

Plain `sqlite3` (SQLAlchemy is not a dependency), portable SQL only, so the table can move
to PostgreSQL later. A widget visitor is kept only as the partner store's keyed hash of its
address (for the per-visitor limits), never the address itself.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.feedback.schemas import FeedbackIn, FeedbackRecord, Rating, Source

if TYPE_CHECKING:
    from assistant.settings import Settings

DB_NAME = "feedback.db"
WINDOW_S = 60.0
DAY_S = 86400.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    ts              REAL NOT NULL,          -- epoch seconds, UTC
    source          TEXT NOT NULL,          -- api | ui | widget
    partner_id      TEXT,                   -- the widget partner (source widget)
    visitor         TEXT,                   -- keyed hash of the widget visitor's address
    rating          TEXT NOT NULL,          -- up | down
    comment         TEXT,
    question        TEXT NOT NULL,
    answer          TEXT NOT NULL,
    citations       TEXT NOT NULL,          -- JSON list
    backend         TEXT NOT NULL,
    conversation_id TEXT
);
CREATE INDEX IF NOT EXISTS feedback_ts ON feedback(ts);
CREATE INDEX IF NOT EXISTS feedback_visitor ON feedback(partner_id, visitor, ts);
"""

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
    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self.clock = clock
        self._db: sqlite3.Connection | None = None
        self._lock = threading.RLock()

    @classmethod
    def from_settings(cls, settings: Settings) -> FeedbackStore:
        return cls(settings.state_dir / DB_NAME)

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=10, isolation_level=None, check_same_thread=False)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA busy_timeout=10000")
            db.executescript(SCHEMA)
            self._db = db
        return self._db

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            db = self._conn()
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

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
        with self._tx() as db:
            if limits is not None and visitor is not None:
                wait = self._wait(db, partner_id, visitor, now, *limits)
                if wait:
                    return wait
            cur = db.execute(
                "INSERT INTO feedback (ts, source, partner_id, visitor, rating, comment, question, answer,"
                " citations, backend, conversation_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    now, source, partner_id, visitor, item.rating, item.comment, item.question, item.answer,
                    citations, item.backend, item.conversation_id,
                ),
            )
            row_id = int(cur.lastrowid or 0)
        return FeedbackRecord(
            **item.model_dump(), id=row_id, created=iso(now), source=source, partner_id=partner_id
        )

    @staticmethod
    def _wait(
        db: sqlite3.Connection, partner_id: str | None, visitor: str, now: float, per_minute: int, per_day: int
    ) -> int:
        day_start = math.floor(now / DAY_S) * DAY_S
        where = "partner_id IS ? AND visitor = ?"
        today = db.execute(f"SELECT COUNT(*) FROM feedback WHERE {where} AND ts >= ?", (partner_id, visitor, day_start)).fetchone()[0]
        if today >= per_day:
            return max(1, math.ceil(day_start + DAY_S - now))
        recent = [
            r[0]
            for r in db.execute(
                f"SELECT ts FROM feedback WHERE {where} AND ts > ? ORDER BY ts", (partner_id, visitor, now - WINDOW_S)
            )
        ]
        if len(recent) >= per_minute:
            return max(1, math.ceil(recent[len(recent) - per_minute] + WINDOW_S - now))
        return 0

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
        args: list[Any] = []
        if rating is not None:
            clauses.append("rating = ?")
            args.append(rating)
        if since is not None:
            clauses.append("ts >= ?")
            args.append(since)
        if source is not None:
            clauses.append("source = ?")
            args.append(source)
        sql = "SELECT * FROM feedback"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY ts DESC, id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        with self._lock:
            rows = self._conn().execute(sql, tuple(args)).fetchall()
        return [_record(r) for r in rows]


def _record(row: sqlite3.Row) -> FeedbackRecord:
    data: dict[str, Any] = {
        "id": row["id"],
        "created": iso(row["ts"]),
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
