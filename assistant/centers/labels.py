"""Display labels for the directory's codes (`corpus/labels.yaml`): kinds and reach.

A data file beside the corpus, like places.yaml, so another deployment changes words, not
code. A missing file means no labels (codes are shown as written); a malformed one is a
`DirectoryError` naming the file, the row and the fix.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from assistant.centers.datafile import describe, read_yaml
from assistant.centers.model import DirectoryError

LABELS_FILE = "labels.yaml"


class Label(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    en: str = Field(min_length=1, max_length=80)
    zh_hans: str = Field(alias="zh-Hans", min_length=1, max_length=40)
    zh_hant: str = Field(alias="zh-Hant", min_length=1, max_length=40)

    def pair(self) -> str:
        """"English · 简体", where one text must serve readers of both."""
        return f"{self.en} · {self.zh_hans}"

    def text(self, language: str) -> str:
        """The label in `language` (en, zh-Hans, zh-Hant)."""
        return {"zh-Hans": self.zh_hans, "zh-Hant": self.zh_hant}.get(language, self.en)


class Labels(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = 1
    kinds: dict[str, Label] = Field(default_factory=dict)
    reach: dict[str, Label] = Field(default_factory=dict)

    def kind(self, code: str, language: str | None = None) -> str:
        """A kind's label in `language`; both "English · 简体" without one; the code when unknown."""
        label = self.kinds.get(code)
        if label is None:
            return code
        return label.text(language) if language else label.pair()

    def reach_of(self, code: str, language: str | None = None) -> str:
        label = self.reach.get(code)
        if label is None:
            return code
        return label.text(language) if language else label.pair()


def load_labels(corpus_dir: Path | str | None) -> Labels:
    """`corpus_dir/labels.yaml`, checked; empty Labels when there is no such file."""
    if corpus_dir is None:
        return Labels()
    path = Path(corpus_dir) / LABELS_FILE
    if not path.is_file():
        return Labels()
    raw = read_yaml(path, "labels for the directory's codes")
    if raw is None:
        return Labels()
    if not isinstance(raw, dict):
        raise DirectoryError(f"{LABELS_FILE}: expected a mapping with `kinds` and `reach`.")
    try:
        return Labels.model_validate(raw)
    except ValidationError as exc:
        raise DirectoryError(describe(LABELS_FILE, exc, raw)) from exc
