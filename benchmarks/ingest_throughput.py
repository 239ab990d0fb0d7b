"""Ingest throughput: a full ingest of corpus/ into a fresh index, then a no-op re-ingest.

Each ingest runs in its own child process (this script with `--child`), so the peak
resident memory reported is the ingest process's own: read with
`getrusage(RUSAGE_CHILDREN).ru_maxrss` after the first child is reaped (and, for every
child, its own `RUSAGE_SELF` at the end). The child's figure includes the interpreter,
numpy, Chroma and the embedding model, i.e. what `assistant ingest` needs.

Figures: full ingest seconds and chunks/s (the ingest call itself, timed in the child),
the child's wall time including imports, the re-ingest with nothing changed (seconds),
peak RSS (MB) and the index size on disk. `--repeat-corpus N` copies every document N
times (new id, one changed line) for a bigger throughput figure.

Targets: none set for throughput; a re-ingest with nothing changed should embed nothing
and take a small fraction of the full ingest.

    .venv/bin/python benchmarks/ingest_throughput.py [--repeat-corpus N]

Prints a table, then one JSON line: {"benchmark": "ingest_throughput", ...}.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common

CHILD_TIMEOUT_S = 900


def _maxrss_mb(who: int) -> float:
    # Linux reports ru_maxrss in KiB.
    return round(resource.getrusage(who).ru_maxrss / 1024, 1)


def child(corpus_dir: Path, index_dir: Path) -> None:
    """Run one ingest; print its report, its own timing and peak RSS as JSON."""
    common.setup()
    from assistant.pipeline.embedding import USEEmbedder
    from assistant.pipeline.index import ingest, store_factory_for
    from assistant.service import chunker_config

    rss_before = _maxrss_mb(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    report = ingest(
        corpus_dir,
        index_dir,
        USEEmbedder(),
        store_factory_for(index_dir, None, 0),
        chunker_config(common.make_settings()),
    )
    seconds = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "report": report.as_dict(),
                "seconds": round(seconds, 3),
                "maxrss_before_ingest_mb": rss_before,
                "maxrss_mb": _maxrss_mb(resource.RUSAGE_SELF),
            }
        )
    )


def run_child(corpus_dir: Path, index_dir: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, "--child", str(corpus_dir), str(index_dir)],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
        check=False,
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"ingest child failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    data: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    data["wall_s"] = round(wall, 2)
    return data


def repeated_corpus(src: Path, dest: Path, copies: int) -> int:
    """Write each document of `src` `copies` times into `dest`: new id, one changed line."""
    from assistant.pipeline.corpus import dump_document, load_corpus

    docs = load_corpus(src)
    for doc in docs:
        for i in range(copies):
            copy = (
                doc
                if i == 0
                else dataclasses.replace(
                    doc, doc_id=f"{doc.doc_id}-copy{i}", text=f"{doc.text}\n(benchmark copy {i})\n"
                )
            )
            (dest / f"{copy.doc_id}.md").write_text(dump_document(copy), "utf-8")
    return len(docs) * copies


def _dir_mb(path: Path) -> float:
    return round(sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20, 1)


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(Path(sys.argv[2]), Path(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repeat-corpus",
        type=int,
        default=1,
        metavar="N",
        help="Copy every document N times (default 1: the corpus as is).",
    )
    parser.add_argument("--corpus", type=Path, default=common.CORPUS)
    args = parser.parse_args()
    copies = max(1, min(args.repeat_corpus, 200))
    common.setup()

    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        corpus_dir = args.corpus
        if copies > 1:
            corpus_dir = Path(tmp) / "corpus"
            corpus_dir.mkdir()
            repeated_corpus(args.corpus, corpus_dir, copies)
        index_dir = Path(tmp) / "index"

        full = run_child(corpus_dir, index_dir)
        full_rss_children = _maxrss_mb(resource.RUSAGE_CHILDREN)  # only the first child so far
        index_mb = _dir_mb(index_dir)
        again = run_child(corpus_dir, index_dir)

    rep, rep2 = full["report"], again["report"]
    chunks_per_s = rep["chunks"] / full["seconds"] if full["seconds"] else float("nan")
    result: dict[str, Any] = {
        "benchmark": "ingest_throughput",
        "repeat_corpus": copies,
        "documents": rep["documents"],
        "chunks": rep["chunks"],
        "full_ingest_s": full["seconds"],
        "full_ingest_chunks_per_s": round(chunks_per_s, 1),
        "full_child_wall_s": full["wall_s"],
        "full_peak_rss_mb": full_rss_children,
        "full_peak_rss_self_mb": full["maxrss_mb"],
        "rss_before_ingest_mb": full["maxrss_before_ingest_mb"],
        "reingest_s": again["seconds"],
        "reingest_embedded": rep2["added"],
        "reingest_child_wall_s": again["wall_s"],
        "reingest_peak_rss_mb": again["maxrss_mb"],
        "index_mb": index_mb,
    }
    common.print_table(
        f"Ingest of {rep['documents']} documents, {rep['chunks']} chunks",
        ["", "ingest s", "chunks/s", "embedded", "child wall s", "peak RSS MB"],
        [
            [
                "full (fresh index)",
                full["seconds"],
                round(chunks_per_s, 1),
                rep["added"],
                full["wall_s"],
                full_rss_children,
            ],
            [
                "re-ingest, nothing changed",
                again["seconds"],
                "-",
                rep2["added"],
                again["wall_s"],
                again["maxrss_mb"],
            ],
        ],
    )
    print(
        f"\nchild RSS before the ingest call (imports only): {full['maxrss_before_ingest_mb']} MB; "
        f"index on disk: {index_mb} MB"
    )
    ratio = again["seconds"] / full["seconds"] if full["seconds"] else float("nan")
    result["reingest_fraction"] = round(ratio, 3)
    print(f"re-ingest embedded {rep2['added']} chunks, took {ratio:.0%} of the full ingest")
    common.emit_json(result)


if __name__ == "__main__":
    main()
