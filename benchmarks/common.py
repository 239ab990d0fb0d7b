"""Shared helpers for the benchmark scripts (not a benchmark itself).

- `setup()`: apply the offline guards once, before any library is used.
- `make_settings(...)`: `Settings` that ignore `.env` and the environment's surprises.
- `percentiles(seconds)`: p50/p95/p99 (and mean, min, max) in milliseconds.
- `temp_index(...)`: ingest a corpus into a temporary index with the real embedder.
- `free_port()`, `serve(...)`: run `assistant serve` on a free loopback port, wait for
  `/healthz` (and optionally `/readyz`), stop it with SIGTERM, then SIGKILL.
- `print_table(...)`, `emit_json(...)`: the human-readable table and the final JSON line.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
if str(PROJECT_ROOT) not in sys.path:  # run as `python benchmarks/NAME.py` from anywhere
    sys.path.insert(0, str(PROJECT_ROOT))

from assistant.settings import Settings  # noqa: E402
from deploy.local import LOOPBACK, free_port  # noqa: E402 - free_port: for the scripts

CORPUS = PROJECT_ROOT / "corpus"


def make_settings(**overrides: Any) -> Settings:
    """Settings for a benchmark: no `.env`, embedded Chroma, extractive unless overridden."""
    values: dict[str, Any] = {
        "ASSISTANT_CORPUS_DIR": CORPUS,
        "ASSISTANT_LLM": "extractive",
        "CHROMA_HOST": "",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def setup() -> Settings:
    """Apply the offline guards (must come before chromadb, tiktoken, gradio are used)."""
    from assistant.offline import apply_offline_env

    settings = make_settings()
    apply_offline_env(settings.cache_dir)
    return settings


# ----------------------------------------------------------------------------- figures


def percentiles(seconds: Sequence[float]) -> dict[str, float]:
    """n, p50/p95/p99, mean, min and max of durations given in seconds, in ms.

    Percentiles interpolate linearly between the closest ranks (numpy's default).
    """
    if not seconds:
        return {
            "n": 0,
            "p50": math.nan,
            "p95": math.nan,
            "p99": math.nan,
            "mean": math.nan,
            "min": math.nan,
            "max": math.nan,
        }
    ms = sorted(s * 1000.0 for s in seconds)

    def pct(p: float) -> float:
        pos = (len(ms) - 1) * p / 100.0
        lo, hi = math.floor(pos), math.ceil(pos)
        return ms[lo] + (ms[hi] - ms[lo]) * (pos - lo)

    return {
        "n": len(ms),
        "p50": round(pct(50), 2),
        "p95": round(pct(95), 2),
        "p99": round(pct(99), 2),
        "mean": round(sum(ms) / len(ms), 2),
        "min": round(ms[0], 2),
        "max": round(ms[-1], 2),
    }


def median(values: Sequence[float]) -> float:
    if not values:
        return math.nan
    s = sorted(values)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2


def verdict(value: float, target: float) -> str:
    if math.isnan(value):
        return "no figure"
    return "target met" if value <= target else "target missed"


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[str(h) for h in header]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    print(f"\n{title}")
    for n, row in enumerate(cells):
        print(
            "  "
            + "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if n == 0:
            print("  " + "  ".join("-" * w for w in widths))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.1f}"
    return str(value)


def emit_json(data: dict[str, Any]) -> None:
    """The final line of every benchmark: one JSON object (NaN written as null)."""

    def clean(v: Any) -> Any:
        if isinstance(v, float) and math.isnan(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [clean(x) for x in v]
        return v

    sys.stdout.flush()
    print(json.dumps(clean(data), ensure_ascii=False), flush=True)


# ----------------------------------------------------------------------------- index


@contextlib.contextmanager
def temp_index(corpus_dir: Path = CORPUS, settings: Settings | None = None) -> Iterator[tuple[Path, Any]]:
    """Ingest `corpus_dir` into a fresh temporary index; yield (index_dir, IngestReport).

    The folder and everything in it is removed on exit.
    """
    from assistant.pipeline.embedding import USEEmbedder
    from assistant.pipeline.index import ingest, store_factory_for
    from assistant.service import chunker_config

    settings = settings or make_settings()
    with tempfile.TemporaryDirectory(prefix="bench-index-") as tmp:
        index_dir = Path(tmp) / "index"
        report = ingest(
            corpus_dir,
            index_dir,
            USEEmbedder(),
            store_factory_for(index_dir, None, 0),
            chunker_config(settings),
        )
        yield index_dir, report


@contextlib.contextmanager
def index_dir_for(index: Path | None) -> Iterator[tuple[Path, str]]:
    """`index` as given, or a temporary one built from corpus/; yield (dir, how it came)."""
    if index is not None:
        yield index, f"given ({index})"
        return
    started = time.perf_counter()
    with temp_index() as (index_dir, report):
        yield index_dir, f"temporary, {report.chunks} chunks built in {time.perf_counter() - started:.1f} s"


# ----------------------------------------------------------------------------- server


@contextlib.contextmanager
def serve(
    env: dict[str, str],
    *,
    health_timeout: float = 120.0,
    ready_timeout: float | None = None,
) -> Iterator[str]:
    """Run `assistant serve` on a free loopback port; yield its base URL.

    `env` is added to the current environment (ASSISTANT_INDEX_DIR, ASSISTANT_LLM, …).
    Waits for /healthz, and with `ready_timeout` also for /readyz to answer 200. The
    process is started and stopped by `deploy.local` (its own process group; SIGTERM,
    SIGKILL after 15 s); its output goes to a temporary log whose tail is shown when it
    fails to start.
    """
    from deploy.local import start, wait_until

    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        server = start(
            "assistant serve",
            [sys.executable, "-m", "assistant.cli.main", "serve", "--host", LOOPBACK, "--port", str(port)],
            f"http://{LOOPBACK}:{port}",
            Path(tmp) / "serve.log",
            {"CHROMA_HOST": "", **env},
        )
        try:
            wait_until(server, "/healthz", health_timeout)
            if ready_timeout is not None:
                wait_until(server, "/readyz", ready_timeout)
            yield server.url
        finally:
            server.stop()
