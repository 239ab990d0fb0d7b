"""The vector store: Chroma, embedded under `index/` or a Chroma server, one code path.

Vectors are always computed by our own `Embedder` and passed in explicitly; the
collection is still given an embedding function so Chroma never falls back to its
default model (which would try to download weights).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from assistant.errors import Unavailable
from assistant.pipeline.embedding import Vectors

# HNSW settings: with Chroma's defaults, recall@10 against exact search was measured at
# 0.57 for 10k vectors and 0.12 for 100k; M=32 and ef=200 gave 0.95 (shared notes).
HNSW_METADATA = {
    "hnsw:space": "cosine",
    "hnsw:M": 32,
    "hnsw:construction_ef": 200,
    "hnsw:search_ef": 200,
}


class StoreError(Unavailable):
    """The vector store cannot be reached or read; the message says what to do."""


@dataclass(frozen=True)
class StoredRecord:
    chunk_id: str
    text: str
    metadata: dict[str, Any]
    embedding: Vectors | None = None


class VectorStore(Protocol):
    """What the index and the retriever need from a vector store."""

    def upsert(
        self,
        ids: Sequence[str],
        embeddings: Vectors,
        texts: Sequence[str],
        metadatas: Sequence[dict[str, Any]],
    ) -> None: ...

    def delete(self, ids: Sequence[str]) -> None: ...

    def all_ids(self) -> set[str]: ...

    def get(self, ids: Sequence[str], with_embeddings: bool = False) -> list[StoredRecord]: ...

    def query(
        self, embedding: Vectors, n: int, where: dict[str, Any] | None = None
    ) -> list[tuple[str, float]]: ...

    def count(self) -> int: ...

    def drop(self) -> None: ...


def _make_embedding_function():  # type: ignore[no-untyped-def]
    from chromadb.api.types import EmbeddingFunction
    from chromadb.utils.embedding_functions import register_embedding_function

    class PrecomputedOnly(EmbeddingFunction):  # type: ignore[type-arg]
        """Refuses to embed: every vector comes from the project's own `Embedder`."""

        def __init__(self) -> None:
            pass

        def __call__(self, input: Any) -> Any:  # noqa: A002 - Chroma's signature
            raise StoreError("This collection takes precomputed embeddings only.")

        @staticmethod
        def name() -> str:
            return "techtransfer-precomputed"

        def get_config(self) -> dict[str, Any]:
            return {}

        @staticmethod
        def build_from_config(config: dict[str, Any]) -> PrecomputedOnly:
            return PrecomputedOnly()

        def default_space(self) -> Any:
            return "cosine"

    register_embedding_function(PrecomputedOnly)
    return PrecomputedOnly()


_EF: Any = None


def _embedding_function() -> Any:
    global _EF
    if _EF is None:
        _EF = _make_embedding_function()
    return _EF


class ChromaStore:
    """One Chroma collection; persistent under `path`, or on a server at host:port."""

    def __init__(
        self,
        collection: str,
        *,
        path: Path | None = None,
        host: str | None = None,
        port: int = 8000,
    ) -> None:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
        try:
            if host:
                self._client = chromadb.HttpClient(host=host, port=port, settings=chroma_settings)
                self._client.heartbeat()
            else:
                if path is None:
                    raise StoreError("ChromaStore needs a path or a host.")
                path.mkdir(parents=True, exist_ok=True)
                self._client = chromadb.PersistentClient(path=str(path), settings=chroma_settings)
            self._collection = self._client.get_or_create_collection(
                collection,
                metadata=dict(HNSW_METADATA),
                embedding_function=_embedding_function(),
            )
        except StoreError:
            raise
        except Exception as exc:  # chromadb raises many types; all mean "unusable"
            where = f"the Chroma server at {host}:{port}" if host else f"{path}"
            raise StoreError(
                f"Cannot open the vector store at {where}: {exc}. "
                + (
                    "Check that `chroma run` is up and CHROMA_HOST/CHROMA_PORT are right."
                    if host
                    else "Rebuild it with `assistant ingest --rebuild`."
                )
            ) from exc
        self.name = collection

    def upsert(
        self,
        ids: Sequence[str],
        embeddings: Vectors,
        texts: Sequence[str],
        metadatas: Sequence[dict[str, Any]],
    ) -> None:
        batch = 2000
        for i in range(0, len(ids), batch):
            self._collection.upsert(
                ids=list(ids[i : i + batch]),
                embeddings=np.asarray(embeddings[i : i + batch], dtype=np.float32),
                documents=list(texts[i : i + batch]),
                metadatas=[_clean_meta(m) for m in metadatas[i : i + batch]],
            )

    def delete(self, ids: Sequence[str]) -> None:
        batch = 2000
        for i in range(0, len(ids), batch):
            self._collection.delete(ids=list(ids[i : i + batch]))

    def all_ids(self) -> set[str]:
        ids: set[str] = set()
        offset, page = 0, 5000
        while True:
            got = self._collection.get(include=[], limit=page, offset=offset)
            ids.update(got["ids"])
            if len(got["ids"]) < page:
                return ids
            offset += page

    def get(self, ids: Sequence[str], with_embeddings: bool = False) -> list[StoredRecord]:
        include: list[Any] = ["documents", "metadatas"]
        if with_embeddings:
            include.append("embeddings")
        records: list[StoredRecord] = []
        batch = 5000
        for i in range(0, len(ids), batch):
            got = self._collection.get(ids=list(ids[i : i + batch]), include=include)
            embs = got.get("embeddings") if with_embeddings else None
            for j, cid in enumerate(got["ids"]):
                records.append(
                    StoredRecord(
                        chunk_id=cid,
                        text=(got["documents"] or [""])[j] or "",
                        metadata=dict((got["metadatas"] or [{}])[j] or {}),
                        embedding=None if embs is None else np.asarray(embs[j], dtype=np.float32),
                    )
                )
        return records

    def query(
        self, embedding: Vectors, n: int, where: dict[str, Any] | None = None
    ) -> list[tuple[str, float]]:
        # No count() first: it cost 40% of a query at 100k chunks, and Chroma 1.x
        # returns fewer results when asked for more than it holds.
        got = self._collection.query(
            query_embeddings=[np.asarray(embedding, dtype=np.float32)],  # type: ignore[arg-type]
            n_results=max(1, n),
            where=where or None,
            include=["distances"],
        )
        ids = got["ids"][0]
        dists = (got.get("distances") or [[1.0] * len(ids)])[0]
        # cosine distance -> similarity
        return [(cid, 1.0 - float(d)) for cid, d in zip(ids, dists, strict=True)]

    def count(self) -> int:
        return int(self._collection.count())

    def drop(self) -> None:
        self._client.delete_collection(self.name)


def _clean_meta(meta: dict[str, Any]) -> dict[str, Any]:
    # Chroma metadata values must be str/int/float/bool; None is not allowed.
    return {k: v for k, v in meta.items() if v is not None}
