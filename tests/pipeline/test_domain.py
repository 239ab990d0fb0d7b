"""The corpus's data files (synonyms, names, examples): loading, defaults, and errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.errors import AssistantError
from assistant.pipeline.answer import _english_terms
from assistant.pipeline.domain import DomainData, DomainDataError, load_domain
from assistant.pipeline.keyword import query_tokens
from assistant.settings import PROJECT_ROOT


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_seed_corpus_files_load() -> None:
    domain = load_domain(PROJECT_ROOT / "corpus")
    assert ("asean", ("东盟",)) in domain.synonyms.glossary
    assert ("越南", ("东盟",)) in domain.synonyms.regions
    assert ("中国—东盟技术转移中心", "China–ASEAN Technology Transfer Center") in domain.names.english
    assert "ASEAN" in domain.names.china_partners
    assert domain.examples and all(isinstance(q, str) and q for q in domain.examples)


def test_missing_files_mean_no_domain_data(tmp_path: Path) -> None:
    assert load_domain(tmp_path) == DomainData()
    _write(tmp_path, "synonyms.yaml", "# nothing yet\n")
    _write(tmp_path, "examples.yaml", "")
    assert load_domain(tmp_path) == DomainData()


def test_the_data_drives_search_and_english_names(tmp_path: Path) -> None:
    _write(tmp_path, "synonyms.yaml", "glossary:\n  - en: Tech Transfer\n    zh: [技術轉移]\nregions:\n  - places: 越南\n    regions: 东盟\n")
    _write(tmp_path, "names.yaml", "names:\n  - zh: 南宁\n    en: Nanning\nchina_partners: [ASEAN]\n")
    domain = load_domain(tmp_path)
    assert domain.synonyms.glossary == (("tech transfer", ("技术转移",)),)
    tokens = query_tokens("Who does tech-transfer with Vietnam (越南)?", domain.synonyms)
    assert "转移" in tokens and "东盟" in tokens
    assert "转移" not in query_tokens("Who does tech-transfer?", DomainData().synonyms)
    assert _english_terms("It is in 南宁 [1].", domain.names) == "It is in Nanning [1]."
    assert _english_terms("The Chinese—ASEAN center.", domain.names) == "The China–ASEAN center."
    assert _english_terms("The Chinese—ASEAN center.", DomainData().names) == "The Chinese—ASEAN center."


@pytest.mark.parametrize(
    ("name", "text", "words"),
    [
        ("synonyms.yaml", "glossary: [\n", ["not valid YAML", "line"]),
        ("synonyms.yaml", "- en: asean\n  zh: 东盟\n", ["must be a mapping with the keys glossary, regions"]),
        ("synonyms.yaml", "glosary: []\n", ["unknown key(s) glosary"]),
        ("synonyms.yaml", "glossary:\n  - en: asean\n", ["glossary entry 1 ('asean')", "missing zh"]),
        ("synonyms.yaml", "glossary:\n  - en: asean\n    zh: 东盟\n    note: x\n", ["unknown key(s) note"]),
        ("synonyms.yaml", "glossary:\n  - en: [asean]\n    zh: [东盟, 3]\n", ["glossary entry 1 ('asean')", "`zh` must be"]),
        ("synonyms.yaml", "glossary:\n  - en: []\n    zh: 东盟\n", ["glossary entry 1", "`en` must be"]),
        ("synonyms.yaml", "glossary:\n  - en: '—'\n    zh: 东盟\n", ["has no letter or digit"]),
        ("synonyms.yaml", "glossary:\n  - en: ASEAN\n    zh: 东盟\n  - en: [x, asean]\n    zh: 东盟\n",
         ["glossary entry 2 ('x')", "'asean' is already in glossary entry 1 ('ASEAN')"]),
        ("synonyms.yaml", "regions:\n  - places: [越南, 越南]\n    regions: 东盟\n", ["regions entry 1", "the place '越南'"]),
        ("synonyms.yaml", "regions: {越南: 东盟}\n", ["regions: must be a list of entries"]),
        ("names.yaml", "names:\n  - zh: 南宁\n    en: [Nanning]\n", ["names entry 1 ('南宁')", "`en` must be one"]),
        ("names.yaml", "names:\n  - zh: 东盟\n    en: ASEAN\n  - zh: 東盟\n    en: ASEAN\n", ["names entry 2 ('東盟')", "already in names entry 1"]),
        ("names.yaml", "china_partners: 3\n", ["china_partners", "must be a non-empty string"]),
        ("examples.yaml", "question: why?\n", ["must be a list of questions"]),
        ("examples.yaml", "- Why?\n- \n", ["example 2", "non-empty string"]),
    ],
)
def test_malformed_files_name_the_file_the_entry_and_the_problem(
    tmp_path: Path, name: str, text: str, words: list[str]
) -> None:
    path = _write(tmp_path, name, text)
    with pytest.raises(DomainDataError) as caught:
        load_domain(tmp_path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    for word in words:
        assert word in message
    assert isinstance(caught.value, AssistantError)


def test_a_file_that_is_not_utf8_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "names.yaml").write_bytes("names: 东盟".encode("gb18030"))
    with pytest.raises(DomainDataError, match=r"names\.yaml: cannot be read as UTF-8"):
        load_domain(tmp_path)
