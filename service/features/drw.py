"""The multiband damped random walk (Ornstein–Uhlenbeck) fit by maximum likelihood, O(N) per evaluation.

Each band b is its own realisation of an OU process with covariance sigma_b^2 exp(-|dt| / tau), tau shared
by the bands, plus a constant mean mu_b and the stated errors. The Kalman recursion gives the exact
Gaussian log-likelihood in one pass; it is linear in the data, so running it on y and on a vector of
ones at once profiles mu_b out in closed form. sigma_b: Brent per band at fixed tau; tau: a log grid and
Brent around its best point. docs/features.md defines the bounds and the gates.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .optimize import FX, STATE_SIZE, X, brent_start, brent_tell

LOG_2PI = math.log(2.0 * math.pi)
N_TAU_GRID = 10
SIGMA_RANGE = (1e-3, 30.0)
WHITE_NOISE_GAIN = 1e-6  # below this log-likelihood gain the maximum is white noise (sigma = 0)


@njit(cache=True, nogil=True, error_model="numpy")
def ou_loglike(phi, q, y, e, sigma):
    """(log-likelihood with the mean at its maximum-likelihood value, that mean) of one band.

    phi[k] = exp(-(t[k] - t[k-1]) / tau) and q[k] = 1 - phi[k]^2 (k >= 1; computed once per tau).
    """
    s2 = sigma * sigma
    m_y = 0.0
    m_1 = 0.0
    var = s2
    a = 0.0
    b = 0.0
    c = 0.0
    log_det = 0.0
    for k in range(y.shape[0]):
        if k > 0:
            m_y *= phi[k]
            m_1 *= phi[k]
            var = phi[k] * phi[k] * var + s2 * q[k]
        noise = e[k] * e[k]
        total = var + noise
        v_y = y[k] - m_y
        v_1 = 1.0 - m_1
        a += v_y * v_y / total
        b += v_y * v_1 / total
        c += v_1 * v_1 / total
        log_det += math.log(total)
        gain = var / total
        m_y += gain * v_y
        m_1 += gain * v_1
        var = var * noise / total
    mean = b / c
    return -0.5 * (a - b * mean + log_det + y.shape[0] * LOG_2PI), mean


@njit(cache=True, nogil=True, error_model="numpy")
def _band_max(phi, q, y, e, lo, hi, state):
    """(ln sigma, log-likelihood) at the band's maximum over ln sigma in [lo, hi], the ends included."""
    x = brent_start(state, lo, hi, 1e-5)
    while not math.isnan(x):
        x = brent_tell(state, -ou_loglike(phi, q, y, e, math.exp(x))[0])
    best_x = state[X]
    best = -state[FX]
    for edge in (lo, hi):
        value = ou_loglike(phi, q, y, e, math.exp(edge))[0]
        if value > best:
            best_x, best = edge, value
    return best_x, best


@njit(cache=True, nogil=True, error_model="numpy")
def _profile(log_tau, t, y, e, seg, scale, log_sigma, state, phi, q):
    """The summed log-likelihood at tau, every sigma_b at its maximum (left in log_sigma)."""
    tau = math.exp(log_tau)
    total = 0.0
    for u in range(seg.shape[0] - 1):
        lo = seg[u]
        hi = seg[u + 1]
        for k in range(lo + 1, hi):
            phi[k] = math.exp(-(t[k] - t[k - 1]) / tau)
            q[k] = -math.expm1(-2.0 * (t[k] - t[k - 1]) / tau)
        log_sigma[u], value = _band_max(phi[lo:hi], q[lo:hi], y[lo:hi], e[lo:hi], math.log(SIGMA_RANGE[0] * scale[u]),
                                        math.log(SIGMA_RANGE[1] * scale[u]), state)
        total += value
    return total


@njit(cache=True, nogil=True, error_model="numpy")
def drw_fit(t, f, e, seg_all, min_per_band, min_points, tau_lo, tau_hi, ws_t, ws_f, ws_e, ws_phi, ws_q, result,
            sigmas):
    """result = (tau, log-likelihood ratio over white noise); sigmas[b] per band taking part (NaN otherwise).
    Everything NaN when the gate fails. Returns True if it ran."""
    n_all_bands = seg_all.shape[0] - 1
    result[:] = np.nan
    sigmas[:] = np.nan
    used = np.empty(n_all_bands, np.int64)
    seg = np.zeros(n_all_bands + 1, np.int64)
    scale = np.empty(n_all_bands)
    n_bands = 0
    for b in range(n_all_bands):
        count = seg_all[b + 1] - seg_all[b]
        if count < min_per_band:
            continue
        used[n_bands] = b
        lo = seg_all[b]
        f_min = f[lo]
        f_max = f[lo]
        e_max = 0.0
        for m in range(count):
            k = lo + m
            ws_t[seg[n_bands] + m] = t[k] - t[lo]
            ws_f[seg[n_bands] + m] = f[k]
            ws_e[seg[n_bands] + m] = e[k]
            f_min = min(f_min, f[k])
            f_max = max(f_max, f[k])
            e_max = max(e_max, e[k])
        scale[n_bands] = (f_max - f_min) + e_max  # > 0: errors are > 0
        seg[n_bands + 1] = seg[n_bands] + count
        n_bands += 1
    n_used = seg[n_bands]
    if n_bands == 0 or n_used < min_points:
        return False
    tt = ws_t[:n_used]
    ff = ws_f[:n_used]
    ee = ws_e[:n_used]
    bounds = seg[:n_bands + 1]
    white = 0.0
    for u in range(n_bands):  # sigma = 0: white noise with the stated errors about the weighted mean
        lo = seg[u]
        hi = seg[u + 1]
        white += ou_loglike(ws_phi[lo:hi], ws_q[lo:hi], ff[lo:hi], ee[lo:hi], 0.0)[0]
    if not np.isfinite(white):
        return False
    log_sigma = np.empty(n_bands)
    sigma_state = np.empty(STATE_SIZE)
    tau_state = np.empty(STATE_SIZE)
    band_scale = scale[:n_bands]
    lo_tau = math.log(tau_lo)
    hi_tau = math.log(tau_hi)
    step = (hi_tau - lo_tau) / (N_TAU_GRID - 1)
    best = 0
    best_v = -np.inf
    for i in range(N_TAU_GRID):
        v = _profile(lo_tau + i * step, tt, ff, ee, bounds, band_scale, log_sigma, sigma_state, ws_phi, ws_q)
        if v > best_v:
            best_v = v
            best = i
    x = brent_start(tau_state, lo_tau + max(best - 1, 0) * step, lo_tau + min(best + 1, N_TAU_GRID - 1) * step, 1e-4)
    while not math.isnan(x):
        x = brent_tell(tau_state, -_profile(x, tt, ff, ee, bounds, band_scale, log_sigma, sigma_state, ws_phi, ws_q))
    x = tau_state[X]
    if best_v > -tau_state[FX]:
        x = lo_tau + best * step
    v = -_profile(x, tt, ff, ee, bounds, band_scale, log_sigma, sigma_state, ws_phi, ws_q)  # leaves the winner's sigmas
    if not np.isfinite(v):
        return False
    result[1] = max(-v - white, 0.0)
    white_is_best = result[1] < WHITE_NOISE_GAIN  # sigma = 0 is the maximum: no timescale to report
    result[0] = np.nan if white_is_best else math.exp(x)
    for u in range(n_bands):
        sigmas[used[u]] = 0.0 if white_is_best else math.exp(log_sigma[u])
    return True
