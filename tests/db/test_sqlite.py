"""The embedded default: SQLite files in ASSISTANT_STATE_DIR, migrated automatically at start."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from assistant.cli.main import main
from assistant.db import Database, DatabaseError, Databases
from assistant.db.database import normalize_url
from assistant.feedback.store import FeedbackStore
from assistant.partners.store import PartnerStore
from tests.conftest import make_settings
from tests.db.hammer import run_processes

# feedback.db as versions before Alembic created it, with one record.
OLD_FEEDBACK = """
CREATE TABLE feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, source TEXT NOT NULL, partner_id TEXT,
    visitor TEXT, rating TEXT NOT NULL, comment TEXT, question TEXT NOT NULL, answer TEXT NOT NULL,
    citations TEXT NOT NULL, backend TEXT NOT NULL, conversation_id TEXT
);
CREATE INDEX feedback_ts ON feedback(ts);
INSERT INTO feedback (ts, source, rating, question, answer, citations, backend)
    VALUES (1767254400.0, 'api', 'down', 'Where?', 'Nanning.', '[]', 'local');
"""


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_start_up_creates_and_migrates_the_files(tmp_path: Path) -> None:
    from assistant.web.api.factory import open_databases

    state = tmp_path / "var"
    databases = open_databases(make_settings(ASSISTANT_STATE_DIR=state))
    try:
        assert [db.path for db in databases.distinct()] == [state / "partners.db", state / "feedback.db"]
        assert {"partners", "requests", "refusals", "quota_counters", "alembic_version"} <= tables(state / "partners.db")
        assert {"feedback", "feedback_counters", "alembic_version"} <= tables(state / "feedback.db")
        assert "feedback" not in tables(state / "partners.db")  # each file holds its own branch
        assert databases.partners.current() == {"p0002"}
        assert databases.feedback.current() == {"f0002"}
    finally:
        databases.dispose()


def test_a_file_of_an_older_version_is_adopted_in_place(tmp_path: Path) -> None:
    path = tmp_path / "feedback.db"
    with sqlite3.connect(path) as db:
        db.executescript(OLD_FEEDBACK)
    db.close()
    store = FeedbackStore(path)
    try:
        [record] = store.records()
        assert (record.id, record.question, record.created) == (1, "Where?", "2026-01-01T08:00:00Z")
    finally:
        store.close()
    assert {"feedback", "feedback_counters", "alembic_version"} <= tables(path)


def test_db_cli_on_the_default_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no .env
    env = {"ASSISTANT_STATE_DIR": str(tmp_path / "var")}
    before = CliRunner().invoke(main, ["db", "current", "--check"], env=env)
    assert before.exit_code == 1
    assert "partners.db: at empty, behind" in before.output and "assistant db upgrade" in before.output
    upgraded = CliRunner().invoke(main, ["db", "upgrade"], env=env)
    assert upgraded.exit_code == 0, upgraded.output
    assert "partners.db: at p0002 (up to date)" in upgraded.output
    assert "feedback.db: at f0002 (up to date)" in upgraded.output
    assert CliRunner().invoke(main, ["db", "current", "--check"], env=env).exit_code == 0


def test_one_sqlite_url_holds_both_branches(tmp_path: Path) -> None:
    settings = make_settings(ASSISTANT_DATABASE_URL=f"sqlite:///{tmp_path / 'all.db'}")
    databases = Databases.from_settings(settings)
    assert databases.partners is databases.feedback
    databases.prepare()
    assert databases.partners.current() == {"p0002", "f0002"}
    databases.dispose()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u:p@db.example:5432/assistant", "postgresql+pg8000"),
        ("postgres://u@db.example/assistant", "postgresql+pg8000"),
        ("postgresql+psycopg://u@db.example/assistant", "postgresql+psycopg"),
        ("sqlite:////var/lib/assistant/all.db", "sqlite"),
    ],
)
def test_database_urls(url: str, expected: str) -> None:
    assert normalize_url(url).drivername == expected


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("mysql://u@h/db", "not supported"),
        ("postgresql+psycopg2://u@h/db", "not supported"),
        ("sqlite://", "must be a file"),
        ("not a url", "not a database URL"),
    ],
)
def test_bad_database_urls_say_what_to_use(url: str, words: str) -> None:
    with pytest.raises(DatabaseError, match=words):
        Database(url)


def test_the_url_is_secret_in_settings() -> None:
    settings = make_settings(ASSISTANT_DATABASE_URL="postgresql://u:hunter2@h/db")
    assert "hunter2" not in repr(settings)
    assert make_settings(ASSISTANT_DATABASE_URL="").database_url is None
    assert "hunter2" not in Database(settings.database_url.get_secret_value()).label  # type: ignore[union-attr]


def test_two_processes_share_one_quota_on_sqlite(tmp_path: Path) -> None:
    store = PartnerStore(tmp_path / "partners.db")
    pid, _ = store.add("busy", ["https://acme.example"], per_minute=100_000, per_day=29)
    counts = run_processes(f"sqlite:///{tmp_path / 'partners.db'}", tmp_path, pid, 20)  # neither alone reaches it
    assert sum(counts) == 29, counts
    store.close()
