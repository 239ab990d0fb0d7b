"""A real, temporary PostgreSQL cluster on loopback for the database tests (session-scoped).

`initdb` into a temporary folder, `pg_ctl start` on a free port, `CREATE DATABASE`. PostgreSQL
refuses to run as root: when the tests run as root the server runs as the `postgres`
account (or `nobody`), which owns the folder; otherwise as the current user. Skipped, with
the reason, when PostgreSQL's programs are not installed or no such account exists.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

PG_ACCOUNTS = ("postgres", "nobody")


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True)
    return str(versions[0]) if versions else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Cluster:
    port: int
    user: str
    admin_url: str  # the `postgres` maintenance database

    def url(self, name: str) -> str:
        return f"postgresql+pg8000://{self.user}@127.0.0.1:{self.port}/{name}"

    def create_database(self, name: str) -> str:
        """A new empty database; its URL."""
        engine = sa.create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        finally:
            engine.dispose()
        return self.url(name)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.skip("PostgreSQL is not installed (initdb and pg_ctl not found on PATH or in /usr/lib/postgresql)")
    run_as: dict[str, int] = {}
    if os.geteuid() == 0:
        account = next((a for a in PG_ACCOUNTS if _has_account(a)), None)
        if account is None:
            pytest.skip("running as root and no non-root account (postgres, nobody) to run PostgreSQL as")
        entry = pwd.getpwnam(account)
        run_as = {"user": entry.pw_uid, "group": entry.pw_gid}
    base = Path(tempfile.mkdtemp(prefix="assistant-pg-"))
    if run_as:
        os.chown(base, run_as["user"], run_as["group"])
    data, log = base / "data", base / "server.log"
    user = "assistant"
    port = _free_port()

    def run(*args: str) -> None:
        result = subprocess.run(
            list(args), cwd=base, capture_output=True, text=True, timeout=120, check=False, **run_as  # type: ignore[call-overload]
        )
        if result.returncode != 0:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            pytest.fail(f"{' '.join(args[:2])} failed ({result.returncode}): {result.stderr[-2000:]}\n{tail}")

    run(initdb, "-D", str(data), "-U", user, "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync")
    options = (
        f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={base} "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=50"
    )
    run(pg_ctl, "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start")
    cluster = Cluster(port, user, f"postgresql+pg8000://{user}@127.0.0.1:{port}/postgres")
    try:
        yield cluster
    finally:
        subprocess.run(
            [pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"], cwd=base, capture_output=True, check=False,
            **run_as,  # type: ignore[call-overload]
        )
        shutil.rmtree(base, ignore_errors=True)


def _has_account(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@pytest.fixture
def pg_database(pg_cluster: Cluster, request: pytest.FixtureRequest) -> Callable[[], str]:
    """Makes a fresh empty database per call (named after the test); returns its URL."""
    counter = iter(range(1000))

    def make() -> str:
        name = f"t_{abs(hash(request.node.nodeid)) % 10**8}_{next(counter)}"
        return pg_cluster.create_database(name)

    return make
