"""The multiband periodogram search: the two highest local maxima of the power on the full grid.

Light curves of at most FULL_GRID_MAX_POINTS points take the full grid in float64 SIMD (exact).
Larger ones would cost more than the feature budget that way (~18,000 frequencies x ~80 points), so:
1. scan every COARSE_STEP-th grid frequency in float32 SIMD (gls.lane_powers);
2. around each coarse peak whose interpolated height reaches REFINE_RATIO x a lower bound of the
   second-highest local maximum, scan the full grid in 16-frequency float32 windows, climbing while
   the maximum sits on the range's edge, and keep the local maxima found;
3. re-evaluate in float64 the local maxima whose float32 power ties the best two within float32's
   error (F32_TIE), and report the best two from the float64 values.
tests/test_features_oracle.py checks the result against astropy on the full grid.

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
REFINE_RATIO = 0.8
BLOCK = 2 * LANES  # coarse frequencies per scan block
WINDOW_LEAD = 6  # a window starts at least this many grid frequencies below its coarse peak
MAX_WINDOWS = 256
MAX_FOUND = 1024
SPAN = 8 * LANES  # grid frequencies one climb may cover
F32_TIE = 1e-4  # relative: float32 powers this close to the second-best are re-ranked in float64
MAX_EXACT = 64
FULL_GRID_MAX_POINTS = 24
PARAMS_PER_BAND = 3  # a band with exactly this many points is fitted exactly at every frequency

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
    "span",  # float64 [SPAN]: float32 powers along one climb
    "found_k", "found_p",  # [MAX_FOUND]: float32 local maxima
    "seen",  # uint8 [n_freq]: grid indices already recorded
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
        np.empty(SPAN),
        np.empty(MAX_FOUND, np.int64), np.empty(MAX_FOUND),
        np.zeros(n_freq, np.uint8),
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
    for _ in range(SPAN):
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
def _climb(j, n_freq, n, seg, weight, chi2_0, share, ws):
    """float32 powers around coarse peak j, extending while the maximum sits on an edge inside the grid.

    Returns the evaluated grid range [lo, hi) and the grid index held by ws.span[0].
    """
    span, window = ws.span, ws.window
    first = max(j - WINDOW_LEAD // COARSE_STEP, 0)
    lo = first * COARSE_STEP
    origin = lo - (SPAN - LANES) // 2
    _window(first, n, seg, weight, chi2_0, share, ws)
    hi = min(lo + LANES, n_freq)
    for k in range(lo, hi):
        span[k - origin] = window[k - lo]
    while True:
        arg = lo
        for k in range(lo + 1, hi):
            if span[k - origin] > span[arg - origin]:
                arg = k
        if arg == lo and lo > 0 and lo > origin:
            # the window must reach lo from an aligned start at or below lo - LANES
            start = max(((lo - LANES + COARSE_STEP - 1) // COARSE_STEP) * COARSE_STEP, 0)
            _window(start // COARSE_STEP, n, seg, weight, chi2_0, share, ws)
            new_lo = max(start, origin)
            for k in range(new_lo, lo):
                span[k - origin] = window[k - start]
            lo = new_lo
        elif arg == hi - 1 and hi < n_freq and hi < origin + SPAN:
            start = (hi // COARSE_STEP) * COARSE_STEP
            _window(start // COARSE_STEP, n, seg, weight, chi2_0, share, ws)
            stop = min(start + LANES, n_freq, origin + SPAN)
            for k in range(hi, stop):
                span[k - origin] = window[k - start]
            hi = stop
        else:
            return lo, hi, origin


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

    # 1. The coarse scan.
    n_coarse = _coarse_scan(t, f_min, df, n_freq, seg, weight, chi2_0, share, ws)
    coarse = ws.coarse

    # Coarse local maxima, ranked by the vertex of the parabola through their neighbours. The two
    # highest coarse maxima bound the second-highest local maximum from below; peaks that cannot
    # reach REFINE_RATIO x that bound are dropped before sorting.
    peaks = np.empty(n_coarse, np.int64)
    n_peaks = 0
    for j in range(1, n_coarse - 1):  # branch-free compaction: one frequency in three is a peak
        peaks[n_peaks] = j
        n_peaks += (coarse[j] >= coarse[j - 1]) & (coarse[j] >= coarse[j + 1])
    if coarse[0] >= coarse[1]:
        peaks[n_peaks] = 0
        n_peaks += 1
    if coarse[n_coarse - 1] >= coarse[n_coarse - 2]:
        peaks[n_peaks] = n_coarse - 1
        n_peaks += 1
    first_value = -np.inf
    second_value = -np.inf
    for m in range(n_peaks):
        p = np.float64(coarse[peaks[m]])
        if p > second_value:
            second_value = max(min(p, first_value), second_value)
            first_value = max(p, first_value)
    # A vertex is at most 1.25 x its peak's value (neighbours between 0 and the value).
    floor = REFINE_RATIO * second_value
    heights = np.empty(n_peaks)
    n_kept = 0
    for m in range(n_peaks):
        j = peaks[m]
        p = np.float64(coarse[j])
        if p < floor / 1.25:
            continue
        height = p
        if 0 < j < n_coarse - 1:
            left = np.float64(coarse[j - 1])
            right = np.float64(coarse[j + 1])
            curvature = 2.0 * p - left - right
            if curvature > 0.0:
                height = p + (right - left) ** 2 / (8.0 * curvature)
        if height >= floor:
            heights[n_kept] = height
            peaks[n_kept] = j
            n_kept += 1
    order = np.argsort(-heights[:n_kept], kind="mergesort")

    # 2. Full-grid windows around the promising coarse peaks, float32.
    found_k, found_p, seen, span = ws.found_k, ws.found_p, ws.seen, ws.span
    n_found = 0
    best = -np.inf
    second = -np.inf
    for rank in range(n_kept):
        if heights[order[rank]] < REFINE_RATIO * second:
            break
        if rank >= MAX_WINDOWS or n_found > MAX_FOUND - SPAN:
            break  # rare: a forest of near-equal peaks; the best of those climbed so far win
        lo, hi, origin = _climb(peaks[order[rank]], n_freq, n, seg, weight, chi2_0, share, ws)
        for k in range(lo, hi):
            p = span[k - origin]
            left_ok = k == 0 or (k > lo and p > span[k - 1 - origin])
            right_ok = k == n_freq - 1 or (k < hi - 1 and p >= span[k + 1 - origin])
            if left_ok and right_ok and not seen[k]:
                seen[k] = 1
                found_k[n_found] = k
                found_p[n_found] = p
                n_found += 1
                if p > best:
                    second = best
                    best = p
                elif p > second:
                    second = p

    # 3. Float64 values for the float32 local maxima that tie the best two within float32 error.
    floor = (second if second > -np.inf else best) - F32_TIE * abs(best)
    ranked = np.argsort(-found_p[:n_found], kind="mergesort")
    for m in range(min(n_found, MAX_EXACT)):
        if found_p[ranked[m]] < floor:
            break
        _exact_local_max(found_k[ranked[m]], n_freq, n, w, wy, seg, weight, chi2_0, share, ws, top_k, top_p)
    for m in range(n_found):
        seen[found_k[m]] = 0
