"""Valid points of one light curve, in a canonical order that does not depend on the input row order.

Pure numba over numpy arrays. Everything downstream sees finite values only: masking happens here.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .layout import N_BANDS


@njit(cache=True, nogil=True, error_model="numpy")
def _row_before(a, b, mjd, source_id, flux, flux_err):
    """Canonical order of two rows: time, then diaSourceId, then flux and error (full tie-break)."""
    if mjd[a] != mjd[b]:
        return mjd[a] < mjd[b]
    if source_id[a] != source_id[b]:
        return source_id[a] < source_id[b]
    if flux[a] != flux[b]:
        return flux[a] < flux[b]
    return flux_err[a] < flux_err[b]


@njit(cache=True, nogil=True, error_model="numpy")
def _sort_rows(rows, m, mjd, source_id, flux, flux_err):
    """Sort rows[:m] canonically; O(m) when they already are, as the pipeline delivers them."""
    in_order = True
    for k in range(1, m):
        if _row_before(rows[k], rows[k - 1], mjd, source_id, flux, flux_err):
            in_order = False
            break
    if in_order:
        return
    if m > 32:
        # Stable sort by time first; the insertion pass below then only fixes equal-time runs.
        times = np.empty(m)
        for k in range(m):
            times[k] = mjd[rows[k]]
        perm = np.argsort(times, kind="mergesort")
        sorted_rows = rows[:m][perm]
        rows[:m] = sorted_rows
    for k in range(1, m):
        r = rows[k]
        j = k - 1
        while j >= 0 and _row_before(r, rows[j], mjd, source_id, flux, flux_err):
            rows[j + 1] = rows[j]
            j -= 1
        rows[j + 1] = r


@njit(cache=True, nogil=True, error_model="numpy")
def select_points(lo, hi, mjd, source_id, band, flux, flux_err, duplicate_days, rows, t, f, e, seg):
    """Valid points of rows lo:hi, grouped by band and time-ordered within each band.

    Valid: band 0..5 and finite mjd, flux and error with error > 0. Within a band, a point within
    `duplicate_days` of the previous one is a duplicate; of each such chain the largest
    diaSourceId is kept. Writes t, f, e (band b at seg[b]:seg[b+1]) and returns the point count.
    `rows` is scratch of length >= hi - lo.
    """
    m = 0
    for r in range(lo, hi):
        b = band[r]
        if 0 <= b < N_BANDS and np.isfinite(mjd[r]) and np.isfinite(flux[r]) and np.isfinite(flux_err[r]) \
                and flux_err[r] > 0.0:
            rows[m] = r
            m += 1
    _sort_rows(rows, m, mjd, source_id, flux, flux_err)

    counts = np.zeros(N_BANDS, np.int64)
    for k in range(m):
        counts[band[rows[k]]] += 1
    start = np.zeros(N_BANDS + 1, np.int64)
    for b in range(N_BANDS):
        start[b + 1] = start[b] + counts[b]

    # Stable placement by band, then collapse duplicate-time chains in place.
    fill = start[:N_BANDS].copy()
    placed = np.empty(m, np.int64)
    for k in range(m):
        b = band[rows[k]]
        placed[fill[b]] = rows[k]
        fill[b] += 1
    n = 0
    for b in range(N_BANDS):
        seg[b] = n
        k = start[b]
        while k < start[b + 1]:
            keep = placed[k]
            j = k + 1
            while j < start[b + 1] and mjd[placed[j]] - mjd[placed[j - 1]] <= duplicate_days:
                if source_id[placed[j]] >= source_id[keep]:
                    keep = placed[j]
                j += 1
            t[n] = mjd[keep]
            f[n] = flux[keep]
            e[n] = flux_err[keep]
            n += 1
            k = j
    seg[N_BANDS] = n
    return n
