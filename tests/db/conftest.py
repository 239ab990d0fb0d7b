"""A real, temporary PostgreSQL cluster on loopback for the database tests (session-scoped).

`deploy.local.postgres`: `initdb` into a temporary folder, `pg_ctl start` on a free port;
`CREATE DATABASE` per test. As root the server runs as the `postgres` account (or
`nobody`). Skipped, with the reason, when PostgreSQL's programs are not installed or no
such account exists.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from deploy.local import Postgres, Unavailable, postgres

Cluster = Postgres  # the tests' name for a running cluster


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    try:
        with postgres() as cluster:
            yield cluster
    except Unavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture
def pg_database(pg_cluster: Cluster, request: pytest.FixtureRequest) -> Callable[[], str]:
    """Makes a fresh empty database per call (named after the test); returns its URL."""
    counter = iter(range(1000))

    def make() -> str:
        name = f"t_{abs(hash(request.node.nodeid)) % 10**8}_{next(counter)}"
        return pg_cluster.create_database(name)

    return make
