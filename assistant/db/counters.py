"""Atomic daily counters (quotas), shared by every process that uses the database.

`take` counts one unit with a single statement,

    INSERT INTO t (subject, day, count) VALUES (:subject, :day, 1)
    ON CONFLICT (subject, day) DO UPDATE SET count = t.count + 1 WHERE t.count < :limit
    RETURNING count

which PostgreSQL and SQLite (3.35+) both run atomically: the row is locked (PostgreSQL) or
the file is (SQLite) from the statement to the end of the transaction, the limit is checked
against the latest committed count, and no row comes back when the limit is reached. So
two replicas never both pass the last unit, and a refused request counts nothing. The row
lock also serialises everything else the transaction checks for that subject (e.g. a
sliding per-minute window read from the usage log).
"""

from __future__ import annotations

from sqlalchemy import Connection, text

DAY_S = 86400


def day_of(now: float) -> int:
    """The UTC day of `now`, as the epoch second of its midnight."""
    return int(now // DAY_S) * DAY_S


def take(conn: Connection, table: str, subject: str, day: int, limit: int) -> bool:
    """Count one for `subject` on `day` unless `limit` is reached; whether it was counted."""
    if limit < 1:
        return False
    row = conn.execute(
        text(
            f"INSERT INTO {table} (subject, day, count) VALUES (:subject, :day, 1)"
            f" ON CONFLICT (subject, day) DO UPDATE SET count = {table}.count + 1"
            f" WHERE {table}.count < :limit RETURNING count"
        ),
        {"subject": subject, "day": day, "limit": limit},
    ).first()
    return row is not None


def give_back(conn: Connection, table: str, subject: str, day: int) -> None:
    """Undo one `take` in the same transaction (another limit refused the request)."""
    conn.execute(
        text(f"UPDATE {table} SET count = count - 1 WHERE subject = :subject AND day = :day AND count > 0"),
        {"subject": subject, "day": day},
    )


def used(conn: Connection, table: str, subject: str, day: int) -> int:
    row = conn.execute(
        text(f"SELECT count FROM {table} WHERE subject = :subject AND day = :day"), {"subject": subject, "day": day}
    ).first()
    return int(row[0]) if row is not None else 0


def prune(conn: Connection, table: str, before_day: int) -> int:
    """Delete the counters of days before `before_day`; how many."""
    return int(conn.execute(text(f"DELETE FROM {table} WHERE day < :day"), {"day": before_day}).rowcount or 0)
