"""The Centers tab's rendering: labels from corpus/labels.yaml instead of codes, quotes
opened by a tap, wide tables in sideways-scrolling boxes, map labels that fit, the goal
form before the directory. (The phone layout in Chromium: tests/web/browser.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from assistant.centers.directory import Directory
from assistant.centers.labels import LABELS_FILE, Labels, load_labels
from assistant.centers.load import directory_from_documents
from assistant.centers.model import DirectoryError
from assistant.pipeline.corpus import load_corpus
from assistant.settings import PROJECT_ROOT
from assistant.web.ui.centers import (
    _fit,
    render_comparison,
    render_directory_table,
    render_region_map,
    render_regions_picture,
)

CORPUS = PROJECT_ROOT / "corpus"


@pytest.fixture(scope="module")
def directory() -> Directory:
    return directory_from_documents(CORPUS, load_corpus(CORPUS))


@pytest.fixture(scope="module")
def labels() -> Labels:
    return load_labels(CORPUS)


def _text(page: str) -> str:
    return re.sub(r"<[^>]+>", " ", page)


def test_the_labels_file_names_every_kind_in_three_languages(directory: Directory, labels: Labels) -> None:
    kinds = {c.kind for c in directory.centers}
    assert kinds <= set(labels.kinds)
    assert labels.kind("regional-center") == "Regional center · 区域中心"
    assert labels.kinds["regional-center"].zh_hant == "區域中心"
    assert labels.kind("regional-center", "zh-Hant") == "區域中心" and labels.kind("regional-center", "en") == "Regional center"
    assert labels.reach_of("outreach", "zh-Hans") == "仅外联方向"
    assert labels.reach_of("outreach") == "outreach only · 仅外联方向"
    assert labels.kind("unknown-code") == "unknown-code"


def test_the_directory_shows_labels_not_codes(directory: Directory, labels: Labels) -> None:
    page = render_directory_table(directory, "all", labels=labels)
    text = _text(page)
    assert "Regional center" in text and "Provincial alliance" in text
    for code in ("regional-center", "provincial-union", "university-platform", "foreign-model", "(outreach)"):
        assert code not in text, code
    assert "Central and Eastern Europe — outreach only" in text  # the SCO center's outreach
    # In the page's language, one at a time.
    hans = _text(render_directory_table(directory, "all", labels=labels, lang="zh-Hans"))
    assert "区域中心" in hans and "中东欧 — 仅外联方向" in hans and "Regional center" not in hans
    hant = _text(render_directory_table(directory, "all", labels=labels, lang="zh-Hant"))
    assert "區域中心" in hant and "中東歐 — 僅外聯方向" in hant and "区域中心" not in hant


def test_the_comparison_shows_labels_not_codes(directory: Directory, labels: Labels) -> None:
    page = render_comparison(directory, ["china-asean", "china-sco"], labels=labels)
    text = _text(page)
    assert "Regional center" in text
    assert "Central and Eastern Europe — outreach only" in text
    assert not re.search(r"\bcee\b|regional-center|\(outreach\)", text)
    hant = _text(render_comparison(directory, ["china-asean", "china-sco"], labels=labels, lang="zh-Hant"))
    assert "區域中心" in hant and "中東歐 — 僅外聯方向" in hant and "服務地區" in hant


def test_quotes_open_by_tap_not_hover_only(directory: Directory, labels: Labels) -> None:
    page = render_directory_table(directory, "all", labels=labels)
    assert page.count('<details class="tt-quote">') >= len(directory.centers)
    # Every passage link sits inside a tap-to-open quote: none is reachable by hover only.
    assert page.count('class="tt-src"') == page.count('<details class="tt-quote">')
    host = directory.get("china-asean").first("host")
    assert host is not None and host.quote_ref() is not None
    assert f"<blockquote>{host.quote_ref().quote}</blockquote>" in page  # type: ignore[union-attr]


def test_wide_tables_scroll_inside_their_own_box(directory: Directory, labels: Labels) -> None:
    for page in (
        render_directory_table(directory, "all", labels=labels),
        render_comparison(directory, ["china-asean", "china-sco"], labels=labels),
        render_regions_picture(directory),
    ):
        assert '<div class="tt-scroll" tabindex="0" role="region"' in page


def test_map_labels_that_would_overflow_are_fitted(directory: Directory) -> None:
    assert _fit("ASEAN", 9, 100) == ""
    assert 'textLength="100"' in _fit("Central & Eastern Europe and many more words", 9, 100)
    svg = render_region_map(directory)
    assert 'lengthAdjust="spacingAndGlyphs"' in svg  # the long footnote at least


def test_a_broken_labels_file_names_the_file_and_row(tmp_path: Path) -> None:
    (tmp_path / LABELS_FILE).write_text("kinds:\n  regional-center: {en: Regional center}\n", "utf-8")
    with pytest.raises(DirectoryError) as info:
        load_labels(tmp_path)
    assert str(info.value).startswith(LABELS_FILE) and "regional-center" in str(info.value)
    assert load_labels(tmp_path / "nowhere") == Labels()


def test_the_goal_form_comes_before_the_directory(directory: Directory) -> None:
    from types import SimpleNamespace

    import gradio as gr

    from assistant.web.ui.centers import build_centers_tab

    fake = SimpleNamespace(settings=SimpleNamespace(corpus_dir=CORPUS), documents=lambda: [])
    with gr.Blocks() as demo, gr.Tab("Centers"):
        build_centers_tab(fake)  # type: ignore[arg-type]
    # The labels are keys of the UI's strings, shown in the page's language.
    keys = [getattr(getattr(b, "label", None), "key", None) for b in demo.blocks.values()]
    keys = [x for x in keys if x]
    assert keys.index("tt.goal") < keys.index("tt.region") < keys.index("tt.compare_pick")
