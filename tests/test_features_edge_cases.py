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


def _periodogram_of(counts, flux=None, err=10.0) -> dict:
    t, bands = [], []
    for band, count in enumerate(counts):
        t += list(60000.0 + np.arange(count) * 5.3 + band)
        bands += [band] * count
    values = np.random.default_rng(1).normal(0, 100, len(t)) if flux is None else flux
    return features_of(curve(t, bands, values, [err] * len(t)))[0]


def test_periodogram_gate_is_on_residual_degrees_of_freedom():
    """points - 3 x (bands with >= 3 points) >= min_residual_dof (6): an offset and a sinusoid per band."""
    assert feature_spec().grid.min_residual_dof == 6
    assert math.isnan(_periodogram_of([0, 4, 7, 0, 0, 0])["multiPeriod"])  # 11 points, 2 bands: 5 dof
    assert np.isfinite(_periodogram_of([0, 4, 8, 0, 0, 0])["multiPeriod"])  # 12 points: 6 dof
    assert math.isnan(_periodogram_of([0, 0, 8, 0, 0, 0])["multiPeriod"])  # one band: 5 dof
    assert np.isfinite(_periodogram_of([0, 0, 9, 0, 0, 0])["multiPeriod"])  # 6 dof
    assert math.isnan(_periodogram_of([2, 2, 3, 3, 2, 2])["multiPeriod"])  # 6 points in bands with >= 3: 0 dof
    # Bands below 3 points take no part, and do not count against the degrees of freedom.
    assert np.isfinite(_periodogram_of([2, 2, 9, 0, 2, 2])["multiPeriod"])


def test_saturated_fits_give_nan_not_certainty():
    """Three points in each of three bands (nine points, nine parameters) fit exactly at every
    frequency: no period, no power, no false-alarm probability."""
    t, bands = [], []
    for band in (G, R, I):
        t += [60000.0 + band, 60010.7 + band, 60031.3 + band]
        bands += [band] * 3
    row = features_of(curve(t, bands, np.random.default_rng(2).normal(0, 100, 9), [10.0] * 9))[0]
    for name in ("multiPeriod", "multiPower", "multiFap", "multiPeriod2", "multiPower2", "g_multiAmp"):
        assert math.isnan(row[name]), name
    # 4 + 4 + 4 and 5 + 5 + 4 points leave 3 and 5 dof; 5 + 5 + 5 leave 6.
    assert math.isnan(_periodogram_of([0, 4, 4, 4, 0, 0])["multiFap"])
    assert math.isnan(_periodogram_of([0, 5, 5, 4, 0, 0])["multiFap"])
    assert np.isfinite(_periodogram_of([0, 5, 5, 5, 0, 0])["multiFap"])


def test_bands_of_exactly_three_points_take_part_with_their_full_chi2():
    """A 3-point band next to a long one: it is fitted exactly at every frequency (power share = its
    chi2_0), so the power is at least that share everywhere."""
    rng = np.random.default_rng(6)
    t = list(60000.0 + np.sort(rng.uniform(0, 300, 20))) + [60003.1, 60050.2, 60101.9]
    bands = [R] * 20 + [G] * 3
    flux = np.r_[rng.normal(0, 10, 20), [0.0, 30.0, -10.0]]
    row = features_of(curve(t, bands, flux, [10.0] * 23))[0]
    g = flux[20:] - flux[20:].mean()
    r = flux[:20] - flux[:20].mean()
    share = float((g**2).sum() / ((g**2).sum() + (r**2).sum()))
    assert np.isfinite(row["multiPeriod"]) and share <= row["multiPower2"] <= row["multiPower"] <= 1.0
    assert np.isfinite(row["g_multiAmp"])


@pytest.mark.parametrize("level", [700.0, 1e9])
def test_zero_variance_in_every_band_gives_no_period(level):
    """Six g points at 700 nJy and six r points at 500, errors 20 (and the same at 1e9 nJy), and
    fifteen r points at exactly 1e9: the periodogram of a zero-variance curve is undefined."""
    t = 60000.0 + np.arange(12) * 3.7
    two_bands = features_of(curve(t, [G] * 6 + [R] * 6, [level] * 6 + [level * 5 / 7] * 6, [20.0] * 12))[0]
    one_band = features_of(curve(60000.0 + np.arange(15) * 2.3, [R] * 15, [level] * 15, [20.0] * 15))[0]
    for row in (two_bands, one_band):
        for name in ("multiPeriod", "multiPower", "multiFap", "multiPeriod2", "multiPower2"):
            assert math.isnan(row[name]), name


def test_one_constant_band_beside_a_varying_one_still_runs():
    rng = np.random.default_rng(8)
    t = 60000.0 + np.sort(rng.uniform(0, 200, 24))
    flux = np.r_[[1e9] * 12, 1e9 + rng.normal(0, 20, 12)]
    row = features_of(curve(t, [G] * 12 + [R] * 12, flux, [20.0] * 24))[0]
    assert np.isfinite(row["multiFap"]) and 0.0 <= row["multiPower"] <= 1.0


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
    assert not any(math.isinf(v) for row in huge for v in row.values())


def test_values_beyond_float32_become_nan_never_inf():
    """Fluxes of 3e38 and errors of 1e-20 fit in float64 but their chi2, variance... do not fit in
    float32: those features are NaN; those that fit keep their value. Checked over all features."""
    rng = np.random.default_rng(9)
    t = 60000.0 + np.sort(rng.uniform(0, 300, 30))
    flux = np.r_[3e38 * rng.uniform(0.5, 1.0, 15), rng.normal(0, 100, 15)]
    err = np.r_[[1e-20] * 15, [10.0] * 15]
    bands = [G] * 15 + [R] * 15
    row = features_of(curve(t, bands, flux, err))[0]
    assert not any(math.isinf(v) for v in row.values()), [k for k, v in row.items() if math.isinf(v)]
    assert math.isnan(row["g_psfFluxChi2"]) and math.isnan(row["g_psfFluxExcessVar"])  # ~1e115, ~1e75
    assert row["g_psfFluxMax"] == pytest.approx(flux[:15].max(), rel=1e-6)  # it fits: kept
    assert np.isfinite(row["r_psfFluxMean"]) and np.isfinite(row["multiPower"])
    # Each overflowing value is one float64 cannot round into float32.
    from alertfeat.features import compute_features
    from tests.feature_oracles import as_sources

    assert np.all(~np.isinf(compute_features(as_sources([curve(t, bands, flux, err)]))))


def test_inconsistent_offsets_are_a_programming_error():
    from alertfeat.columns import Sources
    from alertfeat.features import compute_features

    with pytest.raises(ValueError):
        compute_features(Sources.from_arrays(np.array([5]), source_id=np.zeros(2, np.int64), mjd=np.zeros(2),
                                             band=np.zeros(2, np.int8), flux=np.zeros(2), flux_err=np.ones(2),
                                             flags=np.zeros(2, np.int64)))
