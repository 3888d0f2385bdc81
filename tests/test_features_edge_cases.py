"""Every edge case docs/features.md names gives a defined result, never an exception."""

from __future__ import annotations

import math

import numpy as np
import pytest

from alertfeat.features import feature_spec
from tests.feature_oracles import BAND_ORACLES, curve, features_of

G, R, I = 1, 2, 3  # band codes


def _band_values(row: dict, band: str) -> dict[str, float]:
    return {name: row[f"{band}_{name}"] for name in feature_spec().per_band_names}


def _random_band(n: int, band: int = G, seed: int = 0, t0: float = 60500.0):
    rng = np.random.default_rng(seed)
    return (t0 + np.sort(rng.choice(300, n, replace=False)) + rng.uniform(0.1, 0.3, n), [band] * n,
            rng.normal(500.0, 200.0, n), rng.uniform(50.0, 100.0, n))


def test_no_points():
    row = features_of(curve([], [], [], []))[0]
    assert row["nDiaSources"] == 0
    for band in feature_spec().bands:
        assert row[f"{band}_nObs"] == 0
    defined = {"nDiaSources"} | {f"{b}_nObs" for b in feature_spec().bands}
    assert all(math.isnan(v) for k, v in row.items() if k not in defined)


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(a[k] == b[k] or (math.isnan(a[k]) and math.isnan(b[k])) for k in a)


def test_only_invalid_points_count_as_no_points():
    row = features_of(curve([60000.0, 60001.0, 60002.0, math.nan, 60004.0], [G, G, -1, G, G],
                            [math.nan, 1.0, 1.0, 1.0, math.inf], [1.0, 0.0, 1.0, 1.0, 1.0]))[0]
    assert _same(row, features_of(curve([], [], [], []))[0])


def test_one_point():
    row = features_of(curve([60010.5], [R], [-42.0], [7.0]))[0]
    r = _band_values(row, "r")
    assert row["nDiaSources"] == 1 and row["firstMjd"] == row["lastMjd"] == row["peakMjd"] == np.float32(60010.5)
    assert row["fracNegative"] == 1.0
    assert r["nObs"] == 1 and r["psfFluxMean"] == -42.0 and r["psfFluxMeanErr"] == 7.0 and r["psfFluxErrMean"] == 7.0
    assert r["psfFluxMin"] == r["psfFluxMax"] == r["psfFluxPercentile05"] == r["psfFluxPercentile95"] == -42.0
    assert r["psfFluxMAD"] == 0.0
    for name in ("psfFluxSigma", "psfFluxChi2", "psfFluxMaxSlope", "psfFluxStetsonJ", "psfFluxEta",
                 "psfFluxLinearSlope", "psfFluxSkew", "psfFluxRiseRate", "multiAmp"):
        assert math.isnan(r[name]), name
    assert math.isnan(row["multiPeriod"]) and math.isnan(row["colorGR"])


SIDED = ("psfFluxRiseRate", "psfFluxDeclineRate")  # their minimum is per side of the maximum: tested below


@pytest.mark.parametrize("oracle", [o for o in BAND_ORACLES if o.min_points > 0 and o.feature not in SIDED],
                         ids=lambda o: o.feature + "-" + o.library)
def test_feature_is_nan_below_its_minimum_and_defined_at_it(oracle):
    """docs/features.md's minimum number of points, feature by feature (from the oracle table)."""
    below = _random_band(oracle.min_points - 1, seed=oracle.min_points)
    at = _random_band(oracle.min_points, seed=oracle.min_points)
    rows = features_of(curve(*below), curve(*at))
    assert math.isnan(rows[0][f"g_{oracle.feature}"])
    assert np.isfinite(rows[1][f"g_{oracle.feature}"])


def test_rise_and_decline_need_two_points_on_their_side():
    rising = features_of(curve([60000.0, 60001.0, 60002.0], [G] * 3, [1.0, 2.0, 3.0], [1.0] * 3))[0]
    assert rising["g_psfFluxRiseRate"] == pytest.approx(1.0) and math.isnan(rising["g_psfFluxDeclineRate"])
    falling = features_of(curve([60000.0, 60001.0, 60002.0], [G] * 3, [3.0, 2.0, 1.0], [1.0] * 3))[0]
    assert falling["g_psfFluxDeclineRate"] == pytest.approx(-1.0) and math.isnan(falling["g_psfFluxRiseRate"])


def test_zero_negative_and_non_finite_errors_and_fluxes_are_ignored():
    t, b, f, e = _random_band(12)
    clean = features_of(curve(t, b, f, e))[0]
    noisy = curve(np.r_[t, t[:5] + 0.5], np.r_[b, [G, G, G, G, -1]], np.r_[f, [1.0, math.nan, 2.0, math.inf, 3.0]],
                  np.r_[e, [0.0, 1.0, -1.0, 1.0, 1.0]], np.r_[np.arange(1, 13), np.arange(100, 105)])
    assert _same(clean, features_of(noisy)[0])


def test_negative_and_zero_mean_difference_flux():
    t = 60000.0 + np.arange(12) * 3.1
    negative = features_of(curve(np.r_[t, t], [G] * 12 + [R] * 12, np.r_[-np.linspace(100, 200, 12),
                                                                     np.linspace(100, 200, 12)], [10.0] * 24))[0]
    assert negative["g_psfFluxMean"] < 0 and math.isnan(negative["colorGR"])
    assert negative["fracNegative"] == 0.5
    assert np.isfinite(negative["g_psfFluxExcessVar"]) and np.isfinite(negative["g_psfFluxStetsonJ"])
    zero_mean = features_of(curve(t, [R] * 12, np.tile([-50.0, 50.0], 6), [10.0] * 12))[0]
    r = _band_values(zero_mean, "r")
    assert r["psfFluxMean"] == 0.0 and math.isnan(zero_mean["colorRI"])
    for name in ("psfFluxSigma", "psfFluxChi2", "psfFluxStetsonJ", "psfFluxStetsonK", "psfFluxExcessVar", "psfFluxEta",
                 "psfFluxSkew", "psfFluxKurtosis", "psfFluxLinearSlope"):
        assert np.isfinite(r[name]), name


def test_colors_from_weighted_means():
    t = 60000.0 + np.arange(4)
    row = features_of(curve(np.r_[t, t, t], [G] * 4 + [R] * 4 + [I] * 4, [200.0] * 4 + [100.0] * 4 + [400.0] * 4,
                            [1.0] * 12))[0]
    assert row["colorGR"] == pytest.approx(-2.5 * math.log10(2.0), rel=1e-6)
    assert row["colorRI"] == pytest.approx(-2.5 * math.log10(0.25), rel=1e-6)


def test_duplicate_times_count_once_keeping_the_larger_diasourceid():
    base = features_of(curve([60000.0, 60001.0, 60002.0], [G] * 3, [10.0, 20.0, 30.0], [1.0] * 3, [1, 2, 3]))[0]
    # Within 1e-6 d in the same band: one point, the larger diaSourceId's values (here the later row).
    dup = features_of(curve([60000.0, 60001.0, 60001.0 + 5e-7, 60002.0], [G] * 4, [10.0, 99.0, 20.0, 30.0],
                            [1.0] * 4, [1, 2, 7, 3]))[0]
    assert dup["g_nObs"] == 3 and dup["g_psfFluxMean"] == base["g_psfFluxMean"]
    # Chains: each point within 1e-6 d of the previous one collapses to one point.
    chain = features_of(curve([60001.0, 60001.0 + 8e-7, 60001.0 + 1.6e-6], [G] * 3, [1.0, 2.0, 3.0], [1.0] * 3,
                              [5, 9, 4]))[0]
    assert chain["g_nObs"] == 1 and chain["g_psfFluxMean"] == 2.0
    # Further apart, or in another band: both count.
    apart = features_of(curve([60001.0, 60001.0 + 2e-6, 60001.0], [G, G, R], [1.0, 2.0, 3.0], [1.0] * 3))[0]
    assert apart["g_nObs"] == 2 and apart["r_nObs"] == 1 and apart["nDiaSources"] == 3


def test_constant_flux():
    t = 60000.0 + np.arange(15) * 7.3
    row = features_of(curve(t, [G] * 15, [0.1] * 15, np.linspace(5.0, 9.0, 15)))[0]
    g = _band_values(row, "g")
    assert g["psfFluxSigma"] == 0.0 and g["psfFluxChi2"] == 0.0 and g["psfFluxMAD"] == 0.0
    assert g["psfFluxStetsonJ"] == 0.0 and g["psfFluxBeyond1Std"] == 0.0 and g["psfFluxMaxSlope"] == 0.0
    assert g["psfFluxExcessVar"] == pytest.approx(-np.mean(np.linspace(5.0, 9.0, 15) ** 2), rel=1e-6)
    for name in ("psfFluxSkew", "psfFluxKurtosis", "psfFluxStetsonK", "psfFluxEta"):
        assert math.isnan(g[name]), name  # 0/0 by their definitions
    assert abs(g["psfFluxLinearSlope"]) < 1e-9 and g["psfFluxLinearRedChi2"] < 1e-20
    # The periodogram's gate passes, but there is no variance to fit.
    assert math.isnan(row["multiPeriod"]) and math.isnan(g["multiAmp"])


def test_single_band_only_runs_the_periodogram_on_that_band():
    t = 60000.0 + np.sort(np.random.default_rng(3).uniform(0, 200, 30))
    flux = 1000.0 * np.sin(2 * np.pi * (t - 60000.0) / 3.7) + 5.0
    row = features_of(curve(t, [I] * 30, flux, [20.0] * 30))[0]
    assert 1.0 / row["multiPeriod"] == pytest.approx(1.0 / 3.7, abs=feature_spec().grid.step)
    assert row["i_multiAmp"] == pytest.approx(1000.0, rel=0.05)
    assert all(math.isnan(row[f"{b}_multiAmp"]) for b in "ugrzy")
    assert math.isnan(row["colorGR"]) and math.isnan(row["colorRI"])


def test_periodogram_gate_counts_only_bands_with_three_points():
    def run(counts):
        t, bands = [], []
        for band, count in enumerate(counts):
            t += list(60000.0 + np.arange(count) * 5.3 + band)
            bands += [band] * count
        flux = np.random.default_rng(1).normal(0, 100, len(t))
        return features_of(curve(t, bands, flux, [10.0] * len(t)))[0]["multiPeriod"]
    assert math.isnan(run([0, 4, 4, 0, 0, 0]))  # 8 points
    assert np.isfinite(run([0, 4, 5, 0, 0, 0]))  # 9
    assert math.isnan(run([2, 2, 3, 3, 2, 2]))  # 14 points, only 6 in bands with >= 3


def test_bands_of_exactly_three_points_fit_exactly_everywhere():
    t, bands = [], []
    for band in (G, R, I):
        t += [60000.0 + band, 60010.7 + band, 60031.3 + band]
        bands += [band] * 3
    row = features_of(curve(t, bands, np.random.default_rng(2).normal(0, 100, 9), [10.0] * 9))[0]
    spec = feature_spec()
    assert row["multiPeriod"] == np.float32(1.0 / spec.grid.min_frequency) and row["multiPower"] == 1.0
    assert math.isnan(row["multiPeriod2"]) and row["multiFap"] == 0.0
    assert np.isfinite(row["g_multiAmp"])


def test_peak_is_the_earliest_highest_snr_and_max_slope_is_signed():
    row = features_of(curve([60000.0, 60001.0, 60002.0, 60003.0], [G, G, R, R], [10.0, 100.0, 50.0, -400.0],
                            [1.0, 10.0, 5.0, 1.0]))[0]
    assert row["peakMjd"] == 60000.0  # SNR 10 at 60000, 60001 and 60002: the earliest
    assert row["r_psfFluxMaxSlope"] == pytest.approx(-450.0)


def test_linear_at_last_uses_the_objects_last_epoch():
    row = features_of(curve([60000.0, 60001.0, 60002.0, 60010.0], [G, G, G, R], [1.0, 2.0, 3.0, 5.0], [1.0] * 4))[0]
    assert row["lastMjd"] == 60010.0 and row["g_psfFluxLinearAtLast"] == pytest.approx(11.0)


def test_sinusoid_phase_is_referred_to_mjd_60000():
    spec = feature_spec()
    frequency = spec.grid.min_frequency + 1234 * spec.grid.step
    t = 60300.0 + np.sort(np.random.default_rng(4).uniform(0, 300, 40))
    flux = 7.0 + 300.0 * np.sin(2 * np.pi * frequency * (t - 60000.0) + 0.6)
    row = features_of(curve(t, [R] * 40, flux, [1.0] * 40))[0]
    assert row["multiPeriod"] == pytest.approx(1.0 / frequency, rel=1e-6)
    assert row["r_multiAmp"] == pytest.approx(300.0, rel=1e-5) and row["r_multiPhase"] == pytest.approx(0.6, abs=1e-5)


def test_extreme_values_give_numbers_or_nan_not_exceptions():
    t = 60000.0 + np.arange(20) * 1.5
    huge = features_of(curve(t, [G] * 10 + [R] * 10, np.r_[[1e30] * 5, [-1e30] * 15], [1e-30] * 20),
                       curve(t, [G] * 20, np.full(20, 1e-300), np.full(20, 1e300)),
                       curve(np.full(20, 60000.0), [G] * 20, np.arange(20.0), [1.0] * 20))
    assert len(huge) == 3
    assert huge[2]["g_nObs"] == 1  # twenty points at one time in one band are one point


def test_inconsistent_offsets_are_a_programming_error():
    from alertfeat.columns import Sources
    from alertfeat.features import compute_features

    with pytest.raises(ValueError):
        compute_features(Sources.from_arrays(np.array([5]), source_id=np.zeros(2, np.int64), mjd=np.zeros(2),
                                             band=np.zeros(2, np.int8), flux=np.zeros(2), flux_err=np.ones(2),
                                             flags=np.zeros(2, np.int64)))
