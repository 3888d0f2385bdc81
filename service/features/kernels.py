"""The batch kernel: every light curve of a batch in one numba call, ragged arrays in, float32 rows out."""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .layout import (
    COLOR_GR, COLOR_RI, FIRST_MJD, FRAC_NEGATIVE, LAST_MJD, MEAN, MULTI_AMP, MULTI_FAP, MULTI_PERIOD,
    MULTI_PERIOD2, MULTI_PHASE, MULTI_POWER, MULTI_POWER2, N_BANDS, N_DIA_SOURCES, N_GLOBAL, N_PER_BAND,
    N_SLOTS, PEAK_MJD,
)
from .fit import multiband_fap, sinusoid_fit
from .periodogram import PARAMS_PER_BAND, new_workspace, search_peaks
from .points import select_points
from .stats import band_statistics

BAND_G, BAND_R, BAND_I = 1, 2, 3
FLOAT32_MAX = float(np.finfo(np.float32).max)


@njit(cache=True, nogil=True, error_model="numpy")
def _color(mean_blue, mean_red):
    if mean_blue > 0.0 and mean_red > 0.0:
        return -2.5 * math.log10(mean_blue / mean_red)
    return np.nan


@njit(cache=True, nogil=True, error_model="numpy")
def _global_statistics(t, f, e, n, row):
    row[N_DIA_SOURCES] = n
    if n == 0:
        return
    first = t[0]
    last = t[0]
    negative = 0
    peak = 0
    for k in range(n):
        first = min(first, t[k])
        last = max(last, t[k])
        if f[k] < 0.0:
            negative += 1
        snr = f[k] / e[k]
        best = f[peak] / e[peak]
        if snr > best or (snr == best and t[k] < t[peak]):
            peak = k
    row[FIRST_MJD] = first
    row[LAST_MJD] = last
    row[FRAC_NEGATIVE] = negative / n
    row[PEAK_MJD] = t[peak]


@njit(cache=True, nogil=True, error_model="numpy")
def _periodogram_features(t, f, e, seg, row, f_min, df, n_freq, f_max, min_residual_dof, min_per_band,
                          phase_epoch, scratch, ws):
    """The multi* features; bands with fewer than min_per_band points take no part.

    Runs when the fit leaves >= min_residual_dof degrees of freedom (points - 3 x bands) and some
    band's flux varies; otherwise every multi* feature stays NaN.

    A band of exactly PARAMS_PER_BAND points is fitted exactly at every frequency (but on a set of
    measure zero, where its phases coincide): it adds its chi2_0 to the reduction and is not scanned.
    Bands are laid out scanned ones first, exactly fitted ones last.
    """
    used_band = np.empty(N_BANDS, np.int64)
    used_seg = np.zeros(N_BANDS + 1, np.int64)
    n_bands = 0
    n_scanned_bands = 0
    for exact_fit in (False, True):
        for b in range(N_BANDS):
            count = seg[b + 1] - seg[b]
            if count >= min_per_band and (count == PARAMS_PER_BAND) == exact_fit:
                used_band[n_bands] = b
                used_seg[n_bands + 1] = used_seg[n_bands] + count
                n_bands += 1
        if not exact_fit:
            n_scanned_bands = n_bands
    n_used = used_seg[n_bands]
    # Only bands fitted exactly (3 points each) leave no degrees of freedom and no frequency to find.
    if n_used - PARAMS_PER_BAND * n_bands < min_residual_dof or n_scanned_bands == 0:
        return

    tt = scratch[0, :n_used]
    w = scratch[1, :n_used]
    wy = scratch[2, :n_used]
    weight = np.zeros(n_bands)
    chi2_0 = np.zeros(n_bands)
    t_lo = np.inf
    t_hi = -np.inf
    for u in range(n_bands):
        for k in range(seg[used_band[u]], seg[used_band[u] + 1]):
            t_lo = min(t_lo, t[k])
            t_hi = max(t_hi, t[k])
    t_ref = 0.5 * (t_lo + t_hi)  # small |t| keeps the phases exact
    time_variance = 0.0  # sum over scanned bands of the weighted variance of t (multiband_fap)
    for u in range(n_bands):
        b = used_band[u]
        swf = 0.0
        swt = 0.0
        constant = True
        for k in range(seg[b], seg[b + 1]):
            wk = 1.0 / (e[k] * e[k])
            weight[u] += wk
            swf += wk * f[k]
            swt += wk * (t[k] - t_ref)
            constant = constant and f[k] == f[seg[b]]
        # A constant band has no variance: its rounded weighted mean must not invent some.
        mean = f[seg[b]] if constant else swf / weight[u]
        t_mean = swt / weight[u]
        for m in range(used_seg[u + 1] - used_seg[u]):
            k = seg[b] + m
            i = used_seg[u] + m
            tt[i] = t[k] - t_ref
            w[i] = 1.0 / (e[k] * e[k])
            wy[i] = w[i] * (f[k] - mean)
            chi2_0[u] += wy[i] * (f[k] - mean)
            if u < n_scanned_bands:
                time_variance += w[i] * (tt[i] - t_mean) ** 2 / weight[u]
    chi2_total = 0.0
    weight_total = 0.0
    for u in range(n_bands):
        chi2_total += chi2_0[u]
        weight_total += weight[u]
    if not (chi2_total > 0.0 and np.isfinite(chi2_total) and np.isfinite(weight_total)):
        return  # every band constant (nothing to fit), or fluxes beyond float64's range

    # Power is invariant to scaling w and y: unit sums keep the float32 scan in range.
    y_scale = math.sqrt(chi2_total / weight_total)
    for i in range(n_used):
        w[i] /= weight_total
        wy[i] /= weight_total * y_scale
    exact_share = 0.0
    for u in range(n_bands):
        weight[u] /= weight_total
        chi2_0[u] /= chi2_total
        if u >= n_scanned_bands:
            exact_share += chi2_0[u]

    top_k = np.empty(2, np.int64)
    top_p = np.empty(2)
    n_scanned = used_seg[n_scanned_bands]
    search_peaks(tt[:n_scanned], w[:n_scanned], wy[:n_scanned], used_seg[:n_scanned_bands + 1],
                 weight[:n_scanned_bands], chi2_0[:n_scanned_bands], exact_share, f_min, df, n_freq, ws,
                 top_k, top_p)
    best_f = f_min + top_k[0] * df
    row[MULTI_PERIOD] = 1.0 / best_f
    row[MULTI_POWER] = top_p[0]
    row[MULTI_FAP] = multiband_fap(top_p[0], n_used, n_bands, time_variance / n_bands, f_max)
    if top_k[1] >= 0:
        row[MULTI_PERIOD2] = 1.0 / (f_min + top_k[1] * df)
        row[MULTI_POWER2] = top_p[1]
    for u in range(n_bands):
        b = used_band[u]
        lo = seg[b]
        hi = seg[b + 1]
        amp, phase = sinusoid_fit(t[lo:hi], f[lo:hi], e[lo:hi], 2.0 * math.pi * best_f, phase_epoch)
        row[N_GLOBAL + b * N_PER_BAND + MULTI_AMP] = amp
        row[N_GLOBAL + b * N_PER_BAND + MULTI_PHASE] = phase


@njit(cache=True, nogil=True, error_model="numpy")
def batch_features(offsets, source_id, mjd, band, flux, flux_err, duplicate_days, f_min, df, n_freq, f_max,
                   min_residual_dof, min_per_band, phase_epoch, column_of_slot, out):
    """out[a, column_of_slot[s]] = slot s of light curve a (rows offsets[a]:offsets[a+1]); NaN = undefined.

    Every value is computed in float64; one that float32 cannot hold (|x| > FLOAT32_MAX, e.g. a
    chi2 of fluxes ~3e38 or errors ~1e-20) becomes NaN rather than inf.
    """
    n_alerts = offsets.shape[0] - 1
    longest = 0
    for a in range(n_alerts):
        longest = max(longest, offsets[a + 1] - offsets[a])
    cap = max(longest, 1)
    rows = np.empty(cap, np.int64)
    t = np.empty(cap)
    f = np.empty(cap)
    e = np.empty(cap)
    work = np.empty(cap)
    seg = np.empty(N_BANDS + 1, np.int64)
    scratch = np.empty((3, cap))
    ws = new_workspace(cap, n_freq)
    row = np.empty(N_SLOTS)
    for a in range(n_alerts):
        row[:] = np.nan
        n = select_points(offsets[a], offsets[a + 1], mjd, source_id, band, flux, flux_err, duplicate_days,
                          rows, t, f, e, seg)
        _global_statistics(t, f, e, n, row)
        last_mjd = row[LAST_MJD]
        for b in range(N_BANDS):
            lo = seg[b]
            hi = seg[b + 1]
            band_statistics(t[lo:hi], f[lo:hi], e[lo:hi], last_mjd, row, N_GLOBAL + b * N_PER_BAND, work)
        row[COLOR_GR] = _color(row[N_GLOBAL + BAND_G * N_PER_BAND + MEAN], row[N_GLOBAL + BAND_R * N_PER_BAND + MEAN])
        row[COLOR_RI] = _color(row[N_GLOBAL + BAND_R * N_PER_BAND + MEAN], row[N_GLOBAL + BAND_I * N_PER_BAND + MEAN])
        _periodogram_features(t[:n], f[:n], e[:n], seg, row, f_min, df, n_freq, f_max, min_residual_dof,
                              min_per_band, phase_epoch, scratch, ws)
        for s in range(N_SLOTS):
            out[a, column_of_slot[s]] = row[s] if abs(row[s]) <= FLOAT32_MAX else np.nan
