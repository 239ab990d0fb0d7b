"""Partner websites that embed the chat widget: keys, allowed origins, quotas, usage.

One SQLite file, `settings.state_dir / "partners.db"` (WAL), created on first use.

* A key looks like `ttw_<id>_<secret>`. The id (12 hex digits) is public and finds the
  row in O(1); only a salted scrypt hash of the secret is stored, so the database never
  holds a usable key. The key is shown once, by `add`.
* Each partner has an allowlist of origins (`scheme://host[:port]`): a key with no
  origins serves nobody.
* Quotas: a sliding 60-second window and a per-day count (UTC days). Both are counted
  in the database inside one `BEGIN IMMEDIATE` transaction, so they hold across threads
  and across server processes.
* Every widget request of a known partner is logged (time, status, latency) for
  `assistant partners usage`.
"""

from __future__ import annotations

import base64
import builtins
import hashlib
import hmac
import json
import math
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from assistant.settings import Settings

from assistant.partners.errors import PartnerError
from assistant.partners.origins import normalize_origin

KEY_PREFIX = "ttw"
DB_NAME = "partners.db"
DEFAULT_PER_MINUTE = 20
DEFAULT_PER_DAY = 1000
WINDOW_S = 60.0
DAY_S = 86400.0
# scrypt cost: ~16 MiB and ~50-80 ms per hash. Keys are 256-bit random, so this is
# defence in depth; verified keys are remembered in memory (see `_verified`).
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
_KEY = re.compile(rf"^{KEY_PREFIX}_([0-9a-f]{{12}})_([A-Za-z0-9_-]{{20,128}})$")

SCHEMA = """
CREATE TABLE IF NOT EXISTS partners (
    id         TEXT PRIMARY KEY,      -- public part of the key
    name       TEXT NOT NULL,
    key_hash   TEXT NOT NULL,         -- scrypt$N$r$p$salt$hash (base64)
    origins    TEXT NOT NULL,         -- JSON list of normalised origins
    per_minute INTEGER NOT NULL,
    per_day    INTEGER NOT NULL,
    created    REAL NOT NULL,
    revoked    REAL                   -- NULL while active
);
CREATE UNIQUE INDEX IF NOT EXISTS partners_active_name ON partners(name) WHERE revoked IS NULL;
CREATE TABLE IF NOT EXISTS requests (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    partner_id TEXT NOT NULL,
    ts         REAL NOT NULL,
    admitted   INTEGER NOT NULL,      -- 1: counted against the quotas
    status     INTEGER,               -- NULL while the answer is streaming
    latency_ms REAL,
    origin     TEXT
);
CREATE INDEX IF NOT EXISTS requests_quota ON requests(partner_id, admitted, ts);
CREATE INDEX IF NOT EXISTS requests_ts ON requests(ts);
"""



# ---------------------------------------------------------------------------- keys


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_secret(secret: str, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def check_secret(secret: str, stored: str) -> bool:
    try:
        algo, n, r, p, salt, digest = stored.split("$")
        if algo != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            secret.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


# ------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Partner:
    id: str
    name: str
    origins: tuple[str, ...]
    per_minute: int
    per_day: int
    created: float
    revoked: float | None = None

    @property
    def active(self) -> bool:
        return self.revoked is None

    def allows(self, origin: str | None) -> bool:
        """Whether a request with this (normalised) Origin may use the key."""
        return self.active and origin is not None and origin in self.origins

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["origins"] = list(self.origins)
        data["active"] = self.active
        return data


@dataclass(frozen=True)
class Admission:
    """The quota decision for one request; `request_id` is its usage-log row."""

    ok: bool
    request_id: int
    retry_after: int = 0  # seconds, when not ok
    reason: str = ""


@dataclass(frozen=True)
class UsageRow:
    partner_id: str
    name: str
    active: bool
    requests: int
    answered: int  # 2xx
    refused: int  # 403
    limited: int  # 429
    failed: int  # any other status
    avg_ms: float | None  # answered requests
    p95_ms: float | None
    today: int  # admitted today (UTC), what the per-day quota counts
    last: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _row_to_partner(row: sqlite3.Row) -> Partner:
    return Partner(
        id=row["id"],
        name=row["name"],
        origins=tuple(json.loads(row["origins"])),
        per_minute=int(row["per_minute"]),
        per_day=int(row["per_day"]),
        created=float(row["created"]),
        revoked=row["revoked"],
    )


# --------------------------------------------------------------------------- store


class PartnerStore:
    """Thread-safe; one SQLite connection per store, opened on first use."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self.clock = clock
        self._db: sqlite3.Connection | None = None
        self._lock = threading.RLock()
        # sha256(key) -> key_hash it was checked against: skips scrypt for known keys.
        self._verified: dict[bytes, str] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> PartnerStore:
        return cls(settings.state_dir / DB_NAME)

    # -------------------------------------------------------------- connection

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=10, isolation_level=None, check_same_thread=False)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA busy_timeout=10000")
            db.executescript(SCHEMA)
            self._db = db
        return self._db

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, serialised across threads and processes."""
        with self._lock:
            db = self._conn()
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _query(self, sql: str, args: Iterable[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn().execute(sql, tuple(args)).fetchall()

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    # ---------------------------------------------------------------- partners

    def add(
        self,
        name: str,
        origins: Iterable[str],
        per_minute: int = DEFAULT_PER_MINUTE,
        per_day: int = DEFAULT_PER_DAY,
    ) -> tuple[str, str]:
        """Register a partner; returns (partner id, plaintext key). The key is not kept."""
        name = name.strip()
        if not name or len(name) > 100 or any(not c.isprintable() for c in name):
            raise PartnerError("name: 1-100 printable characters")
        if re.fullmatch(r"[0-9a-f]{12}", name):
            raise PartnerError("name: must not look like a partner id (12 hex digits)")
        normalised: list[str] = []
        for origin in origins:
            o = normalize_origin(origin)
            if o not in normalised:
                normalised.append(o)
        if per_minute < 1 or per_day < 1:
            raise PartnerError("quotas: --per-minute and --per-day must be at least 1")
        partner_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        key_hash = hash_secret(secret)
        try:
            with self._tx() as db:
                db.execute(
                    "INSERT INTO partners (id, name, key_hash, origins, per_minute, per_day, created)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (partner_id, name, key_hash, json.dumps(normalised), per_minute, per_day, self.clock()),
                )
        except sqlite3.IntegrityError:
            raise PartnerError(f"a partner named {name!r} already exists; revoke it first or pick another name") from None
        return partner_id, f"{KEY_PREFIX}_{partner_id}_{secret}"

    def list(self, *, include_revoked: bool = True) -> list[Partner]:
        sql = "SELECT * FROM partners" + ("" if include_revoked else " WHERE revoked IS NULL")
        return [_row_to_partner(r) for r in self._query(sql + " ORDER BY created, rowid")]

    def get(self, id_or_name: str) -> Partner:
        """The partner with this id, or the active one with this name."""
        rows = self._query(
            "SELECT * FROM partners WHERE id = ? OR (name = ? AND revoked IS NULL)", (id_or_name, id_or_name)
        )
        if not rows:
            raise PartnerError(f"no partner with id or name {id_or_name!r} (see `assistant partners list`)")
        return _row_to_partner(rows[0])

    def revoke(self, id_or_name: str) -> Partner:
        """Revoke at once; returns the partner as it was. Revoking twice is an error."""
        partner = self.get(id_or_name)
        if not partner.active:
            raise PartnerError(f"partner {partner.name!r} ({partner.id}) is already revoked")
        with self._tx() as db:
            db.execute("UPDATE partners SET revoked = ? WHERE id = ?", (self.clock(), partner.id))
        return partner

    def verify(self, key: str | None) -> Partner | None:
        """The active partner holding this key, or None (unknown, malformed or revoked)."""
        key = key or ""
        match = _KEY.match(key)
        if match is None:
            return None
        partner_id, secret = match.groups()
        rows = self._query("SELECT * FROM partners WHERE id = ?", (partner_id,))
        if not rows or rows[0]["revoked"] is not None:
            return None
        stored = rows[0]["key_hash"]
        fingerprint = hashlib.sha256(key.encode()).digest()
        remembered = self._verified.get(fingerprint)
        if remembered is None or not hmac.compare_digest(remembered, stored):
            if not check_secret(secret, stored):
                return None
            with self._lock:
                if len(self._verified) >= 4096:
                    self._verified.clear()
                self._verified[fingerprint] = stored
        return _row_to_partner(rows[0])

    def origin_known(self, origin: str | None) -> bool:
        """Whether any active partner allows this origin (for CORS preflights)."""
        if origin is None:
            return False
        return any(origin in p.origins for p in self.list(include_revoked=False))

    # ------------------------------------------------------------------ quotas

    def admit(self, partner: Partner, origin: str | None = None) -> Admission:
        """Count one request against the partner's quotas, or refuse it with a retry time.

        Either way the request is logged; call `finish` with its status and latency.
        """
        now = self.clock()
        day_start = math.floor(now / DAY_S) * DAY_S
        with self._tx() as db:
            recent = [
                r[0]
                for r in db.execute(
                    "SELECT ts FROM requests WHERE partner_id = ? AND admitted = 1 AND ts > ? ORDER BY ts",
                    (partner.id, now - WINDOW_S),
                )
            ]
            today = db.execute(
                "SELECT COUNT(*) FROM requests WHERE partner_id = ? AND admitted = 1 AND ts >= ?",
                (partner.id, day_start),
            ).fetchone()[0]
            retry, reason = 0.0, ""
            if today >= partner.per_day:
                retry, reason = day_start + DAY_S - now, f"{partner.per_day} requests per day"
            elif len(recent) >= partner.per_minute:
                # The window frees a slot when the oldest request that keeps it full leaves it.
                oldest = recent[len(recent) - partner.per_minute]
                retry, reason = oldest + WINDOW_S - now, f"{partner.per_minute} requests per minute"
            ok = not reason
            cur = db.execute(
                "INSERT INTO requests (partner_id, ts, admitted, status, origin) VALUES (?, ?, ?, ?, ?)",
                (partner.id, now, int(ok), None if ok else 429, origin),
            )
            request_id = int(cur.lastrowid or 0)
        return Admission(ok, request_id, 0 if ok else max(1, math.ceil(retry)), reason)

    def finish(self, request_id: int, status: int, latency_ms: float) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE requests SET status = ?, latency_ms = ? WHERE id = ?",
                (status, round(latency_ms, 1), request_id),
            )

    def log(self, partner_id: str, status: int, latency_ms: float, origin: str | None = None) -> None:
        """Log a request refused before the quota check (403, 422): not counted against quotas."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO requests (partner_id, ts, admitted, status, latency_ms, origin)"
                " VALUES (?, ?, 0, ?, ?, ?)",
                (partner_id, self.clock(), status, round(latency_ms, 1), origin),
            )

    # ------------------------------------------------------------------- usage

    def usage(self, since: float | None = None) -> builtins.list[UsageRow]:
        """Per partner: request counts by outcome and latency, since `since` (epoch s)."""
        since = since if since is not None else 0.0
        day_start = math.floor(self.clock() / DAY_S) * DAY_S
        rows: builtins.list[UsageRow] = []
        for p in self.list():
            reqs = self._query(
                "SELECT ts, admitted, status, latency_ms FROM requests WHERE partner_id = ? AND ts >= ?",
                (p.id, since),
            )
            statuses = [r["status"] for r in reqs]
            answered = sorted(
                float(r["latency_ms"])
                for r in reqs
                if r["status"] is not None and 200 <= r["status"] < 300 and r["latency_ms"] is not None
            )
            ok = sum(1 for s in statuses if s is not None and 200 <= s < 300)
            refused = statuses.count(403)
            limited = statuses.count(429)
            in_flight = statuses.count(None)
            today = self._query(
                "SELECT COUNT(*) FROM requests WHERE partner_id = ? AND admitted = 1 AND ts >= ?",
                (p.id, day_start),
            )[0][0]
            rows.append(
                UsageRow(
                    partner_id=p.id,
                    name=p.name,
                    active=p.active,
                    requests=len(reqs),
                    answered=ok,
                    refused=refused,
                    limited=limited,
                    failed=len(reqs) - ok - refused - limited - in_flight,
                    avg_ms=round(sum(answered) / len(answered), 1) if answered else None,
                    p95_ms=answered[min(len(answered) - 1, math.ceil(0.95 * len(answered)) - 1)]
                    if answered
                    else None,
                    today=int(today),
                    last=max((float(r["ts"]) for r in reqs), default=None),
                )
            )
        return rows
