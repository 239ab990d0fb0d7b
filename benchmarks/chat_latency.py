"""Chat latency with the bundled local model: time to first token, time to the answer.

Two parts, run one after the other so they never compete for the CPU:

1. HTTP. `assistant serve` with ASSISTANT_LLM=local on a free loopback port, waited on
   until `/readyz` is 200 (up to 300 s). For each question: `POST /v1/search` (retrieval
   time over HTTP), then `POST /v1/chat` with `stream=true`: time to the first
   `event: token` (TTFT) and to `event: done` (total), whether the answer is grounded
   and how it starts. Each question is new to the model, so TTFT includes the model's
   prompt evaluation of the passages (the bulk of it on a CPU).
2. In-process, the app's own overhead. A separate `Assistant` (start_model=True) builds
   the exact prompt the app sends (`AnswerEngine.messages(question, hits, language)` for
   the hits of `Assistant.search`) and streams it straight from `assistant.chat_model`
   (the "raw" model stream); then `Assistant.chat_stream(question)` runs the whole chain.
   The prompt is evaluated once first (unmeasured), so both measured runs find it in
   llama.cpp's prompt cache and differ only by what the app adds: retrieval, prompt
   building, the hold-back of a possible NO_ANSWER sentinel. The raw run is done before
   and after the app run and averaged. The cold first evaluation is reported too.

Figures: per-question rows and medians; "app overhead to first token"
= median(chat_stream TTFT − raw model TTFT). Target: ≤ 100 ms.

    .venv/bin/python benchmarks/chat_latency.py [--questions N] [--index DIR]
        [--max-answer-tokens N] [--max-seconds 330]

The run stops starting new questions when its time budget (`--max-seconds`, default
330 s) is spent; the default 6 questions take about 3–5 minutes on 2 CPU cores.
Prints tables, then one JSON line: {"benchmark": "chat_latency", ...}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common

TARGET_OVERHEAD_MS = 100.0
READY_TIMEOUT_S = 300.0

# Two per language; the fourth has no answer in the corpus.
QUESTIONS: list[tuple[str, str]] = [
    ("en", "Which technology transfer center serves ASEAN countries?"),
    ("zh-Hans", "中国—阿拉伯国家技术转移中心由哪个单位负责日常运营？"),
    ("zh-Hant", "第10屆中國—東盟技術轉移與創新合作大會在哪裡開幕？"),
    ("en", "How many employees does the China–South Asia center have?"),
    ("zh-Hans", "中国-上海合作组织技术转移中心在青岛哪个区启用？"),
    ("zh-Hant", "中非創新合作中心的主要任務有哪些？"),
]


def _short(text: str, n: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


# ----------------------------------------------------------------------------- HTTP


def _stream_chat(client: Any, question: str) -> dict[str, Any]:
    """POST /v1/chat stream=true; TTFT, total and the final answer from the SSE stream."""
    t0 = time.perf_counter()
    ttft = None
    event = None
    done: dict[str, Any] | None = None
    error = None
    with client.stream("POST", "/v1/chat", json={"message": question, "stream": True}) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if line.startswith("event: "):
                event = line[7:].strip()
                if event == "token" and ttft is None:
                    ttft = time.perf_counter() - t0
            elif line.startswith("data: ") and event in ("done", "error"):
                payload = json.loads(line[6:])
                if event == "done":
                    done = payload
                else:
                    error = payload.get("detail")
                break
    total = time.perf_counter() - t0
    return {"ttft_s": ttft, "total_s": total, "done": done, "error": error}


def run_http(
    index_dir: Path, questions: list[tuple[str, str]], deadline: float, extra_env: dict[str, str]
) -> dict[str, Any]:
    import httpx

    env = {"ASSISTANT_INDEX_DIR": str(index_dir), "ASSISTANT_LLM": "local", **extra_env}
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    with (
        common.serve(env, ready_timeout=READY_TIMEOUT_S) as base,
        httpx.Client(base_url=base, timeout=httpx.Timeout(10.0, read=180.0), trust_env=False) as client,
    ):
        ready_s = time.perf_counter() - t0
        print(f"server ready (/readyz 200) after {ready_s:.1f} s", flush=True)
        client.post("/v1/search", json={"query": "warm-up", "k": 5}).raise_for_status()
        for lang, q in questions:
            if time.monotonic() > deadline:
                print("  time budget spent: skipping the remaining HTTP questions", flush=True)
                break
            t1 = time.perf_counter()
            client.post("/v1/search", json={"query": q, "k": 5}).raise_for_status()
            search_s = time.perf_counter() - t1
            chat = _stream_chat(client, q)
            done = chat["done"] or {}
            row = {
                "language": lang,
                "question": q,
                "search_ms": round(search_s * 1000, 1),
                "ttft_s": None if chat["ttft_s"] is None else round(chat["ttft_s"], 3),
                "total_s": round(chat["total_s"], 3),
                "grounded": done.get("grounded"),
                "backend": done.get("backend"),
                "answer": _short(done.get("answer") or chat["error"] or ""),
                "error": chat["error"],
            }
            rows.append(row)
            print(f"  [{lang}] ttft {row['ttft_s']} s, total {row['total_s']} s: {row['answer']}", flush=True)
    return {"ready_s": round(ready_s, 1), "rows": rows}


# ----------------------------------------------------------------------------- in-process


def _ttft(events: Any, is_token: Any) -> tuple[float | None, float, Any]:
    """Consume an iterator; (seconds to the first token, seconds to the end, last item)."""
    t0 = time.perf_counter()
    first = None
    last = None
    for item in events:
        if first is None and is_token(item):
            first = time.perf_counter() - t0
        last = item
    return first, time.perf_counter() - t0, last


def run_in_process(
    index_dir: Path, questions: list[tuple[str, str]], deadline: float, max_answer_tokens: int | None
) -> dict[str, Any]:
    from assistant.pipeline.answer import MIN_RELEVANCE, TokenEvent
    from assistant.pipeline.retrieve import Filters
    from assistant.service import Assistant
    from assistant.text import detect_language

    overrides: dict[str, Any] = {"ASSISTANT_INDEX_DIR": index_dir, "ASSISTANT_LLM": "local"}
    if max_answer_tokens:
        overrides["ASSISTANT_MAX_ANSWER_TOKENS"] = max_answer_tokens
    settings = common.make_settings(**overrides)
    t0 = time.perf_counter()
    assistant = Assistant.from_settings(settings, start_model=True)
    start_s = time.perf_counter() - t0
    rows: list[dict[str, Any]] = []
    try:
        model = assistant.chat_model
        if model is None or not model.ready()[0]:
            raise SystemExit(f"local model not available: {assistant.chat_error}")
        print(f"in-process model started in {start_s:.1f} s", flush=True)
        engine = assistant.engine
        max_tokens = settings.max_answer_tokens
        assistant.search("warm-up", engine.k)
        for lang, q in questions:
            if time.monotonic() > deadline:
                print("  time budget spent: skipping the remaining in-process questions", flush=True)
                break
            # The prompt exactly as AnswerEngine.stream builds it (no history: no rewrite).
            hits = assistant.search(q, engine.k, Filters())
            if max((h.dense_score or 0.0 for h in hits), default=0.0) < MIN_RELEVANCE:
                # The app answers "not covered" without asking the model: nothing to compare.
                app_ttft, app_total, _ = _ttft(assistant.chat_stream(q), lambda e: isinstance(e, TokenEvent))
                rows.append(
                    {
                        "language": lang,
                        "question": q,
                        "model_used": False,
                        "app_ttft_ms": round(app_ttft * 1000, 1) if app_ttft else None,
                        "app_total_s": round(app_total, 3),
                        "grounded": False,
                    }
                )
                print(f"  [{lang}] below MIN_RELEVANCE: answered without the model", flush=True)
                continue
            messages = engine.messages(q, hits, detect_language(q))

            def raw(n: int = max_tokens, messages: list[dict[str, str]] = messages) -> tuple[Any, ...]:
                return _ttft(model.stream(messages, max_tokens=n), lambda t: bool(t))

            cold_ttft, _, _ = raw(1)  # evaluates the prompt: the cold figure, and primes the cache
            raw1_ttft, raw1_total, _ = raw()
            app_ttft, app_total, last = _ttft(assistant.chat_stream(q), lambda e: isinstance(e, TokenEvent))
            raw2_ttft, raw2_total, _ = raw()
            raw_ttft = (
                (raw1_ttft + raw2_ttft) / 2 if raw1_ttft is not None and raw2_ttft is not None else None
            )
            overhead = None if app_ttft is None or raw_ttft is None else app_ttft - raw_ttft
            row = {
                "language": lang,
                "question": q,
                "model_used": True,
                "cold_raw_ttft_s": None if cold_ttft is None else round(cold_ttft, 3),
                "raw_ttft_ms": None if raw_ttft is None else round(raw_ttft * 1000, 1),
                "app_ttft_ms": None if app_ttft is None else round(app_ttft * 1000, 1),
                "overhead_ms": None if overhead is None else round(overhead * 1000, 1),
                "raw_total_s": round((raw1_total + raw2_total) / 2, 3),
                "app_total_s": round(app_total, 3),
                "grounded": getattr(getattr(last, "answer", None), "grounded", None),
            }
            rows.append(row)
            print(
                f"  [{lang}] cold {row['cold_raw_ttft_s']} s; warm raw {row['raw_ttft_ms']} ms, "
                f"app {row['app_ttft_ms']} ms → overhead {row['overhead_ms']} ms",
                flush=True,
            )
    finally:
        assistant.close()
    return {"model_start_s": round(start_s, 1), "max_answer_tokens": settings.max_answer_tokens, "rows": rows}


# ----------------------------------------------------------------------------- main


def _med(rows: list[dict[str, Any]], key: str) -> float:
    return round(common.median([r[key] for r in rows if r.get(key) is not None]), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--questions", type=int, default=len(QUESTIONS), help="Use the first N questions (1–6)."
    )
    parser.add_argument("--index", type=Path, default=None, help="Use this index instead of building one.")
    parser.add_argument(
        "--max-answer-tokens",
        type=int,
        default=None,
        help="ASSISTANT_MAX_ANSWER_TOKENS for both parts (default: the app's setting).",
    )
    parser.add_argument("--max-seconds", type=float, default=330.0, help="Time budget of the whole run.")
    parser.add_argument("--no-http", action="store_true", help="Only the in-process part.")
    parser.add_argument("--no-in-process", action="store_true", help="Only the HTTP part.")
    args = parser.parse_args()
    questions = QUESTIONS[: max(1, min(args.questions, len(QUESTIONS)))]
    started = time.monotonic()
    budget_end = started + args.max_seconds
    common.setup()

    extra_env = {}
    if args.max_answer_tokens:
        extra_env["ASSISTANT_MAX_ANSWER_TOKENS"] = str(args.max_answer_tokens)
    result: dict[str, Any] = {
        "benchmark": "chat_latency",
        "questions": len(questions),
        "target_overhead_ms": TARGET_OVERHEAD_MS,
    }
    http: dict[str, Any] | None = None
    inproc: dict[str, Any] | None = None
    with common.index_dir_for(args.index) as (index_dir, how):
        print(f"index: {how}", flush=True)
        if not args.no_http:
            # Leave the in-process part at least 45 % of the budget.
            http_end = budget_end if args.no_in_process else started + 0.55 * args.max_seconds
            http = run_http(index_dir, questions, http_end, extra_env)
        if not args.no_in_process:
            inproc = run_in_process(index_dir, questions, budget_end, args.max_answer_tokens)

    if http:
        rows = http["rows"]
        common.print_table(
            f"HTTP, streamed /v1/chat (server ready after {http['ready_s']} s)",
            ["lang", "search ms", "TTFT s", "total s", "grounded", "answer"],
            [
                [
                    r["language"],
                    r["search_ms"],
                    "-" if r["ttft_s"] is None else r["ttft_s"],
                    r["total_s"],
                    r["grounded"],
                    r["answer"],
                ]
                for r in rows
            ],
        )
        http_summary = {
            "ready_s": http["ready_s"],
            "median_search_ms": _med(rows, "search_ms"),
            "median_ttft_s": _med(rows, "ttft_s"),
            "median_total_s": _med(rows, "total_s"),
            "grounded": sum(1 for r in rows if r["grounded"]),
            "rows": rows,
        }
        print(
            f"  medians: search {http_summary['median_search_ms']:.1f} ms, TTFT {http_summary['median_ttft_s']:.2f} s, "
            f"total {http_summary['median_total_s']:.2f} s; grounded {http_summary['grounded']}/{len(rows)}"
        )
        if any(r["ttft_s"] is None for r in rows):
            print("  (TTFT '-': no token event before `done`, e.g. a NO_ANSWER refusal held back)")
        result["http"] = http_summary
    if inproc:
        rows = inproc["rows"]
        common.print_table(
            f"In-process: app vs raw model stream (model started in {inproc['model_start_s']} s, "
            f"max_answer_tokens {inproc['max_answer_tokens']})",
            [
                "lang",
                "cold raw TTFT s",
                "raw TTFT ms",
                "app TTFT ms",
                "overhead ms",
                "raw total s",
                "app total s",
            ],
            [
                [
                    r["language"],
                    *(
                        r.get(key, "-")
                        for key in (
                            "cold_raw_ttft_s",
                            "raw_ttft_ms",
                            "app_ttft_ms",
                            "overhead_ms",
                            "raw_total_s",
                            "app_total_s",
                        )
                    ),
                ]
                for r in rows
            ],
        )
        if not all(r["model_used"] for r in rows):
            print("  ('-': the app answered without the model, so there is nothing to compare)")
        overhead = _med(rows, "overhead_ms")
        summary = {
            "model_start_s": inproc["model_start_s"],
            "median_cold_raw_ttft_s": _med(rows, "cold_raw_ttft_s"),
            "median_raw_ttft_ms": _med(rows, "raw_ttft_ms"),
            "median_app_ttft_ms": _med(rows, "app_ttft_ms"),
            "app_overhead_to_first_token_ms": overhead,
            "median_app_total_minus_raw_total_s": round(
                common.median([r["app_total_s"] - r["raw_total_s"] for r in rows if r["model_used"]]), 3
            ),
            "rows": rows,
        }
        result["in_process"] = summary
        result["app_overhead_to_first_token_ms"] = overhead
        result["target"] = common.verdict(overhead, TARGET_OVERHEAD_MS)
        print(
            f"\napp overhead to first token (median): {overhead:.1f} ms vs target ≤ "
            f"{TARGET_OVERHEAD_MS:.0f} ms: {result['target']}"
        )
        print(
            f"app total − raw total (median, citation checking etc.): "
            f"{summary['median_app_total_minus_raw_total_s']:.3f} s"
        )
    result["elapsed_s"] = round(time.monotonic() - started, 1)
    print(f"run took {result['elapsed_s']} s")
    common.emit_json(result)


if __name__ == "__main__":
    main()
