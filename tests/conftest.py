"""Shared fixtures: real models, real Chroma, one temporary index per test."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.offline import apply_offline_env
from assistant.settings import PROJECT_ROOT, Settings

CORPUS = PROJECT_ROOT / "corpus"
# The raw captures the committed corpus was cleaned from; see tests/data/raw/README.md.
SEED = Path(__file__).parent / "data" / "raw"
CACHE = PROJECT_ROOT / ".cache"
# Partners, feedback, secrets: a test that does not choose its own state folder gets this
# one, never the checkout's var/.
STATE = Path(tempfile.mkdtemp(prefix="tt-test-state-"))

apply_offline_env(CACHE)


def make_settings(**overrides: object) -> Settings:
    """Settings for tests: no .env file, no environment surprises."""
    values: dict[str, object] = {
        "ASSISTANT_CORPUS_DIR": CORPUS,
        "ASSISTANT_CACHE_DIR": CACHE,
        "ASSISTANT_LLM": "extractive",
        "CHROMA_HOST": "",
        "ASSISTANT_STATE_DIR": STATE,
        # A test that counts or orders model calls gets only the ones it makes; the tests
        # of query translation, the end-to-end test and the deployment test turn it on.
        "ASSISTANT_QUERY_TRANSLATION": False,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def embedder():  # type: ignore[no-untyped-def]
    from assistant.pipeline.embedding import USEEmbedder

    return USEEmbedder()


@pytest.fixture(scope="session")
def built_index(tmp_path_factory: pytest.TempPathFactory, embedder) -> Path:  # type: ignore[no-untyped-def]
    """The seed corpus indexed once per session; tests get copies."""
    from assistant.pipeline.index import ingest, store_factory_for
    from assistant.service import chunker_config

    index_dir = tmp_path_factory.mktemp("built-index")
    settings = make_settings(ASSISTANT_INDEX_DIR=index_dir)
    ingest(
        settings.corpus_dir,
        index_dir,
        embedder,
        store_factory_for(index_dir, None, 0),
        chunker_config(settings),
    )
    return index_dir


@pytest.fixture
def index_dir(built_index: Path, tmp_path: Path) -> Path:
    """A private copy of the built index, free to modify."""
    target = tmp_path / "index"
    shutil.copytree(built_index, target)
    return target


@pytest.fixture
def settings(index_dir: Path) -> Settings:
    return make_settings(ASSISTANT_INDEX_DIR=index_dir)


@pytest.fixture
def assistant(settings: Settings, embedder) -> Iterator[object]:  # type: ignore[no-untyped-def]
    from assistant.service import Assistant

    a = Assistant(settings, embedder, None)
    yield a
    a.close()


@pytest.fixture
def client(assistant) -> Iterator[object]:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from assistant.web.api import create_app

    with TestClient(create_app(assistant=assistant, with_ui=False)) as c:
        yield c
