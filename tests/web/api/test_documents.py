"""GET /v1/documents, /v1/documents/{doc_id} and the HTML source view /sources/{doc_id}."""

from __future__ import annotations

import html
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from assistant.service import Assistant
from assistant.web.api import create_app
from tests.conftest import make_settings

SUMMARY_KEYS = {"library", "doc_id", "title", "kind", "publisher", "published", "language", "chunks"}
DOC_IDS = {
    "chengdu-chongqing-belt-road-ttc",
    "china-asean-conference-10th",
    "china-sco-ttc-qingdao",
    "guangdong-cis-union",
    "integrated-tech-transfer-network",
}
MARK = re.compile(r'<mark id="quote">(.*?)</mark>', re.DOTALL)


@pytest.fixture(scope="module")
def api(built_index: Path, embedder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    """One app for the many read-only bad-input cases; a server error comes back as a 500."""
    index = tmp_path_factory.mktemp("api-documents") / "index"
    shutil.copytree(built_index, index)
    a = Assistant(make_settings(ASSISTANT_INDEX_DIR=index), embedder, None)
    with TestClient(create_app(assistant=a, with_ui=False), raise_server_exceptions=False) as c:
        yield c
    a.close()


def _list(client: TestClient) -> list[dict]:
    r = client.get("/v1/documents")
    assert r.status_code == 200
    return r.json()["documents"]


def _text(client: TestClient, doc_id: str) -> str:
    r = client.get(f"/v1/documents/{doc_id}")
    assert r.status_code == 200
    return r.json()["text"]


# -------------------------------------------------------------------------- listing


def test_lists_the_five_documents_with_their_metadata(client) -> None:  # type: ignore[no-untyped-def]
    docs = _list(client)
    assert len(docs) == 5
    assert {d["doc_id"] for d in docs} == DOC_IDS
    for d in docs:
        assert d.keys() >= SUMMARY_KEYS
        assert "text" not in d
        assert d["title"].strip()
        assert d["kind"] in ("policy_paper", "news_report")
        assert isinstance(d["chunks"], int)
        assert d["chunks"] > 0
        assert d["published"] is None or re.fullmatch(r"\d{4}(-\d{2}(-\d{2})?)?", d["published"])
    by_id = {d["doc_id"]: d for d in docs}
    assert by_id["china-asean-conference-10th"]["language"] == "zh-Hant"
    assert by_id["china-sco-ttc-qingdao"]["kind"] == "news_report"
    assert by_id["guangdong-cis-union"]["kind"] == "policy_paper"


def test_chunk_counts_add_up_to_the_indexed_chunks(client) -> None:  # type: ignore[no-untyped-def]
    total = client.get("/readyz").json()["chunks"]
    assert sum(d["chunks"] for d in _list(client)) == total


def test_chunk_counts_match_what_search_can_reach(client) -> None:  # type: ignore[no-untyped-def]
    for d in _list(client):
        r = client.post("/v1/search", json={"query": "技术", "k": 50, "filters": {"doc_id": d["doc_id"]}})
        assert len(r.json()["results"]) == min(50, d["chunks"]), d["doc_id"]


# --------------------------------------------------------------------------- detail


@pytest.mark.parametrize("doc_id", sorted(DOC_IDS))
def test_one_document_has_the_summary_fields_and_its_text(client, settings, doc_id: str) -> None:  # type: ignore[no-untyped-def]
    summary = {d["doc_id"]: d for d in _list(client)}[doc_id]
    r = client.get(f"/v1/documents/{doc_id}")
    assert r.status_code == 200
    detail = r.json()
    assert {k: detail[k] for k in SUMMARY_KEYS} == summary
    text = detail["text"]
    assert isinstance(text, str)
    assert len(text) > 500
    # The text is the corpus file after its front matter, as is: quotes are slices of it.
    raw = (settings.corpus_dir / f"{doc_id}.md").read_text("utf-8")
    assert raw.endswith(text)
    assert not text.startswith("---")


def test_an_unknown_document_is_404_with_a_detail(client) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/v1/documents/nope")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/json")
    detail = r.json()["detail"]
    assert isinstance(detail, str)
    assert "nope" in detail
    assert "/v1/documents" in detail


@pytest.mark.parametrize(
    "doc_id",
    [
        "NOPE",
        "guangdong-cis-union ",
        "guangdong-cis-union.md",
        "%00",
        "%FF",
        "x" * 3000,
        "%E4%B8%9C%E7%9B%9F",
    ],
    ids=["upper", "space", "suffix", "nul", "bad-utf8", "long", "chinese"],
)
def test_odd_document_ids_are_404(api: TestClient, doc_id: str) -> None:
    r = api.get(f"/v1/documents/{doc_id}")
    assert r.status_code == 404
    assert isinstance(r.json()["detail"], str)


# -------------------------------------------------------------------------- sources


def test_source_page_marks_the_span_html_escaped(client) -> None:  # type: ignore[no-untyped-def]
    doc_id = "guangdong-cis-union"
    text = _text(client, doc_id)
    start = text.index("<<Under the background")
    end = text.index("R&D institutions") + len("R&D institutions")
    r = client.get(f"/sources/{doc_id}", params={"start": start, "end": end})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    page = r.text
    marks = MARK.findall(page)
    assert len(marks) == 1
    assert marks[0] == html.escape(text[start:end])
    assert marks[0].startswith("&lt;&lt;Under")
    assert "R&amp;D institutions" in marks[0]
    assert "<<Under" not in page
    # The rest of the document is on the page too.
    assert html.escape(text[:start]) in page
    assert html.escape(text[end:]) in page


def test_source_page_marks_a_search_result(client) -> None:  # type: ignore[no-untyped-def]
    hit = client.post("/v1/search", json={"query": "中国—东盟技术转移中心", "k": 1}).json()["results"][0]
    r = client.get(f"/sources/{hit['doc_id']}", params={"start": hit["start"], "end": hit["end"]})
    assert r.status_code == 200
    assert MARK.findall(r.text) == [html.escape(hit["text"])]
    assert html.escape(hit["title"]) in r.text


def test_source_page_without_a_span_has_no_mark(client) -> None:  # type: ignore[no-untyped-def]
    text = _text(client, "china-sco-ttc-qingdao")
    r = client.get("/sources/china-sco-ttc-qingdao")
    assert r.status_code == 200
    assert "<mark" not in r.text
    assert html.escape(text) in r.text


@pytest.mark.parametrize(
    "params",
    [{"start": 10, "end": 5}, {"start": 5, "end": 5}, {"start": 0, "end": 10**9}, {"start": 10}],
    ids=["reversed", "empty", "past-end", "start-only"],
)
def test_source_page_ignores_a_span_it_cannot_mark(api: TestClient, params: dict) -> None:
    r = api.get("/sources/china-sco-ttc-qingdao", params=params)
    assert r.status_code == 200
    assert "<mark" not in r.text


@pytest.mark.parametrize(
    "params",
    [{"start": -1, "end": 5}, {"start": "abc", "end": 5}, {"start": 0, "end": "1e3"}],
    ids=["negative", "text", "float"],
)
def test_source_page_rejects_bad_offsets(api: TestClient, params: dict) -> None:
    r = api.get("/sources/china-sco-ttc-qingdao", params=params)
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert isinstance(detail, str)
    assert "start" in detail or "end" in detail


def test_source_page_of_an_unknown_document_is_404(client) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/sources/nope", params={"start": 0, "end": 5})
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/json")
    assert "nope" in r.json()["detail"]


# ------------------------------------------------------------------ originals (PDF, DOCX, HTML)


@pytest.fixture(scope="module")
def mixed(built_index: Path, embedder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    """The seed corpus plus a Chinese PDF, a DOCX, an HTML page and a scanned PDF, ingested."""
    from assistant.pipeline.index import ingest, store_factory_for
    from assistant.service import chunker_config
    from tests.conftest import CORPUS
    from tests.pipeline.test_formats import make_chinese_pdf, make_docx, make_html, make_image_only_pdf

    root = tmp_path_factory.mktemp("api-originals")
    corpus, index = root / "corpus", root / "index"
    shutil.copytree(CORPUS, corpus)
    shutil.copytree(built_index, index)
    make_chinese_pdf(corpus / "sco-annual-report.pdf")
    make_docx(corpus / "china-arab-ttc.docx")
    make_html(corpus / "asean-news.html")
    make_image_only_pdf(corpus / "scanned.pdf")
    settings = make_settings(ASSISTANT_INDEX_DIR=index, ASSISTANT_CORPUS_DIR=corpus)
    report = ingest(corpus, index, embedder, store_factory_for(index, None, 0), chunker_config(settings))
    assert [s["file"] for s in report.skipped] == ["scanned.pdf"]
    a = Assistant(settings, embedder, None)
    with TestClient(create_app(assistant=a, with_ui=False), raise_server_exceptions=False) as c:
        yield c
    a.close()


@pytest.mark.parametrize(
    ("doc_id", "content_type"),
    [
        ("sco-annual-report", "application/pdf"),
        ("china-arab-ttc", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        ("asean-news", "text/html"),
    ],
)
def test_the_original_is_served_inline(mixed: TestClient, doc_id: str, content_type: str) -> None:
    r = mixed.get(f"/sources/{doc_id}/original")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith(content_type)
    assert r.headers["content-disposition"].startswith("inline")
    assert r.content[:4] == {"application/pdf": b"%PDF", "text/html": b"<!do"}.get(content_type, b"PK\x03\x04")
    if content_type == "text/html":
        assert "sandbox" in r.headers["content-security-policy"]  # a captured page runs no scripts here


def test_a_text_document_or_unknown_id_has_no_original(mixed: TestClient) -> None:
    r = mixed.get("/sources/china-sco-ttc-qingdao/original")
    assert r.status_code == 404 and "no original" in r.json()["detail"]
    assert mixed.get("/sources/nope/original").status_code == 404


def test_pdf_search_result_and_source_page_show_the_page(mixed: TestClient) -> None:
    from tests.pipeline.test_formats import PAGE3_SENTENCE

    results = mixed.post(
        "/v1/search", json={"query": PAGE3_SENTENCE, "k": 5, "filters": {"doc_id": "sco-annual-report"}}
    ).json()["results"]
    hit = next(h for h in results if PAGE3_SENTENCE in h["text"])
    assert hit["page"] == 3
    r = mixed.get("/sources/sco-annual-report", params={"start": hit["start"], "end": hit["end"]})
    assert r.status_code == 200
    assert "page 3" in r.text
    assert '<a href="/sources/sco-annual-report/original#page=3">open the original at page 3</a>' in r.text
    # Unpaged documents: page null, no page line.
    other = mixed.post("/v1/search", json={"query": "东盟", "k": 1, "filters": {"doc_id": "asean-news"}}).json()
    assert other["results"][0]["page"] is None
    page = mixed.get("/sources/china-sco-ttc-qingdao", params={"start": 0, "end": 5}).text
    assert "open the original" not in page and "page " not in page.split("<pre class=\"doc\">")[0].split("</h1>")[1]


# -------------------------------------------------------------------------- source page: languages, notes, layout


def test_source_page_hides_internal_notes_which_the_api_keeps(api: TestClient) -> None:
    detail = api.get("/v1/documents/china-sco-ttc-qingdao").json()
    assert "Seed file" in detail["source_notes"]
    page = api.get("/sources/china-sco-ttc-qingdao", params={"start": 0, "end": 5}).text
    assert "Seed file" not in page and html.escape(detail["source_notes"]) not in page


@pytest.mark.parametrize(
    ("params", "accept", "lang", "words"),
    [
        ({}, None, "en", ["← Back to chat", "news report"]),
        ({}, "zh-CN,zh;q=0.9,en;q=0.8", "zh-Hans", ["← 返回对话", "新闻报道"]),
        ({}, "zh-TW,zh;q=0.9", "zh-Hant", ["← 返回對話", "新聞報導"]),
        ({}, "fr-FR,zh-HK;q=0.5", "zh-Hant", ["← 返回對話"]),
        ({}, "en;q=0.4,zh-Hans;q=0.8", "zh-Hans", ["← 返回对话"]),
        ({"lang": "zh-Hant"}, "en-US", "zh-Hant", ["← 返回對話"]),
        ({"lang": "en"}, "zh-CN", "en", ["← Back to chat"]),
        ({"lang": "xx"}, "zh-CN", "zh-Hans", ["← 返回对话"]),
    ],
)
def test_source_page_labels_follow_lang_or_accept_language(
    api: TestClient, params: dict, accept: str | None, lang: str, words: list[str]
) -> None:
    headers = {"Accept-Language": accept} if accept else {}
    r = api.get("/sources/china-sco-ttc-qingdao", params={"start": 0, "end": 5, **params}, headers=headers)
    assert r.status_code == 200
    assert f'<html lang="{lang}">' in r.text
    assert r.headers["content-language"] == lang
    for w in words:
        assert w in r.text
    assert '<a href="/ui/" class="back">' in r.text


def test_source_page_links_to_the_other_languages_keeping_the_passage(api: TestClient) -> None:
    page = api.get("/sources/china-sco-ttc-qingdao", params={"start": 3, "end": 9, "lang": "en"}).text
    links = dict(re.findall(r'<a href="([^"]+)" hreflang="([^"]+)"', page))
    assert {v: html.unescape(k) for k, v in links.items()} == {
        "zh-Hans": "/sources/china-sco-ttc-qingdao?start=3&end=9&lang=zh-Hans#quote",
        "zh-Hant": "/sources/china-sco-ttc-qingdao?start=3&end=9&lang=zh-Hant#quote",
    }
    assert '<span aria-current="true">English</span>' in page


def test_source_page_wraps_words_whole_and_lets_only_urls_break(api: TestClient) -> None:
    doc = api.get("/v1/documents/chengdu-chongqing-belt-road-ttc").json()
    url = re.search(r"https?://\S+|www\.\S+", doc["text"])
    assert url is not None
    page = api.get("/sources/chengdu-chongqing-belt-road-ttc").text
    assert ".doc{white-space:pre-wrap;word-break:normal;overflow-wrap:break-word" in page
    assert ".doc .url{overflow-wrap:anywhere}" in page
    assert "break-all" not in page
    assert re.search(r'<span class="url">' + re.escape(html.escape(url.group(0))[:20]), page)
