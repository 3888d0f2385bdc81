"""The feature stage: one validated entry point over the numba kernels."""

from __future__ import annotations

import numpy as np

from ..columns import Sources
from .kernels import N_BANDS, N_GLOBAL, N_PER_BAND, batch_features
from .spec import FeatureSpec, feature_spec

__all__ = ["FeatureSpec", "compute_features", "feature_spec", "warm_up"]


def compute_features(lc: Sources) -> np.ndarray:
    """float32 [n_alerts, n_features]; rows follow `lc.offsets`, columns `feature_spec().names`."""
    spec = feature_spec()
    if spec.size != N_GLOBAL + N_BANDS * N_PER_BAND:
        raise RuntimeError(f"schemas/features.json lists {spec.size} features, the kernel computes another count")
    out = np.empty((lc.n_alerts, spec.size), np.float32)
    batch_features(
        np.ascontiguousarray(lc.offsets, np.int64),
        np.ascontiguousarray(lc.mjd, np.float64),
        np.ascontiguousarray(lc.band, np.int8),
        np.ascontiguousarray(lc.flux, np.float64),
        np.ascontiguousarray(lc.flux_err, np.float64),
        out,
    )
    return out


def warm_up() -> None:
    """Compile (or load from cache) the kernels so the first alert does not pay for it."""
    compute_features(
        Sources.from_arrays(
            np.array([2], np.int64),
            source_id=np.array([1, 2], np.int64),
            mjd=np.array([60000.0, 60001.0]),
            band=np.array([1, 1], np.int8),
            flux=np.array([1.0, 2.0]),
            flux_err=np.array([0.1, 0.1]),
            flags=np.zeros(2, np.int64),
        )
    )
