"""Stage 5, retrieve: hybrid search, dense vectors and BM25 keywords fused by rank.

Dense search (multilingual embeddings in Chroma) carries English questions over Chinese
passages; keyword search (jieba BM25 on script-normalized text) nails names, numbers and
exact terms. Reciprocal-rank fusion combines them without having to calibrate scores.
English questions add a fourth signal: BM25 over the Chinese words a general dictionary
(CC-CEDICT) and the pinyin of names give for their English words (`crosslingual.py`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from assistant.pipeline.crosslingual import (
    Dictionary,
    PinyinNames,
    english_dictionary,
    warm_english_dictionary,
)
from assistant.pipeline.domain import Synonyms
from assistant.pipeline.embedding import Embedder, cosine
from assistant.pipeline.index import IndexSnapshot
from assistant.pipeline.keyword import KeywordIndex, english_words, query_tokens, tokenize
from assistant.text import han_ratio, is_reference_list, to_simplified
from assistant.types import SearchHit

LANGUAGE_FILTERS = {
    "en": ("en",),
    "zh": ("zh-Hans", "zh-Hant"),
    "zh-Hans": ("zh-Hans",),
    "zh-Hant": ("zh-Hant",),
}


@dataclass(frozen=True)
class Filters:
    doc_id: str | None = None
    kind: str | None = None
    language: str | None = None

    def where(self) -> dict[str, Any] | None:
        clauses: list[dict[str, Any]] = []
        if self.doc_id:
            clauses.append({"doc_id": self.doc_id})
        if self.kind:
            clauses.append({"kind": self.kind})
        if self.language:
            clauses.append({"language": {"$in": list(LANGUAGE_FILTERS[self.language])}})
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}


class HybridRetriever:
    """Search one loaded index snapshot."""

    def __init__(
        self,
        snapshot: IndexSnapshot,
        embedder: Embedder,
        *,
        rrf_k: int = 5,
        dense_weight: float = 1.0,
        keyword_weight: float = 1.0,
        english_weight: float = 0.7,
        native_keyword_boost: float = 1.5,
        candidates: int = 50,
        synonyms: Synonyms | None = None,
        dictionary: Dictionary | None = None,
        use_dictionary: bool = True,
        dictionary_weight: float = 1.0,
        dictionary_per_phrase: int = 3,
        use_pinyin: bool = True,
    ) -> None:
        self.snapshot = snapshot
        self.embedder = embedder
        # Without the corpus's glossary, English questions reach Chinese passages through
        # the vectors alone.
        self.synonyms = synonyms if synonyms is not None else Synonyms()
        self.rrf_k = rrf_k
        self.dense_weight = dense_weight
        self.keyword_weight = keyword_weight
        self.english_weight = english_weight
        self.native_keyword_boost = native_keyword_boost
        self.candidates = candidates
        # English questions' words become Chinese keywords through a general dictionary
        # (CC-CEDICT, `crosslingual.py`), scored as their own signal; built on first use.
        self.use_dictionary = use_dictionary
        self.dictionary_weight = dictionary_weight
        self.dictionary_per_phrase = dictionary_per_phrase
        self._dictionary = dictionary
        # Names an English question spells in pinyin, found in this index's vocabulary.
        self.use_pinyin = use_pinyin
        self._pinyin: PinyinNames | None = None
        self._pinyin_lock = threading.Lock()
        if use_dictionary and dictionary is None:
            warm_english_dictionary()  # in the background, before the first English question
        self._keyword = KeywordIndex(snapshot.tokens)
        self._pos = snapshot.chunk_by_id
        doc_kind = {d.doc_id: d.kind for d in snapshot.documents.values()}
        self._doc_ids = np.array([c.doc_id for c in snapshot.chunks])
        self._kinds = np.array([doc_kind[c.doc_id] for c in snapshot.chunks])
        self._langs = np.array([c.language for c in snapshot.chunks])
        self._extra = max(0, snapshot.store.count() - len(snapshot.chunks))
        # Reference lists match a question's years and topic words but state nothing: they
        # rank after every other candidate.
        self._references = np.array([is_reference_list(c.text) for c in snapshot.chunks], dtype=bool)
        if use_dictionary and use_pinyin and snapshot.chunks:
            # Built in the background too (~0.5 s), before the first English question.
            threading.Thread(target=self._pinyin_names, name="pinyin-names", daemon=True).start()

    def search(self, query: str, k: int = 5, filters: Filters | None = None) -> list[SearchHit]:
        filters = filters or Filters()
        chunks = self.snapshot.chunks
        if not chunks or not query.strip():
            return []
        allowed = self._mask(filters)
        if not allowed.any():
            return []
        qvec = self.embedder.embed_query(to_simplified(query))

        kw_scores = np.where(allowed, self._keyword.scores(query_tokens(query, self.synonyms)), 0.0)
        english = han_ratio(query) < 0.3
        # Keywords are the stronger signal in the passages' own language; for English
        # questions they come through the glossary and count as much as the vectors.
        signals = [
            (self.dense_weight, self._dense(qvec, filters, allowed)),
            (self.keyword_weight * (1.0 if english else self.native_keyword_boost), self._ranked(kw_scores)),
        ]
        if english:
            # Plain English words only match the English abstracts; as a weaker third
            # signal they still let an English passage surface for an English question
            # (0.7 since the dictionary's signal came beside it: RGB tune half, dev set).
            en_scores = np.where(allowed, self._keyword.scores(english_words(query)), 0.0)
            signals.append((self.english_weight, self._ranked(en_scores)))
            expansion = self.expansion_tokens(query)
            if expansion:
                # The dictionary's Chinese words for the question's English ones: a signal of
                # their own, so that a wrong sense cannot outweigh the question's own terms.
                x_scores = np.where(allowed, self._keyword.scores(expansion), 0.0)
                signals.append((self.dictionary_weight, self._ranked(x_scores)))

        fused: dict[int, float] = {}
        for weight, ranked in signals:
            for rank, i in enumerate(ranked):
                fused[i] = fused.get(i, 0.0) + weight / (self.rrf_k + rank + 1)
        order = sorted(fused, key=lambda i: (bool(self._references[i]), -fused[i], i))[:k]

        dense_sim = self._exact_similarity(qvec, order)
        hits = []
        for rank, i in enumerate(order, start=1):
            chunk = chunks[i]
            hits.append(
                SearchHit(
                    rank=rank,
                    chunk=chunk,
                    document=self.snapshot.documents[chunk.doc_id],
                    score=fused[i],
                    dense_score=dense_sim.get(i),
                    keyword_score=float(kw_scores[i]),
                )
            )
        return hits

    def expansion_tokens(self, query: str) -> list[str]:
        """Keyword tokens of the dictionary's Chinese terms for an English question."""
        if not self.use_dictionary:
            return []
        if self._dictionary is None:
            self._dictionary = english_dictionary()
        terms = self._dictionary.terms(query, self.dictionary_per_phrase)
        tokens = [tok for term in terms for tok in tokenize(term)]
        if self.use_pinyin:
            known = set(tokens)  # a name the dictionary already gave counts once
            tokens += [name for name in self._pinyin_names().names(query) if name not in known]
        return tokens

    def _pinyin_names(self) -> PinyinNames:
        if self._pinyin is None:
            with self._pinyin_lock:
                if self._pinyin is None:
                    # The BM25 vocabulary (keyword.py keeps it for filtering query tokens).
                    self._pinyin = PinyinNames(self._keyword._vocab)
        return self._pinyin

    def _ranked(self, scores: np.ndarray) -> list[int]:
        n = min(self.candidates, len(scores))
        if n == 0:
            return []
        # Partial selection first: a full sort of 100k scores per query is wasted work.
        top = np.argpartition(-scores, n - 1)[:n]
        order = top[np.lexsort((top, -scores[top]))]
        return [int(i) for i in order if scores[i] > 0]

    def _mask(self, filters: Filters) -> np.ndarray:
        mask = np.ones(len(self.snapshot.chunks), dtype=bool)
        if filters.doc_id:
            mask &= self._doc_ids == filters.doc_id
        if filters.kind:
            mask &= self._kinds == filters.kind
        if filters.language:
            mask &= np.isin(self._langs, LANGUAGE_FILTERS[filters.language])
        return mask

    def _dense(self, qvec: np.ndarray, filters: Filters, allowed: np.ndarray) -> list[int]:
        # Chunks left in the store by an interrupted ingest are not in the manifest;
        # ask for enough extra results that dropping them still leaves `candidates`.
        found = self.snapshot.store.query(qvec, self.candidates + self._extra, where=filters.where())
        ranked = []
        for cid, _sim in found:
            i = self._pos.get(cid)
            if i is not None and allowed[i]:
                ranked.append(i)
        return ranked[: self.candidates]

    def _exact_similarity(self, qvec: np.ndarray, order: list[int]) -> dict[int, float]:
        if not order:
            return {}
        ids = [self.snapshot.chunks[i].chunk_id for i in order]
        records = {r.chunk_id: r for r in self.snapshot.store.get(ids, with_embeddings=True)}
        out: dict[int, float] = {}
        for i, cid in zip(order, ids, strict=True):
            emb = records[cid].embedding if cid in records else None
            if emb is not None:
                out[i] = float(cosine(qvec[None, :], emb[None, :])[0, 0])
        return out
