"""Load: concurrent users on `/v1/search` and `/v1/chat`, and the local model's queue.

A bounded asyncio client (httpx, loopback only) against `assistant serve` started as a
subprocess on a free port, over a temporary index of corpus/ (or `--index DIR`).

1. Extractive backend. For each endpoint in turn (`/v1/search`, then `/v1/chat` as
   JSON), `--users` users (default 50) run for `--seconds` (default 60): each sends a
   request, waits for the answer, thinks for a random `--think-min`..`--think-max`
   seconds (default 0.5–1.5, like a locust `between()` wait), and sends the next. The 30
   questions of retrieval_latency.py (10 per language) rotate. Figures per endpoint:
   requests, requests/s, p50/p95/p99/mean/max latency (ms) and errors (non-200 answers
   and transport failures, by kind). With `--saturate S` each endpoint also gets an
   S-second run with no think time: the most requests/s the server gives.
   Target: zero errors, `/v1/search` p95 ≤ 200 ms at 50 users.
2. `--local`: `assistant serve` with the bundled local model (ASSISTANT_LLM=local,
   ASSISTANT_MAX_QUEUE=`--max-queue`, default 4), waited on until `/readyz` is 200. Then
   `--local-chats` chats (default 8) are sent at once, and each answer's status, time,
   backend and `Retry-After` recorded: the model answers one at a time, `max-queue` wait
   in line, the rest get 503 with Retry-After at once; none may hang (client timeout
   `--local-timeout`, default 600 s).
3. `--cold`: a fresh `assistant serve` (extractive), waited on until `/readyz` is 200,
   then `--users` searches sent at once (one per user, no ramp): the first requests a
   just-ready server gets. Then the same burst `--warm-bursts` times (default 3) on the
   now-warm server. Figures: p50/p95/max and errors of the cold burst and of the warm
   bursts (pooled), and cold p95 / warm p95. Target: zero errors and cold p95 ≤ 3 × warm
   p95 (nothing queues behind lazy initialization). `--cold-only` runs only this.

4. `--replicas`: the deployment topology (`deploy.local`: `chroma run`, PostgreSQL, two
   `assistant serve` replicas with empty index folders, nginx with deploy/nginx.conf;
   extractive answers). `--users` connections with no think time on `/v1/search` for
   `--replica-seconds` (default 30) through an nginx fronting one replica, then through
   the one fronting both, twice each in turn (one, two, one, two), from wrk (Debian's
   `wrk`: a C client that leaves the cores to the servers; the httpx client when wrk is
   not installed, which itself used up to 8 ms of CPU per request here): requests/s of each,
   the ratio two / one, and the CPU seconds each process used (the reason, in figures,
   where two replicas on a 2-core box cannot double). Then `--users` users with think time
   on the two-replica nginx for `--seconds`, and replica 2 killed (SIGKILL) half-way:
   errors are counted by the replica nginx names in `X-Upstream`. Targets: two ≥ 1.4 × one,
   0 errors on the surviving replica, the killed one's errors ≤ the requests in flight when
   it died. `--replicas-only` runs only this.

    .venv/bin/python benchmarks/load.py [--users 50] [--seconds 60] [--think-min 0.5]
        [--think-max 1.5] [--saturate 0] [--endpoints search,chat] [--index DIR]
        [--local] [--local-only] [--local-chats 8] [--max-queue 4]
        [--cold] [--cold-only] [--warm-bursts 3]
        [--replicas] [--replicas-only] [--replica-seconds 30]

Prints tables, then one JSON line: {"benchmark": "load", ...}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))  # deploy.local

import common
from retrieval_latency import QUESTIONS

TARGET_SEARCH_P95_MS = 200.0
READY_TIMEOUT_S = 300.0
TARGET_COLD_RATIO = 3.0
TARGET_REPLICA_RATIO = 1.4


def _body(endpoint: str, question: str) -> dict[str, Any]:
    if endpoint == "search":
        return {"query": question, "k": 5}
    return {"message": question}


async def _user(
    client: Any,
    base: str,
    endpoint: str,
    user: int,
    deadline: float,
    think: tuple[float, float],
    rng: random.Random,
    latencies: list[float],
    errors: Counter[str],
    seen: Seen | None = None,
) -> None:
    n = user  # each user starts at a different question
    while time.monotonic() < deadline:
        _, question = QUESTIONS[n % len(QUESTIONS)]
        n += 1
        started = time.perf_counter()
        upstream = "?"
        if seen is not None:
            seen.in_flight += 1
        try:
            r = await client.post(f"{base}/v1/{endpoint}", json=_body(endpoint, question))
            elapsed = time.perf_counter() - started
            upstream = r.headers.get("x-upstream", "?")
            if r.status_code == 200:
                latencies.append(elapsed)
            else:
                errors[f"HTTP {r.status_code}"] += 1
            status = str(r.status_code)
        except Exception as exc:  # a transport error is an error, not a crash of the benchmark
            errors[type(exc).__name__] += 1
            status = type(exc).__name__
        if seen is not None:
            seen.in_flight -= 1
            seen.outcomes[(upstream, status)] += 1
        if think[1] > 0 and time.monotonic() < deadline:
            await asyncio.sleep(rng.uniform(*think))


class Seen:
    """What a run with `seen` records: requests in flight now, and (X-Upstream, status) counts."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.outcomes: Counter[tuple[str, str]] = Counter()


async def _phase(
    base: str,
    endpoint: str,
    users: int,
    seconds: float,
    think: tuple[float, float],
    timeout: float,
    seen: Seen | None = None,
    during: Any = None,
) -> dict[str, Any]:
    """`users` users for `seconds`; `during` (a coroutine function) runs alongside them."""
    import httpx

    latencies: list[float] = []
    errors: Counter[str] = Counter()
    limits = httpx.Limits(max_connections=users, max_keepalive_connections=users)
    async with httpx.AsyncClient(timeout=timeout, limits=limits, trust_env=False) as client:
        # Warm-up (not counted): one request per question kind, so no first-call cost counts.
        for _, q in QUESTIONS[::10]:
            await client.post(f"{base}/v1/{endpoint}", json=_body(endpoint, q))
        started = time.monotonic()
        deadline = started + seconds
        rng = random.Random(7)
        # Users arrive over the first second (not all in the same millisecond).
        tasks = []
        for u in range(users):
            tasks.append(
                asyncio.create_task(
                    _user(client, base, endpoint, u, deadline, think, random.Random(rng.random()), latencies, errors, seen)
                )
            )
            await asyncio.sleep(min(1.0, seconds / 10) / users)
        if during is not None:
            tasks.append(asyncio.create_task(during()))
        await asyncio.gather(*tasks)
        wall = time.monotonic() - started
    done = len(latencies) + sum(errors.values())
    return {
        "endpoint": f"/v1/{endpoint}",
        "users": users,
        "seconds": round(wall, 1),
        "think_s": list(think),
        "requests": done,
        "rps": round(done / wall, 1) if wall > 0 else 0.0,
        "latency_ms": common.percentiles(latencies),
        "errors": sum(errors.values()),
        "error_kinds": dict(errors),
    }


def run_extractive(args: argparse.Namespace, index_dir: Path) -> list[dict[str, Any]]:
    env = {"ASSISTANT_INDEX_DIR": str(index_dir), "ASSISTANT_LLM": "extractive"}
    results: list[dict[str, Any]] = []
    with common.serve(env, ready_timeout=60) as base:
        for endpoint in args.endpoints:
            print(f"  {args.users} users on /v1/{endpoint} for {args.seconds:.0f} s …", flush=True)
            results.append(
                asyncio.run(
                    _phase(base, endpoint, args.users, args.seconds, (args.think_min, args.think_max), args.timeout)
                )
            )
            if args.saturate > 0:
                print(f"  {args.users} users on /v1/{endpoint}, no think time, {args.saturate:.0f} s …", flush=True)
                results.append(
                    asyncio.run(_phase(base, endpoint, args.users, args.saturate, (0.0, 0.0), args.timeout))
                )
    return results


async def _burst(base: str, users: int, timeout: float, offset: int = 0) -> tuple[list[float], Counter[str]]:
    """`users` searches sent at once on fresh connections (one each); their latencies and errors."""
    import httpx

    latencies: list[float] = []
    errors: Counter[str] = Counter()
    limits = httpx.Limits(max_connections=users, max_keepalive_connections=users)
    async with httpx.AsyncClient(timeout=timeout, limits=limits, trust_env=False) as client:

        async def one(u: int) -> None:
            _, question = QUESTIONS[(u + offset) % len(QUESTIONS)]
            started = time.perf_counter()
            try:
                r = await client.post(f"{base}/v1/search", json=_body("search", question))
                if r.status_code == 200:
                    latencies.append(time.perf_counter() - started)
                else:
                    errors[f"HTTP {r.status_code}"] += 1
            except Exception as exc:
                errors[type(exc).__name__] += 1

        await asyncio.gather(*(one(u) for u in range(users)))
    return latencies, errors


def run_cold(args: argparse.Namespace, index_dir: Path) -> dict[str, Any]:
    """A fresh server, its first `users` searches at once as soon as /readyz is 200, then warm bursts."""
    env = {"ASSISTANT_INDEX_DIR": str(index_dir), "ASSISTANT_LLM": "extractive"}
    started = time.monotonic()
    with common.serve(env, ready_timeout=READY_TIMEOUT_S) as base:
        ready_s = round(time.monotonic() - started, 1)
        print(f"  fresh server ready in {ready_s} s; {args.users} searches at once …", flush=True)
        cold, cold_errors = asyncio.run(_burst(base, args.users, args.timeout))
        warm: list[float] = []
        warm_errors: Counter[str] = Counter()
        for n in range(args.warm_bursts):
            lat, errs = asyncio.run(_burst(base, args.users, args.timeout, offset=n + 1))
            warm += lat
            warm_errors += errs
    cold_ms = common.percentiles(cold)
    warm_ms = common.percentiles(warm)
    ratio = cold_ms["p95"] / warm_ms["p95"] if warm and warm_ms["p95"] > 0 else float("nan")
    errors = sum(cold_errors.values()) + sum(warm_errors.values())
    return {
        "users": args.users,
        "ready_s": ready_s,
        "cold_ms": cold_ms,
        "cold_errors": dict(cold_errors),
        "warm_bursts": args.warm_bursts,
        "warm_ms": warm_ms,
        "warm_errors": dict(warm_errors),
        "cold_over_warm_p95": round(ratio, 2),
        "target": "target met" if errors == 0 and ratio <= TARGET_COLD_RATIO else "target missed",
    }


async def _local_wave(base: str, chats: int, timeout: float) -> list[dict[str, Any]]:
    import httpx

    async def one(i: int, client: Any) -> dict[str, Any]:
        _, question = [q for q in QUESTIONS if q[0] == "en"][i % 10]
        started = time.perf_counter()
        row: dict[str, Any] = {"chat": i + 1}
        try:
            r = await client.post(f"{base}/v1/chat", json={"message": question})
            row["status"] = r.status_code
            row["retry_after"] = r.headers.get("retry-after")
            data = r.json()
            row["backend"] = data.get("backend", "")
            row["grounded"] = data.get("grounded")
            row["notice"] = bool(data.get("notice"))
        except Exception as exc:
            row["status"] = type(exc).__name__
        row["seconds"] = round(time.perf_counter() - started, 1)
        return row

    limits = httpx.Limits(max_connections=chats)
    async with httpx.AsyncClient(timeout=timeout, limits=limits, trust_env=False) as client:
        tasks = []
        for i in range(chats):
            tasks.append(asyncio.create_task(one(i, client)))
            await asyncio.sleep(0.05)  # a definite arrival order
        return list(await asyncio.gather(*tasks))


def run_local(args: argparse.Namespace, index_dir: Path) -> dict[str, Any]:
    env = {
        "ASSISTANT_INDEX_DIR": str(index_dir),
        "ASSISTANT_LLM": "local",
        "ASSISTANT_MAX_QUEUE": str(args.max_queue),
        "ASSISTANT_QUEUE_TIMEOUT": str(args.local_timeout),
        "ASSISTANT_LLM_TIMEOUT": "300",
        "ASSISTANT_LLM_DEADLINE": "900",
    }
    started = time.monotonic()
    with common.serve(env, ready_timeout=READY_TIMEOUT_S) as base:
        ready_s = round(time.monotonic() - started, 1)
        print(f"  local model ready in {ready_s} s; {args.local_chats} chats at once …", flush=True)
        t0 = time.monotonic()
        rows = asyncio.run(_local_wave(base, args.local_chats, args.local_timeout))
        wall = round(time.monotonic() - t0, 1)
    served = [r for r in rows if r["status"] == 200]
    refused = [r for r in rows if r["status"] == 503]
    return {
        "chats": args.local_chats,
        "max_queue": args.max_queue,
        "ready_s": ready_s,
        "wall_s": wall,
        "served": len(served),
        "served_by_model": sum(1 for r in served if r.get("backend") == "local"),
        "refused_503": len(refused),
        "refused_with_retry_after": sum(1 for r in refused if r.get("retry_after")),
        "refused_max_s": max((r["seconds"] for r in refused), default=None),
        "hung_or_failed": len(rows) - len(served) - len(refused),
        "served_seconds": [r["seconds"] for r in served],
        "rows": rows,
    }


def _cpu_seconds(groups: dict[str, int]) -> dict[str, float]:
    """CPU seconds (user + system) used so far by each named process group, and by this process."""
    ticks = os.sysconf("SC_CLK_TCK")
    used = dict.fromkeys(groups, 0.0)
    by_group = {pgid: name for name, pgid in groups.items()}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        name = by_group.get(int(fields[2]))  # fields after the name: state, ppid, pgrp, …
        if name is not None:
            used[name] += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    me = os.times()
    used["load client"] = me.user + me.system
    return used


def _wrk_phase(wrk: str, base: str, users: int, seconds: float, timeout: float, folder: Path) -> dict[str, Any]:
    """`users` connections with no think time from wrk (C, one thread), rotating the same
    questions: a load client that leaves the 2 cores to the servers it measures."""
    bodies = ", ".join(json.dumps(json.dumps(_body("search", q), ensure_ascii=False), ensure_ascii=False)
                       for _, q in QUESTIONS)
    script = folder / "search.lua"
    script.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f"local bodies = {{{bodies}}}\nlocal i = 0\n"
        'request = function()\n  i = i + 1\n  return wrk.format(nil, "/v1/search", nil, bodies[(i % #bodies) + 1])\nend\n',
        "utf-8",
    )
    out = subprocess.run(
        [wrk, "-t1", f"-c{users}", f"-d{seconds:.0f}s", f"--timeout={timeout:.0f}s", "--latency", "-s", str(script), base],
        capture_output=True, text=True, timeout=seconds + timeout + 60, check=False,
    ).stdout

    def number(pattern: str) -> float:
        found = re.search(pattern, out)
        return float(found[1]) if found else 0.0

    def ms(label: str) -> float:
        found = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not found:
            return float("nan")
        return round(float(found[1]) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[found[2]], 1)

    requests = int(number(r"(\d+) requests in"))
    errors = int(number(r"Non-2xx or 3xx responses: (\d+)"))
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    return {
        "endpoint": "/v1/search",
        "users": users,
        "seconds": seconds,
        "requests": requests,
        "rps": number(r"Requests/sec:\s+([\d.]+)"),
        "latency_ms": {"p50": ms("50"), "p95": ms("90"), "p99": ms("99")},  # wrk prints 50/75/90/99: p95 column is p90
        "errors": errors,
    }


def run_replicas(args: argparse.Namespace) -> dict[str, Any]:
    """One replica against two behind nginx (same run, alternating), then a replica killed."""
    from deploy.local import topology

    rounds: list[dict[str, Any]] = []
    with topology(2, model="none") as top:
        one = top.proxy_for(top.replicas[:1], "nginx-one")
        groups = {s.name: s.proc.pid for s in [top.chroma, *top.replicas, top.proxy, one]}
        wrk = shutil.which("wrk")
        for label, proxy in (("one", one), ("two", top.proxy), ("one", one), ("two", top.proxy)):
            print(f"  {args.users} users, no think time, /v1/search via {label} replica(s), {args.replica_seconds:.0f} s "
                  f"({'wrk' if wrk else 'httpx'}) …", flush=True)
            before = _cpu_seconds(groups)
            if wrk:
                phase = _wrk_phase(wrk, proxy.url, args.users, args.replica_seconds, args.timeout, top.root)
            else:
                phase = asyncio.run(_phase(proxy.url, "search", args.users, args.replica_seconds, (0.0, 0.0), args.timeout))
            after = _cpu_seconds(groups)
            phase["replicas"] = label
            phase["client"] = "wrk" if wrk else "httpx"
            phase["cpu_s"] = {k: round(after[k] - before[k], 1) for k in after if after[k] - before[k] >= 0.05}
            rounds.append(phase)

        seen = Seen()
        victim = top.replicas[1]
        killed: dict[str, Any] = {}

        async def kill_half_way() -> None:
            await asyncio.sleep(args.seconds / 2)
            killed["in_flight"] = seen.in_flight
            killed["at_s"] = round(args.seconds / 2, 1)
            victim.kill()

        print(f"  {args.users} users with think time via two replicas for {args.seconds:.0f} s; "
              f"{victim.name} killed half-way …", flush=True)
        kill = asyncio.run(_phase(top.proxy.url, "search", args.users, args.seconds,
                                  (args.think_min, args.think_max), args.timeout, seen, kill_half_way))
        victim_address = victim.url.removeprefix("http://")
        survivor_address = top.replicas[0].url.removeprefix("http://")

    def errors_of(address: str | None) -> int:
        return sum(n for (up, status), n in seen.outcomes.items()
                   if status != "200" and (up == address if address else up not in (victim_address, survivor_address)))

    rps = {label: round(common.median([r["rps"] for r in rounds if r["replicas"] == label]), 1) for label in ("one", "two")}
    ratio = rps["two"] / rps["one"] if rps["one"] else float("nan")
    survivor_errors = errors_of(survivor_address) + errors_of(None)
    victim_errors = errors_of(victim_address)
    met = ratio >= TARGET_REPLICA_RATIO and survivor_errors == 0 and victim_errors <= killed.get("in_flight", 0)
    return {
        "users": args.users,
        "rounds": rounds,
        "rps_one": rps["one"],
        "rps_two": rps["two"],
        "two_over_one": round(ratio, 2),
        "cores": os.cpu_count(),
        "kill": {
            **kill,
            "killed_at_s": killed.get("at_s"),
            "in_flight_when_killed": killed.get("in_flight"),
            "errors_survivor": survivor_errors,
            "errors_killed": victim_errors,
            "outcomes": {f"{'killed' if up == victim_address else 'survivor' if up == survivor_address else up} {st}": n
                         for (up, st), n in sorted(seen.outcomes.items())},
        },
        "target": "target met" if met else "target missed",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0, help="Length of each endpoint's run.")
    parser.add_argument("--think-min", type=float, default=0.5, help="Least think time between a user's requests (s).")
    parser.add_argument("--think-max", type=float, default=1.5, help="Most think time between a user's requests (s).")
    parser.add_argument("--saturate", type=float, default=0.0, help="Also run S seconds per endpoint with no think time.")
    parser.add_argument("--endpoints", default="search,chat", help="Comma-separated: search, chat.")
    parser.add_argument("--timeout", type=float, default=30.0, help="Client timeout per request (s).")
    parser.add_argument("--index", type=Path, default=None, help="Use this index instead of building one.")
    parser.add_argument("--local", action="store_true", help="Also run the local-model queue wave.")
    parser.add_argument("--local-only", action="store_true", help="Only the local-model queue wave.")
    parser.add_argument("--local-chats", type=int, default=8)
    parser.add_argument("--max-queue", type=int, default=4)
    parser.add_argument("--local-timeout", type=float, default=600.0)
    parser.add_argument("--cold", action="store_true", help="Also run the cold-start burst on a fresh server.")
    parser.add_argument("--cold-only", action="store_true", help="Only the cold-start burst.")
    parser.add_argument("--warm-bursts", type=int, default=3, help="Warm bursts to compare the cold one with.")
    parser.add_argument("--replicas", action="store_true", help="Also run one replica against two behind nginx.")
    parser.add_argument("--replicas-only", action="store_true", help="Only the replicas run.")
    parser.add_argument("--replica-seconds", type=float, default=30.0, help="Length of each one/two-replica round.")
    args = parser.parse_args()
    args.endpoints = [e.strip() for e in args.endpoints.split(",") if e.strip()]
    if not 1 <= args.users <= 1000 or not 0 < args.seconds <= 600 or args.think_min > args.think_max:
        parser.error("--users 1..1000, --seconds up to 600, --think-min ≤ --think-max")
    if set(args.endpoints) - {"search", "chat"}:
        parser.error("--endpoints takes search and/or chat")

    common.setup()
    result: dict[str, Any] = {"benchmark": "load", "loopback": common.LOOPBACK}
    if args.replicas or args.replicas_only:
        replicas = run_replicas(args)
        result["replicas"] = replicas
        common.print_table(
            f"/v1/search, {replicas['users']} users, no think time, through nginx (req/s; CPU s per process)",
            ["replicas", "client", "s", "requests", "req/s", "p50", "p95 (wrk: p90)", "errors", "CPU s"],
            [
                [r["replicas"], r["client"], r["seconds"], r["requests"], r["rps"], r["latency_ms"]["p50"], r["latency_ms"]["p95"],
                 r["errors"], ", ".join(f"{k} {v}" for k, v in r["cpu_s"].items())]
                for r in replicas["rounds"]
            ],
        )
        kill = replicas["kill"]
        print(
            f"\ntwo / one replicas = {replicas['rps_two']} / {replicas['rps_one']} req/s = {replicas['two_over_one']} "
            f"(target ≥ {TARGET_REPLICA_RATIO:g}, {replicas['cores']} cores)\n"
            f"replica killed at {kill['killed_at_s']} s with {kill['in_flight_when_killed']} requests in flight: "
            f"errors on the killed one {kill['errors_killed']}, on the survivor {kill['errors_survivor']}; "
            f"outcomes {kill['outcomes']}: {replicas['target']}"
        )
        if args.replicas_only:
            common.emit_json(result)
            return
    with common.index_dir_for(args.index) as (index_dir, how):
        print(f"index: {how}")
        if args.cold or args.cold_only:
            cold = run_cold(args, index_dir)
            result["cold"] = cold
            common.print_table(
                f"Cold start: {cold['users']} searches at once on a just-ready server, then "
                f"{cold['warm_bursts']} warm bursts (latency in ms)",
                ["burst", "requests", "p50", "p95", "max", "errors"],
                [
                    [name, cold[f"{name}_ms"]["n"], cold[f"{name}_ms"]["p50"], cold[f"{name}_ms"]["p95"],
                     cold[f"{name}_ms"]["max"], sum(cold[f"{name}_errors"].values()) or 0]
                    for name in ("cold", "warm")
                ],
            )
            print(
                f"\nready in {cold['ready_s']} s; cold p95 / warm p95 = {cold['cold_over_warm_p95']} "
                f"(target ≤ {TARGET_COLD_RATIO:g}, 0 errors): {cold['target']}"
            )
        if not args.local_only and not args.cold_only:
            phases = run_extractive(args, index_dir)
            result["extractive"] = phases
            common.print_table(
                "Extractive backend under load (latency in ms, successful requests)",
                ["endpoint", "users", "think s", "s", "requests", "req/s", "p50", "p95", "p99", "mean", "max", "errors"],
                [
                    [
                        p["endpoint"],
                        p["users"],
                        "{:g}–{:g}".format(*p["think_s"]),
                        p["seconds"],
                        p["requests"],
                        p["rps"],
                        p["latency_ms"]["p50"],
                        p["latency_ms"]["p95"],
                        p["latency_ms"]["p99"],
                        p["latency_ms"]["mean"],
                        p["latency_ms"]["max"],
                        p["errors"] if not p["error_kinds"] else f"{p['errors']} {p['error_kinds']}",
                    ]
                    for p in phases
                ],
            )
            search = next((p for p in phases if p["endpoint"] == "/v1/search" and p["think_s"][1] > 0), None)
            if search is not None:
                errors = sum(p["errors"] for p in phases)
                p95 = search["latency_ms"]["p95"]
                result["target"] = (
                    "target met" if errors == 0 and p95 <= TARGET_SEARCH_P95_MS else "target missed"
                )
                print(
                    f"\n/v1/search p95 {p95:.1f} ms at {search['users']} users (target ≤ {TARGET_SEARCH_P95_MS:.0f} ms), "
                    f"errors in all runs: {errors}: {result['target']}"
                )
        if args.local or args.local_only:
            local = run_local(args, index_dir)
            result["local"] = local
            common.print_table(
                f"Local model: {local['chats']} chats at once, ASSISTANT_MAX_QUEUE={local['max_queue']}",
                ["chat", "status", "s", "backend", "grounded", "notice", "Retry-After"],
                [
                    [r["chat"], r["status"], r.get("seconds"), r.get("backend", ""), r.get("grounded", ""),
                     r.get("notice", ""), r.get("retry_after") or ""]
                    for r in local["rows"]
                ],
            )
            print(
                f"\nserved {local['served']} ({local['served_by_model']} by the model) of {local['chats']}, "
                f"refused {local['refused_503']} with 503 (Retry-After on {local['refused_with_retry_after']}, "
                f"slowest refusal {local['refused_max_s']} s), hung or failed {local['hung_or_failed']}; "
                f"wave took {local['wall_s']} s"
            )
    common.emit_json(result)


if __name__ == "__main__":
    main()
