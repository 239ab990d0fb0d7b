"""Cross-lingual retrieval: the same RGB-zh questions asked in Simplified, Traditional and English.

Data: RGB-zh (`zh_refine.json`, Chen et al., AAAI 2024; CC BY-NC-SA 4.0, evaluation only),
read at run time from /work/shared/benchmarks/rgb-zh/ (`--data`); nothing of it is copied
into the project. Rows 130–199 by default (`--first`, `--last`): the first 100 rows are
`rgb_zh.py`'s, so these are documents and questions nobody tuned the pipeline on before.

Every passage (positive and negative) of those rows becomes its own `.txt` document in a
temporary corpus (the same writer as `rgb_zh.py`), ingested with the project's real pipeline
(USE embedder, the configured chunker); the corpus folder holds no `synonyms.yaml`, so the
seed corpus's glossary plays no part. Each question is then asked three ways over the whole
index (`Assistant.search`, top 10):

* zh-Hans: RGB's own question;
* zh-Hant: the same converted with OpenCC s2t (`assistant.text.to_traditional`);
* en: an English wording written for this project (`benchmarks/data/crosslingual_en.yaml`,
  keyed by RGB row id; our translations, not RGB text).

A hit is a retrieved chunk whose text contains one of the row's answers, judged exactly as
`rgb_zh.py` judges it. Printed per language: hit@1, hit@k (`--k`, default 5), MRR@10, and the
gaps en − zh-Hans and zh-Hant − zh-Hans, on two halves of the rows split by a fixed rule:

* **tune**: even row ids — the only half whose figures chose and tuned the cross-lingual
  expansion (`assistant/pipeline/crosslingual.py`: which dictionary entries, caps, weights);
* **report**: odd row ids — never used for tuning; the figures to quote.

Only rows that have an English wording count, in every language, so the three languages
are compared on the same questions. `--keep DIR` keeps the corpus and index in DIR and
reuses an index already there (same rows), which saves the ~1 min ingest on a re-run.

    .venv/bin/python benchmarks/crosslingual.py [--data PATH] [--first 130] [--last 199] [--k 5]
        [--keep DIR] [--misses] [--baseline] [--translate]

`--baseline` turns the English expansion off (the retriever as it was before it), for the
"before" figures. `--translate` searches each English question the way a chat turn with a
model does (`AnswerEngine.search_text`: the bundled model's Chinese translation, then the
question); about 2 s more per English question on 2 cores. The yaml also holds wordings for rows 200–239, a second held-out set
written after the expansion was frozen: `--first 200 --last 239`.

Targets (issue 11): on the report half, en hit@5 within 0.05 of zh-Hans, zh-Hant within 0.03.
Prints tables, then one JSON line: {"benchmark": "crosslingual", ...}.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
import rgb_zh
import yaml

DATA = rgb_zh.DATA
ENGLISH = Path(__file__).resolve().parent / "data" / "crosslingual_en.yaml"
LANGUAGES = ("zh-Hans", "zh-Hant", "en")
TARGET_GAP = {"en": 0.05, "zh-Hant": 0.03}
SEARCH_K = 10


def load_rows(path: Path, first: int, last: int) -> list[dict[str, Any]]:
    """RGB rows first..last (0-based line numbers, inclusive)."""
    return rgb_zh.load_questions(path, last + 1)[first:]


def load_english(path: Path) -> dict[int, str]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {int(k): str(v).strip() for k, v in (data.get("questions") or {}).items() if str(v).strip()}


def half_of(row_id: int) -> str:
    """The fixed split: even ids tune, odd ids report."""
    return "tune" if row_id % 2 == 0 else "report"


def wordings(row: dict[str, Any], english: dict[int, str]) -> dict[str, str]:
    from assistant.text import to_traditional

    return {"zh-Hans": row["query"], "zh-Hant": to_traditional(row["query"]), "en": english[int(row["id"])]}


def evaluate(search: Any, rows: list[dict[str, Any]], english: dict[int, str], k: int) -> dict[str, Any]:
    """Per half and language: hit@1, hit@k, MRR@10 and the misses; search is `(query, k) -> hits`."""
    tally: dict[str, dict[str, dict[str, Any]]] = {}
    times: dict[str, list[float]] = {lang: [] for lang in LANGUAGES}
    for row in rows:
        groups = rgb_zh.answer_groups(row)
        half = half_of(int(row["id"]))
        for lang, query in wordings(row, english).items():
            t0 = time.perf_counter()
            hits = search(query, SEARCH_K)
            times[lang].append(time.perf_counter() - t0)
            rank, _ = rgb_zh._first_hit(hits, groups, k, lambda h: h.chunk.text)
            for part in (half, "all"):
                t = tally.setdefault(part, {}).setdefault(
                    lang, {"n": 0, "hit1": 0, "hitk": 0, "rr": 0.0, "misses": []}
                )
                t["n"] += 1
                t["hit1"] += rank == 1
                t["hitk"] += rank is not None and rank <= k
                t["rr"] += 1.0 / rank if rank else 0.0
                if part != "all" and (rank is None or rank > k):
                    t["misses"].append({"id": row["id"], "query": query, "first_hit_rank": rank})
    out: dict[str, Any] = {}
    for part, langs in tally.items():
        out[part] = {}
        for lang, t in langs.items():
            n = t["n"]
            out[part][lang] = {
                "n": n,
                "hit@1": round(t["hit1"] / n, 4),
                f"hit@{k}": round(t["hitk"] / n, 4),
                "mrr@10": round(t["rr"] / n, 4),
                "misses": t["misses"],
            }
        hans = out[part]["zh-Hans"][f"hit@{k}"]
        out[part]["gap"] = {lang: round(out[part][lang][f"hit@{k}"] - hans, 4) for lang in ("zh-Hant", "en")}
    out["latency_ms"] = {lang: common.percentiles(ts) for lang, ts in times.items()}
    return out


def print_result(result: dict[str, Any], k: int, *, misses: bool) -> None:
    for part in ("tune", "report", "all"):
        if part not in result:
            continue
        r = result[part]
        rows = [
            [lang, r[lang]["n"], *(f"{r[lang][m]:.3f}" for m in ("hit@1", f"hit@{k}", "mrr@10"))]
            + ([f"{r['gap'][lang]:+.3f}"] if lang in r["gap"] else ["–"])
            for lang in LANGUAGES
        ]
        label = {
            "tune": "tune half (even ids)",
            "report": "report half (odd ids, not tuned on)",
            "all": "all",
        }
        common.print_table(
            f"{label[part]}", ["language", "n", "hit@1", f"hit@{k}", "MRR@10", f"hit@{k} − zh-Hans"], rows
        )
    lat = result["latency_ms"]
    print(
        "\nsearch p50 / p95 ms (k=10): "
        + ", ".join(f"{lang} {lat[lang]['p50']:.1f} / {lat[lang]['p95']:.1f}" for lang in LANGUAGES)
    )
    if misses:
        for part in ("tune", "report"):
            for lang in LANGUAGES:
                for m in result.get(part, {}).get(lang, {}).get("misses", []):
                    print(f"miss [{part} {lang}] #{m['id']} rank {m['first_hit_rank']}: {m['query']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="zh_refine.json (read, never copied).")
    parser.add_argument("--english", type=Path, default=ENGLISH, help="English wordings (yaml).")
    parser.add_argument("--first", type=int, default=130, help="First RGB row (0-based, default 130).")
    parser.add_argument("--last", type=int, default=199, help="Last RGB row, inclusive (default 199).")
    parser.add_argument("--k", type=int, default=5, help="k of hit@k (≤ 10; default 5).")
    parser.add_argument(
        "--keep", type=Path, default=None, help="Keep (and reuse) the corpus and index in DIR."
    )
    parser.add_argument("--misses", action="store_true", help="List every miss at k.")
    parser.add_argument(
        "--translate",
        action="store_true",
        help="Search English questions as a chat turn does with a model: the bundled model's Chinese "
        "translation in front of the question (ASSISTANT_QUERY_TRANSLATION).",
    )
    parser.add_argument(
        "--baseline",
        action="store_true",
        help="The retriever as before the dictionary: no CC-CEDICT or pinyin expansion, English words weight 1.0.",
    )
    args = parser.parse_args()
    k = max(1, min(args.k, SEARCH_K))
    if not args.data.is_file():
        sys.exit(f"{args.data} not found; pass --data PATH to zh_refine.json.")
    common.setup()
    from assistant.service import Assistant

    english = load_english(args.english)
    rows = [r for r in load_rows(args.data, args.first, args.last) if int(r["id"]) in english]
    if not rows:
        sys.exit("no RGB row in range has an English wording")
    result: dict[str, Any] = {
        "benchmark": "crosslingual",
        "data": str(args.data),
        "rows": f"{args.first}-{args.last}",
        "questions": len(rows),
        "k": k,
    }
    with rgb_zh.workdir(args.keep) as root:
        corpus_dir, index_dir = root / "corpus", root / "index"
        reuse = args.keep is not None and (index_dir / "manifest.json").exists() and corpus_dir.is_dir()
        if reuse:
            print(f"reusing the index in {index_dir}")
        else:
            shutil.rmtree(root / "corpus", ignore_errors=True)
            shutil.rmtree(root / "index", ignore_errors=True)
            counts = rgb_zh.write_corpus(rows, corpus_dir)
            from assistant.pipeline.embedding import USEEmbedder

            report = rgb_zh.build_index(corpus_dir, index_dir, USEEmbedder())
            result["corpus"] = {**counts, "chunks": report.chunks, "ingest_s": report.seconds}
            print(
                f"corpus: {counts['passages']} passages → {report.chunks} chunks, ingested in {report.seconds} s"
            )
        settings = common.make_settings(
            ASSISTANT_CORPUS_DIR=corpus_dir,
            ASSISTANT_INDEX_DIR=index_dir,
            **({"ASSISTANT_LLM": "local", "ASSISTANT_QUERY_TRANSLATION": True} if args.translate else {}),
        )
        assistant = Assistant.from_settings(settings, start_model=args.translate)
        search = assistant.search
        if args.translate:
            result["translate"] = True

            def search(query: str, k: int) -> Any:
                return assistant.search(assistant.engine.search_text(query), k)

        if args.baseline:
            retriever = assistant.engine.retriever
            retriever.use_dictionary = retriever.use_pinyin = False
            retriever.english_weight = 1.0
            result["baseline"] = True
            print("baseline: no dictionary or pinyin expansion, English words weight 1.0")
        try:
            assistant.search(rows[0]["query"], SEARCH_K)  # warm-up: embedder, jieba
            assistant.search(english[int(rows[0]["id"])], SEARCH_K)  # and the dictionary
            result.update(evaluate(search, rows, english, k))
        finally:
            assistant.close()

    print_result(result, k, misses=args.misses)
    rep = result.get("report")
    if rep:
        verdicts = {
            lang: "met" if rep["gap"][lang] >= -TARGET_GAP[lang] else "missed" for lang in ("en", "zh-Hant")
        }
        result["target"] = verdicts
        print(
            f"\nreport half: en − zh-Hans {rep['gap']['en']:+.3f} (target ≥ −{TARGET_GAP['en']}: {verdicts['en']}), "
            f"zh-Hant − zh-Hans {rep['gap']['zh-Hant']:+.3f} (target ≥ −{TARGET_GAP['zh-Hant']}: {verdicts['zh-Hant']})"
        )
    common.emit_json(result)


if __name__ == "__main__":
    main()
