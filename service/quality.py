"""Which DiaSources may enter a light curve and the history store (docs/data-quality.md).

A source is usable when its epoch is inside the valid range, its band is known, its flux is
finite, its error finite and positive, and none of the excluding pixel flags is set. Everything
else is dropped right after decoding, counted by reason, and never reaches Redis or the features.
"""

from __future__ import annotations

import time

import numpy as np
from numba import njit

from .columns import BANDS, DecodedBatch
from .decode.fields import FLAG_FIELDS

# 2000-01-01: earlier than any survey that emits these schemas; catches 0, negative and unset epochs.
EPOCH_MIN_MJD = 51544.0
# Epochs past the wall clock are impossible; one day absorbs clock skew and TAI - UTC (37 s).
FUTURE_TOLERANCE_DAYS = 1.0
UNIX_EPOCH_MJD = 40587.0

# The PSF flux is unreliable (its fit failed or met the image edge), or the 3x3 pixels around the
# centroid are compromised, or the flux is an injected fake. Footprint-wide flags (bad, cr,
# saturated, ... anywhere in the footprint) do not exclude: the PSF fit is centre-weighted.
EXCLUDING_FLAGS = (
    "psfFlux_flag",
    "psfFlux_flag_edge",
    "psfFlux_flag_noGoodPixels",
    "pixelFlags_edge",
    "pixelFlags_offimage",
    "pixelFlags_crCenter",
    "pixelFlags_nodataCenter",
    "pixelFlags_interpolatedCenter",
    "pixelFlags_saturatedCenter",
    "pixelFlags_suspectCenter",
    "pixelFlags_streakCenter",
    "pixelFlags_injected",
    "pixelFlags_injectedCenter",
)
EXCLUDING_MASK = sum(1 << FLAG_FIELDS.index(name) for name in EXCLUDING_FLAGS)

# Reason codes per row; 0 = usable. The names label alertfeat_sources_excluded.
REASONS = ("usable", "epoch_out_of_range", "band_unknown", "flux_not_finite", "flux_err_invalid", "pixel_flags")
N_BANDS = len(BANDS)


def epoch_range(now_s: float) -> tuple[float, float]:
    """[lowest, highest] valid midpointMjdTai at Unix time now_s."""
    return EPOCH_MIN_MJD, now_s / 86400.0 + UNIX_EPOCH_MJD + FUTURE_TOLERANCE_DAYS


@njit(cache=True, nogil=True)
def row_reasons(mjd, band, flux, flux_err, flags, lo, hi, excluding):
    """Reason code per row (index into REASONS), the first that applies; 0 when usable."""
    out = np.zeros(mjd.shape[0], np.int8)
    for r in range(mjd.shape[0]):
        if not (mjd[r] >= lo and mjd[r] <= hi):  # NaN fails too
            out[r] = 1
        elif band[r] < 0 or band[r] >= N_BANDS:
            out[r] = 2
        elif not np.isfinite(flux[r]):
            out[r] = 3
        elif not (np.isfinite(flux_err[r]) and flux_err[r] > 0.0):
            out[r] = 4
        elif flags[r] & excluding:
            out[r] = 5
    return out


def _reasons(src, lo: float, hi: float) -> np.ndarray:
    return row_reasons(src.mjd, src.band, src.flux, src.flux_err, src.flags, lo, hi, EXCLUDING_MASK)


def usable_rows(src, now_s: float | None = None) -> np.ndarray:
    """Mask of the usable rows of a Sources (stored records are re-checked with it)."""
    lo, hi = epoch_range(time.time() if now_s is None else now_s)
    return _reasons(src, lo, hi) == 0


def screen(batch: DecodedBatch, now_s: float | None = None) -> dict[str, int]:
    """Drop the unusable rows of a decoded batch in place; return how many per reason.

    Sets batch.epoch_ok (the alert's own epoch is valid: it has a window and may touch Redis) and
    batch.trigger_kept (its triggering diaSource survived and is still its first row). A batch is
    screened once; later calls return {}.
    """
    if batch.epoch_ok is not None:
        return {}
    lo, hi = epoch_range(time.time() if now_s is None else now_s)
    counts = np.zeros(len(REASONS), np.int64)
    code = _reasons(batch.sources, lo, hi)
    has_rows = batch.sources.counts() > 0
    batch.trigger_kept = np.zeros(batch.n, bool)
    batch.trigger_kept[has_rows] = code[batch.sources.offsets[:-1][has_rows]] == 0
    batch.epoch_ok = batch.ok & (batch.mjd >= lo) & (batch.mjd <= hi)
    counts += np.bincount(code, minlength=len(REASONS))
    batch.sources = batch.sources.kept(code == 0)
    if batch.forced is not None:
        forced_code = _reasons(batch.forced, lo, hi)
        counts += np.bincount(forced_code, minlength=len(REASONS))
        batch.forced = batch.forced.kept(forced_code == 0)
    return {REASONS[k]: int(c) for k, c in enumerate(counts.tolist()) if k and c}
