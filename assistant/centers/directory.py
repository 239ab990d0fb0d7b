"""`Directory`: the checked organizations of a corpus with its geography and sector concepts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from assistant.centers.concepts import Concepts
from assistant.centers.model import Center, DocInfo, Region, kind_label
from assistant.centers.places import Geography


@dataclass(frozen=True)
class Directory:
    """The checked directory, with the geography and sector concepts of the same corpus."""

    centers: tuple[Center, ...]
    documents: Mapping[str, DocInfo]
    path: Path
    geography: Geography
    concepts: Concepts

    @property
    def ids(self) -> list[str]:
        return [c.id for c in self.centers]

    @property
    def regions(self) -> Mapping[str, Region]:
        return self.geography.regions

    def get(self, center_id: str) -> Center:
        for c in self.centers:
            if c.id == center_id:
                return c
        raise KeyError(center_id)

    def kind_label(self, kind: str) -> tuple[str, str]:
        home = self.geography.home
        return kind_label(kind, home.name_en, home.name_zh)

    def filter(self, region: str | None = None, country: str | None = None) -> list[Center]:
        """Centers serving `region` (a code) and/or the regions of `country` (primary reach)."""
        centers = list(self.centers)
        if region:
            centers = [c for c in centers if region in c.regions("primary")]
        if country:
            places = self.geography.find_places([country]).places
            codes = set().union(*(p.regions for p in places)) if places else set()
            names = {p.name_en for p in places}
            centers = [
                c for c in centers if codes & set(c.regions("primary")) or names & set(c.countries())
            ]
        return centers
