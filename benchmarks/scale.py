"""Scale: Chroma HNSW and the hybrid retriever at 100,000 chunks (`--n`).

THE CORPUS IS SYNTHETIC. Embedding 100k texts with USE would take about an hour on 2
cores, so texts and vectors are made like this:

- a pool of `--pool` (default 3,000) distinct sentences is taken from the real corpus
  (`corpus/`, all of its usable sentences up to half the pool) and from the RGB-zh
  passages (/work/shared/benchmarks/rgb-zh/zh_refine.json, read at run time, never
  copied; the rest of the pool), and each pool sentence is embedded with the real USE
  model (Simplified script, as the pipeline embeds);
- each synthetic chunk is 2–4 pool sentences drawn at random (seeded) and joined; its
  vector is the normalized mean of those sentences' USE vectors, plus Gaussian noise of
  relative size `--noise` (default 0.1, so cosine ≈ 0.995 to the clean mean), normalized
  again; its BM25 tokens are the concatenated cached jieba tokens of its sentences
  (`tokenize()` of each pool sentence), unless `--jieba-all` tokenizes every text; the
  jieba throughput is measured on a sample either way and extrapolated to `--n`.

So the vectors are real USE geometry recombined, not real chunk embeddings: recall and
latency should be representative, but this is not a relevance benchmark.

Steps and figures:
1. Insert: chunks are grouped 50 to a synthetic document and upserted with `ChromaStore`
   (the project's class: HNSW cosine, M=32, ef_construction=200, ef_search=200) in batches
   of `--batch` with the same metadata as `assistant.pipeline.index.chunk_metadata` (including the
   `tokens` string: the document title's tokens, then the chunk's). Insert seconds and chunks/s (first and last batch too). The docs
   files and `manifest.json` are written the way `ingest` writes them, so the result is a
   real index folder.
2. Dense: 200 real questions (the 30 of `retrieval_latency.py` plus RGB-zh questions),
   embedded with USE, `ChromaStore.query(vec, k=10)`: p50/p95 latency (cold first query
   apart) and recall@10 against exact cosine search (numpy over all vectors in memory).
3. Hybrid: `load_snapshot` on that folder (timed), `HybridRetriever(snapshot, embedder)`
   (timed: builds BM25), then the same 200 questions through `HybridRetriever.search(q,
   k=10)`, the app's own code (query embedding + Chroma dense + BM25 + RRF + exact
   similarity of the hits): p50/p95, and where the time goes.
4. Memory: peak RSS of this process (all of the above, including the 200 MB of vectors
   kept for the exact search) and RSS after each phase.

Targets (issue): hybrid retrieval p95 ≤ 150 ms at 100k chunks; HNSW recall@10 ≥ 0.95.
At 100k the whole run takes about 5–7 minutes on 2 cores (4 to 6 of them inserting); `--n 10000`
is a quick run (~30 s).

    .venv/bin/python benchmarks/scale.py [--n 100000] [--pool 3000] [--queries 200]
        [--batch 5000] [--noise 0.1] [--jieba-all] [--keep DIR]

Prints tables, then one JSON line: {"benchmark": "scale", ...}.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import os
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common

RGB = Path("/work/shared/benchmarks/rgb-zh/zh_refine.json")
TARGET_HYBRID_P95_MS = 150.0
TARGET_RECALL = 0.95
CHUNKS_PER_DOC = 50


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux


# ----------------------------------------------------------------------------- pool


def _sentences(text: str) -> list[str]:
    from assistant.text import split_sentences

    out = []
    for a, b in split_sentences(text):
        s = text[a:b].strip()
        if 8 <= len(s) <= 200:
            out.append(s)
    return out


def build_pool(size: int, rng: np.random.Generator, rgb: Path) -> tuple[list[str], dict[str, int]]:
    from assistant.pipeline.corpus import load_corpus

    corpus_sents = list(dict.fromkeys(s for d in load_corpus(common.CORPUS) for s in _sentences(d.text)))
    rng.shuffle(corpus_sents)
    corpus_sents = corpus_sents[: size // 2]
    seen = set(corpus_sents)
    rgb_sents: list[str] = []
    if rgb.is_file():
        with rgb.open(encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                for p in row["positive"] + row["negative"]:
                    rgb_sents.extend(s for s in _sentences(str(p)) if s not in seen)
        rgb_sents = list(dict.fromkeys(rgb_sents))
        rng.shuffle(rgb_sents)
    rgb_sents = rgb_sents[: size - len(corpus_sents)]
    return corpus_sents + rgb_sents, {"corpus": len(corpus_sents), "rgb_zh": len(rgb_sents)}


def questions(count: int, rgb: Path) -> list[str]:
    from retrieval_latency import QUESTIONS

    qs = [q for _, q in QUESTIONS]
    if rgb.is_file():
        with rgb.open(encoding="utf-8") as fh:
            for line in fh:
                if len(qs) >= count:
                    break
                qs.append(json.loads(line)["query"])
    return qs[:count]


# ----------------------------------------------------------------------------- synthetic


def synthesize(
    n: int,
    pool: list[str],
    pool_vecs: np.ndarray,
    pool_tokens: list[list[str]],
    pool_langs: list[str],
    noise: float,
    rng: np.random.Generator,
) -> tuple[list[str], np.ndarray, list[str], list[str]]:
    """Texts, unit vectors, token strings and languages of `n` synthetic chunks."""
    size, dim = pool_vecs.shape
    m = rng.integers(2, 5, size=n)  # 2, 3 or 4 sentences
    idx = rng.integers(0, size, size=(n, 4))
    vecs = np.empty((n, dim), dtype=np.float32)
    block = 10_000
    for a in range(0, n, block):
        b = min(n, a + block)
        take = (np.arange(4)[None, :] < m[a:b, None]).astype(np.float32)  # (rows, 4)
        mean = np.einsum("rj,rjd->rd", take, pool_vecs[idx[a:b]]) / m[a:b, None]
        mean /= np.linalg.norm(mean, axis=1, keepdims=True)
        g = rng.standard_normal((b - a, dim)).astype(np.float32) / np.sqrt(dim)
        v = mean + noise * g
        vecs[a:b] = v / np.linalg.norm(v, axis=1, keepdims=True)
    texts, tokens, langs = [], [], []
    for r in range(n):
        parts = idx[r, : m[r]]
        texts.append("".join(pool[i] for i in parts))
        tokens.append(" ".join(t for i in parts for t in pool_tokens[i]))
        langs.append(pool_langs[parts[0]])
    return texts, vecs, tokens, langs


def documents_for(texts: list[str]) -> list[tuple[str, str, list[tuple[int, int]]]]:
    """Group chunks 50 to a document: (doc_id, text, [(start, end) of each chunk])."""
    docs = []
    for d, a in enumerate(range(0, len(texts), CHUNKS_PER_DOC)):
        spans, parts, pos = [], [], 0
        for t in texts[a : a + CHUNKS_PER_DOC]:
            spans.append((pos, pos + len(t)))
            parts.append(t)
            pos += len(t) + 2
        docs.append((f"syn-{d:05d}", "\n\n".join(parts) + "\n", spans))
    return docs


# ----------------------------------------------------------------------------- phases


@contextlib.contextmanager
def workdir(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        if any(keep.iterdir()):
            sys.exit(f"--keep {keep}: the folder must be empty or new.")
        yield keep
        return
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        yield Path(tmp)


def build_index(
    index_dir: Path,
    texts: list[str],
    vecs: np.ndarray,
    tokens: list[str],
    langs: list[str],
    embedder: Any,
    batch: int,
) -> tuple[list[str], dict[str, Any]]:
    """Upsert everything with `ChromaStore`, then write docs/ and the manifest like `ingest`."""
    from assistant.pipeline.index import MANIFEST, Manifest, store_factory_for
    from assistant.pipeline.keyword import tokenize
    from assistant.service import chunker_config
    from assistant.types import Document

    docs = documents_for(texts)
    ids: list[str] = []
    metas: list[dict[str, Any]] = []
    entries: dict[str, dict[str, Any]] = {}
    docs_dir = index_dir / "docs"
    docs_dir.mkdir(parents=True)
    r = 0
    for doc_id, text, spans in docs:
        title = f"Synthetic document {doc_id}"
        # Like `chunk_metadata`: the title's tokens lead each chunk's keyword tokens.
        title_tokens = " ".join(tokenize(title))
        chunk_ids = []
        for start, end in spans:
            cid = f"{doc_id}#{r:012x}"
            chunk_ids.append(cid)
            ids.append(cid)
            metas.append(
                {
                    "doc_id": doc_id,
                    "start": start,
                    "end": end,
                    "language": langs[r],
                    "is_table": False,
                    "kind": "unknown",
                    "tokens": f"{title_tokens} {tokens[r]}",
                }
            )
            r += 1
        doc = Document(doc_id=doc_id, title=title, text=text)
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        (docs_dir / f"{digest}.json").write_text(json.dumps(asdict(doc), ensure_ascii=False), "utf-8")
        entries[doc_id] = {"hash": digest, "file": f"docs/{digest}.json", "chunks": chunk_ids}

    collection = f"chunks_scale_{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}"
    store = store_factory_for(index_dir, None, 0)(collection)
    batch_s: list[float] = []
    t_all = time.perf_counter()
    for a in range(0, len(ids), batch):
        b = min(len(ids), a + batch)
        t0 = time.perf_counter()
        store.upsert(ids[a:b], vecs[a:b], texts[a:b], metas[a:b])
        batch_s.append(time.perf_counter() - t0)
    insert_s = time.perf_counter() - t_all
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    manifest = Manifest(
        collection=collection,
        embedding_model=embedder.name,
        embedding_dim=embedder.dim,
        chunker=chunker_config(common.make_settings()).as_dict(),
        documents=entries,
        created_at=now,
        updated_at=now,
    )
    (index_dir / MANIFEST).write_text(json.dumps(asdict(manifest), ensure_ascii=False), "utf-8")
    size = min(batch, len(ids))
    return ids, {
        "documents": len(docs),
        "chunks": len(ids),
        "batch": batch,
        "insert_s": round(insert_s, 1),
        "chunks_per_s": round(len(ids) / insert_s, 1),
        "first_batch_chunks_per_s": round(size / batch_s[0], 1),
        "last_batch_chunks_per_s": round((len(ids) - (len(batch_s) - 1) * batch) / batch_s[-1], 1),
        "store_count": store.count(),
        "collection": collection,
    }


def run_dense(
    index_dir: Path,
    collection: str,
    ids: list[str],
    vecs: np.ndarray,
    qvecs: np.ndarray,
    k: int,
    deadline: float,
) -> dict[str, Any]:
    from assistant.pipeline.index import store_factory_for

    store = store_factory_for(index_dir, None, 0)(collection)
    row_of = {cid: i for i, cid in enumerate(ids)}
    t0 = time.perf_counter()
    store.query(qvecs[0], k)
    cold_ms = (time.perf_counter() - t0) * 1000
    times: list[float] = []
    found: list[list[str]] = []
    for q in qvecs:
        if time.monotonic() > deadline:
            break
        t0 = time.perf_counter()
        got = store.query(q, k)
        times.append(time.perf_counter() - t0)
        found.append([cid for cid, _ in got])
    # `ChromaStore.query` asks the collection for its count on every call; its share:
    t0 = time.perf_counter()
    for _ in range(20):
        store.count()
    count_ms = (time.perf_counter() - t0) * 1000 / 20
    t0 = time.perf_counter()
    qn = qvecs[: len(found)] / np.linalg.norm(qvecs[: len(found)], axis=1, keepdims=True)
    sims = qn @ vecs.T  # rows of `vecs` are unit vectors
    exact = np.argpartition(-sims, k, axis=1)[:, :k]
    exact_s = time.perf_counter() - t0
    recalls = [
        len({row_of[c] for c in f if c in row_of} & {int(i) for i in e}) / k
        for f, e in zip(found, exact, strict=True)
    ]
    return {
        "queries": len(times),
        "cold_first_query_ms": round(cold_ms, 1),
        "latency_ms": common.percentiles(times),
        f"recall@{k}": round(float(np.mean(recalls)), 4) if recalls else None,
        f"min_recall@{k}": round(float(np.min(recalls)), 4) if recalls else None,
        "count_ms": round(count_ms, 2),
        "exact_search_ms_per_query": round(exact_s * 1000 / max(1, len(found)), 2),
    }


def _timed_fn(fn: Any, key: str, totals: dict[str, float]) -> Any:
    def timed(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            totals[key] = totals.get(key, 0.0) + time.perf_counter() - t0

    return timed


class _Timed:
    """Wraps an object; adds the seconds spent in each of its methods to `totals`."""

    def __init__(self, inner: Any, prefix: str, totals: dict[str, float]) -> None:
        self._inner, self._prefix, self._totals = inner, prefix, totals

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr

        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return attr(*args, **kwargs)
            finally:
                key = f"{self._prefix}.{name}"
                self._totals[key] = self._totals.get(key, 0.0) + time.perf_counter() - t0

        return timed


def run_hybrid(index_dir: Path, embedder: Any, qs: list[str], k: int, deadline: float) -> dict[str, Any]:
    from assistant.pipeline.domain import load_synonyms
    from assistant.pipeline.index import load_snapshot, store_factory_for
    from assistant.pipeline.retrieve import HybridRetriever

    t0 = time.perf_counter()
    snapshot = load_snapshot(index_dir, store_factory_for(index_dir, None, 0), embedder)
    load_s = time.perf_counter() - t0
    rss_snapshot = rss_mb()
    t0 = time.perf_counter()
    retriever = HybridRetriever(snapshot, embedder, synonyms=load_synonyms(common.CORPUS))
    bm25_s = time.perf_counter() - t0
    rss_retriever = rss_mb()
    t0 = time.perf_counter()
    retriever.search(qs[0], k)
    cold_ms = (time.perf_counter() - t0) * 1000
    times: list[float] = []
    for q in qs:
        if time.monotonic() > deadline:
            break
        t0 = time.perf_counter()
        retriever.search(q, k)
        times.append(time.perf_counter() - t0)
    done = qs[: len(times)]

    # Where a search spends its time: the app's own pieces, timed by wrapping them in
    # place (the embedder, the store, the BM25 index, the query tokenizer and, where the
    # retriever has it, its keyword ranking step); the rest is fusion and bookkeeping.
    import assistant.pipeline.retrieve as retrieve_mod

    totals: dict[str, float] = {}
    store, keyword, tokens_fn = snapshot.store, retriever._keyword, retrieve_mod.query_tokens
    retriever.embedder = _Timed(embedder, "embed", totals)  # type: ignore[assignment]
    snapshot.store = _Timed(store, "chroma", totals)  # type: ignore[assignment]
    retriever._keyword = _Timed(keyword, "bm25", totals)  # type: ignore[assignment]
    retrieve_mod.query_tokens = _timed_fn(tokens_fn, "keyword.query_tokens", totals)  # type: ignore[assignment]
    if hasattr(retriever, "_ranked"):
        retriever._ranked = _timed_fn(retriever._ranked, "keyword._ranked (sort)", totals)  # type: ignore[method-assign]
    total = 0.0
    try:
        for q in done:
            t0 = time.perf_counter()
            retriever.search(q, k)
            total += time.perf_counter() - t0
    finally:
        retriever.embedder, snapshot.store, retriever._keyword = embedder, store, keyword
        retrieve_mod.query_tokens = tokens_fn
        retriever.__dict__.pop("_ranked", None)
    n = max(1, len(done))
    breakdown = {name: round(s * 1000 / n, 2) for name, s in sorted(totals.items())}
    breakdown["rest: fusion, masks, hits"] = round((total - sum(totals.values())) * 1000 / n, 2)
    breakdown["total (timed pass)"] = round(total * 1000 / n, 2)
    return {
        "load_snapshot_s": round(load_s, 1),
        "retriever_init_s (BM25 index)": round(bm25_s, 1),
        "rss_after_snapshot_mb": rss_snapshot,
        "rss_after_retriever_mb": rss_retriever,
        "cold_first_search_ms": round(cold_ms, 1),
        "latency_ms": common.percentiles(times),
        "breakdown_ms": breakdown,
    }


# ----------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="Synthetic chunks (default 100000).")
    parser.add_argument("--pool", type=int, default=3000, help="Distinct real sentences embedded.")
    parser.add_argument("--queries", type=int, default=200, help="Real questions (default 200).")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--batch", type=int, default=5000, help="Chunks per upsert call.")
    parser.add_argument("--noise", type=float, default=0.1, help="Relative noise added to each vector.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jieba-all", action="store_true", help="Tokenize every synthetic text with jieba.")
    parser.add_argument("--jieba-sample", type=int, default=2000, help="Texts timed for jieba throughput.")
    parser.add_argument("--max-seconds", type=float, default=180.0, help="Time cap of each query loop.")
    parser.add_argument("--keep", type=Path, default=None, help="Build the index in DIR (empty) and keep it.")
    parser.add_argument("--rgb", type=Path, default=RGB, help="zh_refine.json (sentences and questions).")
    args = parser.parse_args()
    n = max(100, min(args.n, 1_000_000))
    common.setup()
    from assistant.pipeline.embedding import USEEmbedder
    from assistant.pipeline.keyword import tokenize
    from assistant.text import detect_language, to_simplified

    started = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    result: dict[str, Any] = {
        "benchmark": "scale",
        "n": n,
        "k": args.k,
        "synthetic": "texts = 2-4 real sentences recombined; vector = normalized mean of their USE vectors + noise",
        "noise": args.noise,
        "target_hybrid_p95_ms": TARGET_HYBRID_P95_MS,
        "target_recall": TARGET_RECALL,
    }

    # 1. the pool of real sentences, their USE vectors and jieba tokens
    pool, composition = build_pool(args.pool, rng, args.rgb)
    embedder = USEEmbedder()
    t0 = time.perf_counter()
    pool_vecs = embedder.embed_documents([to_simplified(s) for s in pool])
    pool_vecs /= np.linalg.norm(pool_vecs, axis=1, keepdims=True)
    embed_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    pool_tokens = [tokenize(s) for s in pool]
    pool_tok_s = time.perf_counter() - t0
    pool_langs = [detect_language(s) for s in pool]
    qs = questions(args.queries, args.rgb)
    qvecs = np.vstack([embedder.embed_query(to_simplified(q)) for q in qs])
    result["pool"] = {
        "sentences": len(pool),
        **composition,
        "use_embed_s": round(embed_s, 1),
        "use_sentences_per_s": round(len(pool) / embed_s, 1),
        "jieba_s": round(pool_tok_s, 2),
    }
    print(
        f"pool: {len(pool)} sentences ({composition['corpus']} corpus, {composition['rgb_zh']} RGB-zh), "
        f"USE {embed_s:.1f} s; {len(qs)} questions"
    )

    # 2. synthetic chunks
    t0 = time.perf_counter()
    texts, vecs, tokens, langs = synthesize(n, pool, pool_vecs, pool_tokens, pool_langs, args.noise, rng)
    synth_s = time.perf_counter() - t0
    sample = texts[: min(n, max(1, args.jieba_sample))]
    t0 = time.perf_counter()
    for t in sample:
        tokenize(t)
    per_text = (time.perf_counter() - t0) / len(sample)
    jieba: dict[str, Any] = {
        "sample_texts": len(sample),
        "ms_per_text": round(per_text * 1000, 3),
        "extrapolated_s_for_n": round(per_text * n, 1),
        "mode": "every text tokenized" if args.jieba_all else "pool tokens recombined",
    }
    if args.jieba_all:
        t0 = time.perf_counter()
        tokens = [" ".join(tokenize(t)) for t in texts]
        jieba["all_s"] = round(time.perf_counter() - t0, 1)
    result["synthesize_s"] = round(synth_s, 1)
    result["jieba"] = jieba
    print(
        f"synthetic: {n} chunks in {synth_s:.1f} s (mean {np.mean([len(t) for t in texts]):.0f} chars); "
        f"jieba {per_text * 1000:.2f} ms a text → {per_text * n:.0f} s for all"
    )

    with workdir(args.keep) as root:
        index_dir = root / "index"
        ids, insert = build_index(index_dir, texts, vecs, tokens, langs, embedder, args.batch)
        insert["rss_mb"] = rss_mb()
        result["insert"] = insert
        print(f"insert: {insert['chunks']} chunks in {insert['insert_s']} s ({insert['chunks_per_s']} /s)")
        del texts, tokens, langs
        dense = run_dense(
            index_dir, insert["collection"], ids, vecs, qvecs, args.k, time.monotonic() + args.max_seconds
        )
        result["dense"] = dense
        del vecs
        hybrid = run_hybrid(index_dir, embedder, qs, args.k, time.monotonic() + args.max_seconds)
        result["hybrid"] = hybrid
        result["index_disk_mb"] = round(
            sum(p.stat().st_size for p in index_dir.rglob("*") if p.is_file()) / 2**20, 1
        )
    result["peak_rss_mb"] = peak_rss_mb()
    result["total_s"] = round(time.perf_counter() - started, 1)

    d, h = dense["latency_ms"], hybrid["latency_ms"]
    cols = ("n", "p50", "p95", "p99", "mean", "max")
    common.print_table(
        f"Latency at {n} chunks (ms, k={args.k})",
        ["", *cols],
        [
            ["Chroma HNSW query", *(d[c] for c in cols)],
            ["HybridRetriever.search", *(h[c] for c in cols)],
        ],
    )
    common.print_table(
        "Where a hybrid search spends its time (mean ms per search)",
        ["stage", "ms"],
        list(hybrid["breakdown_ms"].items()),
    )
    recall = dense[f"recall@{args.k}"]
    common.print_table(
        "Other figures",
        ["figure", "value"],
        [
            ["insert seconds / chunks per s", f"{insert['insert_s']} / {insert['chunks_per_s']}"],
            [
                "insert chunks/s, first / last batch",
                f"{insert['first_batch_chunks_per_s']} / {insert['last_batch_chunks_per_s']}",
            ],
            [f"HNSW recall@{args.k} (mean / min)", f"{recall} / {dense[f'min_recall@{args.k}']}"],
            [
                "cold first query: dense / hybrid ms",
                f"{dense['cold_first_query_ms']} / {hybrid['cold_first_search_ms']}",
            ],
            ["ChromaStore.count() ms (called by every query)", dense["count_ms"]],
            ["load_snapshot s", hybrid["load_snapshot_s"]],
            ["HybridRetriever init (BM25) s", hybrid["retriever_init_s (BM25 index)"]],
            ["jieba ms a text / extrapolated s", f"{jieba['ms_per_text']} / {jieba['extrapolated_s_for_n']}"],
            ["index on disk MB", result["index_disk_mb"]],
            [
                "RSS MB: after insert / snapshot / retriever",
                f"{insert['rss_mb']} / {hybrid['rss_after_snapshot_mb']} / {hybrid['rss_after_retriever_mb']}",
            ],
            ["peak RSS MB", result["peak_rss_mb"]],
            ["whole run s", result["total_s"]],
        ],
    )
    p95 = h["p95"]
    result["target_hybrid"] = common.verdict(p95, TARGET_HYBRID_P95_MS)
    result["target_recall_verdict"] = (
        "no figure" if recall is None else "target met" if recall >= TARGET_RECALL else "target missed"
    )
    print(
        f"\nhybrid p95 {p95:.1f} ms vs ≤ {TARGET_HYBRID_P95_MS:.0f} ms: {result['target_hybrid']}; "
        f"HNSW recall@{args.k} {recall} vs ≥ {TARGET_RECALL}: {result['target_recall_verdict']}"
    )
    common.emit_json(result)


if __name__ == "__main__":
    main()
