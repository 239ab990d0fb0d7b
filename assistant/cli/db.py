"""`assistant db upgrade|current`: the schema of the partners/quotas/usage/feedback database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click
import sqlalchemy as sa

from assistant.cli.context import Context
from assistant.db.database import Database, DatabaseError, Databases


def _databases() -> Databases:
    return Databases.from_settings(click.get_current_context().ensure_object(Context).settings)


@contextmanager
def _clean_errors() -> Iterator[None]:
    try:
        yield
    except DatabaseError as exc:
        raise click.ClickException(str(exc)) from exc
    except (sa.exc.SQLAlchemyError, OSError) as exc:
        raise click.ClickException(f"database: {str(exc).splitlines()[0]}") from exc


def _describe(db: Database) -> tuple[str, bool]:
    from assistant.db import migrate

    now, missing, unknown = migrate.state(db)
    at = ", ".join(sorted(now)) or "empty"
    if unknown:
        return f"{db.label}: at {at}, newer than this version", False
    if missing:
        return f"{db.label}: at {at}, behind (needs {', '.join(sorted(missing))}): run `assistant db upgrade`", False
    return f"{db.label}: at {at} (up to date)", True


@click.group("db")
def db_cli() -> None:
    """The database of partners, quotas, usage and feedback (ASSISTANT_DATABASE_URL, or the
    SQLite files in ASSISTANT_STATE_DIR)."""


@db_cli.command("upgrade")
def upgrade_command() -> None:
    """Bring the database schema up to date (safe to run again, and from several machines at once)."""
    databases = _databases()
    try:
        with _clean_errors():
            for db in databases.distinct():
                db.upgrade()
                click.echo(_describe(db)[0])
    finally:
        databases.dispose()


@db_cli.command("current")
@click.option("--check", is_flag=True, help="Exit with status 1 unless every database is up to date.")
def current_command(check: bool) -> None:
    """Show the schema revision of each database and whether it is up to date."""
    databases = _databases()
    try:
        with _clean_errors():
            results = [_describe(db) for db in databases.distinct()]
    finally:
        databases.dispose()
    for line, _ in results:
        click.echo(line)
    if check and not all(ok for _, ok in results):
        raise SystemExit(1)
