"""Loading and cleaning: the committed corpus is exactly the cleaned seed captures."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from assistant.pipeline.corpus import (
    PINYIN_ARTIFACT,
    CorpusError,
    clean_capture,
    document_hash,
    load_corpus,
    load_document,
    scan_corpus,
    split_front_matter,
)
from tests.conftest import CORPUS, SEED

SEED_TO_ID = {
    "000_f1fa3e768636f0f2.txt": "guangdong-cis-union",
    "001_8c7a0e00408586dc.txt": "chengdu-chongqing-belt-road-ttc",
    "002_1bbd572c9e7aa85d.txt": "integrated-tech-transfer-network",
    "003_d5b393bd11e886c1.txt": "china-asean-conference-10th",
    "004_4171bdcfe3462850.txt": "china-sco-ttc-qingdao",
}
CHROME = [
    "选择字号",
    "老虎机",
    "版权声明",
    "免責聲明",
    "上一篇",
    "下一篇",
    "网站首页",
    "微信公众号",
    "熱點資訊",
    "鉆瓜導讀",
    "相关新闻",
    "打印",
    "咨詢在線客服",
    "back_top",
    "天津 河北 山西",
]
ACRONYMS = ["NTTC", "IRC", "EEN", "KOTEC", "KTRS", "BTG", "IASP", "ITTN", "XIN", "CIS", "DOI"]
_ANY_PINYIN = re.compile(r"[\u4e00-\u9fff]\([a-zāáǎàēéěèīíǐìōóǒòūúǔùüǖǘǚǜ]{1,7}\)")


@pytest.fixture(scope="module")
def corpus():  # type: ignore[no-untyped-def]
    return {d.doc_id: d for d in load_corpus(CORPUS)}


def test_corpus_has_the_five_seed_documents_with_metadata(corpus) -> None:  # type: ignore[no-untyped-def]
    assert set(corpus) == set(SEED_TO_ID.values())
    asean = corpus["china-asean-conference-10th"]
    assert asean.kind == "news_report" and asean.language == "zh-Hant" and asean.published is None
    paper = corpus["chengdu-chongqing-belt-road-ttc"]
    assert paper.kind == "policy_paper" and paper.published == "2024"
    assert corpus["china-sco-ttc-qingdao"].published == "2021-01-22"
    assert corpus["integrated-tech-transfer-network"].publisher == "中国科学报"
    for doc in corpus.values():
        assert doc.title and doc.source_notes


@pytest.mark.parametrize("seed_file", sorted(SEED_TO_ID))
def test_committed_text_is_the_cleaned_capture(seed_file: str, corpus) -> None:  # type: ignore[no-untyped-def]
    raw = (SEED / seed_file).read_text("utf-8")
    assert corpus[SEED_TO_ID[seed_file]].text == clean_capture(raw).text


@pytest.mark.parametrize("doc_id", sorted(SEED_TO_ID.values()))
def test_no_chrome_and_no_pinyin_left(doc_id: str, corpus) -> None:  # type: ignore[no-untyped-def]
    text = corpus[doc_id].text
    for marker in CHROME:
        assert marker not in text, f"{marker!r} left in {doc_id}"
    assert not _ANY_PINYIN.search(text)


def test_acronyms_survive_cleaning(corpus) -> None:  # type: ignore[no-untyped-def]
    everything = "\n".join(d.text for d in corpus.values())
    for acronym in ACRONYMS:
        assert acronym in everything


def test_cleaning_keeps_article_text_verbatim() -> None:
    raw = (SEED / "002_1bbd572c9e7aa85d.txt").read_text("utf-8")
    cleaned = clean_capture(raw).text
    # Every kept line is a line of the capture, unchanged.
    raw_lines = set(raw.splitlines())
    for line in cleaned.splitlines():
        assert line in raw_lines or not line.strip()
    assert "国际技术转移协作网络(ITTN)秘书长张璋" in cleaned


def test_pinyin_pattern_is_tight() -> None:
    cleaned = clean_capture(
        "技術(shù)轉(zhuǎn)移 英国技术集团(BTG) 中心(IRC) 会议(2021) 汉字(abc)\n"
    ).text
    assert cleaned == "技術轉移 英国技术集团(BTG) 中心(IRC) 会议(2021) 汉字(abc)\n"
    assert PINYIN_ARTIFACT.pattern  # the documented tight pattern is importable


def test_traditional_document_reads_naturally(corpus) -> None:  # type: ignore[no-untyped-def]
    text = corpus["china-asean-conference-10th"].text
    assert "中國—東盟技術轉移中心" in text
    assert text.startswith("第10屆中國—東盟技術轉移與創新合作大會在廣西南寧開幕\n")


def test_plain_txt_without_metadata_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "my_notes-2024.txt").write_text("中国—东盟技术转移中心位于广西。\n", "utf-8")
    (doc,) = load_corpus(tmp_path)
    assert doc.doc_id == "my_notes-2024"
    assert doc.title == "my notes 2024"
    assert doc.kind == "unknown" and doc.published is None
    assert doc.language == "zh-Hans"
    assert doc.text == "中国—东盟技术转移中心位于广西。\n"


def test_front_matter_is_not_part_of_the_text(tmp_path: Path) -> None:
    path = tmp_path / "a.md"
    path.write_text(
        "---\nid: a-doc\ntitle: T\nkind: news_report\npublished: 2021-01-19\n---\nBody.\n", "utf-8"
    )
    doc = load_document(path)
    assert (doc.doc_id, doc.title, doc.kind, doc.published, doc.text) == (
        "a-doc",
        "T",
        "news_report",
        "2021-01-19",
        "Body.\n",
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("---\ntitle: [unclosed\n---\nx", "not valid YAML"),
        ("---\nkind: blog\n---\nx", "kind 'blog'"),
        ("---\npublished: last year\n---\nx", "YYYY"),
        ("---\nid: 'bad id!'\n---\nx", "may use only"),
        ("---\ntitle: T\n---\n   \n", "no text"),
    ],
)
def test_bad_files_are_rejected_with_the_file_named(
    tmp_path: Path, content: str, message: str
) -> None:
    (tmp_path / "broken.md").write_text(content, "utf-8")
    with pytest.raises(CorpusError, match=message) as info:
        load_corpus(tmp_path, strict=True)
    assert "broken.md" in str(info.value)
    # Not strict (what ingest does): the file is skipped with the reason, not fatal.
    scan = scan_corpus(tmp_path)
    assert scan.documents == [] and [s.file for s in scan.skipped] == ["broken.md"]
    assert re.search(message, scan.skipped[0].reason)


def test_non_utf8_and_duplicates_are_rejected(tmp_path: Path) -> None:
    (tmp_path / "gbk.txt").write_bytes("技术转移".encode("gbk"))
    with pytest.raises(CorpusError, match="UTF-8"):
        load_corpus(tmp_path, strict=True)
    (tmp_path / "gbk.txt").unlink()
    (tmp_path / "a.md").write_text("---\nid: same\n---\nx\n", "utf-8")
    (tmp_path / "b.md").write_text("---\nid: same\n---\ny\n", "utf-8")
    with pytest.raises(CorpusError, match="already used"):
        load_corpus(tmp_path, strict=True)
    assert [d.text for d in load_corpus(tmp_path)] == ["x\n"]  # the first one is kept


def test_missing_folder_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="ASSISTANT_CORPUS_DIR"):
        load_corpus(tmp_path / "nope")


def test_readme_and_hidden_files_are_not_documents(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("# about\n", "utf-8")
    (tmp_path / ".draft.md").write_text("x\n", "utf-8")
    (tmp_path / "doc.md").write_text("text\n", "utf-8")
    assert [d.doc_id for d in load_corpus(tmp_path)] == ["doc"]


def test_split_front_matter_without_block() -> None:
    assert split_front_matter("no front matter\n") == ({}, "no front matter\n")


def test_data_files_are_not_documents_and_unknown_types_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "places.yaml").write_text("a: 1\n", "utf-8")
    (tmp_path / "doc.md").write_text("text\n", "utf-8")
    (tmp_path / "slides.pptx").write_bytes(b"PK")
    scan = scan_corpus(tmp_path)
    assert [d.doc_id for d in scan.documents] == ["doc"]
    assert [(s.file, "unknown type" in s.reason) for s in scan.skipped] == [("slides.pptx", True)]


def test_unpaged_documents_hash_as_before_pages_existed(corpus) -> None:  # type: ignore[no-untyped-def]
    import hashlib

    doc = corpus["china-sco-ttc-qingdao"]
    h = hashlib.sha256(doc.text.encode("utf-8"))
    for key in ("doc_id", "kind", "language", "published", "publisher", "source_notes", "title"):
        h.update(f"\x00{key}={getattr(doc, key)}".encode())
    assert doc.pages is None and document_hash(doc) == h.hexdigest()
