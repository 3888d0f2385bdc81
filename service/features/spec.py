"""Feature names, units and version, read from the published schemas/features.json."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True)
class FeatureSpec:
    version: int
    bands: tuple[str, ...]
    global_names: tuple[str, ...]
    per_band_names: tuple[str, ...]
    units: dict[str, str]
    docs: dict[str, str]

    @property
    def names(self) -> tuple[str, ...]:
        """Global features, then per band in band order: `{band}_{feature}`."""
        return self.global_names + tuple(f"{b}_{f}" for b in self.bands for f in self.per_band_names)

    @property
    def size(self) -> int:
        return len(self.global_names) + len(self.bands) * len(self.per_band_names)

    def index(self, name: str) -> int:
        return self.names.index(name)


@cache
def feature_spec() -> FeatureSpec:
    data = json.loads(resources.files("alertfeat.schemas").joinpath("features.json").read_text())
    units, docs = {}, {}
    for entry in data["global"] + data["per_band"]:
        units[entry["name"]] = entry["unit"]
        docs[entry["name"]] = entry["doc"]
    return FeatureSpec(
        version=int(data["version"]),
        bands=tuple(data["bands"]),
        global_names=tuple(e["name"] for e in data["global"]),
        per_band_names=tuple(e["name"] for e in data["per_band"]),
        units=units,
        docs=docs,
    )
