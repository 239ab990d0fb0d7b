"""The evaluation harness: retrieval and answer quality on the dev set.

Retrieval metrics (per language and overall): hit@1, hit@5 (a top-k passage contains an
evidence string of the question) and MRR@10, for the system and, beside it, for the
LangChain-defaults baseline in `assistant.eval.baseline`. Answer metrics (with a chat model):
required facts present, citation quotes verbatim, cited passages hold the evidence, answer
language, and on unanswerable questions the refusal and wrong-answer rates.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from assistant.eval.baseline import baseline_retriever
from assistant.pipeline.corpus import load_corpus
from assistant.service import Assistant
from assistant.text import detect_language, normalize

LANGUAGES = ("en", "zh-Hans", "zh-Hant")

# Passages a retriever returns, best first: (doc_id, text).
Retrieved = list[tuple[str, str]]
RetrieveFn = Callable[[str], Retrieved]


@dataclass(frozen=True)
class Evidence:
    doc_id: str
    text: str


@dataclass(frozen=True)
class Question:
    id: str
    language: str
    question: str
    type: str
    evidence: tuple[Evidence, ...]
    facts: tuple[tuple[str, ...], ...]

    @property
    def answerable(self) -> bool:
        return self.type != "unanswerable"


def load_devset(path: Path) -> list[Question]:
    data = yaml.safe_load(path.read_text("utf-8"))
    out = []
    for q in data["questions"]:
        out.append(
            Question(
                id=str(q["id"]),
                language=str(q["language"]),
                question=str(q["question"]),
                type=str(q["type"]),
                evidence=tuple(Evidence(str(e["doc_id"]), str(e["text"])) for e in q.get("evidence") or []),
                facts=tuple(tuple(str(a) for a in f) for f in q.get("facts") or []),
            )
        )
    return out


# --------------------------------------------------------------------------- retrieval


def _first_hit(question: Question, retrieved: Retrieved, k: int) -> int | None:
    """1-based rank of the first passage that holds an evidence string, within k."""
    for rank, (doc_id, text) in enumerate(retrieved[:k], start=1):
        if any(e.doc_id == doc_id and e.text in text for e in question.evidence):
            return rank
    return None


def retrieval_metrics(questions: list[Question], retrieve: RetrieveFn) -> dict[str, Any]:
    rows: dict[str, list[tuple[float, float, float]]] = {lang: [] for lang in LANGUAGES}
    latencies: list[float] = []
    misses: list[str] = []
    for q in questions:
        if not q.answerable:
            continue
        started = time.perf_counter()
        retrieved = retrieve(q.question)
        latencies.append(time.perf_counter() - started)
        rank = _first_hit(q, retrieved, 10)
        rows[q.language].append(
            (float(rank == 1), float(rank is not None and rank <= 5), 1.0 / rank if rank else 0.0)
        )
        if rank is None or rank > 5:
            misses.append(q.id)
    result: dict[str, Any] = {}
    everything = [r for lang in LANGUAGES for r in rows[lang]]
    for name, group in [*rows.items(), ("all", everything)]:
        if group:
            result[name] = {
                "n": len(group),
                "hit@1": round(statistics.fmean(r[0] for r in group), 4),
                "hit@5": round(statistics.fmean(r[1] for r in group), 4),
                "mrr@10": round(statistics.fmean(r[2] for r in group), 4),
            }
    result["p50_ms"] = round(1000 * statistics.median(latencies), 2) if latencies else None
    result["misses@5"] = misses
    return result


def system_retriever(assistant: Assistant, k: int = 10) -> RetrieveFn:
    def retrieve(question: str) -> Retrieved:
        return [(h.chunk.doc_id, h.chunk.text) for h in assistant.search(question, k)]

    return retrieve


# ------------------------------------------------------------------------------ answers


def _contains(answer: str, alternatives: tuple[str, ...]) -> bool:
    text = normalize(answer).replace(" ", "")
    return any(normalize(a).replace(" ", "") in text for a in alternatives)


@dataclass
class AnswerRecord:
    id: str
    language: str
    answerable: bool
    grounded: bool
    facts_ok: float
    quotes_verbatim: bool
    evidence_cited: bool
    language_ok: bool
    seconds: float
    answer: str
    backend: str
    notice: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def answer_metrics(
    questions: list[Question],
    assistant: Assistant,
    *,
    progress: Callable[[int, int, AnswerRecord], None] | None = None,
) -> dict[str, Any]:
    docs = {info.document.doc_id: info.document.text for info in assistant.documents()}
    records: list[AnswerRecord] = []
    for i, q in enumerate(questions, start=1):
        started = time.perf_counter()
        answer = assistant.chat(q.question)
        seconds = time.perf_counter() - started
        verbatim = all(docs.get(c.doc_id, "")[c.start : c.end] == c.quote for c in answer.citations)
        chunk_texts = {c.chunk_id: c for c in answer.citations}
        evidence_cited = any(
            e.doc_id == c.doc_id and docs[c.doc_id].find(e.text) >= 0 and _near(docs[c.doc_id], e.text, c.start, c.end)
            for c in chunk_texts.values()
            for e in q.evidence
        )
        facts_ok = (
            statistics.fmean(float(_contains(answer.answer, f)) for f in q.facts) if q.facts else 0.0
        )
        rec = AnswerRecord(
            id=q.id,
            language=q.language,
            answerable=q.answerable,
            grounded=answer.grounded,
            facts_ok=facts_ok,
            quotes_verbatim=verbatim,
            evidence_cited=evidence_cited,
            language_ok=detect_language(answer.answer) == q.language,
            seconds=round(seconds, 2),
            answer=answer.answer,
            backend=answer.backend,
            notice=answer.notice,
        )
        records.append(rec)
        if progress:
            progress(i, len(questions), rec)
    answerable = [r for r in records if r.answerable]
    unanswerable = [r for r in records if not r.answerable]

    def mean(values: list[float]) -> float | None:
        return round(statistics.fmean(values), 4) if values else None

    return {
        "n": len(records),
        "facts": mean([r.facts_ok for r in answerable]),
        "quotes_verbatim": mean([float(r.quotes_verbatim) for r in records]),
        "evidence_cited": mean([float(r.evidence_cited) for r in answerable]),
        "language": mean([float(r.language_ok) for r in records]),
        "grounded_answerable": mean([float(r.grounded) for r in answerable]),
        "false_refusal_answerable": mean([float(not r.grounded) for r in answerable]),
        "refusal_unanswerable": mean([float(not r.grounded) for r in unanswerable]),
        "wrong_unanswerable": mean([float(r.grounded) for r in unanswerable]),
        "median_seconds": round(statistics.median(r.seconds for r in records), 2) if records else None,
        "fallbacks": sum(1 for r in records if r.notice),
        "records": [r.__dict__ for r in records],
    }


def _near(text: str, evidence: str, start: int, end: int, window: int = 400) -> bool:
    """The evidence sits in the passage around the cited quote (same chunk or next to it)."""
    i = text.find(evidence)
    while i >= 0:
        if i < end + window and i + len(evidence) > start - window:
            return True
        i = text.find(evidence, i + 1)
    return False


# ------------------------------------------------------------------------------- report


@dataclass
class Report:
    devset: str
    system: dict[str, Any]
    baseline: dict[str, Any] | None = None
    answers: dict[str, Any] | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    def flat(self) -> dict[str, float]:
        """Metric name → value, the names thresholds use (e.g. `en.hit@5`, `answers.facts`)."""
        out: dict[str, float] = {}
        for scope, m in self.system.items():
            if isinstance(m, dict):
                for key, value in m.items():
                    if key != "n":
                        out[f"{scope}.{key}"] = value
        if self.answers:
            for key, value in self.answers.items():
                if isinstance(value, float):
                    out[f"answers.{key}"] = value
        return out

    def table(self) -> str:
        lines = ["Retrieval (system | baseline: LangChain defaults)", ""]
        lines.append(f"{'':10} {'n':>4}  {'hit@1':>13}  {'hit@5':>13}  {'MRR@10':>13}")
        for scope in (*LANGUAGES, "all"):
            s = self.system.get(scope)
            if not s:
                continue
            b = (self.baseline or {}).get(scope, {})
            cells = [
                f"{s[m]:.3f} | {b[m]:.3f}" if m in b else f"{s[m]:.3f} |   –  "
                for m in ("hit@1", "hit@5", "mrr@10")
            ]
            lines.append(f"{scope:10} {s['n']:>4}  " + "  ".join(f"{c:>13}" for c in cells))
        lines.append(
            f"\nsearch p50: {self.system.get('p50_ms')} ms"
            + (f" | baseline {self.baseline.get('p50_ms')} ms" if self.baseline else "")
        )
        if self.answers:
            a = self.answers
            lines += [
                "",
                f"Answers ({a['n']} questions, backend {self.settings.get('backend')})",
                f"  required facts present        {a['facts']}",
                f"  citation quotes verbatim      {a['quotes_verbatim']}",
                f"  cited passage holds evidence  {a['evidence_cited']}",
                f"  answer language right         {a['language']}",
                f"  grounded when answerable      {a['grounded_answerable']}",
                f"  false refusal when answerable {a.get('false_refusal_answerable')}",
                f"  refusal on unanswerable       {a['refusal_unanswerable']}",
                f"  wrong answer on unanswerable  {a['wrong_unanswerable']}",
                f"  median seconds per answer     {a['median_seconds']}   fallbacks: {a['fallbacks']}",
            ]
        return "\n".join(lines)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.__dict__, ensure_ascii=False, indent=1), "utf-8")


def check_thresholds(report: Report, thresholds: dict[str, float]) -> list[str]:
    """The failed thresholds, as readable lines (empty when all hold)."""
    flat = report.flat()
    failures = []
    for name, minimum in thresholds.items():
        value = flat.get(name)
        if value is None:
            failures.append(f"{name}: not measured (known: {', '.join(sorted(flat))})")
        elif value < minimum:
            failures.append(f"{name} = {value:.4f} < {minimum}")
    return failures


def run(
    assistant: Assistant,
    devset_path: Path,
    *,
    baseline: bool = True,
    answers: bool = False,
    limit: int | None = None,
    progress: Callable[[int, int, AnswerRecord], None] | None = None,
) -> Report:
    questions = load_devset(devset_path)
    if limit:
        questions = _balanced(questions, limit)
    report = Report(
        devset=str(devset_path),
        system=retrieval_metrics(questions, system_retriever(assistant)),
        settings={"backend": assistant.backend, "k": assistant.settings.retrieval_k},
    )
    if baseline:
        with tempfile.TemporaryDirectory(prefix="eval-baseline-") as tmp:
            documents = load_corpus(assistant.settings.corpus_dir)
            report.baseline = retrieval_metrics(
                questions, baseline_retriever(documents, assistant.embedder, Path(tmp))
            )
    if answers:
        report.answers = answer_metrics(questions, assistant, progress=progress)
    return report


def _balanced(questions: list[Question], limit: int) -> list[Question]:
    """The first `limit` questions taken round-robin over languages and types."""
    buckets: dict[tuple[str, bool], list[Question]] = {}
    for q in questions:
        buckets.setdefault((q.language, q.answerable), []).append(q)
    out: list[Question] = []
    while len(out) < limit and any(buckets.values()):
        for key in sorted(buckets):
            if buckets[key] and len(out) < limit:
                out.append(buckets[key].pop(0))
    return out
