"""Feature names, units, version and periodogram grid, read from the published schemas/features.json."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np


@dataclass(frozen=True)
class PeriodogramGrid:
    """Frequencies f_k = min_frequency + k * step, k = 0 .. n_freq - 1 (cycles/day)."""

    baseline_days: float
    oversampling: float
    max_frequency: float
    min_residual_dof: int  # points - 3 x bands taking part, at least
    min_points_per_band: int
    phase_epoch_mjd: float

    @property
    def min_frequency(self) -> float:
        return 1.0 / self.baseline_days

    @property
    def step(self) -> float:
        return 1.0 / (self.oversampling * self.baseline_days)

    @property
    def n_freq(self) -> int:
        # The top of the grid is max_frequency itself when it falls on the grid (it does for v1).
        return int(np.floor((self.max_frequency - self.min_frequency) / self.step + 1e-9)) + 1

    def frequencies(self) -> np.ndarray:
        return self.min_frequency + self.step * np.arange(self.n_freq)


@dataclass(frozen=True)
class FeatureSpec:
    version: int
    bands: tuple[str, ...]
    global_names: tuple[str, ...]
    per_band_names: tuple[str, ...]
    units: dict[str, str]
    docs: dict[str, str]
    duplicate_time_days: float
    grid: PeriodogramGrid

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
    pg = data["periodogram"]
    return FeatureSpec(
        version=int(data["version"]),
        bands=tuple(data["bands"]),
        global_names=tuple(e["name"] for e in data["global"]),
        per_band_names=tuple(e["name"] for e in data["per_band"]),
        units=units,
        docs=docs,
        duplicate_time_days=float(data["duplicate_time_days"]),
        grid=PeriodogramGrid(
            baseline_days=float(pg["baseline_days"]),
            oversampling=float(pg["oversampling"]),
            max_frequency=float(pg["max_frequency_per_day"]),
            min_residual_dof=int(pg["min_residual_dof"]),
            min_points_per_band=int(pg["min_points_per_band"]),
            phase_epoch_mjd=float(pg["phase_epoch_mjd"]),
        ),
    )
