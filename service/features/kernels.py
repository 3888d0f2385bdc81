"""Numba kernels: pure functions over ragged numpy arrays. No Python objects inside."""

from __future__ import annotations

import numpy as np
from numba import njit

N_BANDS = 6
N_GLOBAL = 0
N_PER_BAND = 5


@njit(cache=True, nogil=True)
def _band_stats(flux, err, out, base):
    n = flux.shape[0]
    out[base + 0] = n
    if n == 0:
        return
    sw = 0.0
    swf = 0.0
    fmin = flux[0]
    fmax = flux[0]
    for k in range(n):
        w = 1.0 / (err[k] * err[k])
        sw += w
        swf += w * flux[k]
        fmin = min(fmin, flux[k])
        fmax = max(fmax, flux[k])
    out[base + 1] = swf / sw
    out[base + 3] = fmin
    out[base + 4] = fmax
    if n >= 2:
        mean = 0.0
        for k in range(n):
            mean += flux[k]
        mean /= n
        ss = 0.0
        for k in range(n):
            ss += (flux[k] - mean) ** 2
        out[base + 2] = np.sqrt(ss / (n - 1))


@njit(cache=True, nogil=True)
def batch_features(offsets, mjd, band, flux, flux_err, out):
    """out[i, :] = feature vector of light curve i (rows offsets[i]:offsets[i+1]); NaN = undefined."""
    n_alerts = offsets.shape[0] - 1
    out[:, :] = np.nan
    buf_f = np.empty(0, np.float64)
    buf_e = np.empty(0, np.float64)
    row = np.empty(N_GLOBAL + N_BANDS * N_PER_BAND, np.float64)
    for i in range(n_alerts):
        lo = offsets[i]
        hi = offsets[i + 1]
        if buf_f.shape[0] < hi - lo:
            buf_f = np.empty(hi - lo, np.float64)
            buf_e = np.empty(hi - lo, np.float64)
        row[:] = np.nan
        for b in range(N_BANDS):
            m = 0
            for k in range(lo, hi):
                # valid point: finite flux and error, error > 0 (mask before any arithmetic)
                if band[k] == b and np.isfinite(flux[k]) and np.isfinite(flux_err[k]) and flux_err[k] > 0:
                    buf_f[m] = flux[k]
                    buf_e[m] = flux_err[k]
                    m += 1
            _band_stats(buf_f[:m], buf_e[:m], row, N_GLOBAL + b * N_PER_BAND)
        for j in range(row.shape[0]):
            out[i, j] = row[j]
