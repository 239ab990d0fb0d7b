"""The baseline the evaluation compares against: a retriever built from LangChain defaults.

It is what a user would assemble from LangChain's documented defaults:
`RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)`, the same embedding
model as the system, dense-only similarity search in Chroma (`langchain_chroma`), top 5.
It has neither the system's sentence-aware chunking nor its BM25 keyword fusion, so the gap
between the two measures what those add.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from assistant.pipeline.embedding import Embedder
from assistant.types import Document

if TYPE_CHECKING:
    from assistant.eval.evaluate import Retrieved, RetrieveFn


class _LCEmbeddings:
    """The project's embedder with the methods of a LangChain `Embeddings`."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [list(map(float, v)) for v in self.embedder.embed_documents(texts)]

    def embed_query(self, text: str) -> list[float]:
        return list(map(float, self.embedder.embed_query(text)))


def baseline_retriever(documents: Iterable[Document], embedder: Embedder, workdir: Path) -> RetrieveFn:
    """LangChain defaults: 1000/200 character splitter, same embeddings, dense-only Chroma.

    The LangChain and Chroma imports stay inside so that the harness loads without them
    until a baseline is asked for.
    """
    import chromadb
    from chromadb.config import Settings as ChromaSettings
    from langchain_chroma import Chroma
    from langchain_core.documents import Document as LCDocument
    from langchain_core.embeddings import Embeddings
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    class Adapter(_LCEmbeddings, Embeddings):
        pass

    splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)
    docs = splitter.split_documents(
        [LCDocument(page_content=d.text, metadata={"doc_id": d.doc_id}) for d in documents]
    )
    client = chromadb.PersistentClient(
        path=str(workdir / "baseline-chroma"), settings=ChromaSettings(anonymized_telemetry=False)
    )
    store = Chroma(
        collection_name="baseline",
        embedding_function=Adapter(embedder),
        client=client,
        collection_metadata={"hnsw:space": "cosine"},
    )
    store.add_documents(docs)

    def retrieve(question: str) -> Retrieved:
        # Top 5 rather than a LangChain retriever's default of 4, so that the baseline's
        # hit@5 is measured at the same depth as the system's.
        hits = store.similarity_search(question, k=5)
        return [(str(h.metadata["doc_id"]), h.page_content) for h in hits]

    return retrieve
