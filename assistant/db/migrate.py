"""Alembic, driven from code: the migrations in `assistant/db/migrations`, run on a `Database`.

No `alembic.ini` and no environment: the connection comes from the `Database` (built from
`Settings` at the entry point) and reaches `env.py` through `Config.attributes`. The whole
upgrade is one transaction, begun here: on SQLite with `BEGIN IMMEDIATE` (a second process
waits, then finds nothing to do), on PostgreSQL after `pg_advisory_xact_lock`, so two
replicas running `assistant db upgrade` at once do not both migrate.
"""

from __future__ import annotations

import logging
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from assistant.db.errors import UPGRADE, DatabaseError, SchemaBehind

if TYPE_CHECKING:
    from assistant.db.database import Database

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# pg_advisory_xact_lock key of `assistant db upgrade` (any constant; "asst" in ASCII).
LOCK_KEY = 0x61737374


def config(connection: sa.Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


@cache
def scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(config())


def heads(branches: tuple[str, ...]) -> set[str]:
    """The newest revision of each branch: what this version's code needs."""
    script = scripts()
    found: set[str] = set()
    for branch in branches:
        head = script.get_revision(f"{branch}@head")
        assert head is not None
        found.add(head.revision)
    return found


def _connect_error(db: Database, exc: Exception) -> DatabaseError:
    reason = getattr(exc, "orig", None) or exc
    return DatabaseError(f"database {db.label}: {str(reason).strip().splitlines()[0][:300]}")


def current(db: Database) -> set[str]:
    """The revisions the database is at (empty: never migrated)."""
    try:
        with db.engine.connect() as conn:
            return set(MigrationContext.configure(conn).get_current_heads())
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
        raise _connect_error(db, exc) from exc


def state(db: Database) -> tuple[set[str], set[str], set[str]]:
    """(current revisions, missing heads, unknown revisions) of the database."""
    now = current(db)
    needed = heads(db.branches)
    known = {rev.revision for rev in scripts().walk_revisions()}
    unknown = now - known
    # A branch is up to date when its head is among the current revisions.
    missing = needed - now
    return now, missing, unknown


def check(db: Database) -> None:
    """Raise `SchemaBehind` (or `DatabaseError` for a newer schema) unless the database is at head."""
    now, missing, unknown = state(db)
    if unknown:
        raise DatabaseError(
            f"database {db.label} has schema revision {', '.join(sorted(unknown))}, newer than this "
            "version knows: run the newer version, or restore the database from before its upgrade"
        )
    if missing:
        at = ", ".join(sorted(now)) or "empty"
        raise SchemaBehind(
            f"database {db.label} schema is behind (at {at}, needs {', '.join(sorted(missing))}): run `{UPGRADE}`"
        )


def upgrade(db: Database, target: str | None = None) -> None:
    """Bring the database's branches to their heads (or to `target`, e.g. `partners@p0001`)."""
    try:
        with db.engine.connect() as conn, conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
            cfg = config(conn)
            targets = [target] if target else [f"{branch}@head" for branch in db.branches]
            for t in targets:
                command.upgrade(cfg, t)
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
        raise _connect_error(db, exc) from exc
