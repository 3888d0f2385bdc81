"""The multiband periodogram search: the two highest local maxima of the power on the full grid.

Every grid frequency is evaluated; none is skipped. Light curves of at most FULL_GRID_MAX_POINTS
points take the grid in float64 SIMD (exact). Larger ones:
1. scan the whole grid in float32 SIMD (gls.lane_powers), 32 frequencies per vector;
2. take the float32 local maxima whose power ties the best two within float32's error (F32_TIE),
   climb each to its float64 local maximum, and report the best two from the float64 values.
So the result is the full grid's, except where two peaks' float64 powers differ by less than
float32's rounding of them (~1e-6 relative): a near-tie. A coarse grid refined around its peaks
cannot promise that: with a year's span, peaks of few-point bands are one grid step wide.
tests/test_features_argmax.py checks it against astropy on real and simulated light curves.

Phases exp(i omega_k t) come from recurrences and tables, never from sin/cos per frequency: the
scan advances one phase per point per block of BLOCK frequencies and keeps each block's start, so
any grid frequency's phase is block start x lane.
"""

from __future__ import annotations

import math
from collections import namedtuple

import numpy as np
from numba import njit

from .gls import LANES, LANES_F64, exact_powers, lane_powers, phase_table

BLOCK = 2 * LANES  # grid frequencies per scan block
F32_TIE = 1e-4  # relative: float32 powers this close to the second-best are re-ranked in float64
MAX_EXACT = 64
MAX_CLIMB = 128  # float64 steps from a float32 local maximum to the float64 one (a few in practice)
FULL_GRID_MAX_POINTS = 24
PARAMS_PER_BAND = 3  # a band with exactly this many points is fitted exactly at every frequency

Workspace = namedtuple("Workspace", [
    "scan",  # float32 [n_blocks * BLOCK]: float32 powers on the grid
    "block_c", "block_s",  # float64 [n_blocks, cap]: phases at each block's first frequency
    "scan_c", "scan_s",  # float32 [cap * BLOCK]: exp(i l domega t), l < BLOCK
    "lane_c", "lane_s",  # float64 [BLOCK, cap]: exp(i l domega t)
    "step_c", "step_s",  # float64 [cap]: exp(i domega t), one grid step
    "advance_c", "advance_s",  # float64 [cap]: exp(i BLOCK domega t), one block
    "cur_c", "cur_s",  # float64 [cap]: phases being advanced
    "cur_c32", "cur_s32", "root_w32", "root_wy32",  # float32 [cap]: phases, sqrt(w), wy / sqrt(w)
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
    n_blocks = (n_freq - 1) // BLOCK + 1
    return Workspace(
        np.empty(n_blocks * BLOCK, np.float32),
        np.empty((n_blocks, cap)), np.empty((n_blocks, cap)),
        np.empty(cap * BLOCK, np.float32), np.empty(cap * BLOCK, np.float32),
        np.empty((BLOCK, cap)), np.empty((BLOCK, cap)),
        np.empty(cap), np.empty(cap),
        np.empty(cap), np.empty(cap),
        np.empty(cap), np.empty(cap),
        np.empty(cap, np.float32), np.empty(cap, np.float32), np.empty(cap, np.float32), np.empty(cap, np.float32),
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
def _seed(k, n, ws):
    """ws.cur = exp(i omega_k t) at grid index k, from its block's start and lane."""
    block = k // BLOCK
    lane = k % BLOCK
    for i in range(n):
        b_c = ws.block_c[block, i]
        b_s = ws.block_s[block, i]
        ws.cur_c[i] = b_c * ws.lane_c[lane, i] - b_s * ws.lane_s[lane, i]
        ws.cur_s[i] = b_s * ws.lane_c[lane, i] + b_c * ws.lane_s[lane, i]


@njit(cache=True, nogil=True, error_model="numpy")
def _exact_range(k_first, count, n, w, wy, seg, weight, chi2_0, share, ws, out):
    """out[m] = float64 power at grid index k_first + m, m < count."""
    _seed(k_first, n, ws)
    cur_c, cur_s = ws.cur_c[:n], ws.cur_s[:n]
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
    root_w = np.sqrt(w)
    root_wy = wy / root_w
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
        lane_powers(cur_c, cur_s, ws.table_c, ws.table_s, LANES_F64, 0, root_w, root_wy, seg, weight, chi2_0, share,
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
def _scan(t, w, wy, f_min, df, n_freq, seg, weight, chi2_0, share, ws):
    """Tables, then ws.scan[k] = float32 power at grid index k, for every k < n_freq."""
    n = t.shape[0]
    for i in range(n):
        ws.root_w32[i] = math.sqrt(w[i])
        ws.root_wy32[i] = wy[i] / math.sqrt(w[i])
    domega = 2.0 * math.pi * df
    phase_table(t, domega, BLOCK, ws.lane_c.T, ws.lane_s.T)
    for i in range(n):
        for lane in range(BLOCK):
            ws.scan_c[i * BLOCK + lane] = ws.lane_c[lane, i]
            ws.scan_s[i * BLOCK + lane] = ws.lane_s[lane, i]
        ws.step_c[i] = ws.lane_c[1, i]
        ws.step_s[i] = ws.lane_s[1, i]
        last_c = ws.lane_c[BLOCK - 1, i]
        last_s = ws.lane_s[BLOCK - 1, i]
        one_c = ws.lane_c[1, i]
        one_s = ws.lane_s[1, i]
        ws.advance_c[i] = last_c * one_c - last_s * one_s
        ws.advance_s[i] = last_s * one_c + last_c * one_s
        ws.cur_c[i] = math.cos(2.0 * math.pi * f_min * t[i])
        ws.cur_s[i] = math.sin(2.0 * math.pi * f_min * t[i])
    for block in range((n_freq - 1) // BLOCK + 1):
        ws.block_c[block, :n] = ws.cur_c[:n]
        ws.block_s[block, :n] = ws.cur_s[:n]
        for i in range(n):
            ws.cur_c32[i] = ws.cur_c[i]
            ws.cur_s32[i] = ws.cur_s[i]
        for half in range(0, BLOCK, LANES):
            lane_powers(ws.cur_c32[:n], ws.cur_s32[:n], ws.scan_c, ws.scan_s, BLOCK, half, ws.root_w32, ws.root_wy32,
                        seg, weight, chi2_0, share, False, ws.scan[block * BLOCK + half:])
        for i in range(n):
            c = ws.cur_c[i]
            ws.cur_c[i] = c * ws.advance_c[i] - ws.cur_s[i] * ws.advance_s[i]
            ws.cur_s[i] = ws.cur_s[i] * ws.advance_c[i] + c * ws.advance_s[i]



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
    # 1. The float32 scan of the whole grid. In one pass, keep the local maxima that could tie the
    # best two: those reaching the running floor (second-best so far less F32_TIE), which only rises.
    _scan(t, w, wy, f_min, df, n_freq, seg, weight, chi2_0, share, ws)
    power = ws.scan
    found_k, found_p = ws.found_k, ws.found_p
    n_found = 0
    best = -np.inf
    second = -np.inf
    floor = -np.inf
    for k in range(n_freq):
        p = power[k]
        if p < floor:  # almost every frequency: one predictable branch
            continue
        if (k == 0 or p > power[k - 1]) and (k == n_freq - 1 or p >= power[k + 1]):
            found_k[n_found] = k
            found_p[n_found] = p
            n_found += 1
            if p > best:
                second = best
                best = p
            elif p > second:
                second = p
            floor = second - F32_TIE  # powers are <= 1: below the final floor, and never falls

    # 2. Float64 values for the float32 local maxima that tie the best two within float32 error.
    floor = (second if second > -np.inf else best) - F32_TIE * abs(best)
    kept = 0
    for m in range(n_found):
        if found_p[m] >= floor:
            found_k[kept] = found_k[m]
            found_p[kept] = found_p[m]
            kept += 1
    n_found = kept
    ranked = np.argsort(-found_p[:n_found], kind="mergesort")
    for m in range(min(n_found, MAX_EXACT)):
        _exact_local_max(found_k[ranked[m]], n_freq, n, w, wy, seg, weight, chi2_0, share, ws, top_k, top_p)
