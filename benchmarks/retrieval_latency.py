"""Retrieval latency: hybrid search (dense + BM25, fused), in-process and over HTTP.

Builds a temporary index of corpus/ with the real embedder (or uses `--index DIR`),
then runs 30 fixed questions (10 English, 10 Simplified, 10 Traditional Chinese) about
the corpus. After one warm-up pass, each question runs `--repeat` times (default 5):

1. in-process, `Assistant.search(q, k)` → p50/p95/p99 ms, overall and per language,
   plus a breakdown of where the time goes (query embedding, Chroma query, Chroma get of
   the hits' embeddings, the rest = BM25, fusion and bookkeeping);
2. over HTTP, `POST /v1/search` against `assistant serve` (extractive backend) on a free
   loopback port, one keep-alive `httpx.Client` → p50/p95/p99 ms.

Target: hybrid retrieval p95 ≤ 50 ms in-process on the corpus.

    .venv/bin/python benchmarks/retrieval_latency.py [--repeat 5] [--k 5] [--index DIR] [--no-http]

Prints tables, then one JSON line: {"benchmark": "retrieval_latency", ...}.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common

TARGET_P95_MS = 50.0

QUESTIONS: list[tuple[str, str]] = [
    # English
    ("en", "Which technology transfer center serves ASEAN countries?"),
    ("en", "Who runs the China–Arab States Technology Transfer Center day to day?"),
    ("en", "When was the China–SCO Technology Transfer Center opened in Qingdao?"),
    ("en", "What are the main tasks of the China–Africa Innovation Cooperation Center?"),
    ("en", "What services does the Guangdong–CIS International Technological Cooperation Union provide?"),
    ("en", "How can Chengdu and Chongqing jointly build a Belt and Road technology transfer center?"),
    ("en", "What is the business model of the British Technology Group (BTG)?"),
    ("en", "How does the US National Technology Transfer Center (NTTC) operate?"),
    ("en", "What did the Korea Technology Finance Corporation (KOTEC) build for technology appraisal?"),
    ("en", "Which domestic international technology transfer institutions are listed in Table 3?"),
    # Simplified Chinese
    ("zh-Hans", "中国—东盟技术转移中心是哪一年成立的？"),
    ("zh-Hans", "中国—阿拉伯国家技术转移中心由哪个单位负责日常运营？"),
    ("zh-Hans", "中国-上海合作组织技术转移中心在青岛哪个区启用？"),
    ("zh-Hans", "中非创新合作中心的主要任务有哪些？"),
    ("zh-Hans", "广东—独联体国际科技合作联盟的发展经验包括什么？"),
    ("zh-Hans", "成渝地区双城经济圈如何协同共建一带一路国际技术转移中心？"),
    ("zh-Hans", "表1中国外政府部门牵头型技术转移机构的资金来源是什么？"),
    ("zh-Hans", "表2列出了哪些企业牵头型技术转移机构？"),
    ("zh-Hans", "表3中中非创新合作中心的经费来源及保障情况如何？"),
    ("zh-Hans", "一体化技术转移网络对一带一路沿线国家有什么作用？"),
    # Traditional Chinese
    ("zh-Hant", "第10屆中國—東盟技術轉移與創新合作大會在哪裡開幕？"),
    ("zh-Hant", "中國—阿拉伯國家技術轉移中心在表3中的成立時間是哪一年？"),
    ("zh-Hant", "上合組織技術轉移中心如何推動青島的國際科技合作？"),
    ("zh-Hant", "中非創新合作中心由哪個省的對外科技交流中心負責？"),
    ("zh-Hant", "廣東—獨聯體國際科技合作聯盟面向哪些國家開展合作？"),
    ("zh-Hant", "成渝協同共建國際技術轉移中心存在哪些問題？"),
    ("zh-Hant", "英國技術集團（BTG）專注於哪些領域？"),
    ("zh-Hant", "美國國家技術轉移中心（NTTC）提供什麼服務？"),
    ("zh-Hant", "韓國技術保證基金（KOTEC）的運維模式是什麼？"),
    ("zh-Hant", "金磚國家技術轉移中心的經費來源是什麼？"),
]


class _Timed:
    """Wraps an object; adds the time spent in each of its methods to `totals`."""

    def __init__(self, inner: Any, prefix: str, totals: dict[str, float]) -> None:
        self._inner = inner
        self._prefix = prefix
        self._totals = totals

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


def _breakdown(assistant: Any, questions: list[str], k: int) -> dict[str, float]:
    """Mean ms per search spent in the embedder and the store; the rest is BM25 + fusion."""
    retriever = assistant.engine.retriever
    totals: dict[str, float] = {}
    embedder, store = retriever.embedder, retriever.snapshot.store
    retriever.embedder = _Timed(embedder, "embed", totals)
    retriever.snapshot.store = _Timed(store, "chroma", totals)
    total = 0.0
    try:
        for q in questions:
            t0 = time.perf_counter()
            assistant.search(q, k)
            total += time.perf_counter() - t0
    finally:
        retriever.embedder, retriever.snapshot.store = embedder, store
    n = len(questions)
    out = {name: round(secs * 1000 / n, 2) for name, secs in sorted(totals.items())}
    total_ms = round(total * 1000 / n, 2)
    out["rest (BM25, fusion, hits)"] = round(total_ms - sum(out.values()), 2)
    out["total"] = total_ms
    return out


def run_in_process(index_dir: Path, k: int, repeat: int, deadline: float) -> dict[str, Any]:
    from assistant.service import Assistant

    settings = common.make_settings(ASSISTANT_INDEX_DIR=index_dir)
    t0 = time.perf_counter()
    assistant = Assistant.from_settings(settings, start_model=False)
    load_s = time.perf_counter() - t0
    try:
        t0 = time.perf_counter()
        assistant.search(QUESTIONS[0][1], k)  # loads the embedding model and jieba
        first_s = time.perf_counter() - t0
        for _, q in QUESTIONS:  # warm-up pass
            assistant.search(q, k)
        per_lang: dict[str, list[float]] = defaultdict(list)
        all_s: list[float] = []
        for _ in range(repeat):
            for lang, q in QUESTIONS:
                if time.monotonic() > deadline:
                    break
                t0 = time.perf_counter()
                assistant.search(q, k)
                dt = time.perf_counter() - t0
                per_lang[lang].append(dt)
                all_s.append(dt)
        breakdown = _breakdown(assistant, [q for _, q in QUESTIONS], k)
        return {
            "assistant_load_s": round(load_s, 2),
            "first_query_ms": round(first_s * 1000, 1),
            "all": common.percentiles(all_s),
            "by_language": {lang: common.percentiles(v) for lang, v in per_lang.items()},
            "breakdown_ms": breakdown,
            "chunks": len(assistant.engine.retriever.snapshot.chunks),
        }
    finally:
        assistant.close()


def run_http(index_dir: Path, k: int, repeat: int, deadline: float) -> dict[str, Any]:
    import httpx

    t0 = time.perf_counter()
    with (
        common.serve({"ASSISTANT_INDEX_DIR": str(index_dir), "ASSISTANT_LLM": "extractive"}) as base,
        httpx.Client(base_url=base, timeout=30.0, trust_env=False) as client,
    ):
        start_s = time.perf_counter() - t0

        def post(q: str) -> None:
            r = client.post("/v1/search", json={"query": q, "k": k})
            r.raise_for_status()

        for _, q in QUESTIONS:  # warm-up pass (the first one loads the embedder)
            post(q)
        times: list[float] = []
        for _ in range(repeat):
            for _, q in QUESTIONS:
                if time.monotonic() > deadline:
                    break
                t0 = time.perf_counter()
                post(q)
                times.append(time.perf_counter() - t0)
    return {"server_start_s": round(start_s, 1), "all": common.percentiles(times)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, default=None, help="Use this index instead of building one.")
    parser.add_argument("--repeat", type=int, default=5, help="Runs of each question (default 5).")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--no-http", action="store_true", help="Skip the HTTP part.")
    parser.add_argument("--max-seconds", type=float, default=120.0, help="Time cap of each timed loop.")
    args = parser.parse_args()
    repeat = max(1, min(args.repeat, 100))
    common.setup()

    result: dict[str, Any] = {
        "benchmark": "retrieval_latency",
        "questions": len(QUESTIONS),
        "repeat": repeat,
        "k": args.k,
        "target_p95_ms": TARGET_P95_MS,
    }
    with common.index_dir_for(args.index) as (index_dir, how):
        print(f"index: {how}")
        inproc = run_in_process(index_dir, args.k, repeat, time.monotonic() + args.max_seconds)
        result["in_process"] = inproc
        http = None
        if not args.no_http:
            http = run_http(index_dir, args.k, repeat, time.monotonic() + args.max_seconds)
            result["http"] = http

    print(
        f"chunks: {inproc['chunks']}   assistant load: {inproc['assistant_load_s']} s   "
        f"first (cold) query: {inproc['first_query_ms']} ms"
    )
    rows = [["in-process, all", *(inproc["all"][c] for c in ("n", "p50", "p95", "p99", "mean", "max"))]]
    for lang, p in inproc["by_language"].items():
        rows.append([f"  {lang}", *(p[c] for c in ("n", "p50", "p95", "p99", "mean", "max"))])
    if http:
        rows.append(
            ["HTTP POST /v1/search", *(http["all"][c] for c in ("n", "p50", "p95", "p99", "mean", "max"))]
        )
    common.print_table("Search latency (ms)", ["", "n", "p50", "p95", "p99", "mean", "max"], rows)
    common.print_table(
        "Where an in-process search spends its time (mean ms per search)",
        ["stage", "ms"],
        list(inproc["breakdown_ms"].items()),
    )
    p95 = inproc["all"]["p95"]
    result["target"] = common.verdict(p95, TARGET_P95_MS)
    print(f"\nin-process p95 {p95:.1f} ms vs target ≤ {TARGET_P95_MS:.0f} ms: {result['target']}")
    if http:
        overhead = http["all"]["p50"] - inproc["all"]["p50"]
        result["http_overhead_p50_ms"] = round(overhead, 2)
        print(f"HTTP adds {overhead:.1f} ms at p50 (server started in {http['server_start_s']} s)")
    common.emit_json(result)


if __name__ == "__main__":
    main()
