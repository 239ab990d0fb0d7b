"""Readers for PDF, DOCX and HTML: text, metadata, pages, and bad files skipped with reasons.

Every fixture is built here (reportlab for PDFs, python-docx for DOCX); nothing binary
is committed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.pipeline.corpus import (
    CorpusError,
    document_hash,
    dump_document,
    load_corpus,
    scan_corpus,
    split_front_matter,
)
from assistant.pipeline.formats import read_document
from assistant.pipeline.formats.html import extract_html
from assistant.pipeline.formats.pdf import join_pages
from assistant.types import Document

PAGE3_SENTENCE = "第三页的关键句：青岛中心与上合组织国家共建了十二个联合实验室。"
EN_SENTENCE = "The Kazakhstan branch opened a technology demonstration hall in Almaty in 2019."

# --------------------------------------------------------------------------- fixtures


def _canvas(path: Path):  # type: ignore[no-untyped-def]
    from reportlab.pdfgen import canvas

    return canvas.Canvas(str(path))


def _cid_font() -> str:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    return "STSong-Light"


_FILLER = [
    "中国—上海合作组织技术转移中心在第{i}季度举办了第{j}场企业对接活动。",
    "中心为中小企业提供技术评估、专利许可和国际合作咨询服务，累计服务{j}{i}家企业。",
    "第{j}批合作项目涉及现代农业、新能源和生物医药等{i}个领域。",
]


def make_chinese_pdf(path: Path, pages: int = 3) -> Path:
    """A Chinese PDF (STSong-Light) of `pages` pages, each longer than a chunk.

    PAGE3_SENTENCE is on page 3, after enough text that its chunk starts on page 3.
    """
    font = _cid_font()
    c = _canvas(path)
    c.setTitle("上合组织技术转移中心年度报告")
    c.setAuthor("青岛市科学技术局")
    for i in range(1, pages + 1):
        c.setFont(font, 11)
        c.drawString(60, 780, f"第{i}页 合作进展")
        lines = [_FILLER[j % 3].format(i=i, j=j + 1) for j in range(14)]
        if i == 3:
            lines.insert(10, PAGE3_SENTENCE)
        for n, line in enumerate(lines):
            c.drawString(60, 755 - 18 * n, line)
        c.showPage()
    c.save()
    return path


def make_english_pdf(path: Path) -> Path:
    c = _canvas(path)
    c.setTitle("China-SCO Technology Transfer Center: Annual Review")
    c.setAuthor("SCO Technology Transfer Center")
    c.setFont("Helvetica", 11)
    c.drawString(72, 760, "Cooperation with member states")
    c.drawString(72, 730, EN_SENTENCE)
    c.drawString(72, 715, "The center matched 120 projects between Chinese and Central Asian firms.")
    c.showPage()
    c.save()
    return path


def make_image_only_pdf(path: Path) -> Path:
    c = _canvas(path)
    c.rect(100, 100, 300, 400, fill=1)
    c.showPage()
    c.save()
    return path


def make_encrypted_pdf(path: Path, source: Path) -> Path:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for page in PdfReader(str(source)).pages:
        writer.add_page(page)
    writer.encrypt(user_password="secret", owner_password="owner")
    with path.open("wb") as fh:
        writer.write(fh)
    return path


def make_docx(path: Path) -> Path:
    import docx

    d = docx.Document()
    d.core_properties.title = "中国—阿拉伯国家技术转移中心简介"
    d.core_properties.author = "宁夏科技厅"
    d.add_heading("中阿技术转移中心", level=1)
    d.add_paragraph("中国—阿拉伯国家技术转移中心于2015年在宁夏银川成立。")
    d.add_heading("主要服务", level=2)
    d.add_paragraph("中心提供技术对接、联合研发和人才培训服务。")
    table = d.add_table(rows=3, cols=2)
    for r, (a, b) in enumerate([("年份", "对接项目"), ("2016", "35"), ("2017", "48")]):
        table.cell(r, 0).text = a
        table.cell(r, 1).text = b
    d.add_paragraph("表格之后的段落说明了合作成果。")
    d.save(str(path))
    return path


ARTICLE = "中国—东盟技术转移中心2023年促成技术转移项目156项，覆盖东盟十国。"
HTML_PAGE = f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<title>东盟中心发布年度成果_科技新闻_某某科技网</title>
<meta name="author" content="某某科技网编辑部">
<meta property="article:published_time" content="2024-03-15T09:00:00+08:00">
<script>var tracker = "do not index me";</script>
<style>.nav {{ color: red }}</style>
</head><body>
<div class="header"><div class="logo">某某科技网</div>
  <ul class="main-nav"><li><a href="/">首页</a></li><li><a href="/news">新闻中心</a></li>
  <li><a href="/policy">政策法规</a></li><li><a href="/about">关于我们</a></li></ul></div>
<div class="breadcrumb">当前位置：<a href="/">首页</a> &gt; <a href="/news">科技新闻</a> &gt; 正文</div>
<div class="wrap">
 <div class="article-content">
  <h1>东盟中心发布年度成果</h1>
  <div class="info">来源：广西日报 2024-03-15</div>
  <p>{ARTICLE}</p>
  <h2>合作成果</h2>
  <p>中心在南宁举办了第十届中国—东盟技术转移与创新合作大会，<br>签约项目金额超过十亿元。</p>
  <table><tr><th>国家</th><th>项目数</th></tr><tr><td>越南</td><td>32</td></tr></table>
  <div class="share-bar">分享到：<a>微信</a> <a>微博</a> <a>QQ空间</a></div>
 </div>
 <div class="sidebar"><h3>热门文章</h3><ul><li><a>不相关的侧栏新闻标题</a></li></ul></div>
</div>
<div class="footer"><p>关于我们 | 联系我们 | 网站地图</p>
<p>Copyright © 2024 某某科技网 版权所有</p><p>京ICP备12345678号-1 京公网安备11010502000001号</p></div>
</body></html>
"""

CHROME = ["首页", "新闻中心", "政策法规", "当前位置", "分享到", "微博", "QQ空间", "热门文章", "不相关的侧栏",
          "版权所有", "Copyright", "京ICP备12345678号", "公网安备", "联系我们", "tracker"]  # fmt: skip


def make_html(path: Path) -> Path:
    path.write_text(HTML_PAGE, "utf-8")
    return path


def make_mixed_corpus(folder: Path) -> Path:
    """One folder with every good and bad kind of file."""
    folder.mkdir(parents=True, exist_ok=True)
    make_chinese_pdf(folder / "sco-annual-report.pdf")
    make_english_pdf(folder / "sco-review-en.pdf")
    make_docx(folder / "china-arab-ttc.docx")
    make_html(folder / "asean-news.html")
    (folder / "notes.md").write_text(
        "---\ntitle: Notes\nkind: news_report\n---\n中国—东盟技术转移中心设在广西南宁。\n", "utf-8"
    )
    make_image_only_pdf(folder / "scanned.pdf")
    make_encrypted_pdf(folder / "locked.pdf", folder / "sco-review-en.pdf")
    (folder / "broken.pdf").write_bytes(b"this is not a PDF at all, just text with a .pdf name\n")
    (folder / "empty.docx").write_bytes(b"")
    (folder / "slides.pptx").write_bytes(b"PK\x03\x04not really")
    (folder / "gbk.txt").write_bytes("技术转移".encode("gbk"))
    return folder


EXPECTED_SKIPS = {
    "scanned.pdf": "no text layer (scanned?); run OCR first",
    "locked.pdf": "encrypted",
    "broken.pdf": "corrupt",
    "empty.docx": "empty",
    "slides.pptx": "unknown type",
    "gbk.txt": "not UTF-8",
}
GOOD_IDS = {"sco-annual-report", "sco-review-en", "china-arab-ttc", "asean-news", "notes"}


# --------------------------------------------------------------------------- PDF


def test_chinese_pdf_text_metadata_and_pages(tmp_path: Path) -> None:
    doc = read_document(make_chinese_pdf(tmp_path / "report.pdf"))
    assert doc.doc_id == "report"
    assert doc.title == "上合组织技术转移中心年度报告"
    assert doc.publisher == "青岛市科学技术局"
    assert doc.published and len(doc.published) == 10
    assert doc.language == "zh-Hans"
    assert PAGE3_SENTENCE in doc.text
    assert doc.pages is not None and len(doc.pages) == 3 and doc.pages[0] == 0
    at = doc.text.index(PAGE3_SENTENCE)
    assert doc.page_at(at) == 3
    assert doc.page_at(0) == 1
    assert doc.page_at(doc.pages[1]) == 2 and doc.page_at(doc.pages[1] - 1) == 1
    for i, start in enumerate(doc.pages, start=1):
        assert doc.text[start:].startswith(f"第{i}页")


def test_english_pdf(tmp_path: Path) -> None:
    doc = read_document(make_english_pdf(tmp_path / "en.pdf"))
    assert doc.title == "China-SCO Technology Transfer Center: Annual Review"
    assert doc.language == "en"
    assert EN_SENTENCE in doc.text and doc.page_at(doc.text.index(EN_SENTENCE)) == 1


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (make_image_only_pdf, "no text layer (scanned?); run OCR first"),
        (lambda p: make_encrypted_pdf(p, make_english_pdf(p.with_name("src.pdf"))), "encrypted"),
        (lambda p: (p.write_bytes(b"garbage, not a pdf"), p)[1], "corrupt"),
        (lambda p: (p.write_bytes(b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog"), p)[1], "corrupt"),
        (lambda p: (p.write_bytes(b""), p)[1], "empty"),
    ],
    ids=["image-only", "encrypted", "not-a-pdf", "truncated", "empty"],
)
def test_bad_pdfs_are_refused_with_the_reason(tmp_path: Path, make, reason: str) -> None:  # type: ignore[no-untyped-def]
    path = make(tmp_path / "bad.pdf")
    with pytest.raises(CorpusError, match=reason.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")) as info:
        read_document(path)
    assert "bad.pdf" in str(info.value)


def test_citation_carries_the_page_of_its_quote(tmp_path: Path) -> None:
    from assistant.pipeline.citations import verify_quote
    from assistant.types import Chunk

    doc = read_document(make_chinese_pdf(tmp_path / "r.pdf"))
    at = doc.text.index(PAGE3_SENTENCE)
    chunk = Chunk("r#x", "r", doc.pages[1] if doc.pages else 0, len(doc.text), doc.text[doc.pages[1] if doc.pages else 0 :])
    cite = verify_quote(doc, chunk, at - chunk.start, at - chunk.start + len(PAGE3_SENTENCE))
    assert cite is not None and cite.quote == PAGE3_SENTENCE and cite.page == 3
    assert cite.as_dict()["page"] == 3


def test_join_pages_records_page_starts_and_skips_empty_pages() -> None:
    text, starts = join_pages(["one", "", "three"])
    assert text == "one\n\nthree\n"
    assert starts == (0, 5, 5)
    doc = Document("d", "t", text, pages=starts)
    assert doc.page_at(text.index("three")) == 3


def test_sidecar_overrides_file_metadata(tmp_path: Path) -> None:
    path = make_english_pdf(tmp_path / "en.pdf")
    (tmp_path / "en.pdf.meta.yaml").write_text(
        "id: sco-review\ntitle: Annual Review 2020\nkind: policy_paper\npublished: 2020-12\n"
        "publisher: SCO Secretariat\nsource_notes: From the center's website.\n",
        "utf-8",
    )
    doc = read_document(path)
    assert (doc.doc_id, doc.title, doc.kind, doc.published, doc.publisher, doc.source_notes) == (
        "sco-review", "Annual Review 2020", "policy_paper", "2020-12", "SCO Secretariat", "From the center's website."
    )  # fmt: skip


def test_bad_sidecar_is_a_reason(tmp_path: Path) -> None:
    path = make_english_pdf(tmp_path / "en.pdf")
    (tmp_path / "en.pdf.meta.yaml").write_text("kind: blog\n", "utf-8")
    with pytest.raises(CorpusError, match="kind 'blog'"):
        read_document(path)
    (tmp_path / "en.pdf.meta.yaml").write_text("colour: red\n", "utf-8")
    with pytest.raises(CorpusError, match="unknown keys colour"):
        read_document(path)


def test_sidecar_for_a_markdown_file(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("---\ntitle: From front matter\n---\nBody text.\n", "utf-8")
    (tmp_path / "a.md.meta.yaml").write_text("kind: news_report\n", "utf-8")
    doc = read_document(tmp_path / "a.md")
    assert (doc.title, doc.kind, doc.text) == ("From front matter", "news_report", "Body text.\n")


def test_a_long_pdf_shows_reading_progress(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = make_chinese_pdf(tmp_path / "long.pdf", pages=200)
    doc = read_document(path, progress=True)
    assert doc.pages is not None and len(doc.pages) == 200
    assert doc.page_at(doc.text.index(PAGE3_SENTENCE)) == 3
    err = capsys.readouterr().err
    assert "Reading long.pdf" in err and "/200" in err and "page/s" in err
    read_document(path)  # progress=False: no bar
    assert "Reading" not in capsys.readouterr().err


# --------------------------------------------------------------------------- DOCX


def test_docx_headings_paragraphs_and_table_in_order(tmp_path: Path) -> None:
    doc = read_document(make_docx(tmp_path / "arab.docx"))
    assert doc.title == "中国—阿拉伯国家技术转移中心简介"
    assert doc.publisher == "宁夏科技厅"
    assert doc.text == (
        "# 中阿技术转移中心\n\n"
        "中国—阿拉伯国家技术转移中心于2015年在宁夏银川成立。\n\n"
        "## 主要服务\n\n"
        "中心提供技术对接、联合研发和人才培训服务。\n\n"
        "年份 | 对接项目\n2016 | 35\n2017 | 48\n\n"
        "表格之后的段落说明了合作成果。\n"
    )


def test_docx_without_title_takes_the_first_heading(tmp_path: Path) -> None:
    import docx

    d = docx.Document()
    d.add_heading("Technology Transfer Guide", level=1)
    d.add_paragraph("Body.")
    d.save(str(tmp_path / "guide.docx"))
    doc = read_document(tmp_path / "guide.docx")
    assert doc.title == "Technology Transfer Guide"
    assert doc.publisher is None and doc.published is None  # python-docx's template, not the document's


def test_corrupt_and_encrypted_docx(tmp_path: Path) -> None:
    (tmp_path / "bad.docx").write_bytes(b"not a zip")
    with pytest.raises(CorpusError, match="corrupt"):
        read_document(tmp_path / "bad.docx")
    (tmp_path / "locked.docx").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 512)
    with pytest.raises(CorpusError, match="encrypted"):
        read_document(tmp_path / "locked.docx")


# --------------------------------------------------------------------------- HTML


def test_html_keeps_the_article_and_drops_the_chrome(tmp_path: Path) -> None:
    doc = read_document(make_html(tmp_path / "news.html"))
    assert doc.title == "东盟中心发布年度成果"
    assert doc.publisher == "某某科技网编辑部"
    assert doc.published == "2024-03-15"
    assert ARTICLE in doc.text
    assert doc.text.startswith("# 东盟中心发布年度成果\n\n")
    assert "\n\n## 合作成果\n\n" in doc.text
    assert "中心在南宁举办了第十届中国—东盟技术转移与创新合作大会，\n签约项目金额超过十亿元。" in doc.text
    assert "国家 | 项目数\n越南 | 32" in doc.text
    for chrome in CHROME:
        assert chrome not in doc.text, chrome
    assert doc.pages is None and doc.page_at(0) is None


def test_html_without_article_markup_reads_the_body() -> None:
    page = "<html><body><nav>首页 新闻</nav><p>正文第一段。</p><p>正文第二段。</p><footer>京ICP备1号</footer></body></html>"
    extracted = extract_html(page.encode("utf-8"))
    assert extracted.text == "正文第一段。\n\n正文第二段。\n"


def test_html_in_gbk_with_a_declared_charset() -> None:
    page = '<html><head><meta charset="gbk"><title>标题</title></head><body><p>技术转移中心。</p></body></html>'
    extracted = extract_html(page.encode("gbk"))
    assert extracted.text == "技术转移中心。\n" and extracted.meta["title"] == "标题"


def test_article_paragraphs_mentioning_share_or_copyright_stay() -> None:
    long = "分享经验是中心的工作之一，" + "版权所有人可以通过中心许可专利。" * 15
    page = f"<html><body><article><p>分享经验很重要。</p><p>{long}</p></article></body></html>"
    text = extract_html(page).text
    assert "分享经验很重要。" in text and long in text


# --------------------------------------------------------------------------- corpus scan


def test_scan_reads_the_good_files_and_skips_the_bad_with_reasons(tmp_path: Path) -> None:
    corpus = make_mixed_corpus(tmp_path / "corpus")
    scan = scan_corpus(corpus)
    assert {d.doc_id for d in scan.documents} == GOOD_IDS
    reasons = {s.file: s.reason for s in scan.skipped}
    assert set(reasons) == set(EXPECTED_SKIPS)
    for name, expected in EXPECTED_SKIPS.items():
        assert expected in reasons[name], (name, reasons[name])
    assert not any(name in s.reason for s in scan.skipped for name in [s.file])  # file not repeated
    # The compatible API: documents only; strict raises on the first bad file.
    assert [d.doc_id for d in load_corpus(corpus)] == [d.doc_id for d in scan.documents]
    with pytest.raises(CorpusError, match=r"broken\.pdf"):
        load_corpus(corpus, strict=True)


def test_duplicate_ids_are_skipped_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("---\nid: same\n---\nx\n", "utf-8")
    (tmp_path / "b.md").write_text("---\nid: same\n---\ny\n", "utf-8")
    make_english_pdf(tmp_path / "c.pdf")
    (tmp_path / "c.pdf.meta.yaml").write_text("id: same\n", "utf-8")
    scan = scan_corpus(tmp_path)
    assert [d.source_file for d in scan.documents] == ["a.md"]
    assert [(s.file, "duplicate id" in s.reason) for s in scan.skipped] == [("b.md", True), ("c.pdf", True)]


def test_a_folder_with_only_bad_files_scans_to_nothing(tmp_path: Path) -> None:
    make_image_only_pdf(tmp_path / "scan.pdf")
    scan = scan_corpus(tmp_path)
    assert scan.documents == [] and [s.file for s in scan.skipped] == ["scan.pdf"]


def test_paged_document_round_trips_through_json_and_hashes(tmp_path: Path) -> None:
    doc = read_document(make_chinese_pdf(tmp_path / "r.pdf"))
    data = json.loads(json.dumps(doc.__dict__, ensure_ascii=False))
    assert isinstance(data["pages"], list)
    again = Document(**data)
    assert again == doc and isinstance(again.pages, tuple)
    assert document_hash(again) == document_hash(doc)
    # Pages are part of the hash (they change citations); an unpaged document's hash
    # is what it was before documents had pages.
    assert document_hash(doc) != document_hash(Document(**{**data, "pages": None}))
    meta, text = split_front_matter(dump_document(doc))
    assert text == doc.text and "pages" not in meta and meta["title"] == doc.title
