"""Chat latency with the bundled local model, as ratios against the raw model in the same run.

One process, one local model server, two phases so they never compete for the CPU:

1. The app. For each question, `Assistant.chat_stream(question)` runs the whole chain:
   seconds to the `sources` event (retrieval done), to the first answer token (the first
   draft text of a claim), and to the checked answer.
2. The reference, U. For the same questions, the raw model on a plain RAG prompt: a
   one-line instruction, the top-5 retrieved passages in full and the question, 80 output
   tokens, streamed straight from the model (no queue, no checks). Its median complete
   time is U.

The app runs first: in a steady service its fixed instructions stay in llama.cpp's prompt
cache across questions, which is what the evidence-first prompt is designed for; each U
prompt is new to the model, as each question's passages are.

Targets (issue "[answers]"): complete answer median ≤ 0.6 U; first answer token p95 ≤ 0.5 U;
`sources` event p95 ≤ 0.5 s.

    .venv/bin/python benchmarks/chat_latency.py [--questions N] [--index DIR]
        [--local-json prompt|grammar]

Prints a table, the ratios with verdicts, then one JSON line {"benchmark": "chat_latency", ...}.
The default 8 questions take about 3–4 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common

TARGET_COMPLETE = 0.6  # × U, median
TARGET_FIRST_TOKEN = 0.5  # × U, p95
TARGET_SOURCES_S = 0.5  # seconds, p95
RAW_OUTPUT_TOKENS = 80

# Written for this benchmark (not dev-set rows): answerable and not, in the three languages.
QUESTIONS: list[tuple[str, str]] = [
    ("en", "Which technology transfer center serves ASEAN countries?"),
    ("zh-Hans", "中国—阿拉伯国家技术转移中心由哪个单位负责日常运营？"),
    ("zh-Hant", "第10屆中國—東盟技術轉移與創新合作大會在哪裡開幕？"),
    ("en", "How many employees does the China–South Asia center have?"),
    ("zh-Hans", "中国-上海合作组织技术转移中心在青岛哪个区启用？"),
    ("zh-Hant", "中非創新合作中心的主要任務有哪些？"),
    ("en", "What does the Guangdong–CIS union do?"),
    ("zh-Hans", "上合组织成员国科技成果转化基金的规模有多大？"),
]

RAW_SYSTEM = "Answer the question using the passages. Cite passage numbers like [1]."


def _raw_messages(question: str, hits: list[Any]) -> list[dict[str, str]]:
    passages = "\n\n".join(f"Passage [{n}] ({h.document.title}):\n{h.chunk.text}" for n, h in enumerate(hits, 1))
    return [
        {"role": "system", "content": RAW_SYSTEM},
        {"role": "user", "content": f"{passages}\n\nQuestion: {question}"},
    ]


def run(index_dir: Path, questions: list[tuple[str, str]], local_json: str) -> dict[str, Any]:
    from assistant.pipeline.answer import DoneEvent, SourcesEvent, TokenEvent
    from assistant.service import Assistant

    settings = common.make_settings(
        ASSISTANT_INDEX_DIR=index_dir, ASSISTANT_LLM="local", ASSISTANT_LOCAL_JSON=local_json
    )
    t0 = time.perf_counter()
    assistant = Assistant.from_settings(settings, start_model=True)
    print(f"model started in {time.perf_counter() - t0:.1f} s", flush=True)
    model = assistant.chat_model
    if model is None or not model.ready()[0]:
        raise SystemExit(f"local model not available: {assistant.chat_error}")
    rows: list[dict[str, Any]] = []
    try:
        # Warm-up: the fixed instructions enter the prompt cache, as in a running service.
        assistant.chat("warm-up: which center serves ASEAN?")
        for lang, q in questions:
            started = time.perf_counter()
            sources = first = None
            answer = None
            for event in assistant.chat_stream(q):
                now = time.perf_counter() - started
                if isinstance(event, SourcesEvent) and sources is None:
                    sources = now
                elif isinstance(event, TokenEvent) and first is None:
                    first = now
                elif isinstance(event, DoneEvent):
                    answer = event.answer
            total = time.perf_counter() - started
            rows.append(
                {
                    "language": lang,
                    "question": q,
                    "sources_s": round(sources or total, 3),
                    "first_token_s": round(first or total, 3),
                    "complete_s": round(total, 3),
                    "grounded": bool(answer and answer.grounded),
                    "answer": (answer.answer if answer else "")[:70].replace("\n", " "),
                }
            )
            print(f"  app [{lang}] sources {rows[-1]['sources_s']} s, first token {rows[-1]['first_token_s']} s, "
                  f"complete {rows[-1]['complete_s']} s", flush=True)
        for row in rows:
            hits = assistant.search(row["question"], 5)
            started = time.perf_counter()
            text = "".join(model.stream(_raw_messages(row["question"], hits), max_tokens=RAW_OUTPUT_TOKENS))
            row["raw_s"] = round(time.perf_counter() - started, 3)
            row["raw_chars"] = len(text)
            print(f"  raw [{row['language']}] {row['raw_s']} s", flush=True)
    finally:
        assistant.close()
    return {"rows": rows, "local_json": local_json}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=len(QUESTIONS), help="Use the first N questions.")
    parser.add_argument("--index", type=Path, default=None, help="Use this index instead of building one.")
    parser.add_argument("--local-json", choices=["prompt", "grammar"], default="prompt",
                        help="ASSISTANT_LOCAL_JSON for the app phase.")
    args = parser.parse_args()
    questions = QUESTIONS[: max(1, min(args.questions, len(QUESTIONS)))]
    common.setup()
    with common.index_dir_for(args.index) as (index_dir, how):
        print(f"index: {how}", flush=True)
        result = run(index_dir, questions, args.local_json)
    rows = result["rows"]
    common.print_table(
        f"Chat latency (local model, ASSISTANT_LOCAL_JSON={args.local_json})",
        ["lang", "sources s", "1st token s", "complete s", "raw U s", "grounded", "answer"],
        [[r["language"], r["sources_s"], r["first_token_s"], r["complete_s"], r["raw_s"], r["grounded"], r["answer"]]
         for r in rows],
    )
    u = common.median([r["raw_s"] for r in rows])
    complete = common.median([r["complete_s"] for r in rows])
    # percentiles() reports milliseconds
    first_p95 = common.percentiles([r["first_token_s"] for r in rows])["p95"] / 1000
    sources_p95 = common.percentiles([r["sources_s"] for r in rows])["p95"] / 1000
    figures = {
        "U_median_s": round(u, 3),
        "complete_median_s": round(complete, 3),
        "complete_over_U": round(complete / u, 3),
        "first_token_p95_s": round(first_p95, 3),
        "first_token_p95_over_U": round(first_p95 / u, 3),
        "sources_p95_s": round(sources_p95, 3),
    }
    print(f"\nU (raw model, top-5 passages, {RAW_OUTPUT_TOKENS} tokens) median: {u:.2f} s")
    print(f"complete answer median / U = {figures['complete_over_U']}  "
          f"{common.verdict(figures['complete_over_U'], TARGET_COMPLETE)} (target ≤ {TARGET_COMPLETE})")
    print(f"first answer token p95 / U = {figures['first_token_p95_over_U']}  "
          f"{common.verdict(figures['first_token_p95_over_U'], TARGET_FIRST_TOKEN)} (target ≤ {TARGET_FIRST_TOKEN})")
    print(f"sources event p95 = {figures['sources_p95_s']} s  "
          f"{common.verdict(figures['sources_p95_s'], TARGET_SOURCES_S)} (target ≤ {TARGET_SOURCES_S} s)")
    common.emit_json({"benchmark": "chat_latency", "local_json": args.local_json, **figures, "rows": rows})


if __name__ == "__main__":
    main()
