"""The partner store: keys hashed at rest, origin allowlists, quotas, usage; and its CLI."""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from assistant.cli.partners import partners_cli
from assistant.partners.errors import PartnerError
from assistant.partners.origins import normalize_origin, request_origin
from assistant.partners.store import DAY_S, PartnerStore, hash_secret, pepper_id

KEY = re.compile(r"^ttw_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$")
T0 = 1_767_225_600.0 + 8 * 3600  # 2026-01-01 08:00 UTC


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
def store(tmp_path: Path, clock: Clock):  # type: ignore[no-untyped-def]
    s = PartnerStore(tmp_path / "state" / "partners.db", clock=clock)
    yield s
    s.close()


# ------------------------------------------------------------------ keys and partners


def test_nothing_is_created_before_first_use(tmp_path: Path) -> None:
    path = tmp_path / "state" / "partners.db"
    PartnerStore(path)
    assert not path.parent.exists()


def test_add_returns_a_key_that_verifies(store: PartnerStore) -> None:
    partner_id, key = store.add("Acme Park", ["https://www.acme.example"], per_minute=5, per_day=50)
    assert KEY.match(key)
    assert key.split("_")[1] == partner_id
    partner = store.verify(key)
    assert partner is not None
    assert partner.id == partner_id
    assert partner.name == "Acme Park"
    assert partner.origins == ("https://www.acme.example",)
    assert (partner.per_minute, partner.per_day) == (5, 50)
    assert partner.allows("https://www.acme.example")
    assert not partner.allows("https://evil.example")
    assert not partner.allows(None)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda k: k[:-1] + ("A" if k[-1] != "A" else "B"),  # wrong secret
        lambda k: "ttw_000000000000_" + k.split("_", 2)[2],  # unknown id
        lambda k: k.upper(),
        lambda k: k + "x",
        lambda k: "",
        lambda k: "not a key",
    ],
    ids=["wrong-secret", "unknown-id", "upper", "longer", "empty", "garbage"],
)
def test_a_wrong_key_does_not_verify(store: PartnerStore, mangle) -> None:  # type: ignore[no-untyped-def]
    _, key = store.add("acme", ["https://acme.example"])
    assert store.verify(mangle(key)) is None
    assert store.verify(None) is None


def test_keys_are_hashed_at_rest(store: PartnerStore, tmp_path: Path) -> None:
    _, key = store.add("acme", ["https://acme.example"])
    secret = key.split("_", 2)[2]
    stored = store._query("SELECT key_hash FROM partners")[0][0]
    pepper = (tmp_path / "state" / "key_pepper").read_text().strip().encode()
    assert stored == hash_secret(secret, pepper)
    assert stored.startswith(f"hmac-sha256${pepper_id(pepper)}$")
    store.close()
    for f in (tmp_path / "state").iterdir():  # the database, its WAL files, the pepper
        raw = f.read_bytes()
        assert secret.encode() not in raw, f
        assert key.encode() not in raw, f


def test_the_pepper_differs_per_server() -> None:
    assert hash_secret("same secret", b"a" * 32) != hash_secret("same secret", b"b" * 32)


def test_the_database_uses_wal(store: PartnerStore) -> None:
    store.add("acme", ["https://acme.example"])
    assert store._query("PRAGMA journal_mode")[0][0] == "wal"


def test_revoke_by_name_or_id_stops_the_key_in_every_store(store: PartnerStore, tmp_path: Path) -> None:
    a_id, a_key = store.add("alpha", ["https://alpha.example"])
    b_id, b_key = store.add("beta", ["https://beta.example"])
    other = PartnerStore(store.path)  # another server process on the same file
    try:
        assert other.verify(a_key) is not None  # and now remembered by `other`
        assert store.revoke("alpha").id == a_id
        assert store.verify(a_key) is None
        assert other.verify(a_key) is None
        assert store.revoke(b_id).name == "beta"
        assert other.verify(b_key) is None
    finally:
        other.close()
    with pytest.raises(PartnerError, match="already revoked"):
        store.revoke(a_id)
    with pytest.raises(PartnerError, match="no partner"):
        store.revoke("nobody")


def test_names_are_unique_among_active_partners(store: PartnerStore) -> None:
    store.add("acme", ["https://acme.example"])
    with pytest.raises(PartnerError, match="already exists"):
        store.add("acme", ["https://acme.example"])
    store.revoke("acme")
    _, key = store.add("acme", ["https://acme.example"])  # a new key after revoking the old one
    assert store.verify(key) is not None
    assert [p.active for p in store.list()] == [False, True]
    assert len(store.list(include_revoked=False)) == 1


@pytest.mark.parametrize("name", ["", "   ", "x" * 101, "tab\there", "0123456789ab"])
def test_bad_names_are_refused(store: PartnerStore, name: str) -> None:
    with pytest.raises(PartnerError, match="name"):
        store.add(name, ["https://acme.example"])


def test_quotas_must_be_positive(store: PartnerStore) -> None:
    with pytest.raises(PartnerError, match="at least 1"):
        store.add("acme", ["https://acme.example"], per_minute=0)


def test_origins_are_normalised_and_deduplicated(store: PartnerStore) -> None:
    pid, _ = store.add("acme", ["HTTPS://WWW.Acme.Example/", "https://www.acme.example:443", "http://localhost:8080"])
    assert store.get(pid).origins == ("https://www.acme.example", "http://localhost:8080")


def test_a_key_with_no_origins_serves_nobody(store: PartnerStore) -> None:
    _, key = store.add("nobody", [])
    partner = store.verify(key)
    assert partner is not None
    assert partner.origins == ()
    assert not partner.allows("https://acme.example")
    assert not store.origin_known("https://acme.example")


# ------------------------------------------------------------------------------ origins


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://example.org", "https://example.org"),
        ("HTTPS://Example.ORG/", "https://example.org"),
        ("https://example.org:443", "https://example.org"),
        ("https://example.org:8443", "https://example.org:8443"),
        ("https://sub.example.org.", "https://sub.example.org"),
        ("https://bücher.example", "https://xn--bcher-kva.example"),
        ("https://203.0.113.7", "https://203.0.113.7"),
        ("http://localhost:8080", "http://localhost:8080"),
        ("http://127.0.0.1:3000", "http://127.0.0.1:3000"),
        ("http://127.0.0.1:80", "http://127.0.0.1"),
        ("http://[::1]:8080", "http://[::1]:8080"),
    ],
)
def test_valid_origins(value: str, expected: str) -> None:
    assert normalize_origin(value) == expected


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("example.org", "expected"),
        ("ftp://example.org", "expected"),
        ("https://", "expected"),
        ("", "expected"),
        ("https://exa mple.org", "expected"),
        ("http://example.org", "http is allowed only for localhost"),
        ("http://203.0.113.7", "http is allowed only for localhost"),
        ("https://example.org/page", "path"),
        ("https://example.org/?a=1", "query"),
        ("https://example.org#top", "fragment"),
        ("https://user:pw@example.org", "user name"),
        ("https://*.example.org", "not a valid host"),
        ("https://exa_mple.org", "not a valid host"),
        ("https://example.org:99999", "port"),
        ("https://example.org:0", "port"),
    ],
)
def test_invalid_origins_are_refused_with_a_reason(value: str, why: str) -> None:
    with pytest.raises(PartnerError, match=re.escape(why)):
        normalize_origin(value)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("null", None),
        ("https://Example.org", "https://example.org"),
        ("http://example.org", "http://example.org"),  # parsed; no allowlist can contain it
        ("http://127.0.0.1:8123", "http://127.0.0.1:8123"),
        ("https://example.org/path", None),
        ("garbage", None),
    ],
)
def test_request_origin(header: str | None, expected: str | None) -> None:
    assert request_origin(header) == expected


# ------------------------------------------------------------------------------- quotas


def test_per_minute_quota_is_a_sliding_window(store: PartnerStore, clock: Clock) -> None:
    pid, _ = store.add("acme", ["https://acme.example"], per_minute=2, per_day=100)
    partner = store.get(pid)
    assert store.admit(partner).ok  # t = 0
    clock.advance(50)
    assert store.admit(partner).ok  # t = 50
    clock.advance(5)
    refused = store.admit(partner)  # t = 55: two in the last minute
    assert not refused.ok
    assert refused.retry_after == 5  # the request at t = 0 leaves the window at t = 60
    assert "2 requests per minute" in refused.reason
    clock.advance(6)
    assert store.admit(partner).ok  # t = 61: only t = 50 is still in the window
    refused = store.admit(partner)
    assert not refused.ok
    assert refused.retry_after == 49  # t = 50 leaves at t = 110


def test_per_day_quota_counts_the_utc_day(store: PartnerStore, clock: Clock) -> None:
    pid, _ = store.add("acme", ["https://acme.example"], per_minute=100, per_day=3)
    partner = store.get(pid)
    for _ in range(3):
        assert store.admit(partner).ok
        clock.advance(3600)
    refused = store.admit(partner)  # 11:00 UTC
    assert not refused.ok
    assert refused.retry_after == 13 * 3600
    assert "3 requests per day" in refused.reason
    clock.advance(13 * 3600)  # midnight UTC
    assert store.admit(partner).ok


def test_refused_requests_do_not_count(store: PartnerStore, clock: Clock) -> None:
    pid, _ = store.add("acme", ["https://acme.example"], per_minute=1, per_day=100)
    partner = store.get(pid)
    assert store.admit(partner).ok
    for _ in range(5):
        clock.advance(10)
        assert not store.admit(partner).ok
    clock.advance(11)  # 61 s after the one admitted request
    assert store.admit(partner).ok


def test_quotas_hold_under_threads_and_across_stores(store: PartnerStore, clock: Clock) -> None:
    pid, _ = store.add("acme", ["https://acme.example"], per_minute=10, per_day=1000)
    partner = store.get(pid)
    second = PartnerStore(store.path, clock=clock)  # as if another server process
    results: list[bool] = []
    lock = threading.Lock()
    start = threading.Barrier(24)

    def worker(s: PartnerStore) -> None:
        start.wait()
        ok = s.admit(partner).ok
        with lock:
            results.append(ok)

    threads = [threading.Thread(target=worker, args=(store if i % 2 else second,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    second.close()
    assert len(results) == 24
    assert results.count(True) == 10


# -------------------------------------------------------------------------------- usage


def test_usage_report(store: PartnerStore, clock: Clock) -> None:
    pid, _ = store.add("acme", ["https://acme.example"], per_minute=2, per_day=100)
    quiet, _ = store.add("quiet", ["https://quiet.example"])
    partner = store.get(pid)
    for latency in (100.0, 300.0):
        a = store.admit(partner, "https://acme.example")
        store.finish(a.request_id, 200, latency)
    limited = store.admit(partner, "https://acme.example")
    assert not limited.ok and limited.request_id == 0  # counted, not logged as a row
    store.log_refusal(pid, 403, "origin")
    failed = store.admit(store.get(quiet))
    store.finish(failed.request_id, 503, 5.0)
    rows = {r.name: r for r in store.usage()}
    acme = rows["acme"]
    assert (acme.requests, acme.answered, acme.refused, acme.limited, acme.failed) == (4, 2, 1, 1, 0)
    assert acme.avg_ms == 200.0
    assert acme.p95_ms == 300.0
    assert acme.today == 2
    assert acme.last == clock.now
    assert (rows["quiet"].requests, rows["quiet"].failed, rows["quiet"].avg_ms) == (1, 1, None)
    clock.advance(2 * DAY_S)
    assert store.usage(since=clock.now - DAY_S)[0].requests == 0
    assert store.usage()[0].today == 0


# ---------------------------------------------------------------------------------- CLI


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)  # no .env
    env = {"ASSISTANT_STATE_DIR": str(tmp_path / "var"), "ASSISTANT_CACHE_DIR": str(tmp_path / "cache")}

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(partners_cli, list(args), env=env)

    invoke.state_dir = tmp_path / "var"  # type: ignore[attr-defined]
    return invoke


def test_cli_add_list_revoke_usage(cli) -> None:  # type: ignore[no-untyped-def]
    added = cli("add", "Acme Park", "--origin", "https://www.acme.example/", "--origin", "http://localhost:8080",
                "--per-minute", "3", "--per-day", "30")
    assert added.exit_code == 0, added.output
    keys = [line for line in added.stdout.splitlines() if line.startswith("ttw_")]
    assert len(keys) == 1 and KEY.match(keys[0])
    key = keys[0]
    assert "shown only now" in added.output
    assert "https://www.acme.example, http://localhost:8080" in added.output
    assert "3/minute, 30/day" in added.output
    assert (cli.state_dir / "partners.db").exists()

    listed = cli("list")
    assert listed.exit_code == 0, listed.output
    assert "Acme Park" in listed.output and "[active]" in listed.output
    assert key not in listed.output and key.split("_", 2)[2] not in listed.output
    data = json.loads(cli("list", "--json").output)
    assert data[0]["name"] == "Acme Park"
    assert data[0]["origins"] == ["https://www.acme.example", "http://localhost:8080"]
    assert "key_hash" not in data[0]

    store = PartnerStore(cli.state_dir / "partners.db")
    partner = store.verify(key)
    assert partner is not None
    store.finish(store.admit(partner).request_id, 200, 42.0)
    store.close()
    usage = cli("usage")
    assert usage.exit_code == 0, usage.output
    assert re.search(r"Acme Park\s+1\s+1\s+0\s+0\s+0\s+42\s+42\s+1", usage.output), usage.output
    assert json.loads(cli("usage", "--json", "--days", "1").output)[0]["answered"] == 1

    revoked = cli("revoke", "Acme Park")
    assert revoked.exit_code == 0, revoked.output
    assert "no longer works" in revoked.output
    assert "revoked" in cli("list").output
    store = PartnerStore(cli.state_dir / "partners.db")
    assert store.verify(key) is None
    store.close()


def test_cli_add_requires_an_origin(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("add", "acme")
    assert result.exit_code == 2
    assert "at least one --origin is required" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("add", "acme", "--origin", "http://acme.example"), "http is allowed only for localhost"),
        (("add", "acme", "--origin", "https://acme.example/path"), "must not have a path"),
        (("revoke", "nobody"), "no partner with id or name 'nobody'"),
    ],
)
def test_cli_errors_are_one_line(cli, args: tuple[str, ...], message: str) -> None:  # type: ignore[no-untyped-def]
    result = cli(*args)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert message in result.output
    assert result.output.startswith("Error: ")


def test_cli_add_refuses_a_bad_quota(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("add", "acme", "--origin", "https://acme.example", "--per-minute", "0")
    assert result.exit_code == 2


def test_cli_list_and_usage_when_empty(cli) -> None:  # type: ignore[no-untyped-def]
    assert "No partners" in cli("list").output
    assert "No partners" in cli("usage").output


def test_cli_unwritable_state_dir_is_a_clean_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(partners_cli, ["list"], env={"ASSISTANT_STATE_DIR": str(blocker / "var")})
    assert result.exit_code == 1
    assert "partner database" in result.output
    assert "Traceback" not in result.output


def test_sqlite_file_is_a_plain_database(store: PartnerStore) -> None:
    store.add("acme", ["https://acme.example"])
    store.close()
    with sqlite3.connect(store.path) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"partners", "requests", "refusals"} <= tables
