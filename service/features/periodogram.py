"""The multiband periodogram search: the two highest local maxima of the power on the full grid.

Light curves of at most FULL_GRID_MAX_POINTS points take the full grid in float64 SIMD (exact).
Larger ones would cost more than the feature budget that way (~18,000 frequencies x ~80 points), so:
1. scan every COARSE_STEP-th (even) grid frequency in float32 SIMD (gls.lane_powers);
2. bound the second-highest local maximum of the full grid from below by the second-highest coarse
   local maximum T (each coarse local maximum encloses a distinct full-grid one at least as high);
   an odd frequency can exceed its two even neighbours by at most the factor margin(span), from the
   curve's own time span (see _margin). Every odd frequency whose neighbours times that margin reach
   T is evaluated (16-frequency float32 windows); no other point can be, or border, a local maximum
   of height >= T, so the two highest local maxima are among those found;
3. re-evaluate in float64 the local maxima whose float32 power ties the best two within float32's
   error (F32_TIE), and report the best two from the float64 values.
tests/test_features_argmax.py checks the result against astropy on the full grid, on real and
simulated light curves.

Phases exp(i omega_k t) come from recurrences and tables, never from sin/cos per frequency: the
scan advances one phase per point per block of BLOCK coarse frequencies and keeps each block's
start, so any grid frequency's phase is block start x coarse lane x fine steps.
"""

from __future__ import annotations

import math
from collections import namedtuple

import numpy as np
from numba import njit

from .gls import LANES, LANES_F64, exact_powers, lane_powers, phase_table

COARSE_STEP = 2  # grid frequencies per coarse frequency: ~2 per peak width at a 365-d baseline
BLOCK = 2 * LANES  # coarse frequencies per scan block
F32_TIE = 1e-4  # relative: float32 powers this close to the second-best are re-ranked in float64
MAX_EXACT = 64
MAX_CLIMB = 128  # float64 steps from a float32 local maximum to the float64 one (a few in practice)
FULL_GRID_MAX_POINTS = 24
PARAMS_PER_BAND = 3  # a band with exactly this many points is fitted exactly at every frequency
# Above this phase drift per grid step at the span's ends (radians) the margin is unbounded and
# every odd frequency is evaluated (spans beyond ~2.2 years on the published grid).
MAX_STEP_PHASE = 1.2

Workspace = namedtuple("Workspace", [
    "coarse",  # float32 [n_blocks * BLOCK]: coarse powers
    "block_c", "block_s",  # float64 [n_blocks, cap]: phases at each block's first frequency
    "coarse_c", "coarse_s",  # float32 [cap * BLOCK]: exp(i l s domega t), l < BLOCK
    "fine_c", "fine_s",  # float32 [cap * LANES]: exp(i l domega t), l < LANES
    "lane_c", "lane_s",  # float64 [BLOCK, cap]: exp(i l s domega t)
    "step_c", "step_s",  # float64 [cap]: exp(i domega t), one grid step
    "advance_c", "advance_s",  # float64 [cap]: exp(i BLOCK s domega t), one block
    "cur_c", "cur_s",  # float64 [cap]: phases being advanced
    "cur_c32", "cur_s32", "w32", "wy32",  # float32 [cap]
    "window",  # float32 [LANES]
    "fine",  # float32 [n_freq + LANES]: powers of the evaluated windows
    "known",  # uint8 [n_freq + LANES]: fine[k] holds a value
    "starts",  # int64 [n_freq]: first grid index of each evaluated window
    "found_k", "found_p",  # [n_freq]: float32 local maxima
    "around",  # float64 [3]
    "dense",  # float64 [n_freq]: the full grid
    "table_c", "table_s",  # float64 [cap * LANES_F64]: exp(i l domega t), l < 8
    "vector",  # float64 [LANES_F64]
])


@njit(cache=True, nogil=True)
def new_workspace(capacity, n_freq):
    """Scratch reused across a batch's light curves (allocating per curve would dominate)."""
    cap = max(capacity, 1)
    n_blocks = ((n_freq - 1) // COARSE_STEP) // BLOCK + 1
    return Workspace(
        np.empty(n_blocks * BLOCK, np.float32),
        np.empty((n_blocks, cap)), np.empty((n_blocks, cap)),
        np.empty(cap * BLOCK, np.float32), np.empty(cap * BLOCK, np.float32),
        np.empty(cap * LANES, np.float32), np.empty(cap * LANES, np.float32),
        np.empty((BLOCK, cap)), np.empty((BLOCK, cap)),
        np.empty(cap), np.empty(cap),
        np.empty(cap), np.empty(cap),
        np.empty(cap), np.empty(cap),
        np.empty(cap, np.float32), np.empty(cap, np.float32), np.empty(cap, np.float32), np.empty(cap, np.float32),
        np.empty(LANES, np.float32),
        np.empty(n_freq + LANES, np.float32),
        np.zeros(n_freq + LANES, np.uint8),
        np.empty(n_freq, np.int64),
        np.empty(n_freq, np.int64), np.empty(n_freq),
        np.empty(3),
        np.empty(n_freq),
        np.empty(cap * LANES_F64), np.empty(cap * LANES_F64),
        np.empty(LANES_F64),
    )


@njit(cache=True, nogil=True, error_model="numpy")
def _offer(k, p, top_k, top_p):
    """Keep the two highest distinct local maxima; ties go to the lower frequency (np.argmax order)."""
    if k == top_k[0] or k == top_k[1]:
        return
    if top_k[0] < 0 or p > top_p[0] or (p == top_p[0] and k < top_k[0]):
        top_k[1] = top_k[0]
        top_p[1] = top_p[0]
        top_k[0] = k
        top_p[0] = p
    elif top_k[1] < 0 or p > top_p[1] or (p == top_p[1] and k < top_k[1]):
        top_k[1] = k
        top_p[1] = p


@njit(cache=True, nogil=True, error_model="numpy")
def _seed(j, n, ws):
    """ws.cur = exp(i omega t) at coarse frequency j (grid index j * COARSE_STEP)."""
    block = j // BLOCK
    lane = j % BLOCK
    for i in range(n):
        b_c = ws.block_c[block, i]
        b_s = ws.block_s[block, i]
        ws.cur_c[i] = b_c * ws.lane_c[lane, i] - b_s * ws.lane_s[lane, i]
        ws.cur_s[i] = b_s * ws.lane_c[lane, i] + b_c * ws.lane_s[lane, i]


@njit(cache=True, nogil=True, error_model="numpy")
def _window(j, n, seg, weight, chi2_0, share, ws):
    """ws.window[l] = float32 power at grid index j * COARSE_STEP + l, l < LANES."""
    _seed(j, n, ws)
    for i in range(n):
        ws.cur_c32[i] = ws.cur_c[i]
        ws.cur_s32[i] = ws.cur_s[i]
    lane_powers(ws.cur_c32[:n], ws.cur_s32[:n], ws.fine_c, ws.fine_s, LANES, 0, ws.w32, ws.wy32, seg, weight,
                chi2_0, share, False, ws.window)


@njit(cache=True, nogil=True, error_model="numpy")
def _exact_range(k_first, count, n, w, wy, seg, weight, chi2_0, share, ws, out):
    """out[m] = float64 power at grid index k_first + m, m < count."""
    _seed(k_first // COARSE_STEP, n, ws)
    cur_c, cur_s = ws.cur_c[:n], ws.cur_s[:n]
    for _ in range(k_first % COARSE_STEP):
        for i in range(n):
            c = cur_c[i]
            cur_c[i] = c * ws.step_c[i] - cur_s[i] * ws.step_s[i]
            cur_s[i] = cur_s[i] * ws.step_c[i] + c * ws.step_s[i]
    exact_powers(cur_c, cur_s, ws.step_c[:n], ws.step_s[:n], w, wy, seg, weight, chi2_0, share, count, out)


@njit(cache=True, nogil=True, error_model="numpy")
def _exact_local_max(k, n_freq, n, w, wy, seg, weight, chi2_0, share, ws, top_k, top_p):
    """From grid index k, climb the float64 power to a local maximum and offer it."""
    around = ws.around
    for _ in range(MAX_CLIMB):
        lo = max(k - 1, 0)
        hi = min(k + 1, n_freq - 1)
        _exact_range(lo, hi - lo + 1, n, w, wy, seg, weight, chi2_0, share, ws, around)
        here = around[k - lo]
        if k > 0 and around[0] >= here:
            k -= 1  # not a local maximum: it must rise strictly from its left neighbour
        elif k < n_freq - 1 and around[hi - lo] > here:
            k += 1
        else:
            _offer(k, here, top_k, top_p)
            return


@njit(cache=True, nogil=True, error_model="numpy")
def _full_grid(t, w, wy, seg, weight, chi2_0, share, f_min, df, n_freq, ws, top_k, top_p):
    """Every grid frequency in float64 SIMD: exact, and cheap enough for a few points."""
    n = t.shape[0]
    table = np.empty((n, LANES_F64 + 1))
    table_s = np.empty((n, LANES_F64 + 1))
    phase_table(t, 2.0 * math.pi * df, LANES_F64 + 1, table, table_s)  # exp(i l domega t), l <= 8
    for i in range(n):
        for lane in range(LANES_F64):
            ws.table_c[i * LANES_F64 + lane] = table[i, lane]
            ws.table_s[i * LANES_F64 + lane] = table_s[i, lane]
        ws.advance_c[i] = table[i, LANES_F64]
        ws.advance_s[i] = table_s[i, LANES_F64]
        ws.step_c[i] = table[i, 1]
        ws.step_s[i] = table_s[i, 1]
        ws.cur_c[i] = math.cos(2.0 * math.pi * f_min * t[i])
        ws.cur_s[i] = math.sin(2.0 * math.pi * f_min * t[i])
    dense, vector = ws.dense, ws.vector
    cur_c, cur_s = ws.cur_c[:n], ws.cur_s[:n]
    for first in range(0, n_freq, LANES_F64):
        lane_powers(cur_c, cur_s, ws.table_c, ws.table_s, LANES_F64, 0, w, wy, seg, weight, chi2_0, share,
                    True, vector)
        for lane in range(min(LANES_F64, n_freq - first)):
            dense[first + lane] = vector[lane]
        for i in range(n):
            c = cur_c[i]
            cur_c[i] = c * ws.advance_c[i] - cur_s[i] * ws.advance_s[i]
            cur_s[i] = cur_s[i] * ws.advance_c[i] + c * ws.advance_s[i]
    for k in range(n_freq):
        if (k == 0 or dense[k] > dense[k - 1]) and (k == n_freq - 1 or dense[k] >= dense[k + 1]):
            _offer(k, dense[k], top_k, top_p)
    # The reported powers from exact phases: thousands of recurrence steps drift by ~1e-12, which a
    # near-exact fit (power ~ 1 - 1e-9) would turn into a visible error of its false-alarm probability.
    for m in range(2):
        if top_k[m] >= 0:
            omega = 2.0 * math.pi * (f_min + top_k[m] * df)
            for i in range(n):
                cur_c[i] = math.cos(omega * t[i])
                cur_s[i] = math.sin(omega * t[i])
            exact_powers(cur_c, cur_s, ws.step_c[:n], ws.step_s[:n], w, wy, seg, weight, chi2_0, share, 1,
                         ws.around)
            top_p[m] = ws.around[0]


@njit(cache=True, nogil=True, error_model="numpy")
def _coarse_scan(t, f_min, df, n_freq, seg, weight, chi2_0, share, ws):
    """Tables, then ws.coarse[j] = float32 power at grid index j * COARSE_STEP; returns their count."""
    n = t.shape[0]
    n_coarse = (n_freq - 1) // COARSE_STEP + 1
    domega = 2.0 * math.pi * df
    phase_table(t, COARSE_STEP * domega, BLOCK, ws.lane_c.T, ws.lane_s.T)
    for i in range(n):
        for lane in range(BLOCK):
            ws.coarse_c[i * BLOCK + lane] = ws.lane_c[lane, i]
            ws.coarse_s[i * BLOCK + lane] = ws.lane_s[lane, i]
        ws.step_c[i] = math.cos(domega * t[i])
        ws.step_s[i] = math.sin(domega * t[i])
        z_c = 1.0
        z_s = 0.0
        for lane in range(LANES):
            ws.fine_c[i * LANES + lane] = z_c
            ws.fine_s[i * LANES + lane] = z_s
            z_c, z_s = z_c * ws.step_c[i] - z_s * ws.step_s[i], z_s * ws.step_c[i] + z_c * ws.step_s[i]
        last_c = ws.lane_c[BLOCK - 1, i]
        last_s = ws.lane_s[BLOCK - 1, i]
        one_c = ws.lane_c[1, i]
        one_s = ws.lane_s[1, i]
        ws.advance_c[i] = last_c * one_c - last_s * one_s
        ws.advance_s[i] = last_s * one_c + last_c * one_s
        ws.cur_c[i] = math.cos(2.0 * math.pi * f_min * t[i])
        ws.cur_s[i] = math.sin(2.0 * math.pi * f_min * t[i])
    for block in range((n_coarse - 1) // BLOCK + 1):
        ws.block_c[block, :n] = ws.cur_c[:n]
        ws.block_s[block, :n] = ws.cur_s[:n]
        for i in range(n):
            ws.cur_c32[i] = ws.cur_c[i]
            ws.cur_s32[i] = ws.cur_s[i]
        for half in range(0, BLOCK, LANES):
            lane_powers(ws.cur_c32[:n], ws.cur_s32[:n], ws.coarse_c, ws.coarse_s, BLOCK, half, ws.w32, ws.wy32,
                        seg, weight, chi2_0, share, False, ws.coarse[block * BLOCK + half:])
        for i in range(n):
            c = ws.cur_c[i]
            ws.cur_c[i] = c * ws.advance_c[i] - ws.cur_s[i] * ws.advance_s[i]
            ws.cur_s[i] = ws.cur_s[i] * ws.advance_c[i] + c * ws.advance_s[i]
    return n_coarse




@njit(cache=True, nogil=True, error_model="numpy")
def _margin(span, df):
    """How far an odd grid frequency's power can exceed both its even neighbours' (a factor).

    One grid step turns the phase of a point at time t (centred) by 2 pi df t, at most
    phi = pi df span at the span's ends. A sinusoid fitted at a peak keeps a fraction
    >= cos^2(phi) of its power one step away: the least is for points split between the two ends
    (uniform times keep sinc^2). So the peak is at most 1 / cos^2(phi) x its higher neighbour.
    Empirical check: tests/test_features_argmax.py (real and simulated light curves).
    Returns inf when the span is so long that the bound says nothing.
    """
    phi = math.pi * df * span
    if phi >= MAX_STEP_PHASE:
        return np.inf
    return (1.0 + F32_TIE) / math.cos(phi) ** 2


@njit(cache=True, nogil=True, error_model="numpy")
def _value(k, ws):
    """float32 power at grid index k: a window's value, else the coarse scan's (even k only)."""
    if ws.known[k]:
        return np.float64(ws.fine[k])
    if k % COARSE_STEP == 0:
        return np.float64(ws.coarse[k // COARSE_STEP])
    return np.nan


@njit(cache=True, nogil=True, error_model="numpy")
def search_peaks(t, w, wy, seg, weight, chi2_0, share, f_min, df, n_freq, ws, top_k, top_p):
    """Grid indices and float64 powers of the two highest local maxima (top_k[1] = -1 if none).

    A local maximum is k with P[k] > P[k-1] and P[k] >= P[k+1] (one neighbour at the grid's ends).
    t centred; w, wy, weight, chi2_0 scaled as gls describes; share: the chi2_0 of bands fitted
    exactly at every frequency, which are not in seg. n_freq >= LANES.
    """
    n = t.shape[0]
    top_k[0] = -1
    top_k[1] = -1
    top_p[0] = np.nan
    top_p[1] = np.nan
    if n <= FULL_GRID_MAX_POINTS:
        _full_grid(t, w, wy, seg, weight, chi2_0, share, f_min, df, n_freq, ws, top_k, top_p)
        return
    for i in range(n):
        ws.w32[i] = w[i]
        ws.wy32[i] = wy[i]

    # 1. The coarse scan (even grid indices).
    n_coarse = _coarse_scan(t, f_min, df, n_freq, seg, weight, chi2_0, share, ws)
    coarse = ws.coarse

    # 2. T: the second-highest coarse local maximum, less float32's error.
    first = -np.inf
    second = -np.inf
    for j in range(n_coarse):
        p = np.float64(coarse[j])
        if (j == 0 or p > coarse[j - 1]) and (j == n_coarse - 1 or p >= coarse[j + 1]):
            if p > first:
                second = first
                first = p
            elif p > second:
                second = p
    threshold = second - F32_TIE * abs(first)
    margin = _margin(t.max() - t.min(), df)

    # Windows of LANES grid frequencies from k - 1, for every odd k that could reach the threshold.
    n_windows = 0
    end = 0  # grid indices below end are known
    for k in range(1, n_freq, COARSE_STEP):
        if k < end:
            continue
        j = k // COARSE_STEP
        neighbour = np.float64(coarse[j])
        if k + 1 < n_freq:
            neighbour = max(neighbour, np.float64(coarse[j + 1]))
        if neighbour * margin < threshold:
            continue
        _window(j, n, seg, weight, chi2_0, share, ws)
        start = k - 1
        for lane in range(LANES):
            ws.fine[start + lane] = ws.window[lane]
            ws.known[start + lane] = 1
        ws.starts[n_windows] = start
        n_windows += 1
        end = start + LANES

    # Float32 local maxima at or above the threshold: every one lies in a window (its odd
    # neighbours, or itself, passed the test above) with both neighbours known.
    found_k, found_p = ws.found_k, ws.found_p
    n_found = 0
    best = -np.inf
    second = -np.inf
    for m in range(n_windows):
        for k in range(ws.starts[m], min(ws.starts[m] + LANES, n_freq)):
            p = np.float64(ws.fine[k])
            if p < threshold:
                continue
            left = _value(k - 1, ws) if k > 0 else -np.inf
            right = _value(k + 1, ws) if k < n_freq - 1 else -np.inf
            if p > left and p >= right:  # an unknown (NaN) neighbour fails both
                found_k[n_found] = k
                found_p[n_found] = p
                n_found += 1
                if p > best:
                    second = best
                    best = p
                elif p > second:
                    second = p
    for m in range(n_windows):
        ws.known[ws.starts[m]:ws.starts[m] + LANES] = 0

    # 3. Float64 values for the float32 local maxima that tie the best two within float32 error.
    floor = (second if second > -np.inf else best) - F32_TIE * abs(best)
    ranked = np.argsort(-found_p[:n_found], kind="mergesort")
    for m in range(min(n_found, MAX_EXACT)):
        if found_p[ranked[m]] < floor:
            break
        _exact_local_max(found_k[ranked[m]], n_freq, n, w, wy, seg, weight, chi2_0, share, ws, top_k, top_p)
