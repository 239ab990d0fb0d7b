"""The library: upload, change and delete documents over HTTP (admin token), searchable at once.

Each test has its own copy of the seed index and its own library folder; files are built
here (tests/pipeline/test_formats.py's makers), and indexed with the real pipeline.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from assistant.pipeline.index import ingest_lock
from assistant.service import Assistant
from assistant.settings import Settings
from assistant.web.api import create_app
from tests.conftest import make_settings
from tests.live_server import live_server
from tests.pipeline.test_formats import PAGE3_SENTENCE, make_chinese_pdf, make_docx

ADMIN = "adm-3c5e7a9b1d2f4e6a8c0b2d4f6a8c0e1b"
API_KEY = "api-key-9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a"
AUTH = {"Authorization": f"Bearer {ADMIN}"}


@pytest.fixture
def lib_settings(index_dir: Path, tmp_path: Path) -> Settings:
    return make_settings(
        ASSISTANT_INDEX_DIR=index_dir,
        ASSISTANT_STATE_DIR=tmp_path / "state",
        ASSISTANT_ADMIN_TOKEN=ADMIN,
    )


@pytest.fixture
def lib_assistant(lib_settings: Settings, embedder) -> Iterator[Assistant]:  # type: ignore[no-untyped-def]
    a = Assistant(lib_settings, embedder, None)
    yield a
    a.close()


@pytest.fixture
def api(lib_assistant: Assistant) -> Iterator[TestClient]:
    with TestClient(create_app(assistant=lib_assistant, with_ui=False)) as c:
        yield c


def _upload(client: Any, path: Path, **form: str) -> Any:
    with path.open("rb") as fh:
        return client.post("/v1/documents", headers=AUTH, files={"file": (path.name, fh)}, data=form)


def _library_files(settings: Settings) -> list[str]:
    folder = settings.library_folder
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) if folder.exists() else []


def test_upload_search_patch_delete(api: TestClient, lib_settings: Settings, tmp_path: Path) -> None:
    pdf = make_chinese_pdf(tmp_path / "SCO annual report 2023.pdf")
    r = _upload(api, pdf, kind="policy_paper", published="2023-12")
    assert r.status_code == 201, r.text
    doc = r.json()
    assert doc["doc_id"] == "SCO-annual-report-2023" and doc["library"] is True
    assert doc["title"] == "上合组织技术转移中心年度报告" and doc["kind"] == "policy_paper"
    assert doc["chunks"] > 0 and doc["ingest"]["added"] >= doc["chunks"]
    assert _library_files(lib_settings) == ["SCO-annual-report-2023.pdf", "SCO-annual-report-2023.pdf.meta.yaml"]

    # Searchable at once, with its page; listed as a library document.
    hits = api.post("/v1/search", json={"query": PAGE3_SENTENCE, "k": 3}).json()["results"]
    top = hits[0]
    assert top["doc_id"] == doc["doc_id"] and top["page"] == 3
    listed = {d["doc_id"]: d for d in api.get("/v1/documents").json()["documents"]}
    assert listed[doc["doc_id"]]["library"] is True
    assert listed["china-sco-ttc-qingdao"]["library"] is False
    assert api.get(f"/sources/{doc['doc_id']}/original").headers["content-type"] == "application/pdf"

    r = api.patch(f"/v1/documents/{doc['doc_id']}", headers=AUTH, json={"title": "SCO report 2023"})
    assert r.status_code == 200, r.text
    assert api.get(f"/v1/documents/{doc['doc_id']}").json()["title"] == "SCO report 2023"

    r = api.delete(f"/v1/documents/{doc['doc_id']}", headers=AUTH)
    assert r.status_code == 204
    assert api.get(f"/v1/documents/{doc['doc_id']}").status_code == 404
    hits = api.post("/v1/search", json={"query": PAGE3_SENTENCE, "k": 5}).json()["results"]
    assert all(h["doc_id"] != doc["doc_id"] for h in hits)
    assert _library_files(lib_settings) == []


def test_the_same_file_name_twice_gets_its_own_id(api: TestClient, tmp_path: Path) -> None:
    docx = make_docx(tmp_path / "brief.docx")
    first = _upload(api, docx)
    second = _upload(api, docx)
    assert (first.status_code, second.status_code) == (201, 201)
    assert second.json()["doc_id"] == f"{first.json()['doc_id']}-2"


def test_a_chinese_file_name_gets_an_id_from_the_content(api: TestClient, tmp_path: Path) -> None:
    r = _upload(api, make_docx(tmp_path / "中阿技术转移简报.docx"))
    assert r.status_code == 201, r.text
    assert r.json()["doc_id"].startswith("doc-")


@pytest.mark.parametrize(
    ("name", "content", "status", "says"),
    [
        ("slides.pptx", b"PK\x03\x04 not a document", 415, "slides.pptx: type '.pptx' cannot be read"),
        ("broken.pdf", b"%PDF-1.4 this is not really a pdf", 422, "broken.pdf"),
        ("empty.docx", b"", 422, "empty.docx"),
        ("latin1.txt", "Caf\xe9 au lait".encode("latin-1"), 422, "UTF-8"),
    ],
)
def test_bad_files_are_refused_with_the_reason_and_leave_nothing(
    api: TestClient, lib_settings: Settings, name: str, content: bytes, status: int, says: str
) -> None:
    before = api.get("/v1/documents").json()
    r = api.post("/v1/documents", headers=AUTH, files={"file": (name, io.BytesIO(content))})
    assert r.status_code == status, r.text
    assert says in r.json()["detail"]
    assert _library_files(lib_settings) == []
    assert api.get("/v1/documents").json() == before


def test_bad_metadata_is_a_422_naming_the_field(api: TestClient, tmp_path: Path) -> None:
    r = _upload(api, make_docx(tmp_path / "brief.docx"), published="last spring")
    assert r.status_code == 422 and "published" in r.json()["detail"]
    r = _upload(api, make_docx(tmp_path / "brief.docx"), kind="blog")
    assert r.status_code == 422 and "kind" in r.json()["detail"]


def test_uploads_need_the_admin_token(api: TestClient, tmp_path: Path) -> None:
    docx = make_docx(tmp_path / "brief.docx")
    with docx.open("rb") as fh:
        assert api.post("/v1/documents", files={"file": ("brief.docx", fh)}).status_code == 401
    with docx.open("rb") as fh:
        r = api.post("/v1/documents", headers={"Authorization": f"Bearer {API_KEY}"}, files={"file": ("brief.docx", fh)})
    assert r.status_code == 401
    assert api.delete("/v1/documents/china-sco-ttc-qingdao").status_code == 401
    assert api.patch("/v1/documents/china-sco-ttc-qingdao", json={"title": "x"}).status_code == 401


def test_corpus_documents_are_not_the_librarys(api: TestClient) -> None:
    r = api.delete("/v1/documents/china-sco-ttc-qingdao", headers=AUTH)
    assert r.status_code == 409 and "corpus folder" in r.json()["detail"]
    assert api.get("/v1/documents/china-sco-ttc-qingdao").status_code == 200
    assert api.delete("/v1/documents/no-such-doc", headers=AUTH).status_code == 404
    r = api.patch("/v1/documents/china-sco-ttc-qingdao", headers=AUTH, json={"colour": "red"})
    assert r.status_code == 422


def test_an_upload_while_an_ingest_runs_is_undone(api: TestClient, lib_settings: Settings, tmp_path: Path) -> None:
    with ingest_lock(lib_settings.index_dir):
        r = _upload(api, make_docx(tmp_path / "brief.docx"))
    assert r.status_code == 503 and "Another ingest" in r.json()["detail"]
    assert _library_files(lib_settings) == []
    assert _upload(api, make_docx(tmp_path / "brief.docx")).status_code == 201  # and then it works


def test_upload_limit_is_counted_while_reading(index_dir: Path, tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(
        ASSISTANT_INDEX_DIR=index_dir,
        ASSISTANT_STATE_DIR=tmp_path / "state",
        ASSISTANT_ADMIN_TOKEN=ADMIN,
        ASSISTANT_MAX_UPLOAD_BYTES=200_000,
        ASSISTANT_MAX_BODY_BYTES=4096,
    )
    assistant = Assistant(settings, embedder, None)
    big = b"%PDF-1.4\n" + b"0" * 300_000
    with TestClient(create_app(assistant=assistant, with_ui=False)) as api:
        r = api.post("/v1/documents", headers=AUTH, files={"file": ("big.pdf", io.BytesIO(big))})
        assert r.status_code == 413 and "ASSISTANT_MAX_UPLOAD_BYTES" in r.json()["detail"]
        # Without the admin token, the ordinary limit: nobody else makes the server read 200 kB.
        r = api.post("/v1/documents", files={"file": ("small.pdf", io.BytesIO(b"0" * 10_000))})
        assert r.status_code == 413 and "ASSISTANT_MAX_BODY_BYTES" in r.json()["detail"]
        # Within the limit it is read.
        r = _upload(api, make_docx(tmp_path / "brief.docx"))
        assert r.status_code == 201, r.text
    assistant.close()


def test_the_library_page_has_no_remote_assets(api: TestClient) -> None:
    page = api.get("/library")
    assert page.status_code == 200 and "Library" in page.text
    assert "http://" not in page.text and "https://" not in page.text
    assert "innerHTML" not in page.text  # titles are data: set with textContent


def test_upload_and_delete_against_a_real_server(lib_assistant: Assistant, tmp_path: Path) -> None:
    pdf = make_chinese_pdf(tmp_path / "report.pdf")
    app = create_app(assistant=lib_assistant, with_ui=False)
    with live_server(app) as base, httpx.Client(base_url=base, timeout=120) as http:
        with pdf.open("rb") as fh:
            r = http.post("/v1/documents", headers=AUTH, files={"file": ("report.pdf", fh, "application/pdf")})
        assert r.status_code == 201, r.text
        doc_id = r.json()["doc_id"]
        hits = http.post("/v1/search", json={"query": PAGE3_SENTENCE, "k": 3}).json()["results"]
        assert hits[0]["doc_id"] == doc_id and hits[0]["page"] == 3
        assert http.delete(f"/v1/documents/{doc_id}", headers=AUTH).status_code == 204
        hits = http.post("/v1/search", json={"query": PAGE3_SENTENCE, "k": 5}).json()["results"]
        assert all(h["doc_id"] != doc_id for h in hits)


def test_the_library_list_needs_the_admin_token(api: TestClient, tmp_path: Path) -> None:
    assert api.get("/v1/admin/documents").status_code == 401
    assert _upload(api, make_docx(tmp_path / "brief.docx")).status_code == 201
    listed = {d["doc_id"]: d["library"] for d in api.get("/v1/admin/documents", headers=AUTH).json()["documents"]}
    assert listed["brief"] is True and listed["china-sco-ttc-qingdao"] is False


def test_the_cli_indexes_the_library_with_the_corpus(
    api: TestClient, lib_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from assistant.cli.main import main

    assert _upload(api, make_docx(tmp_path / "brief.docx")).status_code == 201
    monkeypatch.chdir(tmp_path)  # no .env
    env = {
        "ASSISTANT_INDEX_DIR": str(lib_settings.index_dir),
        "ASSISTANT_STATE_DIR": str(lib_settings.state_dir),
        "ASSISTANT_CORPUS_DIR": str(lib_settings.corpus_dir),
        "ASSISTANT_CACHE_DIR": str(lib_settings.cache_dir),
        "ASSISTANT_LLM": "extractive",
        "CHROMA_HOST": "",
    }
    status = CliRunner().invoke(main, ["status"], env=env)
    assert status.exit_code == 0 and "up to date" in status.output
    ingested = CliRunner().invoke(main, ["ingest", "--quiet"], env=env)
    assert ingested.exit_code == 0 and "0 removed" in ingested.output  # the upload stays indexed
