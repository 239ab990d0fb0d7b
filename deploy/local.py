"""The topology of `deploy/compose.yaml` on loopback, without Docker.

    .venv/bin/python -m deploy.local [--replicas 2] [--model none|bundled|URL] [--port 8080]

Starts, each on a free loopback port, with everything under one temporary folder:

- `chroma run`: the vector store, manifest and cleaned documents every replica shares;
- a PostgreSQL cluster (`initdb`, `pg_ctl`; PostgreSQL refuses to run as root, so as root
  it runs as the `postgres` account, else `nobody`), migrated by `assistant db upgrade`;
- `assistant ingest` of the corpus into the Chroma server (one ingest for all replicas);
- the model server (`assistant model-server`: the bundled model, or `--upstream URL` in
  front of any OpenAI-compatible server), unless the model is `none` (extractive answers);
- N `assistant serve` replicas, each with its own empty index and state folders, sharing
  the library folder, the database and the secrets, as the compose file's replicas do;
- nginx with `deploy/nginx.conf`'s site, its `server appN:8000` lines replaced by the
  replicas' loopback addresses and its `listen` by a loopback port. The one addition is an
  `X-Upstream` response header naming the replica that answered (tests and the load
  benchmark read it; the compose file does not expose it).

The topology test (`tests/deploy/`) and `benchmarks/load.py --replicas` use `topology()`;
run as a script it prints the addresses and serves until Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
NGINX_SITE = Path(__file__).resolve().parent / "nginx.conf"
LOOPBACK = "127.0.0.1"
PG_ACCOUNTS = ("postgres", "nobody")
PG_USER = "assistant"


class Unavailable(RuntimeError):
    """A program the topology needs is not installed (the message says which and how)."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def program(name: str, *folders: str) -> str | None:
    """`name` on PATH or in one of `folders` (Debian keeps nginx in /usr/sbin, PostgreSQL
    in /usr/lib/postgresql/<version>/bin, neither always on a user's PATH)."""
    found = shutil.which(name)
    if found:
        return found
    for folder in folders:
        hits = sorted(Path("/").glob(f"{folder.lstrip('/')}/{name}"), reverse=True)
        if hits:
            return str(hits[0])
    return None


# ------------------------------------------------------------------------- processes


@dataclass
class Service:
    """One started process: its name, base URL and log file."""

    name: str
    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text("utf-8", errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL to the process and its group, at once: a crash, not a shutdown."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM, SIGKILL after 15 s, then SIGKILL to whatever is left in its group."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)


def start(name: str, argv: Sequence[str], url: str, log: Path, env: dict[str, str] | None = None) -> Service:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            list(argv),
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group, so stop() and kill() reach its children
        )
    return Service(name, proc, url, log)


def wait_until(service: Service, path: str, timeout: float) -> None:
    """Until `service.url + path` answers 200; a clear error with the log's tail otherwise."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    with httpx.Client(timeout=5.0, trust_env=False) as client:
        while True:
            if not service.alive():
                raise RuntimeError(f"{service.name} exited ({service.proc.returncode}):\n{service.tail()}")
            try:
                r = client.get(service.url + path)
                if r.status_code == 200:
                    return
                last = f"HTTP {r.status_code}"
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            if time.monotonic() > deadline:
                raise RuntimeError(f"{service.name}: {path} not 200 within {timeout:.0f} s ({last}):\n{service.tail()}")
            time.sleep(0.25)


def ready(service: Service, path: str, timeout: float) -> Service:
    """`service` once `path` answers 200; stopped, and the error raised, if it does not."""
    try:
        wait_until(service, path, timeout)
    except BaseException:
        service.stop()
        raise
    return service


def assistant_cli(*args: str, env: dict[str, str], timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """`assistant ARGS` with `env` added; raises with its output when it fails."""
    result = subprocess.run(
        [sys.executable, "-m", "assistant.cli.main", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"assistant {' '.join(args)} exited {result.returncode}:\n{result.stdout}{result.stderr}")
    return result


# ------------------------------------------------------------------------- PostgreSQL


@dataclass
class Postgres:
    """A running temporary cluster: `url(name)` for a database in it."""

    port: int
    user: str = PG_USER

    @property
    def admin_url(self) -> str:
        return self.url("postgres")

    def url(self, name: str) -> str:
        return f"postgresql+pg8000://{self.user}@{LOOPBACK}:{self.port}/{name}"

    def create_database(self, name: str) -> str:
        """A new empty database (an old one of that name is dropped); its URL."""
        import sqlalchemy as sa

        engine = sa.create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        finally:
            engine.dispose()
        return self.url(name)


def _pg_account() -> dict[str, int]:
    """Who runs the cluster: the current user, or a non-root account when we are root."""
    if os.geteuid() != 0:
        return {}
    for name in PG_ACCOUNTS:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return {"user": entry.pw_uid, "group": entry.pw_gid}
    raise Unavailable("running as root and no non-root account (postgres, nobody) to run PostgreSQL as")


@contextlib.contextmanager
def postgres() -> Iterator[Postgres]:
    """A temporary PostgreSQL cluster on a free loopback port (fsync off: test data)."""
    initdb = program("initdb", "usr/lib/postgresql/*/bin")
    pg_ctl = program("pg_ctl", "usr/lib/postgresql/*/bin")
    if initdb is None or pg_ctl is None:
        raise Unavailable("PostgreSQL is not installed: initdb and pg_ctl not found (apt-get install postgresql)")
    run_as = _pg_account()
    base = Path(tempfile.mkdtemp(prefix="assistant-pg-"))
    if run_as:
        os.chown(base, run_as["user"], run_as["group"])
    data, log = base / "data", base / "server.log"
    port = free_port()

    def run(*args: str) -> None:
        result = subprocess.run(
            list(args), cwd=base, capture_output=True, text=True, timeout=120, check=False, **run_as  # type: ignore[call-overload]
        )
        if result.returncode != 0:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{' '.join(args[:2])} failed ({result.returncode}): {result.stderr[-2000:]}\n{tail}")

    try:
        run(initdb, "-D", str(data), "-U", PG_USER, "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync")
        options = (
            f"-c listen_addresses={LOOPBACK} -c port={port} -c unix_socket_directories={base} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100"
        )
        run(pg_ctl, "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start")
        yield Postgres(port)
    finally:
        if data.exists():
            subprocess.run(
                [pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"], cwd=base, capture_output=True, check=False,
                **run_as,  # type: ignore[call-overload]
            )
        shutil.rmtree(base, ignore_errors=True)


# ------------------------------------------------------------------------- Chroma, nginx


def chroma(folder: Path) -> Service:
    """`chroma run` (the CLI that comes with the chromadb package) on a free loopback port."""
    cli = Path(sys.executable).parent / "chroma"
    if not cli.exists():
        raise Unavailable(f"{cli} not found: the chroma CLI comes with the chromadb package (make setup)")
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    service = start(
        "chroma",
        [str(cli), "run", "--path", str(folder / "data"), "--host", LOOPBACK, "--port", str(port)],
        f"http://{LOOPBACK}:{port}",
        folder / "chroma.log",
    )
    return ready(service, "/api/v2/heartbeat", 90)


_SERVER_LINE = re.compile(r"^(?P<indent>[ \t]*)server\s+app\d+:8000(?P<params>[^;]*);[ \t]*\n", re.M)
_LISTEN = re.compile(r"^(?P<indent>[ \t]*)listen\s+80\s*;", re.M)


def render_site(site: str, upstreams: Sequence[str], port: int) -> str:
    """`deploy/nginx.conf` for loopback: each upstream block's `server appN:8000 …;` lines
    become one line per address in `upstreams` (same parameters), `listen 80` becomes
    `listen 127.0.0.1:port`, and responses name the replica that answered (`X-Upstream`)."""
    if not upstreams:
        raise ValueError("at least one upstream address")

    def block(match: re.Match[str]) -> str:
        indent, params = match["indent"], match["params"]
        return "".join(f"{indent}server {address}{params};\n" for address in upstreams)

    # Consecutive server lines form one group; only the first of a group is expanded.
    lines = site.splitlines(keepends=True)
    out: list[str] = []
    previous_was_server = False
    for line in lines:
        match = _SERVER_LINE.match(line if line.endswith("\n") else line + "\n")
        if match:
            if not previous_was_server:
                out.append(block(match))
            previous_was_server = True
            continue
        previous_was_server = False
        out.append(line)
    rendered = "".join(out)
    if _LISTEN.search(rendered) is None:
        raise ValueError("deploy/nginx.conf has no `listen 80;` line to rewrite")
    return _LISTEN.sub(
        lambda m: f"{m['indent']}listen {LOOPBACK}:{port};\n{m['indent']}add_header X-Upstream $upstream_addr always;",
        rendered,
    )


def nginx(folder: Path, upstreams: Sequence[str], name: str = "nginx") -> Service:
    """nginx with deploy/nginx.conf's site in front of `upstreams` (host:port), on a free port."""
    binary = program("nginx", "usr/sbin", "usr/local/sbin")
    if binary is None:
        raise Unavailable("nginx is not installed (apt-get install nginx-light)")
    folder.mkdir(parents=True, exist_ok=True)
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (folder / "tmp" / sub).mkdir(parents=True, exist_ok=True)
    port = free_port()
    (folder / "site.conf").write_text(render_site(NGINX_SITE.read_text("utf-8"), upstreams, port), "utf-8")
    temp = " ".join(f"{sub}_temp_path {folder / 'tmp' / sub};" for sub in ("fastcgi", "uwsgi", "scgi"))
    (folder / "nginx.conf").write_text(
        # As root, nginx's workers would switch to `nobody`, who cannot write these folders.
        ("user root;\n" if os.geteuid() == 0 else "")
        + f"worker_processes 1;\npid {folder / 'nginx.pid'};\nerror_log {folder / 'error.log'} warn;\n"
        "events { worker_connections 1024; }\n"
        "http {\n  access_log off;\n"
        f"  client_body_temp_path {folder / 'tmp' / 'body'};\n  proxy_temp_path {folder / 'tmp' / 'proxy'};\n"
        f"  {temp}\n  include {folder / 'site.conf'};\n}}\n",
        "utf-8",
    )
    service = start(
        name,
        [binary, "-p", str(folder), "-e", str(folder / "error.log"), "-c", str(folder / "nginx.conf"), "-g", "daemon off;"],
        f"http://{LOOPBACK}:{port}",
        folder / "nginx.log",
    )
    return ready(service, "/healthz", 30)


# ------------------------------------------------------------------------- the topology


@dataclass
class Topology:
    """Everything started by `topology()`: the services and the replicas' shared settings."""

    root: Path
    env: dict[str, str]  # what every replica (and an operator's `assistant` command) is given
    chroma: Service
    replicas: list[Service]
    proxy: Service
    database_url: str | None = None
    model: Service | None = None
    on_start: Callable[[Service], Service] = lambda service: service  # registers it to be stopped

    def cli(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        """`assistant ARGS` run as an operator of this deployment would (same settings)."""
        return assistant_cli(*args, env={**self.env, "ASSISTANT_STATE_DIR": str(self.root / "operator")}, timeout=timeout)

    def proxy_for(self, replicas: Sequence[Service], name: str) -> Service:
        """Another nginx, fronting only `replicas` (e.g. one replica, to compare with two)."""
        return self.on_start(nginx(self.root / name, [r.url.removeprefix("http://") for r in replicas], name))


def _replica_env(root: Path, chroma_port: int, database_url: str | None, model_url: str | None, key: str) -> dict[str, str]:
    env = {
        "CHROMA_HOST": LOOPBACK,
        "CHROMA_PORT": str(chroma_port),
        "ASSISTANT_CHROMA_PREFIX": "assistant",
        "ASSISTANT_LIBRARY_DIR": str(root / "library"),
        "ASSISTANT_TRUSTED_PROXY_HEADER": "X-Forwarded-For",
        # Every replica must hash partner keys and sign sessions with the same secrets.
        "ASSISTANT_KEY_PEPPER": secrets.token_hex(32),
        "ASSISTANT_SESSION_SECRET": secrets.token_hex(32),
        "ASSISTANT_INDEX_POLL": "2",
        "ASSISTANT_LOG_FORMAT": "json",
    }
    if database_url:
        env["ASSISTANT_DATABASE_URL"] = database_url
    if model_url:
        env.update({"ASSISTANT_LLM": "openai", "OPENAI_BASE_URL": f"{model_url}/v1", "OPENAI_API_KEY": key})
    else:
        env["ASSISTANT_LLM"] = "extractive"
    return env


@contextlib.contextmanager
def topology(
    replicas: int = 2,
    *,
    model: str = "none",
    database: bool = True,
    env: dict[str, str] | None = None,
    root: Path | None = None,
    ready_timeout: float = 300,
) -> Iterator[Topology]:
    """Start the whole topology (see the module's docstring); stop all of it on exit.

    `model`: `none` (extractive answers, no model server), `bundled` (the model server
    runs the packaged model), or an OpenAI-compatible base URL ending in /v1 that the model
    server fronts. `env`: more settings for the replicas (quotas, admin token, …).
    """
    if not 1 <= replicas <= 8:
        raise ValueError("replicas: 1 to 8")
    base = Path(tempfile.mkdtemp(prefix="assistant-topology-")) if root is None else root
    # Everything started is stopped in the reverse order, the folder removed last.
    with contextlib.ExitStack() as stack:
        if root is None:
            stack.callback(shutil.rmtree, base, ignore_errors=True)

        def started(service: Service) -> Service:
            stack.callback(service.stop)
            return service

        store = started(chroma(base / "chroma"))
        database_url = stack.enter_context(postgres()).create_database("assistant") if database else None
        key = secrets.token_hex(16)
        model_service = None
        if model != "none":
            port = free_port()
            argv = [sys.executable, "-m", "assistant.cli.main", "model-server", "--host", LOOPBACK, "--port", str(port)]
            if model != "bundled":
                argv += ["--upstream", model]
            model_service = started(start(
                "model-server", argv, f"http://{LOOPBACK}:{port}", base / "model-server.log",
                {"ASSISTANT_MODEL_SERVER_KEY": key, "OPENAI_API_KEY": ""},
            ))
        shared = {
            **_replica_env(base, int(store.url.rsplit(":", 1)[1]), database_url,
                           model_service.url if model_service else None, key),
            **(env or {}),
        }
        if database_url:
            assistant_cli("db", "upgrade", env=shared)
        assistant_cli(
            "ingest", "--rebuild-if-needed", "--quiet",
            env={**shared, "ASSISTANT_INDEX_DIR": str(base / "ingest" / "index"),
                 "ASSISTANT_STATE_DIR": str(base / "ingest" / "state")},
        )
        if model_service is not None:
            wait_until(model_service, "/readyz", ready_timeout)
        nodes: list[Service] = []
        for n in range(1, replicas + 1):
            port = free_port()
            folder = base / f"app{n}"
            folder.mkdir(parents=True, exist_ok=True)
            nodes.append(started(start(
                f"app{n}",
                [sys.executable, "-m", "assistant.cli.main", "serve", "--host", LOOPBACK, "--port", str(port)],
                f"http://{LOOPBACK}:{port}",
                folder / "serve.log",
                {**shared, "ASSISTANT_INDEX_DIR": str(folder / "index"), "ASSISTANT_STATE_DIR": str(folder / "state")},
            )))
        for node in nodes:
            wait_until(node, "/readyz", ready_timeout)
        front = started(nginx(base / "nginx", [n.url.removeprefix("http://") for n in nodes]))
        top = Topology(base, shared, store, nodes, front, database_url, model_service, on_start=started)
        yield top


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--model", default="none", help="none, bundled, or an OpenAI-compatible base URL (…/v1).")
    parser.add_argument("--no-database", action="store_true", help="SQLite per replica instead of PostgreSQL.")
    args = parser.parse_args()
    try:
        with topology(args.replicas, model=args.model, database=not args.no_database) as top:
            print(f"proxy    {top.proxy.url}/ui")
            for node in top.replicas:
                print(f"{node.name:8} {node.url}")
            print(f"chroma   {top.chroma.url}")
            if top.database_url:
                print(f"database {top.database_url}")
            if top.model:
                print(f"model    {top.model.url}/v1")
            print(f"folder   {top.root}\nCtrl-C stops everything.", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                while all(s.alive() for s in [top.proxy, *top.replicas]):
                    time.sleep(1)
    except (Unavailable, RuntimeError) as exc:
        sys.exit(f"error: {exc}")


if __name__ == "__main__":
    main()
