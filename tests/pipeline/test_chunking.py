"""Chunking: exact offsets, sentence boundaries, token bounds, whole tables, headings."""

from __future__ import annotations

import pytest

from assistant.pipeline.chunking import ChunkerConfig, chunk_document, embedding_text, tiktoken_counter
from assistant.pipeline.corpus import load_corpus
from assistant.types import Document
from tests.conftest import CORPUS

CONFIG = ChunkerConfig()


@pytest.fixture(scope="module")
def chunked():  # type: ignore[no-untyped-def]
    return {d.doc_id: (d, chunk_document(d, CONFIG)) for d in load_corpus(CORPUS)}


def test_every_chunk_is_its_document_slice(chunked) -> None:  # type: ignore[no-untyped-def]
    for doc, chunks in chunked.values():
        assert chunks
        for c in chunks:
            assert c.text == doc.text[c.start : c.end]
            assert c.doc_id == doc.doc_id
            assert c.text == c.text.strip()


def test_chunks_cover_the_document_in_order(chunked) -> None:  # type: ignore[no-untyped-def]
    for doc, chunks in chunked.values():
        starts = [c.start for c in chunks]
        assert starts == sorted(starts)
        covered = set()
        for c in chunks:
            covered.update(range(c.start, c.end))
        letters = [i for i, ch in enumerate(doc.text) if not ch.isspace()]
        missing = [i for i in letters if i not in covered]
        assert len(missing) <= 0.02 * len(letters), f"{doc.doc_id}: {len(missing)} characters not in any chunk"


def test_text_chunks_respect_the_token_bound(chunked) -> None:  # type: ignore[no-untyped-def]
    count = tiktoken_counter()
    for _doc, chunks in chunked.values():
        for c in chunks:
            if not c.is_table:
                # A heading line may ride along on top of a full chunk.
                body = c.text if not c.heading else c.text.replace(c.heading, "", 1)
                assert count(body) <= CONFIG.max_tokens + 8, c.chunk_id


def test_chunks_end_at_sentence_ends(chunked) -> None:  # type: ignore[no-untyped-def]
    enders = set("。！？；!?;.”\"）)|")
    ok = total = 0
    for _doc, chunks in chunked.values():
        for c in chunks:
            if c.is_table:
                continue
            total += 1
            ok += c.text[-1] in enders or c.text[-1].isalnum() or c.text[-1] in "」』】"
    assert ok / total > 0.9


def test_tables_are_kept_whole_with_their_caption(chunked) -> None:  # type: ignore[no-untyped-def]
    _doc, chunks = chunked["chengdu-chongqing-belt-road-ttc"]
    tables = [c for c in chunks if c.is_table]
    captions = {c.heading for c in tables}
    assert {"表 1 国外政府部门牵头型技术转移机构运维模式", "表 2 国外企业牵头型技术转移机构业务模式", "表 3 国内典型国际技术转移机构概况"} <= captions
    table3 = next(c for c in tables if c.heading and c.heading.startswith("表 3"))
    # All seven centers of 表3 in one chunk, first row to last.
    for name in ("中国—阿拉伯", "金砖国家技术", "中非创新", "中国—东盟", "中国—中东欧", "中国—拉美和", "中国—上合"):
        assert name in table3.text


def test_sections_are_recorded(chunked) -> None:  # type: ignore[no-untyped-def]
    _doc, chunks = chunked["chengdu-chongqing-belt-road-ttc"]
    asean = [c for c in chunks if "唯一一家经国家批准的面向东盟国家" in c.text]
    assert asean and asean[0].heading == "3.1 中国—东盟技术转移中心"
    _doc, news = chunked["china-sco-ttc-qingdao"]
    assert any(c.heading == "创新机制,实现“自我造血”" for c in news)


def test_page_break_fragments_are_not_headings(chunked) -> None:  # type: ignore[no-untyped-def]
    _doc, chunks = chunked["chengdu-chongqing-belt-road-ttc"]
    headings = {c.heading for c in chunks}
    assert "田晓翌¹, 颜晓虹¹, 唐华国², 刘可然²" not in headings
    assert "中国现有国际技术转移机构大部分是由事业" not in headings


def test_language_per_chunk(chunked) -> None:  # type: ignore[no-untyped-def]
    _doc, chunks = chunked["china-asean-conference-10th"]
    assert {c.language for c in chunks} == {"zh-Hant"}
    _doc, chunks = chunked["guangdong-cis-union"]
    assert {c.language for c in chunks} == {"zh-Hans", "en"}


def test_chunk_ids_are_stable_and_content_addressed(chunked) -> None:  # type: ignore[no-untyped-def]
    doc, chunks = chunked["china-sco-ttc-qingdao"]
    again = chunk_document(doc, CONFIG)
    assert [c.chunk_id for c in again] == [c.chunk_id for c in chunks]
    edited = Document(**{**doc.__dict__, "text": doc.text.replace("2018年6月", "2018年7月")})
    changed = {c.chunk_id for c in chunk_document(edited, CONFIG)} ^ {c.chunk_id for c in chunks}
    assert 0 < len(changed) <= 4  # only the chunks around the edit change


def test_long_sentence_is_split_within_bound() -> None:
    doc = Document("long", "Long", "，".join(["技术转移中心面向东盟国家开展合作"] * 200) + "。")
    chunks = chunk_document(doc, ChunkerConfig(max_tokens=64, overlap_sentences=0))
    count = tiktoken_counter()
    assert len(chunks) > 5
    assert all(count(c.text) <= 64 for c in chunks)
    assert "".join(c.text for c in chunks) == doc.text


def test_no_comma_run_is_cut_by_characters() -> None:
    doc = Document("run", "Run", "技" * 2000)
    chunks = chunk_document(doc, ChunkerConfig(max_tokens=100, overlap_sentences=0))
    assert "".join(c.text for c in chunks) == doc.text
    assert all(tiktoken_counter()(c.text) <= 100 for c in chunks)


def test_embedding_text_uses_simplified_script(chunked) -> None:  # type: ignore[no-untyped-def]
    doc, chunks = chunked["china-asean-conference-10th"]
    text = embedding_text(doc, chunks[0])
    assert "东盟" in text and "東盟" not in text


def test_markdown_headings_and_pipe_tables_from_the_readers() -> None:
    # The DOCX and HTML readers write headings as `#` lines and table rows as `cell | cell`.
    text = (
        "# Annual review\n\nThe center grew.\n\n## Partners\n\n"
        "Name | Country | Year\nKazTech | Kazakhstan | 2019\nUzInno | Uzbekistan | 2021\n\nMore about partners."
    )
    chunks = chunk_document(Document("d", "T", text), ChunkerConfig())
    assert [(c.heading, c.is_table) for c in chunks] == [("Annual review", False), ("Partners", True), ("Partners", False)]
    assert all(text[c.start : c.end] == c.text for c in chunks)


def test_the_seed_corpus_chunks_as_indexed() -> None:
    # Changes to the chunker (e.g. reader formats) must not change the chunks, and so the
    # ids, of existing indexes: tests/data/seed_chunk_ids.json holds the seed corpus's ids.
    import json
    from pathlib import Path

    recorded = json.loads((Path(__file__).parents[1] / "data" / "seed_chunk_ids.json").read_text("utf-8"))
    assert recorded["chunker"] == ChunkerConfig().as_dict()
    docs = {d.doc_id: d for d in load_corpus(CORPUS)}
    assert set(docs) == set(recorded["chunks"])
    for doc_id, ids in recorded["chunks"].items():
        assert [c.chunk_id for c in chunk_document(docs[doc_id], ChunkerConfig())] == ids, doc_id
