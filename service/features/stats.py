"""Per-band statistics of psfFlux. Pure numba over finite, time-ordered points of one band.

No fastmath here: several features are NaN by definition (0/0 on constant flux) and must stay so.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .layout import (
    BEYOND_1STD, CHI2, DECLINE_RATE, ERR_MEAN, ETA, EXCESS_VAR, KURTOSIS, LINEAR_AT_LAST, LINEAR_RED_CHI2,
    LINEAR_SLOPE, LINEAR_SLOPE_ERR, MAD, MAX, MAX_SLOPE, MEAN, MEAN_ERR, MIN, N_OBS, P05, P25, P50, P75, P95,
    RISE_RATE, SIGMA, SKEW, STETSON_J, STETSON_K,
)

MIN_SLOPE_DT_DAYS = 1e-6  # docs/features.md: pairs closer in time are skipped by psfFluxMaxSlope
# Stetson's iterative mean, with Rubin's meas_base parameters (StetsonJDiaPsfFlux._stetson_mean).
STETSON_ALPHA = 2.0
STETSON_BETA = 2.0
STETSON_ITERATIONS = 20
STETSON_TOL = 1e-6
INSERTION_SORT_MAX = 48


@njit(cache=True, nogil=True, error_model="numpy")
def sort_in_place(x):
    n = x.shape[0]
    if n > INSERTION_SORT_MAX:
        x.sort()
        return
    for k in range(1, n):
        v = x[k]
        j = k - 1
        while j >= 0 and x[j] > v:
            x[j + 1] = x[j]
            j -= 1
        x[j + 1] = v


@njit(cache=True, nogil=True, error_model="numpy")
def percentile_sorted(x, q):
    """numpy's default ("linear") percentile of sorted x, including its lerp rounding."""
    n = x.shape[0]
    pos = (n - 1) * (q / 100.0)
    below = int(math.floor(pos))
    if below >= n - 1:
        return x[n - 1]
    frac = pos - below
    a = x[below]
    b = x[below + 1]
    diff = b - a
    if frac >= 0.5:
        return b - diff * (1.0 - frac)
    return a + diff * frac


@njit(cache=True, nogil=True, error_model="numpy")
def weighted_line(t, f, e, lo, hi):
    """Weighted (1/e^2) least-squares line through points lo..hi-1: (slope, slope_err, value at t_mid, t_mid, chi2)."""
    t0 = t[lo]
    sw = 0.0
    swt = 0.0
    swf = 0.0
    for k in range(lo, hi):
        w = 1.0 / (e[k] * e[k])
        sw += w
        swt += w * (t[k] - t0)
        swf += w * f[k]
    t_mid = swt / sw
    level = swf / sw
    sxx = 0.0
    sxy = 0.0
    for k in range(lo, hi):
        w = 1.0 / (e[k] * e[k])
        dt = t[k] - t0 - t_mid
        sxx += w * dt * dt
        sxy += w * dt * (f[k] - level)
    slope = sxy / sxx
    chi2 = 0.0
    for k in range(lo, hi):
        r = (f[k] - level - slope * (t[k] - t0 - t_mid)) / e[k]
        chi2 += r * r
    return slope, 1.0 / math.sqrt(sxx), level, t0 + t_mid, chi2


@njit(cache=True, nogil=True, error_model="numpy")
def stetson_mean(f, e, start):
    """Rubin's iterative Stetson mean: inverse-variance weights damped by 1/(1 + (chi/alpha)^beta)."""
    n = f.shape[0]
    n_factor = math.sqrt(n / (n - 1.0))
    mean = start
    for _ in range(STETSON_ITERATIONS):
        sw = 0.0
        swf = 0.0
        for k in range(n):
            chi = abs(n_factor * (f[k] - mean) / e[k])
            w = 1.0 / (e[k] * e[k]) / (1.0 + (chi / STETSON_ALPHA) ** STETSON_BETA)
            sw += w
            swf += w * f[k]
        new_mean = swf / sw
        diff = abs(new_mean - mean)
        mean = new_mean
        if diff / mean < STETSON_TOL and diff < STETSON_TOL:
            break
    return mean


@njit(cache=True, nogil=True, error_model="numpy")
def band_statistics(t, f, e, last_mjd, out, base, work):
    """Write this band's statistics into out[base + slot]; slots below a feature's minimum n stay NaN.

    t, f, e: the band's valid points in time order. work: scratch of length >= len(f).
    """
    n = f.shape[0]
    out[base + N_OBS] = n
    if n == 0:
        return

    fmin = f[0]
    fmax = f[0]
    imax = 0
    sw = 0.0
    swf = 0.0
    sum_f = 0.0
    sum_e = 0.0
    sum_e2 = 0.0
    for k in range(n):
        w = 1.0 / (e[k] * e[k])
        sw += w
        swf += w * f[k]
        sum_f += f[k]
        sum_e += e[k]
        sum_e2 += e[k] * e[k]
        if f[k] < fmin:
            fmin = f[k]
        if f[k] > fmax:
            fmax = f[k]
            imax = k
    constant = fmin == fmax
    # On constant flux the means are that value exactly, so residuals are exactly 0 (not rounding noise).
    wmean = fmin if constant else swf / sw
    mean = fmin if constant else sum_f / n

    out[base + MEAN] = wmean
    out[base + MEAN_ERR] = 1.0 / math.sqrt(sw)
    out[base + MIN] = fmin
    out[base + MAX] = fmax
    out[base + ERR_MEAN] = sum_e / n

    sorted_f = work[:n]
    sorted_f[:] = f
    sort_in_place(sorted_f)
    out[base + P05] = percentile_sorted(sorted_f, 5.0)
    out[base + P25] = percentile_sorted(sorted_f, 25.0)
    median = percentile_sorted(sorted_f, 50.0)
    out[base + P50] = median
    out[base + P75] = percentile_sorted(sorted_f, 75.0)
    out[base + P95] = percentile_sorted(sorted_f, 95.0)
    for k in range(n):
        work[k] = abs(f[k] - median)
    sort_in_place(work[:n])
    out[base + MAD] = percentile_sorted(work[:n], 50.0)

    if n < 2:
        return

    m2 = 0.0
    m3 = 0.0
    m4 = 0.0
    chi2 = 0.0
    abs_r = 0.0
    for k in range(n):
        d = f[k] - mean
        d2 = d * d
        m2 += d2
        m3 += d2 * d
        m4 += d2 * d2
        r = (f[k] - wmean) / e[k]
        chi2 += r * r
        abs_r += abs(r)
    var = m2 / (n - 1)
    sigma = math.sqrt(var)
    out[base + SIGMA] = sigma
    out[base + CHI2] = chi2
    out[base + STETSON_K] = abs_r / math.sqrt(n * chi2)
    out[base + EXCESS_VAR] = var - sum_e2 / n

    beyond = 0
    for k in range(n):
        if abs(f[k] - mean) > sigma:
            beyond += 1
    out[base + BEYOND_1STD] = beyond / n

    steps2 = 0.0
    best_slope = np.nan
    for k in range(n - 1):
        df = f[k + 1] - f[k]
        steps2 += df * df
        dt = t[k + 1] - t[k]
        if dt >= MIN_SLOPE_DT_DAYS:
            slope = df / dt
            if not abs(slope) <= abs(best_slope):  # first pair wins ties; NaN best means none yet
                best_slope = slope
    out[base + MAX_SLOPE] = best_slope
    out[base + ETA] = steps2 / ((n - 1) * var) if var > 0.0 else np.nan

    stetson = stetson_mean(f, e, wmean)
    n_factor = math.sqrt(n / (n - 1.0))
    j_sum = 0.0
    delta_prev = n_factor * (f[0] - stetson) / e[0]
    for k in range(1, n):
        delta = n_factor * (f[k] - stetson) / e[k]
        p = delta_prev * delta
        j_sum += math.copysign(math.sqrt(abs(p)), p) if p != 0.0 else 0.0
        delta_prev = delta
    out[base + STETSON_J] = j_sum / (n - 1)

    if imax + 1 >= 2:
        out[base + RISE_RATE] = weighted_line(t, f, e, 0, imax + 1)[0]
    if n - imax >= 2:
        out[base + DECLINE_RATE] = weighted_line(t, f, e, imax, n)[0]

    if n < 3:
        return
    if m2 > 0.0:
        g1 = (m3 / n) / (m2 / n) ** 1.5
        out[base + SKEW] = g1 * math.sqrt(n * (n - 1.0)) / (n - 2.0)
    slope, slope_err, level, t_mid, line_chi2 = weighted_line(t, f, e, 0, n)
    out[base + LINEAR_SLOPE] = slope
    out[base + LINEAR_SLOPE_ERR] = slope_err
    out[base + LINEAR_RED_CHI2] = line_chi2 / (n - 2)
    out[base + LINEAR_AT_LAST] = level + slope * (last_mjd - t_mid)

    if n < 4:
        return
    if m2 > 0.0:
        ratio = (m4 / n) / ((m2 / n) * (m2 / n))
        out[base + KURTOSIS] = ((n * n - 1.0) * ratio - 3.0 * (n - 1.0) ** 2) / ((n - 2.0) * (n - 3.0))
