"""One `Database` per place data is kept (an engine, built once, and the schema it must have).

* `ASSISTANT_DATABASE_URL` set (`postgresql+pg8000://user:password@host:5432/name`, or
  `postgresql+psycopg://…` where psycopg 3 is installed): one database holds partners,
  quotas, usage and feedback for every server process. Its schema is migrated only by
  `assistant db upgrade`; a server whose database is behind refuses to start and says so.
* Unset (the embedded default): the SQLite files of older versions, `partners.db` and
  `feedback.db` in `ASSISTANT_STATE_DIR` (WAL), brought up to date automatically on first
  use, so a fresh machine needs no extra step. Files written by versions before Alembic
  are adopted in place: same tables, same columns.

The migrations are two Alembic branches, `partners` and `feedback` (`assistant/db/migrations`),
so each SQLite file carries only its own tables while PostgreSQL carries both.

Transactions: `write()` is one transaction; on SQLite it starts with `BEGIN IMMEDIATE`, so
writers queue on the file lock instead of failing on a lock upgrade, across threads and
processes. `read()` is a plain (deferred) transaction. On PostgreSQL both are READ
COMMITTED; what must be atomic across processes is written so that it is (`counters`).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine, make_url

from assistant.db.errors import DatabaseError, SchemaBehind

if TYPE_CHECKING:
    from assistant.settings import Settings

log = logging.getLogger(__name__)

PARTNERS = "partners"
FEEDBACK = "feedback"
BRANCHES = (PARTNERS, FEEDBACK)
SQLITE_FILES = {PARTNERS: "partners.db", FEEDBACK: "feedback.db"}
# A bare postgresql:// URL gets the pinned pure-Python driver (pg8000), not SQLAlchemy's psycopg2.
DEFAULT_PG_DRIVER = "pg8000"
PG_DRIVERS = ("pg8000", "psycopg")

__all__ = ["BRANCHES", "Database", "DatabaseError", "Databases", "SchemaBehind", "normalize_url"]


def normalize_url(url: str | URL) -> URL:
    """The URL with its driver: `postgresql://` and `postgres://` get pg8000; others are refused."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except sa.exc.ArgumentError:
        raise DatabaseError(
            "ASSISTANT_DATABASE_URL is not a database URL; expected postgresql+pg8000://USER:PASSWORD@HOST:5432/NAME"
        ) from None
    backend, _, driver = parsed.drivername.partition("+")
    if backend in ("postgresql", "postgres"):
        driver = driver or DEFAULT_PG_DRIVER
        if driver not in PG_DRIVERS:
            raise DatabaseError(
                f"ASSISTANT_DATABASE_URL: driver {driver!r} is not supported; use postgresql+pg8000:// "
                "(installed) or postgresql+psycopg:// (after `pip install psycopg[binary]`)"
            )
        return parsed.set(drivername=f"postgresql+{driver}")
    if backend == "sqlite" and driver in ("", "pysqlite"):
        if not parsed.database or parsed.database == ":memory:":
            raise DatabaseError("ASSISTANT_DATABASE_URL: a SQLite database must be a file (sqlite:////path/to/file.db)")
        return parsed
    raise DatabaseError(
        f"ASSISTANT_DATABASE_URL: {backend!r} databases are not supported; use postgresql+pg8000://… "
        "or leave it unset for the SQLite files in ASSISTANT_STATE_DIR"
    )


class Database:
    """One database: a lazily built engine, and which migration branches it holds.

    Nothing is connected or created before first use. `ready()` (called by `read` and
    `write`) brings a SQLite file up to date, or checks a server database's schema.
    """

    def __init__(self, url: str | URL, *, branches: tuple[str, ...] = BRANCHES) -> None:
        self.url = normalize_url(url)
        self.branches = branches
        self._engine: Engine | None = None
        self._lock = threading.Lock()  # the engine
        self._ready_lock = threading.Lock()  # the first use's migration or check
        self._ready = False

    @classmethod
    def sqlite(cls, path: Path, *, branches: tuple[str, ...] = BRANCHES) -> Database:
        return cls(URL.create("sqlite", database=str(Path(path))), branches=branches)

    # ------------------------------------------------------------------ facts

    @property
    def is_sqlite(self) -> bool:
        return self.url.get_backend_name() == "sqlite"

    @property
    def path(self) -> Path | None:
        """The SQLite file, or None for a server database."""
        return Path(self.url.database) if self.is_sqlite and self.url.database else None

    @property
    def label(self) -> str:
        """Where it is, for messages: the file, or the URL without its password."""
        return str(self.path) if self.path is not None else self.url.render_as_string(hide_password=True)

    def __repr__(self) -> str:
        return f"Database({self.label!r}, branches={self.branches})"

    # ------------------------------------------------------------- connection

    @property
    def engine(self) -> Engine:
        with self._lock:
            if self._engine is None:
                self._engine = self._create_engine()
            return self._engine

    def _create_engine(self) -> Engine:
        if not self.is_sqlite:
            return sa.create_engine(self.url, pool_pre_ping=True, pool_size=5, max_overflow=10)
        assert self.path is not None
        if sqlite3.sqlite_version_info < (3, 35):  # INSERT … ON CONFLICT … RETURNING
            raise DatabaseError(f"SQLite {sqlite3.sqlite_version} is too old: the quotas need 3.35 or newer")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(self.url, connect_args={"timeout": 10, "check_same_thread": False})

        @sa.event.listens_for(engine, "connect")
        def _connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # transactions are begun below, not by the driver
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=10000")
            cursor.close()

        @sa.event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            deferred = conn.get_execution_options().get("sqlite_deferred", False)
            conn.exec_driver_sql("BEGIN DEFERRED" if deferred else "BEGIN IMMEDIATE")

        return engine

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One transaction, committed at the end (rolled back on an exception)."""
        self.ready()
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """One read-only transaction (not serialised with writers on SQLite)."""
        self.ready()
        with self.engine.connect() as conn:
            conn.execution_options(sqlite_deferred=True)
            with conn.begin():
                yield conn

    def dispose(self) -> None:
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None

    # --------------------------------------------------------------- schema

    def ready(self) -> None:
        """Once: upgrade a SQLite file; check a server database (raises `SchemaBehind`)."""
        if self._ready:
            return
        from assistant.db import migrate

        with self._ready_lock:
            if self._ready:
                return
            if self.is_sqlite:
                migrate.upgrade(self)
            else:
                migrate.check(self)
            self._ready = True

    def upgrade(self) -> None:
        from assistant.db import migrate

        migrate.upgrade(self)

    def current(self) -> set[str]:
        from assistant.db import migrate

        return migrate.current(self)


@dataclass
class Databases:
    """The databases of one server or command: `partners` (keys, quotas, usage) and `feedback`.

    The same `Database` for both when `ASSISTANT_DATABASE_URL` is set; two SQLite files otherwise.
    """

    partners: Database
    feedback: Database

    @classmethod
    def from_settings(cls, settings: Settings) -> Databases:
        if settings.database_url is not None:
            shared = Database(settings.database_url.get_secret_value(), branches=BRANCHES)
            return cls(shared, shared)
        state = settings.state_dir
        return cls(
            Database.sqlite(state / SQLITE_FILES[PARTNERS], branches=(PARTNERS,)),
            Database.sqlite(state / SQLITE_FILES[FEEDBACK], branches=(FEEDBACK,)),
        )

    def distinct(self) -> list[Database]:
        return [self.partners] if self.partners is self.feedback else [self.partners, self.feedback]

    def prepare(self) -> None:
        """At start-up: SQLite files are brought up to date; a server database must already be
        (else `SchemaBehind`, naming `assistant db upgrade`)."""
        for db in self.distinct():
            db.ready()

    def dispose(self) -> None:
        for db in self.distinct():
            db.dispose()
