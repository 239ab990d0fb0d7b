"""Partner websites that embed the chat widget: keys, allowed origins, quotas, usage.

Kept in the partners database (`assistant.db`): the SQLite file
`settings.state_dir / "partners.db"` by default, or the PostgreSQL database of
`ASSISTANT_DATABASE_URL`, shared by every server process.

* A key looks like `ttw_<id>_<secret>`. The id (12 hex digits) is public and finds the
  row in O(1); the secret is 256 bits of randomness, so a fast keyed hash is enough:
  only `HMAC-SHA256(pepper, secret)` is stored (`hmac-sha256$<pepper id>$<digest>`), the
  database never holds a usable key, and a check costs microseconds, wrong or right.
  The pepper is `ASSISTANT_KEY_PEPPER`, or else a random one kept in
  `state_dir/key_pepper` (mode 0600, created on first use); keys hashed with the file's
  pepper keep working after `ASSISTANT_KEY_PEPPER` is set, and are re-hashed on use.
  With a shared database every server must have the same pepper: set `ASSISTANT_KEY_PEPPER`.
  Keys stored by older versions as salted scrypt hashes (`scrypt$…`, ~16 MiB and tens of
  ms per check) are re-hashed with HMAC on their next successful use; at most one scrypt
  check runs at a time. The key is shown once, by `add`.
* Failed key checks are counted per client address and per key id (`throttle`, in this
  process's memory: each replica allows `auth_failures`): past `auth_failures` in
  `auth_window` seconds, an address gets 429 for every key until the window ends, and a
  key id gets 429 for wrong secrets and no expensive (scrypt) check, while its right
  secret still passes: knowing a partner's public id is not enough to lock its visitors out.
* Each partner has an allowlist of origins (`scheme://host[:port]`): a key with no
  origins serves nobody.
* Quotas, per partner and, below them, per visitor (client address, IPv6 by /64, stored
  only as a keyed hash), so one script cannot use up a partner's day: per UTC day, an
  atomic counter in the database (`assistant.db.counters`: one `INSERT … ON CONFLICT …
  DO UPDATE … RETURNING`), so every replica shares one quota; per minute, a sliding
  60-second window over the usage log, read while the partner's day counter row is
  locked, so it is exact across replicas too.
* Every admitted widget request is logged (time, visitor hash, status, latency) for
  `assistant partners usage`; refusals (403, 413, 422, 429, …) only add to one counter per
  UTC day, partner, status and reason, never a row per request nor the request's Origin.
  Records older than `retention_days` are deleted (checked at most once an hour per process).
"""

from __future__ import annotations

import base64
import builtins
import hashlib
import hmac
import json
import logging
import math
import os
import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import Connection, RowMapping, text

from assistant.db import counters
from assistant.db.database import PARTNERS, SQLITE_FILES, Database, Databases
from assistant.partners.errors import PartnerError
from assistant.partners.origins import normalize_origin
from assistant.partners.throttle import FailureThrottle, client_subject

if TYPE_CHECKING:
    from assistant.settings import Settings

log = logging.getLogger(__name__)

KEY_PREFIX = "ttw"
DB_NAME = SQLITE_FILES[PARTNERS]
PEPPER_FILE = "key_pepper"
COUNTERS = "quota_counters"
DEFAULT_PER_MINUTE = 20
DEFAULT_PER_DAY = 1000
# The Settings defaults, for a store built without settings (tests, tools).
DEFAULT_VISITOR_PER_MINUTE = 10
DEFAULT_VISITOR_PER_DAY = 100
DEFAULT_AUTH_FAILURES = 10
DEFAULT_AUTH_WINDOW_S = 300.0
DEFAULT_RETENTION_DAYS = 90
WINDOW_S = 60.0
DAY_S = 86400.0
PRUNE_EVERY_S = 3600.0
HMAC_ALGO = "hmac-sha256"
# The scrypt cost of keys stored by older versions: ~16 MiB and ~40-80 ms per check.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
_KEY = re.compile(rf"^{KEY_PREFIX}_([0-9a-f]{{12}})_([A-Za-z0-9_-]{{20,128}})$")
_REASON = re.compile(r"^[a-z0-9-]{1,32}$")


# ---------------------------------------------------------------------------- keys


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def pepper_id(pepper: bytes) -> str:
    """A public name for a pepper (stored with each hash), from which the pepper cannot be found."""
    return hmac.new(pepper, b"assistant partner key pepper id", hashlib.sha256).hexdigest()[:12]


def hash_secret(secret: str, pepper: bytes) -> str:
    """`hmac-sha256$<pepper id>$<base64 HMAC-SHA256(pepper, secret)>`: what is stored for a key."""
    digest = hmac.new(pepper, secret.encode(), hashlib.sha256).digest()
    return f"{HMAC_ALGO}${pepper_id(pepper)}${_b64(digest)}"


def scrypt_hash(secret: str, salt: bytes | None = None) -> str:
    """The salted scrypt hash older versions stored (kept to test their migration)."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def check_scrypt(secret: str, stored: str) -> bool:
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


def read_pepper_file(path: Path, *, create: bool) -> bytes | None:
    """The pepper kept in `path` (64 hex digits, mode 0600), created when missing if `create`."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        if not create:
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written whole to a private temporary file, then linked into place: another
        # process never reads a half-written pepper, and the first one created wins.
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as f:
                f.write(secrets.token_hex(32) + "\n")
            with suppress(FileExistsError):  # another process was first: use its pepper
                os.link(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return read_pepper_file(path, create=False)
    if path.stat().st_mode & 0o077:
        log.warning("%s was readable by others; its mode is now 0600", path)
        os.chmod(path, 0o600)
    if len(text) < 32:
        raise PartnerError(f"{path}: the key pepper is damaged (under 32 characters); restore it from a backup")
    return text.encode("ascii")


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
    """The quota decision for one request; `request_id` is its usage-log row (0 when refused)."""

    ok: bool
    request_id: int
    retry_after: int = 0  # seconds, when not ok
    reason: str = ""
    scope: str = ""  # whose quota is used up, when not ok: "partner" or "visitor"


@dataclass(frozen=True)
class KeyCheck:
    """The outcome of checking a partner key: the partner, or None; throttled when `retry_after`."""

    partner: Partner | None
    retry_after: int = 0  # > 0: too many failed checks, answer 429 with this Retry-After


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


def _row_to_partner(row: RowMapping) -> Partner:
    return Partner(
        id=row["id"],
        name=row["name"],
        origins=tuple(json.loads(row["origins"])),
        per_minute=int(row["per_minute"]),
        per_day=int(row["per_day"]),
        created=float(row["created"]),
        revoked=None if row["revoked"] is None else float(row["revoked"]),
    )


class _Raw:
    """A connection taking raw SQL in the driver's parameter style (tests and tools)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, args: Iterable[Any] = ()) -> sa.CursorResult[Any]:
        return self.conn.exec_driver_sql(sql, tuple(args))


# --------------------------------------------------------------------------- store


class PartnerStore:
    """Thread-safe; many stores (processes, replicas) may share one database.

    `database`: a `Database`, or the path of a SQLite file (its own `Database`, closed
    with the store). `state_dir`: where the `key_pepper` file is kept (default: the
    SQLite file's folder). `pepper`: the key pepper (`ASSISTANT_KEY_PEPPER`); None = the
    one in `state_dir/key_pepper`, created on first use.
    """

    def __init__(
        self,
        database: Path | Database,
        *,
        clock: Callable[[], float] = time.time,
        pepper: bytes | None = None,
        state_dir: Path | None = None,
        visitor_per_minute: int = DEFAULT_VISITOR_PER_MINUTE,
        visitor_per_day: int = DEFAULT_VISITOR_PER_DAY,
        auth_failures: int = DEFAULT_AUTH_FAILURES,
        auth_window: float = DEFAULT_AUTH_WINDOW_S,
        retention_days: int = DEFAULT_RETENTION_DAYS,
    ) -> None:
        self._owns_db = not isinstance(database, Database)
        self.db = database if isinstance(database, Database) else Database.sqlite(database, branches=(PARTNERS,))
        self.path = self.db.path  # the SQLite file; None for a server database
        if state_dir is None:
            if self.path is None:
                raise ValueError("state_dir is needed (for the key pepper file) with a server database")
            state_dir = self.path.parent
        self.state_dir = Path(state_dir)
        self.clock = clock
        self.visitor_per_minute = visitor_per_minute
        self.visitor_per_day = visitor_per_day
        self.retention_days = retention_days
        self._lock = threading.RLock()
        self._given_pepper = pepper
        self._pepper: bytes | None = None  # the one new hashes use
        self._peppers: dict[str, bytes] = {}  # pepper id -> pepper, for checking
        self._scrypt = threading.Lock()  # at most one legacy scrypt check at a time
        self._failed_addresses = FailureThrottle(auth_failures, auth_window, clock=clock)
        self._failed_ids = FailureThrottle(auth_failures, auth_window, clock=clock)
        self._pruned = -math.inf

    @classmethod
    def from_settings(cls, settings: Settings, database: Database | None = None) -> PartnerStore:
        """The store of these settings, on `database` (default: its own, from the settings)."""
        pepper = settings.key_pepper.get_secret_value().encode() if settings.key_pepper else None
        if pepper is not None and len(pepper) < 32:
            log.warning("ASSISTANT_KEY_PEPPER is shorter than 32 characters; use e.g. `openssl rand -hex 32`")
        store = cls(
            database or Databases.from_settings(settings).partners,
            pepper=pepper,
            state_dir=settings.state_dir,
            visitor_per_minute=settings.widget_visitor_per_minute,
            visitor_per_day=settings.widget_visitor_per_day,
            auth_failures=settings.widget_auth_failures,
            auth_window=settings.widget_auth_window,
            retention_days=settings.widget_usage_retention_days,
        )
        store._owns_db = database is None
        if pepper is None and not store.db.is_sqlite:
            log.warning(
                "ASSISTANT_DATABASE_URL is shared but ASSISTANT_KEY_PEPPER is not set: partner keys are "
                "hashed with %s, so keys added on one machine fail on others; set ASSISTANT_KEY_PEPPER "
                "to the same secret everywhere",
                store.state_dir / PEPPER_FILE,
            )
        return store

    # ------------------------------------------------------------------ pepper

    def _current_pepper(self) -> bytes:
        """The pepper new hashes use; every pepper a stored hash may name is in `_peppers`."""
        with self._lock:
            if self._pepper is None:
                file = self.state_dir / PEPPER_FILE
                if self._given_pepper is not None:
                    old = read_pepper_file(file, create=False)
                    if old is not None:
                        self._peppers[pepper_id(old)] = old
                    current = self._given_pepper
                else:
                    current = read_pepper_file(file, create=True) or b""
                self._peppers[pepper_id(current)] = current
                self._pepper = current
            return self._pepper

    # -------------------------------------------------------------- connection

    @contextmanager
    def _tx(self) -> Iterator[_Raw]:
        """One write transaction taking raw SQL (tests and tools); the store uses `db.write()`."""
        with self.db.write() as conn:
            yield _Raw(conn)

    def _query(self, sql: str, args: Iterable[Any] = ()) -> builtins.list[Any]:
        """Rows of raw SQL in the driver's parameter style (tests and tools)."""
        with self.db.read() as conn:
            return builtins.list(conn.exec_driver_sql(sql, tuple(args)).fetchall())

    def _rows(self, sql: str, **params: Any) -> builtins.list[RowMapping]:
        with self.db.read() as conn:
            return [r._mapping for r in conn.execute(text(sql), params)]

    def close(self) -> None:
        """Close the store's own database (a `Database` passed in is its owner's to close)."""
        if self._owns_db:
            self.db.dispose()

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
        normalised: builtins.list[str] = []
        for origin in origins:
            o = normalize_origin(origin)
            if o not in normalised:
                normalised.append(o)
        if per_minute < 1 or per_day < 1:
            raise PartnerError("quotas: --per-minute and --per-day must be at least 1")
        partner_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        key_hash = hash_secret(secret, self._current_pepper())
        try:
            with self.db.write() as db:
                db.execute(
                    text(
                        "INSERT INTO partners (id, name, key_hash, origins, per_minute, per_day, created)"
                        " VALUES (:id, :name, :key_hash, :origins, :per_minute, :per_day, :created)"
                    ),
                    {
                        "id": partner_id, "name": name, "key_hash": key_hash, "origins": json.dumps(normalised),
                        "per_minute": per_minute, "per_day": per_day, "created": self.clock(),
                    },
                )
        except sa.exc.IntegrityError:
            raise PartnerError(f"a partner named {name!r} already exists; revoke it first or pick another name") from None
        return partner_id, f"{KEY_PREFIX}_{partner_id}_{secret}"

    def list(self, *, include_revoked: bool = True) -> builtins.list[Partner]:
        sql = "SELECT * FROM partners" + ("" if include_revoked else " WHERE revoked IS NULL")
        # Insertion order among partners created in the same instant: SQLite's rowid.
        sql += " ORDER BY created, rowid" if self.db.is_sqlite else " ORDER BY created, id"
        return [_row_to_partner(r) for r in self._rows(sql)]

    def get(self, id_or_name: str) -> Partner:
        """The partner with this id, or the active one with this name."""
        rows = self._rows("SELECT * FROM partners WHERE id = :v OR (name = :v AND revoked IS NULL)", v=id_or_name)
        if not rows:
            raise PartnerError(f"no partner with id or name {id_or_name!r} (see `assistant partners list`)")
        return _row_to_partner(rows[0])

    def revoke(self, id_or_name: str) -> Partner:
        """Revoke at once; returns the partner as it was. Revoking twice is an error."""
        partner = self.get(id_or_name)
        if not partner.active:
            raise PartnerError(f"partner {partner.name!r} ({partner.id}) is already revoked")
        with self.db.write() as db:
            db.execute(text("UPDATE partners SET revoked = :now WHERE id = :id"), {"now": self.clock(), "id": partner.id})
        return partner

    def verify(self, key: str | None) -> Partner | None:
        """The active partner holding this key, or None (unknown, malformed, revoked or throttled)."""
        return self.check_key(key).partner

    def address_retry_after(self, address: str | None) -> int:
        """Seconds this client address must wait after too many failed key checks; 0 = none."""
        return self._failed_addresses.retry_after(client_subject(address)) if address else 0

    def check_key(self, key: str | None, address: str | None = None) -> KeyCheck:
        """Check a partner key sent from `address` (None: not counted per address).

        Throttled (`retry_after` > 0, nothing checked) once the address has had too many
        failures; a key id with too many failures gets only the cheap check (HMAC): its
        right secret passes, a wrong one or a legacy scrypt hash is refused as throttled.
        """
        subject = client_subject(address) if address else None
        if subject is not None:
            wait = self._failed_addresses.retry_after(subject)
            if wait:
                return KeyCheck(None, wait)
        match = _KEY.match(key or "")
        if match is None:
            return self._failed(subject, None)
        partner_id, secret = match.groups()
        rows = self._rows("SELECT * FROM partners WHERE id = :id", id=partner_id)
        if not rows or rows[0]["revoked"] is not None:
            return self._failed(subject, None)
        stored: str = rows[0]["key_hash"]
        id_wait = self._failed_ids.retry_after(partner_id)
        if stored.startswith(f"{HMAC_ALGO}$"):
            ok, current = self._check_hmac(secret, stored)
        elif id_wait:
            return KeyCheck(None, id_wait)  # no scrypt for a key id under attack
        else:
            with self._scrypt:
                ok, current = check_scrypt(secret, stored), False
        if not ok:
            return KeyCheck(None, id_wait) if id_wait else self._failed(subject, partner_id)
        if not current:  # scrypt, or another pepper: re-hash with the current one
            with self.db.write() as db:
                db.execute(
                    text("UPDATE partners SET key_hash = :new WHERE id = :id AND key_hash = :old"),
                    {"new": hash_secret(secret, self._current_pepper()), "id": partner_id, "old": stored},
                )
        return KeyCheck(_row_to_partner(rows[0]))

    def _check_hmac(self, secret: str, stored: str) -> tuple[bool, bool]:
        """(whether `secret` matches, whether `stored` uses the current pepper)."""
        current = self._current_pepper()
        try:
            _, pid, digest = stored.split("$")
            expected = base64.b64decode(digest, validate=True)
        except ValueError:
            return False, True
        pepper = self._peppers.get(pid)
        if pepper is None:
            log.warning(
                "a partner key hash names pepper %s, which this server does not have "
                "(ASSISTANT_KEY_PEPPER changed and the state dir's key_pepper is gone?)",
                pid,
            )
            return False, True
        actual = hmac.new(pepper, secret.encode(), hashlib.sha256).digest()
        return hmac.compare_digest(actual, expected), pepper == current

    def _failed(self, subject: str | None, partner_id: str | None) -> KeyCheck:
        if subject is not None:
            self._failed_addresses.fail(subject)
        if partner_id is not None:
            self._failed_ids.fail(partner_id)
        return KeyCheck(None)

    def origin_known(self, origin: str | None) -> bool:
        """Whether any active partner allows this origin (for CORS preflights)."""
        if origin is None:
            return False
        return any(origin in p.origins for p in self.list(include_revoked=False))

    # ------------------------------------------------------------------ quotas

    def visitor_id(self, address: str) -> str:
        """What the usage log keeps of a client address: a keyed hash of its subject."""
        subject = client_subject(address).encode()
        return hmac.new(self._current_pepper(), b"visitor\0" + subject, hashlib.sha256).hexdigest()[:24]

    def admit(self, partner: Partner, origin: str | None = None, visitor: str | None = None) -> Admission:
        """Count one request against the partner's quotas and, when `visitor` (a client
        address) is given, against that visitor's; or refuse it with a retry time.

        One transaction: the day counters are taken first (partner, then visitor: the
        partner's row lock serialises the partner's admissions across replicas), then the
        per-minute windows are read from the usage log; a refusal gives the counters back.
        An admitted request is logged: call `finish` with its status and latency. A refused
        one only adds to the day's refusal count (its `request_id` is 0).
        """
        vid = self.visitor_id(visitor) if visitor else None
        now = self.clock()
        day = counters.day_of(now)
        scopes: builtins.list[tuple[str, str, str | None, int, int, str]] = [
            ("partner", f"p:{partner.id}", None, partner.per_minute, partner.per_day, "")
        ]
        if vid is not None:
            scopes.append(
                ("visitor", f"v:{partner.id}:{vid}", vid, self.visitor_per_minute, self.visitor_per_day, " from one visitor")
            )
        with self.db.write() as db:
            self._prune(db, now)
            taken: builtins.list[str] = []
            waits: builtins.list[tuple[float, str, str]] = []
            for scope, subject, scope_vid, per_minute, per_day, whose in scopes:
                if not counters.take(db, COUNTERS, subject, day, per_day):
                    waits.append((day + DAY_S - now, f"{per_day} requests per day{whose}", scope))
                    continue
                taken.append(subject)
                wait = self._minute_wait(db, partner.id, scope_vid, now, per_minute)
                if wait is not None:
                    waits.append((wait, f"{per_minute} requests per minute{whose}", scope))
            if waits:
                for subject in taken:
                    counters.give_back(db, COUNTERS, subject, day)
                retry, reason, scope = max(waits)
                self._count_refusal(db, partner.id, 429, f"quota-{scope}", now)
                return Admission(False, 0, max(1, math.ceil(retry)), reason, scope)
            request_id = db.execute(
                text(
                    "INSERT INTO requests (partner_id, ts, admitted, origin, visitor)"
                    " VALUES (:partner_id, :ts, 1, :origin, :visitor) RETURNING id"
                ),
                {"partner_id": partner.id, "ts": now, "origin": origin, "visitor": vid},
            ).scalar_one()
        return Admission(True, int(request_id))

    @staticmethod
    def _minute_wait(db: Connection, partner_id: str, vid: str | None, now: float, per_minute: int) -> float | None:
        """Seconds until the sliding 60-second window has room; None when it has."""
        where = "partner_id = :partner_id AND admitted = 1" + (" AND visitor = :vid" if vid is not None else "")
        recent = [
            float(r[0])
            for r in db.execute(
                text(f"SELECT ts FROM requests WHERE {where} AND ts > :since ORDER BY ts"),
                {"partner_id": partner_id, "vid": vid, "since": now - WINDOW_S}
                if vid is not None
                else {"partner_id": partner_id, "since": now - WINDOW_S},
            )
        ]
        if len(recent) >= per_minute:
            # The window frees a slot when the oldest request that keeps it full leaves it.
            return recent[len(recent) - per_minute] + WINDOW_S - now
        return None

    def finish(self, request_id: int, status: int, latency_ms: float) -> None:
        if not request_id:
            return
        with self.db.write() as db:
            db.execute(
                text("UPDATE requests SET status = :status, latency_ms = :ms WHERE id = :id"),
                {"status": status, "ms": round(latency_ms, 1), "id": request_id},
            )

    def log_refusal(self, partner_id: str, status: int, reason: str) -> None:
        """Count a request of this partner refused before its quota check (403, 413, 422, 503).

        One counter per UTC day, partner, status and reason (a short word of our own, e.g.
        `origin`, `body`; anything else is counted as `other`): nothing of the request is kept.
        """
        now = self.clock()
        with self.db.write() as db:
            self._prune(db, now)
            self._count_refusal(db, partner_id, status, reason, now)

    @staticmethod
    def _count_refusal(db: Connection, partner_id: str, status: int, reason: str, now: float) -> None:
        db.execute(
            text(
                "INSERT INTO refusals (day, partner_id, status, reason, count, last)"
                " VALUES (:day, :partner_id, :status, :reason, 1, :now)"
                " ON CONFLICT (day, partner_id, status, reason)"
                " DO UPDATE SET count = refusals.count + 1, last = excluded.last"
            ),
            {
                "day": counters.day_of(now), "partner_id": partner_id, "status": status,
                "reason": reason if _REASON.match(reason) else "other", "now": now,
            },
        )

    # --------------------------------------------------------------- retention

    def prune(self) -> tuple[int, int]:
        """Delete usage records older than `retention_days`; (requests, refusal counters) deleted."""
        with self.db.write() as db:
            self._pruned = -math.inf
            return self._prune(db, self.clock())

    def _prune(self, db: Connection, now: float) -> tuple[int, int]:
        if now - self._pruned < PRUNE_EVERY_S:
            return 0, 0
        self._pruned = now
        cutoff = now - self.retention_days * DAY_S
        requests = db.execute(text("DELETE FROM requests WHERE ts < :cutoff"), {"cutoff": cutoff}).rowcount
        # A day's counter goes once the whole day is older than the cutoff.
        refusals = db.execute(
            text("DELETE FROM refusals WHERE day <= :last"), {"last": math.floor(cutoff - DAY_S)}
        ).rowcount
        counters.prune(db, COUNTERS, counters.day_of(now) - counters.DAY_S)  # quotas need today only
        return int(requests or 0), int(refusals or 0)

    # ------------------------------------------------------------------- usage

    def usage(self, since: float | None = None) -> builtins.list[UsageRow]:
        """Per partner: request counts by outcome and latency, since `since` (epoch s)."""
        since = since if since is not None else 0.0
        day_start = math.floor(self.clock() / DAY_S) * DAY_S
        rows: builtins.list[UsageRow] = []
        since_day = counters.day_of(since)  # refusals are counted per day (an integer column)
        for p in self.list():
            reqs = self._rows(
                "SELECT ts, admitted, status, latency_ms FROM requests WHERE partner_id = :id AND ts >= :since",
                id=p.id,
                since=since,
            )
            counted = {
                int(r["status"]): (int(r["n"]), float(r["last"]))
                for r in self._rows(
                    "SELECT status, SUM(count) AS n, MAX(last) AS last FROM refusals"
                    " WHERE partner_id = :id AND day >= :day GROUP BY status",
                    id=p.id,
                    day=since_day,
                )
            }
            by_status = Counter(r["status"] for r in reqs)
            for status, (n, _) in counted.items():
                by_status[status] += n
            answered = sorted(
                float(r["latency_ms"])
                for r in reqs
                if r["status"] is not None and 200 <= r["status"] < 300 and r["latency_ms"] is not None
            )
            total = sum(by_status.values())
            ok = sum(n for s, n in by_status.items() if s is not None and 200 <= s < 300)
            refused = by_status[403]
            limited = by_status[429]
            in_flight = by_status[None]
            today = self._rows(
                "SELECT COUNT(*) AS n FROM requests WHERE partner_id = :id AND admitted = 1 AND ts >= :since",
                id=p.id,
                since=day_start,
            )[0]["n"]
            rows.append(
                UsageRow(
                    partner_id=p.id,
                    name=p.name,
                    active=p.active,
                    requests=total,
                    answered=ok,
                    refused=refused,
                    limited=limited,
                    failed=total - ok - refused - limited - in_flight,
                    avg_ms=round(sum(answered) / len(answered), 1) if answered else None,
                    p95_ms=answered[min(len(answered) - 1, math.ceil(0.95 * len(answered)) - 1)]
                    if answered
                    else None,
                    today=int(today),
                    last=max([float(r["ts"]) for r in reqs] + [last for _, last in counted.values()], default=None),
                )
            )
        return rows
