"""Warm start: load what the first requests would otherwise load lazily, before /readyz says ready.

Found lazy on a fresh process (first search 1.9 s alone; 50 at once took a minute):

- the embedder (USE weights and tokenizer load on the first encode: ~1 s);
- the tokenizers: jieba's dictionary (~0.65 s), tiktoken's encoding, OpenCC's
  Traditional→Simplified and Simplified→Traditional tables (~0.2 s each);
- the keyword index (BM25, built with the retriever when the index loads) and Chroma's
  first query, numpy's first calls, the retriever's arrays: one search per language;
- the centers directory (built on the first recommendation question, ~0.2 s).

`WarmUp.run(assistant)` does them in that order, in one thread (the app factory's
lifespan starts it); `pending()` names what is still loading, `problem()` says why
/readyz is not ready yet (None when all is warm). The chat model, if any, starts in its
own thread and is reported by `Assistant.status()`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from assistant.errors import Unavailable, without_paths
from assistant.service import Assistant

log = logging.getLogger(__name__)

EMBEDDER = "embedder"
TOKENIZERS = "tokenizers (jieba dictionary, tiktoken, OpenCC)"
KEYWORD_INDEX = "keyword index"
SEARCH = "first search"
CENTERS = "centers directory"
STEPS = (EMBEDDER, TOKENIZERS, KEYWORD_INDEX, SEARCH, CENTERS)
# Failures of these only go to the log: requests that need them say why themselves.
OPTIONAL = frozenset({CENTERS})
# One question per language, so every script's path (OpenCC, jieba, glossary) has run.
# Nothing of one corpus: any question in each script runs the same code.
QUESTIONS = (
    "Which technology transfer center serves these countries?",
    "哪个技术转移中心面向这些国家？",
    "哪個技術轉移中心面向這些國家？",
)
RECOMMENDATION = "Which center should we work with to enter a new market abroad?"


class WarmUp:
    """Thread-safe progress of one warm-up: what is still loading, and what failed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[str] = list(STEPS)
        self._failed: dict[str, str] = {}
        self.done = threading.Event()
        self.seconds: float | None = None

    def pending(self) -> list[str]:
        with self._lock:
            return list(self._pending)

    def failed(self) -> dict[str, str]:
        with self._lock:
            return dict(self._failed)

    def problem(self) -> str | None:
        """Why the server is not warm yet (None: warm)."""
        pending = self.pending()
        if pending:
            return "warming up, still loading: " + ", ".join(pending)
        failed = {k: v for k, v in self.failed().items() if k not in OPTIONAL}
        if failed:
            return "warm-up failed: " + "; ".join(f"{k}: {v}" for k, v in failed.items())
        return None

    def _finish(self, step: str, error: str | None = None) -> None:
        with self._lock:
            if step in self._pending:
                self._pending.remove(step)
            if error is not None:
                self._failed[step] = error

    def run(self, assistant: Assistant) -> None:
        """Every step in order; each failure is recorded and logged, never raised."""
        started = time.perf_counter()
        steps: list[tuple[str, Callable[[], None]]] = [
            (EMBEDDER, lambda: _embedder(assistant)),
            (TOKENIZERS, _tokenizers),
            (KEYWORD_INDEX, lambda: _keyword_index(assistant)),
            (SEARCH, lambda: _search(assistant)),
            (CENTERS, lambda: _centers(assistant)),
        ]
        try:
            for step, fn in steps:
                t0 = time.perf_counter()
                try:
                    fn()
                except Unavailable as exc:  # no index: /readyz says so, with the fix
                    log.info("warm-up: %s skipped: %s", step, exc)
                    self._finish(step)
                except Exception as exc:
                    message = without_paths(str(exc), assistant.settings) or type(exc).__name__
                    log.exception("warm-up: %s failed", step)
                    self._finish(step, message)
                else:
                    log.debug("warm-up: %s in %.2f s", step, time.perf_counter() - t0)
                    self._finish(step)
        finally:
            self.seconds = time.perf_counter() - started
            log.info("warm-up done in %.1f s", self.seconds)
            self.done.set()


def _embedder(assistant: Assistant) -> None:
    assistant.embedder.embed_query("warm up")


def _tokenizers() -> None:
    from assistant.pipeline.chunking import tiktoken_counter
    from assistant.pipeline.keyword import tokenize, word_tokens
    from assistant.text import to_simplified, to_traditional

    tokenize("技术转移中心")
    word_tokens("技术转移中心")
    to_simplified("技術轉移")
    to_traditional("技术转移")
    try:
        tiktoken_counter()("warm up")
    except Exception as exc:  # offline without its cache: answers use an estimate (logged at load)
        log.info("warm-up: tiktoken unavailable: %s", exc)


def _keyword_index(assistant: Assistant) -> None:
    retriever = assistant.engine.retriever  # built (BM25 included) when the index loaded
    retriever.snapshot.store.count()


def _search(assistant: Assistant) -> None:
    for question in QUESTIONS:
        assistant.search(question, assistant.settings.retrieval_k)


def _centers(assistant: Assistant) -> None:
    from assistant.centers.chat import looks_like_recommendation

    looks_like_recommendation(RECOMMENDATION, assistant.settings.corpus_dir)
    assistant._centers.get(assistant)  # what a recommendation question builds on first use
