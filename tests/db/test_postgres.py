"""Partners, quotas, usage and feedback in a real PostgreSQL (a temporary cluster on loopback).

`assistant db upgrade` migrates it; the stores round-trip; two OS processes share one quota
exactly; a server whose database is behind refuses to start, naming `assistant db upgrade`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from assistant.cli.main import main
from assistant.db import Database, DatabaseError, Databases, SchemaBehind, migrate
from assistant.feedback.schemas import FeedbackIn
from assistant.feedback.store import FeedbackStore
from assistant.partners.errors import PartnerError
from assistant.partners.store import DAY_S, PartnerStore
from tests.conftest import make_settings
from tests.db.conftest import Cluster
from tests.db.hammer import run_processes

pytestmark = pytest.mark.slow

T0 = 1_767_225_600.0 + 8 * 3600  # 2026-01-01 08:00 UTC
ORIGIN = "https://acme.example"
_names = itertools.count()


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def cli(url: str, tmp: Path, *args: str) -> Result:
    env = {"ASSISTANT_DATABASE_URL": url, "ASSISTANT_STATE_DIR": str(tmp / "var")}
    return CliRunner().invoke(main, list(args), env=env)


@pytest.fixture(scope="module")
def pg_url(pg_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> str:
    """One database for the module, migrated by `assistant db upgrade`."""
    url = pg_cluster.create_database("assistant_main")
    result = cli(url, tmp_path_factory.mktemp("cli"), "db", "upgrade")
    assert result.exit_code == 0, result.output
    return url


@pytest.fixture
def db(pg_url: str) -> Iterator[Database]:
    d = Database(pg_url)
    yield d
    d.dispose()


def name(prefix: str = "acme") -> str:
    return f"{prefix}-{next(_names)}"


# ---------------------------------------------------------------------------- migrations


def test_db_upgrade_and_current(pg_cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no .env
    url = pg_cluster.create_database("fresh").replace("assistant@", "assistant:s3cret-pw@")  # trust: ignored
    before = cli(url, tmp_path, "db", "current", "--check")
    assert before.exit_code == 1, before.output
    assert "empty" in before.output and "assistant db upgrade" in before.output
    for _ in range(2):  # idempotent
        upgraded = cli(url, tmp_path, "db", "upgrade")
        assert upgraded.exit_code == 0, upgraded.output
        assert "up to date" in upgraded.output
    after = cli(url, tmp_path, "db", "current", "--check")
    assert after.exit_code == 0, after.output
    assert "f0002" in after.output and "p0002" in after.output
    assert "s3cret-pw" not in before.output + upgraded.output + after.output
    engine = sa.create_engine(url)
    try:
        tables = set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {"partners", "requests", "refusals", "quota_counters", "feedback", "feedback_counters"} <= tables


def test_the_server_refuses_to_start_when_the_schema_is_behind(
    pg_cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from assistant.web.api.factory import create_app, open_databases

    monkeypatch.chdir(tmp_path)
    url = pg_cluster.create_database("behind")
    old = Database(url)
    migrate.upgrade(old, "partners@p0001")  # as an older version left it
    old.dispose()
    settings = make_settings(ASSISTANT_DATABASE_URL=url, ASSISTANT_STATE_DIR=tmp_path / "var")
    with pytest.raises(SchemaBehind) as refused:
        create_app(settings)  # before the index or any model is loaded
    message = str(refused.value)
    assert "\n" not in message
    assert "run `assistant db upgrade`" in message and "p0001" in message
    served = cli(url, tmp_path, "serve")
    assert served.exit_code == 1
    assert served.output.startswith("Error: ") and "assistant db upgrade" in served.output
    assert "Traceback" not in served.output
    # The stores refuse too (a CLI command run before the upgrade).
    listed = cli(url, tmp_path, "partners", "list")
    assert listed.exit_code == 1 and "assistant db upgrade" in listed.output
    assert cli(url, tmp_path, "db", "upgrade").exit_code == 0
    open_databases(settings).dispose()  # now it starts


def test_a_schema_newer_than_the_code_is_refused(pg_cluster: Cluster) -> None:
    url = pg_cluster.create_database("newer")
    db = Database(url)
    try:
        db.upgrade()
        with db.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE alembic_version SET version_num = 'p9999' WHERE version_num = 'p0002'")
        with pytest.raises(DatabaseError, match="newer than this version"):
            Databases(db, db).prepare()
    finally:
        db.dispose()


# ------------------------------------------------------------------------------ stores


def test_partner_store_round_trip(db: Database, tmp_path: Path) -> None:
    clock = Clock()
    store = PartnerStore(db, state_dir=tmp_path, clock=clock, visitor_per_day=2)
    acme = name()
    pid, key = store.add(acme, [ORIGIN], per_minute=2, per_day=3)
    with pytest.raises(PartnerError, match="already exists"):
        store.add(acme, [ORIGIN])
    partner = store.verify(key)
    assert partner is not None and partner.id == pid and partner.origins == (ORIGIN,)
    assert store.get(acme) == partner and partner in store.list()
    assert store.origin_known(ORIGIN)
    assert store.verify(key[:-1] + ("A" if key[-1] != "A" else "B")) is None

    first = store.admit(partner, ORIGIN, "203.0.113.1")
    assert first.ok and first.request_id > 0
    store.finish(first.request_id, 200, 120.0)
    assert store.admit(partner, ORIGIN, "203.0.113.1").ok
    visitor = store.admit(partner, ORIGIN, "203.0.113.1")  # the visitor's day (2) is used up
    assert (visitor.ok, visitor.scope, visitor.reason) == (False, "visitor", "2 requests per day from one visitor")
    minute = store.admit(partner, ORIGIN, "203.0.113.2")  # the partner's minute (2) is
    assert (minute.ok, minute.scope, minute.retry_after) == (False, "partner", 60)
    clock.now += 61
    assert store.admit(partner, ORIGIN, "203.0.113.2").ok  # the partner's third of the day
    day = store.admit(partner, ORIGIN, "203.0.113.3")
    assert (day.ok, day.reason) == (False, "3 requests per day")
    assert day.retry_after == (16 * 3600 - 61)
    store.log_refusal(pid, 403, "origin")

    row = next(r for r in store.usage() if r.partner_id == pid)
    assert (row.requests, row.answered, row.refused, row.limited, row.today) == (7, 1, 1, 3, 3)
    assert row.avg_ms == 120.0

    assert store.revoke(acme).id == pid
    assert store.verify(key) is None
    clock.now += 100 * DAY_S
    assert store.prune() == (3, 3)  # the day's counters: 429 visitor, 429 partner, 403 origin
    store.close()  # the Database is the fixture's
    assert store.db.engine is not None


def test_feedback_round_trip(db: Database) -> None:
    clock = Clock()
    store = FeedbackStore(db, clock=clock)
    item = FeedbackIn(rating="down", comment="Wrong city.", question="Where?", answer="Nanning.", backend="local")
    saved = store.add(item, "api")
    assert not isinstance(saved, int) and saved.id > 0 and saved.created == "2026-01-01T08:00:00Z"
    partner = name("p")
    for _ in range(2):
        clock.now += 1
        assert not isinstance(store.add(item, "widget", partner_id=partner, visitor="v1", limits=(2, 3)), int)
    wait = store.add(item, "widget", partner_id=partner, visitor="v1", limits=(2, 3))
    assert wait == 59  # the minute: the first of the two leaves the window in 59 s
    clock.now += 60
    assert not isinstance(store.add(item, "widget", partner_id=partner, visitor="v1", limits=(2, 3)), int)
    assert store.add(item, "widget", partner_id=partner, visitor="v1", limits=(2, 3)) == (16 * 3600 - 62)
    mine = [r for r in store.records(source="widget", since=T0) if r.partner_id == partner]
    assert len(mine) == 3 and mine[0].created >= mine[-1].created
    assert store.records(rating="up", since=T0) == []
    assert saved.id in {r.id for r in store.records(limit=1000)}


# ---------------------------------------------------------------------- one quota, replicas


@pytest.mark.parametrize(
    ("per_minute", "per_day", "visitor_per_day", "address", "expected"),
    [
        (100_000, 37, 100_000, "", 37),  # the partner's day
        (29, 100_000, 100_000, "", 29),  # the partner's sliding minute
        (100_000, 100_000, 31, "198.51.100.7", 31),  # one visitor's day
    ],
    ids=["partner-day", "partner-minute", "visitor-day"],
)
def test_two_processes_share_one_quota_exactly(
    db: Database, tmp_path: Path, per_minute: int, per_day: int, visitor_per_day: int, address: str, expected: int
) -> None:
    store = PartnerStore(db, state_dir=tmp_path)
    pid, _ = store.add(name("busy"), [ORIGIN], per_minute=per_minute, per_day=per_day)
    # 25 tries each: neither process alone can reach the quota, both together exceed it.
    counts = run_processes(
        db.url.render_as_string(hide_password=False), tmp_path, pid, 25, visitor_per_day=visitor_per_day, address=address
    )
    assert sum(counts) == expected, counts
    assert next(r for r in store.usage() if r.partner_id == pid).today == expected
