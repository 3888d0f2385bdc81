"""multiFap is a calibrated false-alarm probability: Monte Carlo on Rubin-like cadences.

White noise with correctly stated errors (the null hypothesis) on 12-120 points, nights with two
visits in different bands, one 240-d season in the 365-d window: the fraction of light curves
with multiFap < alpha must not exceed alpha beyond sampling noise (3 binomial standard
deviations). Strong sinusoids (5 sigma, >= 30 points) must still be detected at multiFap < 0.01
in >= 90 % of cases. The Monte Carlo lives here only; the kernel evaluates a closed form.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from alertfeat.features import compute_features, feature_spec
from tests.feature_oracles import as_sources, rubin_cadence_curve

MIN_DETECTION_RATE = 0.90


def _faps(n_curves: int, seed: int, amplitude_sigma: float = 0.0, min_points: int = 12) -> np.ndarray:
    rng = np.random.default_rng(seed)
    curves = [rubin_cadence_curve(rng, int(rng.integers(min_points, 121)), amplitude_sigma) for _ in range(n_curves)]
    return compute_features(as_sources(curves))[:, feature_spec().index("multiFap")].astype(np.float64)


def _calibration_table(fap: np.ndarray, alphas) -> list[tuple[float, int, int, float]]:
    """(alpha, curves with a periodogram, curves with multiFap < alpha, allowed count)."""
    ran = fap[np.isfinite(fap)]
    n = len(ran)
    return [(a, n, int(np.sum(ran < a)), a * n + 3.0 * math.sqrt(a * (1 - a) * n)) for a in alphas]


def _check(table):
    report = "; ".join(f"alpha {a}: {hits}/{n} = {hits / n:.4f} (allowed {allowed:.0f})" for a, n, hits, allowed in table)
    assert all(hits <= allowed for _, _, hits, allowed in table), report
    print(report)


def test_white_noise_fap_is_calibrated_at_10_and_1_percent():
    fap = _faps(4000, seed=11)
    assert np.isfinite(fap).sum() >= 3500  # the gate leaves most of these curves a periodogram
    assert np.all((fap[np.isfinite(fap)] >= 0) & (fap[np.isfinite(fap)] <= 1))
    _check(_calibration_table(fap, (0.1, 0.01)))


@pytest.mark.slow
def test_white_noise_fap_is_calibrated_at_one_in_a_thousand():
    """0.001 needs tens of thousands of curves to say anything: 30,000 (expected <= 30 hits)."""
    fap = _faps(30000, seed=12)
    _check(_calibration_table(fap, (0.1, 0.01, 0.001)))


def test_strong_sinusoids_are_detected():
    fap = _faps(1000, seed=13, amplitude_sigma=5.0, min_points=30)
    rate = float(np.mean(np.nan_to_num(fap, nan=1.0) < 0.01))
    print(f"detected {rate:.1%} of 1000 sinusoids of 5 sigma at multiFap < 0.01")
    assert rate >= MIN_DETECTION_RATE


def test_the_previous_pooled_formula_would_fail_this_calibration():
    """The check can fail: version 1's multiFap (Baluev's one-band formula on the pooled points,
    astropy's fap_baluev) on the same null curves calls far more than 1 % significant at 0.01."""
    from astropy.timeseries.periodograms.lombscargle._statistics import fap_baluev

    rng = np.random.default_rng(14)
    curves = [rubin_cadence_curve(rng, int(rng.integers(12, 121))) for _ in range(600)]
    rows = compute_features(as_sources(curves))
    power = rows[:, feature_spec().index("multiPower")].astype(np.float64)
    def pooled(c):  # the points of the bands taking part (>= 3 points each)
        return np.bincount(c.band, minlength=6)[c.band] >= 3

    old = np.array([fap_baluev(min(p, 1.0), feature_spec().grid.max_frequency, c.mjd[pooled(c)], c.flux[pooled(c)],
                               c.flux_err[pooled(c)], normalization="standard") if np.isfinite(p) else np.nan
                    for c, p in zip(curves, power)])
    table = _calibration_table(old, (0.01,))
    assert table[0][2] > table[0][3], table
