"""The partner store against abuse: cheap peppered key checks (and scrypt migration),
throttled failures, per-visitor quotas, aggregated refusals, retention."""

from __future__ import annotations

import sqlite3
import stat
import time
from pathlib import Path

import pytest

from assistant.partners import store as store_module
from assistant.partners.store import (
    DAY_S,
    PEPPER_FILE,
    PartnerStore,
    hash_secret,
    pepper_id,
    scrypt_hash,
)
from assistant.partners.throttle import FailureThrottle, client_subject
from tests.conftest import make_settings

T0 = 1_767_225_600.0 + 8 * 3600  # 2026-01-01 08:00 UTC
ORIGIN = "https://acme.example"


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def store(state: Path, clock: Clock):  # type: ignore[no-untyped-def]
    s = PartnerStore(state / "partners.db", clock=clock, auth_failures=3, auth_window=60.0,
                     visitor_per_minute=100, visitor_per_day=3)
    yield s
    s.close()


def wrong(key: str) -> str:
    return key[:-1] + ("A" if key[-1] != "A" else "B")


@pytest.fixture
def scrypt_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = store_module.check_scrypt

    def counting(secret: str, stored: str) -> bool:
        calls.append(secret)
        return real(secret, stored)

    monkeypatch.setattr(store_module, "check_scrypt", counting)
    return calls


def key_hash(store: PartnerStore, partner_id: str) -> str:
    return str(store._query("SELECT key_hash FROM partners WHERE id = ?", (partner_id,))[0][0])


def make_legacy(store: PartnerStore, partner_id: str, key: str) -> None:
    """Store the key's secret as older versions did: a salted scrypt hash."""
    with store._tx() as db:
        db.execute("UPDATE partners SET key_hash = ? WHERE id = ?", (scrypt_hash(key.split("_", 2)[2]), partner_id))


# ----------------------------------------------------------------------- key checks


def test_the_pepper_file_is_private_created_once_and_shared(state: Path, store: PartnerStore) -> None:
    assert not state.exists()
    _, key = store.add("acme", [ORIGIN])
    pepper_file = state / PEPPER_FILE
    assert stat.S_IMODE(pepper_file.stat().st_mode) == 0o600
    assert len(pepper_file.read_text().strip()) == 64
    other = PartnerStore(store.path)  # another process: the same pepper
    try:
        assert other.verify(key) is not None
    finally:
        other.close()
    assert sorted(p.name for p in state.iterdir() if "pepper" in p.name) == [PEPPER_FILE]  # no temporary left


def test_a_pepper_file_readable_by_others_is_made_private(state: Path, clock: Clock) -> None:
    state.mkdir()
    (state / PEPPER_FILE).write_text("f" * 64 + "\n")
    (state / PEPPER_FILE).chmod(0o644)
    s = PartnerStore(state / "partners.db", clock=clock)
    _, key = s.add("acme", [ORIGIN])
    assert s.verify(key) is not None
    assert stat.S_IMODE((state / PEPPER_FILE).stat().st_mode) == 0o600
    s.close()


def test_a_key_check_is_cheap_and_never_runs_scrypt(store: PartnerStore, scrypt_calls: list[str]) -> None:
    _, key = store.add("acme", [ORIGIN])
    for _ in range(50):
        assert store.verify(wrong(key)) is None
    assert store.verify(key) is not None
    assert scrypt_calls == []


def test_a_legacy_scrypt_hash_is_migrated_on_the_next_successful_use(
    store: PartnerStore, scrypt_calls: list[str]
) -> None:
    pid, key = store.add("acme", [ORIGIN])
    make_legacy(store, pid, key)
    assert store.verify(wrong(key)) is None  # a failure does not migrate
    assert key_hash(store, pid).startswith("scrypt$")
    assert store.verify(key) is not None
    assert len(scrypt_calls) == 2
    stored = key_hash(store, pid)
    assert stored.startswith("hmac-sha256$")
    assert stored == hash_secret(key.split("_", 2)[2], (store.path.parent / PEPPER_FILE).read_text().strip().encode())
    assert store.verify(key) is not None
    assert store.verify(wrong(key)) is None
    assert len(scrypt_calls) == 2  # never again


def test_the_configured_pepper_is_used_and_file_pepper_hashes_migrate(state: Path, clock: Clock) -> None:
    old = PartnerStore(state / "partners.db", clock=clock)
    pid, key = old.add("acme", [ORIGIN])
    old.close()
    pepper = "p" * 40
    settings = make_settings(ASSISTANT_STATE_DIR=state, ASSISTANT_KEY_PEPPER=pepper)
    new = PartnerStore.from_settings(settings)
    try:
        assert new.verify(key) is not None  # hashed with the file's pepper: still works …
        assert key_hash(new, pid).startswith(f"hmac-sha256${pepper_id(pepper.encode())}$")  # … and re-hashed
        _, key2 = new.add("beta", [ORIGIN])
        assert new.verify(key2) is not None
    finally:
        new.close()
    (state / PEPPER_FILE).unlink()  # the configured pepper alone now serves every key
    again = PartnerStore.from_settings(settings)
    try:
        assert again.verify(key) is not None and again.verify(key2) is not None
        assert not (state / PEPPER_FILE).exists()  # not re-created when a pepper is configured
    finally:
        again.close()


def test_a_hash_made_with_an_unknown_pepper_does_not_verify(state: Path, clock: Clock) -> None:
    s = PartnerStore(state / "partners.db", clock=clock, pepper=b"q" * 32)
    _, key = s.add("acme", [ORIGIN])
    s.close()
    other = PartnerStore(state / "partners.db", clock=clock, pepper=b"r" * 32)
    assert other.verify(key) is None
    other.close()


# ----------------------------------------------------------------- failure throttle


def test_failures_from_one_address_throttle_it_and_only_it(store: PartnerStore, clock: Clock) -> None:
    _, key = store.add("acme", [ORIGIN])
    for _ in range(3):
        check = store.check_key(wrong(key), "203.0.113.9")
        assert check.partner is None and check.retry_after == 0  # plain 401s
    throttled = store.check_key(wrong(key), "203.0.113.9")
    assert throttled.partner is None and throttled.retry_after == 60
    assert store.check_key("nonsense", "203.0.113.9").retry_after == 60
    assert store.check_key(key, "203.0.113.9").retry_after == 60  # the whole address waits
    assert store.address_retry_after("203.0.113.9") == 60
    assert store.check_key(key, "198.51.100.1").partner is not None  # others do not
    clock.advance(45)
    assert store.check_key(key, "203.0.113.9").retry_after == 15
    clock.advance(15)
    assert store.check_key(key, "203.0.113.9").partner is not None


def test_malformed_and_unknown_keys_count_as_failures(store: PartnerStore) -> None:
    for bad in ("nonsense", "ttw_000000000000_" + "A" * 43, "ttw_zz"):
        assert store.check_key(bad, "203.0.113.9").retry_after == 0
    assert store.check_key("nonsense", "203.0.113.9").retry_after > 0


def test_an_ipv6_client_is_counted_by_its_64(store: PartnerStore) -> None:
    _, key = store.add("acme", [ORIGIN])
    for i in range(3):
        store.check_key(wrong(key), f"2001:db8:1:2::{i + 1}")
    assert store.check_key(key, "2001:db8:1:2:ffff::1").retry_after > 0
    assert store.check_key(key, "2001:db8:1:3::1").partner is not None


def test_a_key_id_under_attack_refuses_wrong_secrets_but_not_its_own(store: PartnerStore) -> None:
    _, key = store.add("acme", [ORIGIN])
    for i in range(3):  # from three addresses: no address is throttled
        assert store.check_key(wrong(key), f"203.0.113.{i}").retry_after == 0
    assert store.check_key(wrong(key), "198.51.100.7").retry_after == 60  # the key id is
    assert store.check_key(key, "198.51.100.8").partner is not None  # the partner's visitors are not
    assert store.check_key(key, None).partner is not None


def test_a_legacy_key_id_under_attack_runs_no_more_scrypt(store: PartnerStore, scrypt_calls: list[str]) -> None:
    pid, key = store.add("acme", [ORIGIN])
    make_legacy(store, pid, key)
    for i in range(20):
        store.check_key(wrong(key), f"203.0.113.{i}")
    assert len(scrypt_calls) == 3  # the limit, then none


def test_the_throttle_forgets_the_oldest_subjects_when_full(clock: Clock) -> None:
    throttle = FailureThrottle(1, 60.0, clock=clock, max_entries=100)
    for i in range(1000):
        throttle.fail(f"a{i}")
    assert len(throttle) <= 100
    assert throttle.retry_after("a999") == 60
    assert throttle.retry_after("a0") == 0


@pytest.mark.parametrize(
    ("address", "subject"),
    [
        ("203.0.113.7", "203.0.113.7"),
        (" 203.0.113.7 ", "203.0.113.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("[2001:db8::1]", "2001:db8::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("testclient", "testclient"),
    ],
)
def test_client_subject(address: str, subject: str) -> None:
    assert client_subject(address) == subject


# ------------------------------------------------------------------- visitor quotas


def test_one_visitor_cannot_use_up_the_partners_day(store: PartnerStore, clock: Clock) -> None:
    pid, _ = store.add("acme", [ORIGIN], per_minute=100, per_day=5)
    partner = store.get(pid)
    for _ in range(3):
        assert store.admit(partner, ORIGIN, "203.0.113.9").ok
    refused = store.admit(partner, ORIGIN, "203.0.113.9")
    assert not refused.ok and refused.scope == "visitor"
    assert refused.reason == "3 requests per day from one visitor"
    assert refused.retry_after == 16 * 3600
    assert store.admit(partner, ORIGIN, "198.51.100.1").ok  # another visitor still gets answers
    assert store.admit(partner, ORIGIN, "198.51.100.2").ok
    partner_full = store.admit(partner, ORIGIN, "198.51.100.3")  # the partner's own limit still holds
    assert not partner_full.ok and partner_full.scope == "partner"
    clock.advance(16 * 3600)
    assert store.admit(partner, ORIGIN, "203.0.113.9").ok


def test_the_visitor_minute_window(state: Path, clock: Clock) -> None:
    s = PartnerStore(state / "partners.db", clock=clock, visitor_per_minute=2, visitor_per_day=100)
    pid, _ = s.add("acme", [ORIGIN], per_minute=100)
    partner = s.get(pid)
    assert s.admit(partner, ORIGIN, "203.0.113.9").ok
    clock.advance(20)
    assert s.admit(partner, ORIGIN, "203.0.113.9").ok
    refused = s.admit(partner, ORIGIN, "203.0.113.9")
    assert (refused.ok, refused.scope, refused.retry_after) == (False, "visitor", 40)
    assert refused.reason == "2 requests per minute from one visitor"
    s.close()


def test_visitors_are_stored_only_as_keyed_hashes(store: PartnerStore) -> None:
    pid, _ = store.add("acme", [ORIGIN])
    store.admit(store.get(pid), ORIGIN, "203.0.113.9")
    store.close()
    for f in store.path.parent.iterdir():
        assert b"203.0.113.9" not in f.read_bytes(), f


# ----------------------------------------------------------- refusals and retention


def test_refusals_are_one_counter_per_day_partner_and_reason(store: PartnerStore, clock: Clock) -> None:
    pid, _ = store.add("acme", [ORIGIN], per_minute=1)
    partner = store.get(pid)
    assert store.admit(partner).ok
    for _ in range(500):
        store.log_refusal(pid, 403, "origin")
        assert not store.admit(partner).ok
    store.log_refusal(pid, 422, "https://evil.example/<script>")  # not a reason of ours
    rows = store._query("SELECT day, status, reason, count FROM refusals ORDER BY status")
    day = int(T0 // DAY_S * DAY_S)
    assert [tuple(r) for r in rows] == [(day, 403, "origin", 500), (day, 422, "other", 1), (day, 429, "quota-partner", 500)]
    assert store._query("SELECT COUNT(*) FROM requests")[0][0] == 1
    row = store.usage()[0]
    assert (row.requests, row.answered, row.refused, row.limited, row.failed) == (1002, 0, 500, 500, 1)
    clock.advance(DAY_S)
    store.log_refusal(pid, 403, "origin")
    assert store._query("SELECT COUNT(*) FROM refusals")[0][0] == 4
    assert store.usage(since=clock.now - 60)[0].refused == 1


def test_old_usage_records_are_pruned(state: Path, clock: Clock) -> None:
    s = PartnerStore(state / "partners.db", clock=clock, retention_days=7)
    pid, _ = s.add("acme", [ORIGIN])
    partner = s.get(pid)
    s.finish(s.admit(partner, ORIGIN).request_id, 200, 5.0)
    s.log_refusal(pid, 403, "origin")
    clock.advance(3 * DAY_S)
    s.finish(s.admit(partner, ORIGIN).request_id, 200, 5.0)
    clock.advance(5 * DAY_S)  # the first day is now 8 days old, the second 5
    s.log_refusal(pid, 422, "body")  # a write prunes (at most once an hour)
    assert s._query("SELECT COUNT(*) FROM requests")[0][0] == 1
    assert [r[0] for r in s._query("SELECT status FROM refusals")] == [422]
    clock.advance(30 * DAY_S)
    assert s.prune() == (1, 1)
    s.close()


def test_a_database_of_the_previous_version_is_migrated(state: Path, clock: Clock) -> None:
    s = PartnerStore(state / "partners.db", clock=clock)
    pid, key = s.add("acme", [ORIGIN])
    s.close()
    with sqlite3.connect(state / "partners.db") as db:  # the previous schema, with its rows
        db.execute("DROP TABLE refusals")
        db.execute("DROP TABLE alembic_version")  # files of older versions predate the migrations
        db.execute("DROP TABLE quota_counters")
        db.execute("DROP INDEX IF EXISTS requests_visitor")
        db.execute("ALTER TABLE requests DROP COLUMN visitor")
        rows = [(pid, T0, 1, 200, 12.0, ORIGIN)] + [(pid, T0 + i, 0, 403, 1.0, f"https://x{i}.evil") for i in range(50)]
        rows.append((pid, T0, 0, 429, 1.0, ORIGIN))
        db.executemany(
            "INSERT INTO requests (partner_id, ts, admitted, status, latency_ms, origin) VALUES (?, ?, ?, ?, ?, ?)", rows
        )
    db.close()
    again = PartnerStore(state / "partners.db", clock=clock)
    try:
        assert again.verify(key) is not None
        row = again.usage()[0]
        assert (row.requests, row.answered, row.refused, row.limited) == (52, 1, 50, 1)
        assert again._query("SELECT COUNT(*) FROM requests")[0][0] == 1
        assert not again._query("SELECT 1 FROM requests WHERE origin LIKE '%evil%'")
        assert again.admit(again.get(pid), ORIGIN, "203.0.113.9").ok
    finally:
        again.close()


def test_cli_prune_uses_the_retention_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from assistant.cli.partners import partners_cli

    monkeypatch.chdir(tmp_path)  # no .env
    state = tmp_path / "var"
    s = PartnerStore(state / "partners.db", clock=Clock(time.time() - 10 * DAY_S))  # the CLI uses the real clock
    pid, _ = s.add("acme", [ORIGIN])
    s.finish(s.admit(s.get(pid), ORIGIN).request_id, 200, 1.0)
    s.log_refusal(pid, 403, "origin")
    s.close()
    env = {"ASSISTANT_STATE_DIR": str(state), "ASSISTANT_WIDGET_USAGE_RETENTION_DAYS": "30"}
    kept = CliRunner().invoke(partners_cli, ["prune"], env=env)
    assert kept.exit_code == 0, kept.output
    assert "Deleted 0 request record(s) and 0 daily refusal count(s) older than 30 days" in kept.output
    env["ASSISTANT_WIDGET_USAGE_RETENTION_DAYS"] = "7"
    pruned = CliRunner().invoke(partners_cli, ["prune"], env=env)
    assert "Deleted 1 request record(s) and 1 daily refusal count(s) older than 7 days" in pruned.output
