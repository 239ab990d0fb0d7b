"""The assistant as one object: what the API, the Gradio UI and the CLI all call.

`Assistant.from_settings` wires the stages together (embedder, index snapshot, hybrid
retriever, chat model, answer engine). A missing or broken index does not stop it from
being built: `search`/`chat` then raise `Unavailable` with the command that fixes it, and
`reload()` picks up a rebuilt index without a restart.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from assistant import library
from assistant.admission import check_text
from assistant.centers.cache import DirectoryCache
from assistant.centers.chat import looks_like_recommendation, recommendation_answer
from assistant.centers.model import DirectoryError
from assistant.errors import Busy, Conflict, InvalidInput, NotFound, Unavailable, without_paths
from assistant.llm import build_chat_model
from assistant.llm.base import ChatModel, ChatModelError
from assistant.llm.queue import ChatQueue
from assistant.pipeline.answer import AnswerEngine, DoneEvent, Event, TokenEvent, Turn, estimate_tokens
from assistant.pipeline.answerability import load_answer_kinds
from assistant.pipeline.chunking import ChunkerConfig, tiktoken_or
from assistant.pipeline.corpus import CorpusError
from assistant.pipeline.domain import load_domain
from assistant.pipeline.embedding import Embedder, USEEmbedder
from assistant.pipeline.index import IndexProblem, ingest, load_snapshot, state_for, store_factory_for
from assistant.pipeline.prompts import load_prompts
from assistant.pipeline.retrieve import Filters, HybridRetriever
from assistant.pipeline.translation import (
    NO_BACKEND,
    SCRIPT_BACKEND,
    TARGETS,
    Translation,
    TranslationCache,
    clean_output,
    translation_messages,
    translation_tokens,
)
from assistant.settings import Settings
from assistant.telemetry import observe
from assistant.text import detect_language, in_script
from assistant.types import Answer, Document, SearchHit

log = logging.getLogger(__name__)
# What the index writes as a manifest entry's "original" (assistant.pipeline.index).
_ORIGINAL_NAME = re.compile(r"originals/[0-9a-f]{64}\.(pdf|docx|html|htm)")


@dataclass(frozen=True)
class DocumentInfo:
    document: Document
    chunks: int

    def as_dict(self, with_text: bool = False) -> dict[str, Any]:
        d = self.document
        data: dict[str, Any] = {
            "doc_id": d.doc_id,
            "title": d.title,
            "kind": d.kind,
            "publisher": d.publisher,
            "published": d.published,
            "language": d.language,
            "chunks": self.chunks,
        }
        if with_text:
            data["source_notes"] = d.source_notes
            data["text"] = d.text
        return data


def chunker_config(settings: Settings) -> ChunkerConfig:
    return ChunkerConfig(
        max_tokens=settings.chunk_max_tokens,
        overlap_sentences=settings.chunk_overlap_sentences,
        table_max_tokens=settings.table_max_tokens,
    )


class Assistant:
    def __init__(
        self,
        settings: Settings,
        embedder: Embedder,
        chat_model: ChatModel | None,
        chat_error: str | None = None,
    ) -> None:
        self.settings = settings
        self.embedder = embedder
        self.chat_model = chat_model
        self.chat_error = chat_error
        self.prompts = load_prompts(settings.prompts_dir)
        self.kinds = load_answer_kinds(settings.prompts_dir)
        self.domain = load_domain(settings.corpus_dir)
        self._open_store = store_factory_for(
            settings.index_dir, settings.chroma_host, settings.chroma_port
        )
        # The manifest and documents: the index folder, or the Chroma server (replicas).
        self.index_state = state_for(
            settings.index_dir, settings.chroma_host, settings.chroma_port, settings.chroma_prefix
        )
        self._loaded_version: str | None = None  # the index version being served
        self._failed: tuple[str | None, float] = (None, 0.0)  # a version that did not load, when
        self._reload_lock = threading.Lock()  # one reload at a time: the newest wins
        self._engine: AnswerEngine | None = None
        self._index_error: str | None = None
        self._centers = DirectoryCache()
        self._lock = threading.Lock()
        self._library_lock = threading.Lock()  # one upload, change or delete at a time
        self.observer: observe.Observer | None = None  # told about turns and searches (the app's metrics)
        self.reload()

    @classmethod
    def from_settings(cls, settings: Settings, *, start_model: bool = True) -> Assistant:
        chat_model: ChatModel | None = None
        chat_error = None
        try:
            chat_model = build_chat_model(settings, start_local=start_model)
        except ChatModelError as exc:
            # Serve anyway: answers fall back to extractive and say why.
            chat_error = without_paths(str(exc), settings)  # quoted in answers' notice
            log.error("chat model unavailable: %s", exc)
        return cls(settings, USEEmbedder(), chat_model, chat_error)

    # ------------------------------------------------------------------ lifecycle

    def reload(self) -> None:
        """(Re)load the index named by the manifest; keep serving the old one on failure."""
        with self._reload_lock:
            self._reload()

    def refresh_if_changed(self) -> bool:
        """Reload when the index version changed (another replica's ingest, upload or delete,
        or `assistant ingest`); what the poller calls. True when it reloaded."""
        version = self.index_state.version()
        if version == self._loaded_version:
            return False
        failed, when = self._failed
        if version == failed and time.monotonic() - when < 60:
            return False  # a version that did not load is tried again once a minute
        self.reload()
        return True

    def _reload(self) -> None:
        try:
            snapshot = load_snapshot(self.settings.index_dir, self._open_store, self.embedder, self.index_state)
        except IndexProblem as exc:
            self._failed = (self._safe_version(), time.monotonic())
            with self._lock:
                if self._engine is None:
                    # Shown to anyone (/readyz, the widget's 503): no server paths.
                    self._index_error = without_paths(str(exc), self.settings)
            log.info("index unavailable: %s", exc)
            return
        engine = AnswerEngine(
            HybridRetriever(snapshot, self.embedder, synonyms=self.domain.synonyms),
            self.chat_model,
            self.prompts,
            kinds=self.kinds,
            k=self.settings.retrieval_k,
            max_answer_tokens=self.settings.max_answer_tokens,
            prompt_tokens=self.settings.answer_prompt_tokens,
            answerable_min=self.settings.answerable_min,
            count_tokens=tiktoken_or(estimate_tokens, "prompt sizes are"),
            names=self.domain.names,
            query_translator=self._query_in_chinese if self.settings.query_translation else None,
        )
        with self._lock:
            self._engine = engine
            self._index_error = None
            self._loaded_version = snapshot.version

    def _safe_version(self) -> str | None:
        try:
            return self.index_state.version()
        except Exception:
            return None

    def reindex(self) -> dict[str, Any]:
        """Bring the index up to date with the corpus (like `assistant ingest`), then serve it.

        A corpus that cannot be indexed is a `CorpusError` (409) naming the file; the index
        already served stays in place.
        """
        s = self.settings
        try:
            report = ingest(
                s.document_folders,
                s.index_dir,
                self.embedder,
                store_factory_for(s.index_dir, s.chroma_host, s.chroma_port),
                chunker_config(s),
                state=self.index_state,
            )
        except CorpusError as exc:
            raise CorpusError(f"The corpus cannot be indexed: {exc}") from exc
        self.reload()  # IndexBusy and other IndexProblems: 503 with what to do
        return report.as_dict()

    def close(self) -> None:
        if self.chat_model is not None:
            self.chat_model.close()

    @property
    def engine(self) -> AnswerEngine:
        engine = self._engine
        if engine is None:
            raise Unavailable(self._index_error or "The index is not loaded.")
        return engine

    def probe(self) -> None:
        """Raise `Unavailable` (with the fix) when no index is loaded; otherwise nothing."""
        self.engine  # noqa: B018 - the property raises

    @property
    def queue(self) -> ChatQueue | None:
        """The chat model's queue, which every chat turn is admitted to (None: no model)."""
        queue = getattr(self.chat_model, "queue", None)
        return queue if isinstance(queue, ChatQueue) else None

    @property
    def backend(self) -> str:
        return self.chat_model.backend if self.chat_model else "extractive"

    def status(self) -> dict[str, Any]:
        """Readiness: index loaded, and the chat model (if any) answering."""
        if self._engine is None:
            return {"ready": False, "reason": self._index_error or "index not loaded"}
        chunks = len(self._engine.retriever.snapshot.chunks)
        model_ok, model_detail = (True, "extractive") if self.chat_model is None else self.chat_model.ready()
        status: dict[str, Any] = {
            "ready": model_ok,
            "chunks": chunks,
            "backend": self.backend,
            "model": model_detail,
        }
        if not model_ok:
            model_detail = without_paths(model_detail, self.settings)
            status["model"] = model_detail
            status["reason"] = f"chat model not ready: {model_detail}"
        if self.chat_error:
            status["model_error"] = self.chat_error
        return status

    # ------------------------------------------------------------------ requests

    def search(self, query: str, k: int = 5, filters: Filters | None = None) -> list[SearchHit]:
        return self.engine.retriever.search(query, k, filters)

    def chat(self, message: str, history: list[Turn] | None = None) -> Answer:
        return observe.final_answer(self.chat_stream(message, history))

    def chat_stream(self, message: str, history: list[Turn] | None = None) -> Iterator[Event]:
        events = self._chat_stream(message, history)
        model_expected = self.settings.llm != "extractive"
        has_model = self.chat_model is not None
        yield from observe.watch(events, self.observer, self.queue, model_expected=model_expected, has_model=has_model)

    def _chat_stream(self, message: str, history: list[Turn] | None = None) -> Iterator[Event]:
        recommendation = self._recommendation(message)
        if recommendation is not None:
            yield TokenEvent(recommendation.answer)
            yield DoneEvent(recommendation)
            return
        for event in self.engine.stream(message, history or []):
            if isinstance(event, DoneEvent):
                yield DoneEvent(self._with_notice(event.answer))
            else:
                yield event

    def _recommendation(self, message: str) -> Answer | None:
        """"Which center fits my goal?" questions go to the cited centers directory."""
        try:
            if not looks_like_recommendation(message, self.settings.corpus_dir):
                return None
            self.probe()  # no index, no directory
            return recommendation_answer(self._centers.get(self), message)
        except DirectoryError:
            log.exception("the centers directory could not be loaded; answering from passages")
            return None

    def _with_notice(self, answer: Answer) -> Answer:
        if self.chat_error and not answer.notice and self.settings.llm != "extractive":
            answer.notice = f"No chat model is available ({self.chat_error}); answers come from the documents' own sentences."
        return answer

    def documents(self) -> list[DocumentInfo]:
        manifest = self.engine.retriever.snapshot.manifest
        documents = self.engine.retriever.snapshot.documents
        # Chunk counts come from the manifest: no walk over every chunk per request.
        return [DocumentInfo(documents[k], len(manifest.documents[k]["chunks"])) for k in sorted(documents)]

    def document(self, doc_id: str) -> DocumentInfo:
        snapshot = self.engine.retriever.snapshot
        if doc_id in snapshot.documents:
            return DocumentInfo(snapshot.documents[doc_id], len(snapshot.manifest.documents[doc_id]["chunks"]))
        raise NotFound(f"No document with id {doc_id!r}. GET /v1/documents lists the ids.")

    def original_path(self, doc_id: str) -> Path | None:
        """The kept original (PDF, DOCX, HTML) of a document, or None when it has none."""
        self.document(doc_id)  # NotFound for an unknown id
        entry = self.engine.retriever.snapshot.manifest.documents[doc_id]
        name = entry.get("original")
        if not isinstance(name, str) or not _ORIGINAL_NAME.fullmatch(name):
            return None
        return self.index_state.original(name)  # with a Chroma server: fetched once, then cached

    # ------------------------------------------------------------------ library

    def add_document(self, filename: str, data: BinaryIO, meta: dict[str, Any]) -> dict[str, Any]:
        """Store an uploaded file in the library, index it, serve it; its summary.

        415 for a type no reader takes, 422 for a file that cannot be read or bad metadata
        (named), 409 when indexing is busy. When indexing fails the file is removed again,
        so the library and the index stay as they were.
        """
        fields = library.check_meta(meta)
        with self._library_lock:
            taken = set(self._indexed_ids())
            stored = library.receive(self.settings.library_folder, filename, data, fields, taken)
            doc_id = stored.path.stem
            try:
                report = self.reindex()
            except Exception:
                library.remove(stored)
                raise
            return {**self.document(doc_id).as_dict(), "file": stored.path.name, "ingest": report}

    def update_document(self, doc_id: str, meta: dict[str, Any]) -> dict[str, Any]:
        """Change a library document's metadata (title, kind, published, language, publisher)."""
        fields = library.check_meta(meta)
        if not fields:
            raise InvalidInput(f"Nothing to change: send one or more of {', '.join(library.EDITABLE)}.")
        with self._library_lock:
            stored = self._library_file(doc_id)
            before = library.set_meta(stored, fields)
            try:
                self.reindex()
            except Exception:
                library.restore_sidecar(stored, before)
                raise
            return self.document(doc_id).as_dict()

    def delete_document(self, doc_id: str) -> None:
        """Remove a library document from the library and the index."""
        with self._library_lock:
            stored = self._library_file(doc_id)
            moves = library.set_aside(self.settings.library_folder, stored)
            try:
                self.reindex()
            except Exception:
                library.put_back(moves)
                raise
            library.discard(moves)

    def in_library(self, doc_id: str) -> bool:
        return library.find(self.settings.library_folder, doc_id) is not None

    def _library_file(self, doc_id: str) -> library.StoredFile:
        stored = library.find(self.settings.library_folder, doc_id)
        if stored is not None:
            return stored
        if doc_id in self._indexed_ids():
            raise Conflict(
                f"Document {doc_id!r} comes from the corpus folder, not the library: change or "
                "remove its file there and run `assistant ingest`."
            )
        raise NotFound(f"No document with id {doc_id!r}. GET /v1/documents lists the ids.")

    def _indexed_ids(self) -> list[str]:
        engine = self._engine
        return list(engine.retriever.snapshot.documents) if engine else []

    # ------------------------------------------------------------------ translation

    def _query_in_chinese(self, question: str) -> str | None:
        """`question` in Simplified Chinese, for retrieval; None when no model can say it
        now (none configured, a full queue, a failure): the question is then searched as is."""
        try:
            return self.translate(question, "zh-Hans").translation
        except (Busy, Unavailable, InvalidInput) as exc:
            log.info("query translation skipped: %s", exc)
            return None

    def translate(self, text: str, target: str) -> Translation:
        """`text` machine-translated into `target` (`en`, `zh-Hans`, `zh-Hant`), to read a quote.

        Chinese to either Chinese script is an OpenCC conversion and English to English
        the text itself: no model. Otherwise the chat model translates (its queue applies:
        a full one is `ChatQueueFull`, 503 with Retry-After), and the result is kept in a
        bounded LRU keyed by (text, target).
        """
        check_text(text, field="text", limit=self.settings.max_message_chars)
        if target not in TARGETS:
            raise InvalidInput(f"target: must be one of {', '.join(TARGETS)} (got {target!r}).", field="target")
        cache: TranslationCache | None = self.__dict__.get("_translations")
        if cache is None:  # setdefault: threads racing here all get the same cache
            cache = self.__dict__.setdefault("_translations", TranslationCache())
        if (cached := cache.get(text, target)) is not None:
            return cached
        source = detect_language(text)
        if source == "en" and target == "en":
            return Translation(text, target, source, NO_BACKEND)
        if source != "en" and target != "en":
            return Translation(in_script(text, target), target, source, SCRIPT_BACKEND)
        model = self.chat_model
        if model is None:
            why = f"none is available ({self.chat_error})" if self.chat_error else "none is configured (ASSISTANT_LLM=extractive)"
            raise Unavailable(
                f"Machine translation needs a chat model and {why}: set ASSISTANT_LLM=local "
                "(the bundled model) or ASSISTANT_LLM=openai (with OPENAI_API_KEY or OPENAI_BASE_URL) and restart."
            )
        try:
            raw = model.complete(translation_messages(self.prompts, text, target), max_tokens=translation_tokens(text))
        except Busy:  # a full queue: 503 with Retry-After, as it is
            raise
        except ChatModelError as exc:
            raise Unavailable(f"The translation failed: {without_paths(str(exc), self.settings)}") from exc
        translation = clean_output(raw, target)
        if not translation:
            raise Unavailable("The translation failed: the chat model returned no text. Try again.")
        result = Translation(translation, target, source, model.backend)
        cache.put(text, target, result)
        return result

