"""Feature kernel speed: µs per 80-epoch light curve (~13 points per band), against light-curve
computing comparable statistics plus its multiband periodogram on the same frequency grid, in the
same run, on one core. Best of `repeats` passes over the same curves; the machine may be shared.
"""

from __future__ import annotations

import math
import platform
import time

import numpy as np

from alertfeat.columns import BANDS, Sources
from alertfeat.features import _column_of_slot, compute_features, feature_spec, periodogram, warm_up
from alertfeat.features.kernels import batch_features

PHASE_EPOCH = 60000.0


def light_curves(n_curves: int, epochs: int, seed: int) -> Sources:
    """One visit per night over a year, bands uniform (~epochs/6 per band); a mix of constant,
    periodic, transient and noisy difference fluxes with ~200 nJy errors."""
    rng = np.random.default_rng(seed)
    counts, columns = [], {name: [] for name in ("mjd", "band", "flux", "flux_err")}
    for k in range(n_curves):
        n = epochs
        mjd = 60600.0 + np.sort(rng.choice(365, n, replace=False)) + rng.uniform(0.05, 0.35, n)
        band = rng.integers(0, len(BANDS), n).astype(np.int8)
        kind = k % 4
        if kind == 0:
            signal = np.full(n, rng.normal(0, 300))
        elif kind == 1:
            signal = rng.uniform(500, 5000) * np.sin(2 * np.pi * (mjd - PHASE_EPOCH) / np.exp(rng.uniform(-1.6, 3.9)))
        elif kind == 2:
            dt = mjd - rng.uniform(mjd[0], mjd[-1])
            signal = rng.uniform(1e4, 1e5) * np.exp(-dt / 30.0) / (1.0 + np.exp(-dt / 4.0))
        else:
            signal = rng.normal(0, 2000, n)
        err = 200.0 * rng.uniform(0.7, 1.5, n)
        counts.append(n)
        columns["mjd"].append(mjd)
        columns["band"].append(band)
        columns["flux"].append(signal + rng.normal(0, 1, n) * err)
        columns["flux_err"].append(err)
    cat = {name: np.concatenate(parts) for name, parts in columns.items()}
    m = len(cat["mjd"])
    return Sources.from_arrays(np.array(counts), source_id=np.arange(m, dtype=np.int64), flags=np.zeros(m, np.int64),
                               **cat)


def _best_seconds(fn, repeats: int) -> tuple[float, float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), float(np.median(times))


def _statistics_only(lc: Sources) -> None:
    """The kernel with the periodogram gate set out of reach: points, statistics and colors only."""
    spec = feature_spec()
    grid = spec.grid
    out = np.empty((lc.n_alerts, spec.size), np.float32)
    batch_features(lc.offsets, lc.source_id, lc.mjd, lc.band, lc.flux, lc.flux_err, spec.duplicate_time_days,
                   grid.min_frequency, grid.step, grid.n_freq, grid.max_frequency, np.iinfo(np.int64).max,
                   grid.min_points_per_band, grid.phase_epoch_mjd, _column_of_slot(), out)


def _scan_inputs(lc: Sources) -> list[tuple]:
    """Per curve, what the periodogram scans: bands of > 3 points, times centred, weights and
    weighted residuals scaled to unit sums (as kernels._periodogram_features prepares them)."""
    inputs = []
    for i in range(lc.n_alerts):
        rows = lc.rows(i)
        t, band, flux, err = lc.mjd[rows], lc.band[rows], lc.flux[rows], lc.flux_err[rows]
        parts = [np.flatnonzero(band == b) for b in range(len(BANDS))]
        used = [p for p in parts if len(p) >= 3]
        scanned = [p for p in used if len(p) > 3]
        if sum(len(p) for p in used) - 3 * len(used) < feature_spec().grid.min_residual_dof or not scanned:
            continue
        chi2 = {}
        for p in used:
            w = err[p] ** -2.0
            chi2[id(p)] = float((w * (flux[p] - np.average(flux[p], weights=w)) ** 2).sum())
        weight_total = sum(float((err[p] ** -2.0).sum()) for p in used)
        chi2_total = sum(chi2.values())
        if not chi2_total > 0:
            continue
        y_scale = math.sqrt(chi2_total / weight_total)
        order = np.concatenate(scanned)
        w = err[order] ** -2.0
        residual = np.concatenate([flux[p] - np.average(flux[p], weights=err[p] ** -2.0) for p in scanned])
        seg = np.cumsum([0] + [len(p) for p in scanned]).astype(np.int64)
        inputs.append((t[order] - 0.5 * (t.min() + t.max()), w / weight_total, w * residual / (weight_total * y_scale),
                       seg, np.array([float((err[p] ** -2.0).sum()) for p in scanned]) / weight_total,
                       np.array([chi2[id(p)] for p in scanned]) / chi2_total,
                       1.0 - sum(chi2[id(p)] for p in scanned) / chi2_total))
    return inputs


def _scan_only(inputs: list[tuple], ws) -> None:
    grid = feature_spec().grid
    for t, w, wy, seg, weight, chi2_0, share in inputs:
        periodogram._scan(t, w, wy, grid.min_frequency, grid.step, grid.n_freq, seg, weight, chi2_0, share, ws)


def light_curve_extractor():
    """light-curve features comparable to ours, per band, plus its multiband periodogram on our grid."""
    import light_curve as lcf

    bands = list(BANDS)
    per_band = [
        lcf.ObservationCount(bands=bands), lcf.WeightedMean(bands=bands), lcf.Mean(bands=bands),
        lcf.StandardDeviation(bands=bands), lcf.ReducedChi2(bands=bands), lcf.Amplitude(bands=bands),
        lcf.Median(bands=bands), lcf.InterPercentileRange(0.05, bands=bands),
        lcf.InterPercentileRange(0.25, bands=bands), lcf.MedianAbsoluteDeviation(bands=bands),
        lcf.Skew(bands=bands), lcf.Kurtosis(bands=bands), lcf.LinearFit(bands=bands), lcf.StetsonK(bands=bands),
        lcf.ExcessVariance(bands=bands), lcf.Eta(bands=bands), lcf.BeyondNStd(1.0, bands=bands),
        lcf.MaximumSlope(bands=bands),
    ]
    grid = feature_spec().grid
    periodogram = lcf.Periodogram(peaks=2, freqs=2 * np.pi * grid.frequencies(), fast=False, bands=bands)
    return lcf.Extractor(*per_band), periodogram, lcf.__version__


def run(n_curves: int = 200, epochs: int = 80, repeats: int = 3, seed: int = 1) -> dict:
    lc = light_curves(n_curves, epochs, seed)
    warm_up()
    compute_features(lc)
    ours, ours_median = _best_seconds(lambda: compute_features(lc), repeats)
    statistics, _ = _best_seconds(lambda: _statistics_only(lc), repeats)
    inputs = _scan_inputs(lc)
    ws = periodogram.new_workspace(int(lc.counts().max()), feature_spec().grid.n_freq)
    _scan_only(inputs[:1], ws)
    scan, _ = _best_seconds(lambda: _scan_only(inputs, ws), repeats)

    statistics_lc, periodogram_lc, version = light_curve_extractor()
    labels = np.array(list(BANDS))
    curves = [(lc.mjd[lc.rows(i)], lc.flux[lc.rows(i)], lc.flux_err[lc.rows(i)], labels[lc.band[lc.rows(i)]])
              for i in range(lc.n_alerts)]
    statistics_lc.many(curves[:2], n_jobs=1)
    periodogram_lc.many(curves[:2], n_jobs=1)
    theirs_statistics, _ = _best_seconds(lambda: statistics_lc.many(curves, n_jobs=1), repeats)
    theirs_periodogram, _ = _best_seconds(lambda: periodogram_lc.many(curves, n_jobs=1), repeats)
    theirs = theirs_statistics + theirs_periodogram

    per_curve = 1e6 / n_curves
    counts = lc.counts()
    return {
        "light_curves": n_curves,
        "epochs_per_curve": float(counts.mean()),
        "points_per_band": round(float(counts.mean()) / len(BANDS), 1),
        "grid_frequencies": feature_spec().grid.n_freq,
        "features": feature_spec().size,
        "ours_us_per_curve": round(ours * per_curve, 1),
        "ours_median_us_per_curve": round(ours_median * per_curve, 1),
        "ours_breakdown_us": {
            "points_and_statistics": round(statistics * per_curve, 1),
            "periodogram": round((ours - statistics) * per_curve, 1),
            "of_which_float32_scan": round(scan * per_curve, 1),
        },
        "light_curve_us_per_curve": round(theirs * per_curve, 1),
        "light_curve_breakdown_us": {
            "statistics": round(theirs_statistics * per_curve, 1),
            "multiband_periodogram": round(theirs_periodogram * per_curve, 1),
        },
        "light_curve_version": version,
        "speedup_vs_light_curve": round(theirs / ours, 2) if ours > 0 else math.nan,
        "repeats": repeats,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
    }
