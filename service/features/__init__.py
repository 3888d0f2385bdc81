"""The feature stage: one validated entry point over the numba kernels."""

from __future__ import annotations

from functools import cache

import numpy as np

from ..columns import BANDS, Sources
from .gls import LANES
from .kernels import batch_features
from .layout import N_SLOTS, slot_names
from .spec import FeatureSpec, PeriodogramGrid, feature_spec

__all__ = ["FeatureSpec", "PeriodogramGrid", "compute_features", "feature_spec", "warm_up"]


@cache
def _column_of_slot() -> np.ndarray:
    """Where each kernel slot goes in the published order; fails if the two name sets differ."""
    spec = feature_spec()
    if spec.bands != tuple(BANDS):
        raise RuntimeError(f"schemas/features.json bands {spec.bands} differ from the band codes {BANDS!r}")
    slots = slot_names(spec.bands)
    if sorted(slots) != sorted(spec.names) or len(spec.names) != N_SLOTS:
        missing = sorted(set(spec.names) - set(slots))
        extra = sorted(set(slots) - set(spec.names))
        raise RuntimeError(f"schemas/features.json and the kernels disagree: not computed {missing}, "
                           f"not published {extra}")
    if spec.grid.n_freq < LANES:
        raise RuntimeError(f"the periodogram grid needs at least {LANES} frequencies")
    column = {name: i for i, name in enumerate(spec.names)}
    return np.array([column[name] for name in slots], np.int64)


def _check_layout(lc: Sources) -> None:
    """The kernels index without bounds checks: the offsets must describe the columns."""
    m = len(lc.mjd)
    lengths = {len(getattr(lc, name)) for name in ("source_id", "band", "flux", "flux_err")}
    offsets = np.asarray(lc.offsets)
    if lengths != {m} or len(offsets) < 1 or offsets[0] != 0 or offsets[-1] != m or np.any(np.diff(offsets) < 0):
        raise ValueError(f"Sources offsets/columns are inconsistent: {len(offsets) - 1} alerts, {m} rows")


def compute_features(lc: Sources) -> np.ndarray:
    """float32 [n_alerts, n_features]; rows follow `lc.offsets`, columns `feature_spec().names`.

    The result does not depend on the order of rows within an alert.
    """
    _check_layout(lc)
    spec = feature_spec()
    grid = spec.grid
    out = np.empty((lc.n_alerts, spec.size), np.float32)
    batch_features(
        np.ascontiguousarray(lc.offsets, np.int64),
        np.ascontiguousarray(lc.source_id, np.int64),
        np.ascontiguousarray(lc.mjd, np.float64),
        np.ascontiguousarray(lc.band, np.int8),
        np.ascontiguousarray(lc.flux, np.float64),
        np.ascontiguousarray(lc.flux_err, np.float64),
        spec.duplicate_time_days,
        grid.min_frequency,
        grid.step,
        grid.n_freq,
        grid.max_frequency,
        grid.min_residual_dof,
        grid.min_points_per_band,
        grid.phase_epoch_mjd,
        _column_of_slot(),
        out,
    )
    return out


def warm_up() -> None:
    """Compile (or load from cache) the kernels so the first alert does not pay for it."""
    rng = np.random.default_rng(0)
    n = 24
    compute_features(
        Sources.from_arrays(
            np.array([n, 0], np.int64),
            source_id=np.arange(n, dtype=np.int64),
            mjd=60000.0 + np.sort(rng.uniform(0, 100, n)),
            band=np.repeat(np.arange(6, dtype=np.int8), n // 6),
            flux=rng.normal(100.0, 10.0, n),
            flux_err=np.full(n, 10.0),
            flags=np.zeros(n, np.int64),
        )
    )
