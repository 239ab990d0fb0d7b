"""`DirectoryCache`: the directory of an assistant's indexed documents, reloaded on change."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from assistant.centers.concepts import CONCEPTS_FILE
from assistant.centers.datafile import stat_key
from assistant.centers.directory import Directory
from assistant.centers.load import directory_from_documents
from assistant.centers.model import DIRECTORY_FILE
from assistant.centers.places import PLACES_FILE

if TYPE_CHECKING:
    from assistant.settings import Settings


class _DocumentsSource(Protocol):
    settings: Settings

    def documents(self) -> Sequence[Any]: ...


class DirectoryCache:
    """The directory of an assistant's documents (from `settings.corpus_dir`), loaded on
    first use and reloaded when the indexed documents or one of the data files (centers,
    places, concepts) change. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[Any, ...] | None = None
        self._directory: Directory | None = None

    def get(self, assistant: _DocumentsSource) -> Directory:
        docs = [info.document for info in assistant.documents()]
        corpus_dir = Path(assistant.settings.corpus_dir)
        files = tuple((name, stat_key(corpus_dir / name)) for name in (DIRECTORY_FILE, PLACES_FILE, CONCEPTS_FILE))
        key = (str(corpus_dir), files, tuple((d.doc_id, len(d.text), hash(d.text)) for d in docs))
        with self._lock:
            if self._directory is not None and key == self._key:
                return self._directory
            directory = directory_from_documents(corpus_dir, docs)
            self._key, self._directory = key, directory
            return directory
