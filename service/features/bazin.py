"""The multiband Bazin fit: f_b(t) = A_b exp(-(t - t0)/tau_fall) / (1 + exp(-(t - t0)/tau_rise)).

t0, tau_rise and tau_fall are shared by the bands; for fixed (t0, tau_rise, tau_fall) each A_b is a
weighted linear least-squares fit in closed form, so the search is 3-D over
p = (t0, ln tau_rise, ln(tau_fall / tau_rise)) in a box: a deterministic coarse grid, then
Nelder–Mead from the best grid points. docs/features.md defines the bounds and the gates.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


N_T0 = 24  # coarse grid: t0 values
N_RISE = 3  # coarse grid: ln tau_rise at the centres of N_RISE equal cells
N_RATIO = 4  # coarse grid: ln(tau_fall / tau_rise) edge to edge (ratio 1, a step, included)
N_STARTS = 8  # refinements, from the best distinct grid points


@njit(cache=True, nogil=True, error_model="numpy")
def bazin_shape(t, t0, tau_rise, tau_fall):
    """exp(-(t - t0)/tau_fall) / (1 + exp(-(t - t0)/tau_rise)), written so that no exp overflows
    (tau_fall >= tau_rise: the exponent is <= 0 on either side of t0)."""
    x = t0 - t
    z = x / tau_rise
    if z > 0.0:
        return math.exp(x / tau_fall - z) / (1.0 + math.exp(-z))
    return math.exp(x / tau_fall) / (1.0 + math.exp(z))


@njit(cache=True, nogil=True, error_model="numpy")
def bazin_profile(p, ctx):
    """chi2 at p = (t0, ln tau_rise, ln ratio) with every amplitude at its weighted least-squares value."""
    t, f, w, seg, syy, amp = ctx
    tau_rise = math.exp(p[1])
    tau_fall = tau_rise * math.exp(p[2])
    chi2 = 0.0
    for u in range(seg.shape[0] - 1):
        sgg = 0.0
        sgy = 0.0
        for k in range(seg[u], seg[u + 1]):
            g = bazin_shape(t[k], p[0], tau_rise, tau_fall)
            wg = w[k] * g
            sgg += wg * g
            sgy += wg * f[k]
        if sgg > 0.0:
            amp[u] = sgy / sgg
            chi2 += max(syy[u] - sgy * amp[u], 0.0)
        else:  # the model is 0 at every point of this band (all of them far before t0)
            amp[u] = 0.0
            chi2 += syy[u]
    return chi2


@njit(cache=True, nogil=True, error_model="numpy")
def _clamped(point, lower, upper):
    for j in range(point.shape[0]):
        point[j] = min(max(point[j], lower[j]), upper[j])


@njit(cache=True, nogil=True, error_model="numpy")
def _nelder_mead(ctx, start, step, lower, upper, max_evals, ftol, simplex, values, trial, trial2):
    """Nelder–Mead on bazin_profile from `start` (overwritten with the best point), vertices projected
    onto the box. simplex [d+1, d], values [d+1], trial and trial2 [d]: scratch. Returns the best value."""
    d = start.shape[0]
    for i in range(d + 1):
        simplex[i, :] = start
        if i > 0:
            simplex[i, i - 1] += step[i - 1]
            if simplex[i, i - 1] > upper[i - 1]:
                simplex[i, i - 1] = start[i - 1] - step[i - 1]
        _clamped(simplex[i], lower, upper)
        values[i] = bazin_profile(simplex[i], ctx)
    evals = d + 1
    while evals < max_evals:
        for i in range(1, d + 1):  # insertion sort; ties keep their place (deterministic)
            j = i
            while j > 0 and values[j] < values[j - 1]:
                values[j], values[j - 1] = values[j - 1], values[j]
                for c in range(d):
                    simplex[j, c], simplex[j - 1, c] = simplex[j - 1, c], simplex[j, c]
                j -= 1
        if values[d] - values[0] <= ftol * (abs(values[0]) + 1e-300):
            break
        for c in range(d):
            centroid = 0.0
            for i in range(d):
                centroid += simplex[i, c]
            centroid /= d
            trial[c] = 2.0 * centroid - simplex[d, c]
            trial2[c] = centroid
        _clamped(trial, lower, upper)
        f_reflect = bazin_profile(trial, ctx)
        evals += 1
        if f_reflect < values[0]:
            for c in range(d):
                trial2[c] = trial2[c] + 2.0 * (trial[c] - trial2[c])
            _clamped(trial2, lower, upper)
            f_expand = bazin_profile(trial2, ctx)
            evals += 1
            if f_expand < f_reflect:
                simplex[d, :] = trial2
                values[d] = f_expand
            else:
                simplex[d, :] = trial
                values[d] = f_reflect
            continue
        if f_reflect < values[d - 1]:
            simplex[d, :] = trial
            values[d] = f_reflect
            continue
        outside = f_reflect < values[d]
        for c in range(d):
            toward = trial[c] if outside else simplex[d, c]
            trial2[c] = trial2[c] + 0.5 * (toward - trial2[c])
        f_contract = bazin_profile(trial2, ctx)
        evals += 1
        if f_contract < min(f_reflect, values[d]):
            simplex[d, :] = trial2
            values[d] = f_contract
            continue
        for i in range(1, d + 1):
            for c in range(d):
                simplex[i, c] = simplex[0, c] + 0.5 * (simplex[i, c] - simplex[0, c])
            values[i] = bazin_profile(simplex[i], ctx)
            evals += 1
    best = 0
    for i in range(1, d + 1):
        if values[i] < values[best]:
            best = i
    start[:] = simplex[best]
    return values[best]


@njit(cache=True, nogil=True, error_model="numpy")
def bazin_fit(t, f, e, seg_all, min_per_band, min_dof, margin, tau_rise_lo, tau_rise_hi, ratio_hi, ws_t, ws_f,
              ws_w, result, amplitudes):
    """Fit the bands of >= min_per_band points; result = (t0, tau_rise, tau_fall, reduced chi2), amplitudes[b]
    per band (NaN for bands not taking part). Everything NaN when the gate fails. Returns True if it ran."""
    n_all_bands = seg_all.shape[0] - 1
    result[:] = np.nan
    amplitudes[:] = np.nan
    used = np.empty(n_all_bands, np.int64)
    seg = np.zeros(n_all_bands + 1, np.int64)
    n_bands = 0
    signal = 0.0
    t_lo = np.inf
    t_hi = -np.inf
    for b in range(n_all_bands):
        count = seg_all[b + 1] - seg_all[b]
        if count < min_per_band:
            continue
        used[n_bands] = b
        for m in range(count):
            k = seg_all[b] + m
            i = seg[n_bands] + m
            ws_t[i] = t[k]
            ws_f[i] = f[k]
            ws_w[i] = 1.0 / (e[k] * e[k])
            signal += ws_w[i] * f[k] * f[k]
            t_lo = min(t_lo, t[k])
            t_hi = max(t_hi, t[k])
        seg[n_bands + 1] = seg[n_bands] + count
        n_bands += 1
    n_used = seg[n_bands]
    dof = n_used - 3 - n_bands
    if n_bands == 0 or dof < min_dof or not (signal > 0.0 and np.isfinite(signal)):
        return False
    t_ref = 0.5 * (t_lo + t_hi)  # small |t| for the exponents
    syy = np.zeros(n_bands)
    for u in range(n_bands):
        for i in range(seg[u], seg[u + 1]):
            ws_t[i] -= t_ref
            syy[u] += ws_w[i] * ws_f[i] * ws_f[i]
    amp = np.empty(n_bands)
    ctx = (ws_t[:n_used], ws_f[:n_used], ws_w[:n_used], seg[:n_bands + 1], syy, amp)

    lower = np.array([t_lo - t_ref - margin, math.log(tau_rise_lo), 0.0])
    upper = np.array([t_hi - t_ref + margin, math.log(tau_rise_hi), math.log(ratio_hi)])
    cell = np.empty(3)
    cell[0] = (upper[0] - lower[0]) / (N_T0 - 1)
    cell[1] = (upper[1] - lower[1]) / N_RISE
    cell[2] = (upper[2] - lower[2]) / (N_RATIO - 1)
    # Coarse grid: t0 and the ratio from edge to edge, tau_rise at cell centres; keep the best
    # N_STARTS grid points (ties: the first in grid order).
    best_p = np.full((N_STARTS, 3), np.nan)
    best_v = np.full(N_STARTS, np.inf)
    p = np.empty(3)
    for i in range(N_T0):
        p[0] = lower[0] + i * cell[0]
        for j in range(N_RISE):
            p[1] = lower[1] + (j + 0.5) * cell[1]
            for k in range(N_RATIO):
                p[2] = lower[2] + k * cell[2]
                v = bazin_profile(p, ctx)
                slot = N_STARTS
                while slot > 0 and v < best_v[slot - 1]:
                    slot -= 1
                if slot < N_STARTS:
                    for s in range(N_STARTS - 1, slot, -1):
                        best_v[s] = best_v[s - 1]
                        best_p[s, :] = best_p[s - 1]
                    best_v[slot] = v
                    best_p[slot, :] = p
    simplex = np.empty((4, 3))
    values = np.empty(4)
    trial = np.empty(3)
    trial2 = np.empty(3)
    step = np.empty(3)
    winner = np.full(3, np.nan)
    winner_v = np.inf
    for s in range(N_STARTS):
        if not np.isfinite(best_v[s]):
            continue
        p[:] = best_p[s]
        for c in range(3):
            step[c] = 0.5 * cell[c]
        v = _nelder_mead(ctx, p, step, lower, upper, 150, 1e-10, simplex, values, trial, trial2)
        for c in range(3):  # a restart with a fresh simplex: Nelder–Mead can stall on a collapsed one
            step[c] = 0.05 * cell[c]
        v = _nelder_mead(ctx, p, step, lower, upper, 80, 1e-12, simplex, values, trial, trial2)
        if v < winner_v:
            winner_v = v
            winner[:] = p
    if not np.isfinite(winner_v):
        return False
    bazin_profile(winner, ctx)  # the winner's amplitudes
    result[0] = winner[0] + t_ref
    result[1] = math.exp(winner[1])
    result[2] = result[1] * math.exp(winner[2])
    result[3] = winner_v / dof
    for u in range(n_bands):
        amplitudes[used[u]] = amp[u]
    return True
