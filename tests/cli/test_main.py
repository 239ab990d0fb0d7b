"""The `assistant` command, run in-process with click's CliRunner."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from assistant.cli.main import main
from tests.conftest import SEED

SEED_FILE = SEED / "002_1bbd572c9e7aa85d.txt"
ANSWER_KEYS = {"answer", "citations", "grounded", "backend"}
RESULT_KEYS = {"rank", "chunk_id", "doc_id", "title", "kind", "published", "text", "score", "start", "end"}
ASEAN = "哪个技术转移中心面向东盟国家？"
INDEXED = re.compile(
    r"Indexed (\d+) documents, (\d+) chunks \((\d+) embedded, (\d+) unchanged, (\d+) removed\)"
)

Invoke = Callable[..., Result]


@pytest.fixture
def cli(settings, index_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Invoke:  # type: ignore[no-untyped-def]
    """Run the CLI over the test's private index copy, the extractive backend and the corpus.

    The working directory is an empty folder, so no `.env` file can change the settings.
    """
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    base = {
        "ASSISTANT_INDEX_DIR": str(index_dir),
        "ASSISTANT_LLM": "extractive",
        "ASSISTANT_CORPUS_DIR": str(settings.corpus_dir),
        "ASSISTANT_CACHE_DIR": str(settings.cache_dir),
        "CHROMA_HOST": "",
    }

    def invoke(*args: str, **env: str) -> Result:
        return CliRunner().invoke(main, list(args), env={**base, **env})

    return invoke


def _counts(output: str) -> tuple[int, ...]:
    match = INDEXED.search(output)
    assert match, output
    return tuple(int(g) for g in match.groups())


def _one_line_error(result: Result) -> str:
    """The error output: one `Error: …` line, no traceback."""
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: ")
    return lines[0]


# --------------------------------------------------------------------------- ingest


def test_ingest_on_a_built_index_embeds_nothing(cli: Invoke, index_dir: Path) -> None:
    before = json.loads((index_dir / "manifest.json").read_text("utf-8"))
    result = cli("ingest", "--quiet")
    assert result.exit_code == 0, result.output
    assert "0 embedded" in result.output
    documents, chunks, embedded, unchanged, removed = _counts(result.output)
    assert (documents, embedded, removed) == (5, 0, 0)
    assert unchanged == chunks > 0
    after = json.loads((index_dir / "manifest.json").read_text("utf-8"))
    assert after["collection"] == before["collection"]
    assert after["documents"] == before["documents"]


def test_ingest_into_a_fresh_folder_builds_the_index(cli: Invoke, tmp_path: Path) -> None:
    fresh = tmp_path / "fresh-index"
    result = cli("ingest", "--quiet", ASSISTANT_INDEX_DIR=str(fresh))
    assert result.exit_code == 0, result.output
    documents, chunks, embedded, unchanged, removed = _counts(result.output)
    assert (documents, unchanged, removed) == (5, 0, 0)
    assert embedded == chunks > 0
    manifest = json.loads((fresh / "manifest.json").read_text("utf-8"))
    assert len(manifest["documents"]) == 5
    assert sum(len(d["chunks"]) for d in manifest["documents"].values()) == chunks
    for entry in manifest["documents"].values():
        assert (fresh / entry["file"]).is_file()
    status = cli("status", ASSISTANT_INDEX_DIR=str(fresh))
    assert status.exit_code == 0, status.output
    assert "up to date" in status.output


def test_ingest_rebuild_embeds_everything_into_a_new_collection(cli: Invoke, index_dir: Path) -> None:
    before = json.loads((index_dir / "manifest.json").read_text("utf-8"))
    result = cli("ingest", "--rebuild", "--quiet")
    assert result.exit_code == 0, result.output
    documents, chunks, embedded, unchanged, _removed = _counts(result.output)
    assert documents == 5
    assert embedded == chunks > 0
    assert unchanged == 0
    after = json.loads((index_dir / "manifest.json").read_text("utf-8"))
    assert after["collection"] != before["collection"]
    assert json.loads((index_dir / "collections.json").read_text("utf-8")) == [after["collection"]]
    assert cli("status").exit_code == 0


def test_ingest_with_a_missing_corpus_folder_fails_cleanly(cli: Invoke, tmp_path: Path) -> None:
    result = cli("ingest", "--quiet", ASSISTANT_CORPUS_DIR=str(tmp_path / "no-such-corpus"))
    assert result.exit_code == 1
    assert "no-such-corpus" in _one_line_error(result)


# --------------------------------------------------------------------------- search


def test_search_json_prints_the_api_shape(cli: Invoke) -> None:
    result = cli("search", "中国—东盟技术转移中心", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["query"] == "中国—东盟技术转移中心"
    assert len(data["results"]) == 5
    for rank, hit in enumerate(data["results"], start=1):
        assert hit.keys() >= RESULT_KEYS
        assert hit["rank"] == rank
        assert len(hit["text"]) == hit["end"] - hit["start"]
    assert any("东盟" in h["text"] or "東盟" in h["text"] for h in data["results"])


def test_search_k_limits_the_results(cli: Invoke) -> None:
    result = cli("search", "国际技术转移", "--json", "--k", "2")
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["results"]) == 2


def test_search_filters_by_document(cli: Invoke) -> None:
    result = cli("search", "技术转移", "--json", "--k", "50", "--doc-id", "china-asean-conference-10th")
    assert result.exit_code == 0, result.output
    results = json.loads(result.stdout)["results"]
    assert results
    assert {h["doc_id"] for h in results} == {"china-asean-conference-10th"}


def test_search_plain_output_lists_ranked_hits(cli: Invoke) -> None:
    result = cli("search", "中国—东盟技术转移中心", "--k", "3")
    assert result.exit_code == 0, result.output
    for rank in (1, 2, 3):
        assert f"[{rank}] " in result.output
    assert "[4] " not in result.output


@pytest.mark.parametrize("query", ["", "   "], ids=["empty", "blank"])
def test_search_with_an_empty_query_is_a_usage_error(cli: Invoke, query: str) -> None:
    result = cli("search", query)
    assert result.exit_code == 2
    assert "QUERY" in result.output
    assert "empty" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("k", ["0", "51", "five"])
def test_search_with_a_bad_k_is_a_usage_error(cli: Invoke, k: str) -> None:
    result = cli("search", "东盟", "--k", k)
    assert result.exit_code == 2
    assert "--k" in result.output


# ------------------------------------------------------------------------------ ask


def test_ask_json_has_the_chat_shape_and_matches_the_api(cli: Invoke, client) -> None:  # type: ignore[no-untyped-def]
    result = cli("ask", ASEAN, "--json")
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer.keys() >= ANSWER_KEYS
    assert answer["grounded"] is True
    assert answer["backend"] == "extractive"
    assert answer["citations"]
    assert any("东盟" in c["quote"] for c in answer["citations"])
    api = client.post("/v1/chat", json={"message": ASEAN}).json()
    for key in ANSWER_KEYS:
        assert answer[key] == api[key], key


def test_ask_off_topic_is_not_grounded(cli: Invoke) -> None:
    result = cli("ask", "What is the weather in Paris tomorrow?", "--json")
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["grounded"] is False
    assert answer["citations"] == []


def test_ask_plain_output_shows_the_citations(cli: Invoke) -> None:
    result = cli("ask", ASEAN)
    assert result.exit_code == 0, result.output
    assert "[1] " in result.output
    assert (
        "chengdu-chongqing-belt-road-ttc" in result.output or "china-asean-conference-10th" in result.output
    )


@pytest.mark.parametrize("question", ["", " \t "], ids=["empty", "blank"])
def test_ask_with_an_empty_question_is_a_usage_error(cli: Invoke, question: str) -> None:
    result = cli("ask", question)
    assert result.exit_code == 2
    assert "QUESTION" in result.output


def test_ask_with_an_overlong_question_is_a_usage_error(cli: Invoke) -> None:
    result = cli("ask", "东" * 4001)
    assert result.exit_code == 2
    assert "4000" in result.output


# ----------------------------------------------------------------------- no index


@pytest.mark.parametrize(
    "args",
    [("search", "东盟"), ("search", "东盟", "--json"), ("ask", ASEAN), ("ask", ASEAN, "--json")],
    ids=["search", "search-json", "ask", "ask-json"],
)
def test_a_missing_index_is_a_one_line_error_naming_ingest(
    cli: Invoke, tmp_path: Path, args: tuple[str, ...]
) -> None:
    result = cli(*args, ASSISTANT_INDEX_DIR=str(tmp_path / "no-index"))
    assert result.exit_code == 1
    assert "`assistant ingest`" in _one_line_error(result)


def test_invalid_settings_are_a_one_line_error(cli: Invoke) -> None:
    result = cli("search", "东盟", ASSISTANT_K="many")
    assert result.exit_code == 1
    assert "ASSISTANT_K" in _one_line_error(result)


# --------------------------------------------------------------------------- status


def test_status_is_0_when_the_index_is_current(cli: Invoke) -> None:
    result = cli("status")
    assert result.exit_code == 0, result.output
    assert "up to date" in result.output


def test_status_is_3_when_a_document_was_added(cli: Invoke, settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    corpus = tmp_path / "corpus"
    shutil.copytree(settings.corpus_dir, corpus)
    assert cli("status", ASSISTANT_CORPUS_DIR=str(corpus)).exit_code == 0
    (corpus / "new-center.md").write_text(
        "---\nid: new-center\ntitle: 新中心\nkind: news_report\n---\n新的国际技术转移中心今天成立。\n",
        "utf-8",
    )
    result = cli("status", ASSISTANT_CORPUS_DIR=str(corpus))
    assert result.exit_code == 3
    assert "changed" in result.output


def test_status_is_3_when_a_cleaned_document_is_damaged(cli: Invoke, index_dir: Path) -> None:
    victim = sorted((index_dir / "docs").glob("*.json"))[0]
    victim.write_text('{"doc_id": "x", "title": "x", "text": "tampered"}', "utf-8")
    result = cli("status")
    assert result.exit_code == 3 and "does not match its recorded hash" in result.output
    victim.write_text("{not json", "utf-8")
    result = cli("status")
    assert result.exit_code == 3 and "missing or unreadable" in result.output and "--rebuild" in result.output


def test_status_is_3_when_the_vector_store_is_damaged(cli: Invoke, index_dir: Path) -> None:
    sqlite = index_dir / "chroma" / "chroma.sqlite3"
    sqlite.write_bytes(b"this is not a database" * 100)
    result = cli("status")
    assert result.exit_code == 3 and "vector store" in result.output and "--rebuild" in result.output


def test_status_is_3_without_an_index(cli: Invoke, tmp_path: Path) -> None:
    result = cli("status", ASSISTANT_INDEX_DIR=str(tmp_path / "no-index"))
    assert result.exit_code == 3
    assert "no index" in result.output


def test_status_is_3_when_the_chunker_settings_changed(cli: Invoke) -> None:
    result = cli("status", ASSISTANT_CHUNK_MAX_TOKENS="128")
    assert result.exit_code == 3
    assert "rebuild" in result.output


# ---------------------------------------------------------------------------- clean


def test_clean_removes_site_chrome_from_a_raw_capture(cli: Invoke) -> None:
    raw = SEED_FILE.read_text("utf-8")
    assert "选择字号" in raw
    assert "老虎机" in raw
    result = cli("clean", str(SEED_FILE))
    assert result.exit_code == 0, result.output
    cleaned = result.stdout
    assert "选择字号" not in cleaned
    assert "老虎机" not in cleaned
    assert "一体化技术转移网络助力打造国际创新共同体" in cleaned
    assert len(cleaned) > len(raw) // 2
    assert "removed" in result.stderr


def test_clean_rejects_a_file_that_is_not_utf8(cli: Invoke, tmp_path: Path) -> None:
    path = tmp_path / "capture.txt"
    path.write_bytes("技术转移中心".encode("gb18030"))
    result = cli("clean", str(path))
    assert result.exit_code == 1
    assert "UTF-8" in _one_line_error(result)


def test_clean_of_a_missing_file_is_a_usage_error(cli: Invoke, tmp_path: Path) -> None:
    result = cli("clean", str(tmp_path / "missing.txt"))
    assert result.exit_code == 2
    assert "missing.txt" in result.output


def test_rebuild_if_needed_rebuilds_a_stale_index(index_dir: Path) -> None:
    env = {"ASSISTANT_INDEX_DIR": str(index_dir), "ASSISTANT_LLM": "extractive", "ASSISTANT_CHUNK_MAX_TOKENS": "200"}
    stopped = CliRunner().invoke(main, ["ingest", "--quiet"], env=env)
    assert stopped.exit_code == 1 and "--rebuild" in stopped.output
    rebuilt = CliRunner().invoke(main, ["ingest", "--quiet", "--rebuild-if-needed"], env=env)
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "Rebuilding" in rebuilt.output and "0 unchanged" in rebuilt.output


# ------------------------------------------------------------------ PDF, DOCX, HTML; bad files


def test_ingest_and_status_list_skipped_files_with_reasons(cli: Invoke, settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.pipeline.test_formats import make_chinese_pdf, make_image_only_pdf

    corpus = tmp_path / "corpus"
    shutil.copytree(settings.corpus_dir, corpus)
    make_chinese_pdf(corpus / "sco-annual-report.pdf")
    make_image_only_pdf(corpus / "scanned.pdf")
    (corpus / "broken.pdf").write_bytes(b"not a pdf")
    result = cli("ingest", "--quiet", ASSISTANT_CORPUS_DIR=str(corpus))
    assert result.exit_code == 0, result.output
    documents, _chunks, embedded, *_ = _counts(result.output)
    assert documents == 6 and embedded > 0
    assert "scanned.pdf: no text layer (scanned?); run OCR first" in result.output
    assert "broken.pdf: corrupt" in result.output
    status = cli("status", ASSISTANT_CORPUS_DIR=str(corpus))
    assert status.exit_code == 0, status.output
    assert "up to date" in status.output and "scanned.pdf: no text layer" in status.output


def test_ingest_of_only_unreadable_files_fails_naming_them(cli: Invoke, tmp_path: Path) -> None:
    from tests.pipeline.test_formats import make_image_only_pdf

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    make_image_only_pdf(corpus / "scan.pdf")
    result = cli("ingest", "--quiet", ASSISTANT_CORPUS_DIR=str(corpus), ASSISTANT_INDEX_DIR=str(tmp_path / "idx"))
    assert result.exit_code == 1
    line = _one_line_error(result)
    assert "nothing to index" in line and "scan.pdf: no text layer" in line
