"""Union of several ragged light-curve sources per alert: deduplicated by id, cut to a time window.

Pure numba over numpy arrays; the Sources plumbing stays in `merge_light_curves`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .columns import SOURCE_COLUMNS, Sources


@njit(cache=True, nogil=True)
def _content_before(a, b, mjd, band, flux, flux_err):
    """Order of two copies of one diaSourceId by what they say: time, band, flux, error."""
    if mjd[a] != mjd[b]:
        return mjd[a] < mjd[b]
    if band[a] != band[b]:
        return band[a] < band[b]
    if flux[a] != flux[b]:
        return flux[a] < flux[b]
    if flux_err[a] != flux_err[b]:
        return flux_err[a] < flux_err[b]
    return np.signbit(flux[a]) and not np.signbit(flux[b])  # -0.0 before 0.0: even the bits agree


@njit(cache=True, nogil=True)
def _select(part_offsets, ids, mjd, band, flux, flux_err, window_end, window_days, trigger):
    """Row indices (into the concatenated parts) kept for each alert, and per-alert counts.

    part_offsets[k] are part k's offsets shifted to the concatenation. Keeps
    window_end - window_days <= mjd <= window_end. Of the copies of one id, trigger[i] (a row, or
    -1) wins; otherwise the copy first by content: the choice never depends on row or part order.
    Rows come out sorted by (mjd, id) within each alert.
    """
    n_parts, n1 = part_offsets.shape
    n = n1 - 1
    total = 0
    for k in range(n_parts):
        total += part_offsets[k, n] - part_offsets[k, 0]
    chosen = np.empty(total, np.int64)
    counts = np.zeros(n, np.int64)
    out = 0
    cand = np.empty(0, np.int64)
    for i in range(n):
        size = 0
        for k in range(n_parts):
            size += part_offsets[k, i + 1] - part_offsets[k, i]
        if cand.shape[0] < size:
            cand = np.empty(size, np.int64)
        m = 0
        lo_t = window_end[i] - window_days
        hi_t = window_end[i]
        for k in range(n_parts):
            for r in range(part_offsets[k, i], part_offsets[k, i + 1]):
                if mjd[r] >= lo_t and mjd[r] <= hi_t:  # NaN fails both
                    cand[m] = r
                    m += 1
        if m == 0:
            continue
        by_id = cand[:m][np.argsort(ids[cand[:m]])]
        keep = np.empty(m, np.int64)
        u = 0
        for j in range(m):
            r = by_id[j]
            if j == 0 or ids[r] != ids[by_id[j - 1]]:
                keep[u] = r
                u += 1
            elif keep[u - 1] != trigger[i] and (r == trigger[i] or _content_before(r, keep[u - 1], mjd, band, flux,
                                                                                  flux_err)):
                keep[u - 1] = r
        keep = keep[:u]
        # Sort by (mjd, id): ids are already ascending, so a stable sort on mjd suffices.
        keep = keep[np.argsort(mjd[keep], kind="mergesort")]
        chosen[out:out + u] = keep
        counts[i] = u
        out += u
    return chosen[:out], counts


@njit(cache=True, nogil=True)
def rows_not_in(a_offsets, a_ids, b_offsets, b_ids, alerts):
    """Mask over rows of `a`: True where the row's id is absent from the same alert's rows in `b`."""
    mask = np.zeros(a_ids.shape[0], np.bool_)
    for i in alerts:
        have = np.sort(b_ids[b_offsets[i]:b_offsets[i + 1]])
        for r in range(a_offsets[i], a_offsets[i + 1]):
            j = np.searchsorted(have, a_ids[r])
            mask[r] = j == have.shape[0] or have[j] != a_ids[r]
    return mask


def trigger_rows(sources: Sources, trigger_kept: np.ndarray) -> np.ndarray:
    """Per alert, the row of its triggering diaSource in `sources` (its first row), or -1."""
    return np.where(trigger_kept, sources.offsets[:-1], -1).astype(np.int64)


def merge_light_curves(parts: list[Sources], window_end: np.ndarray, window_days: float,
                       trigger: np.ndarray | None = None) -> Sources:
    """Union of `parts` per alert, deduplicated by source_id, cut to [window_end - window_days,
    window_end], sorted by (mjd, source_id) within each alert. `trigger`: per alert, a row of
    parts[0] that wins over every other copy of its id (-1: none); other duplicates are resolved
    by content (docs/data-quality.md), so the result is the same in any row or part order."""
    base = np.cumsum([0] + [len(p.source_id) for p in parts[:-1]])
    part_offsets = np.stack([p.offsets + b for p, b in zip(parts, base)]).astype(np.int64)
    cols = {name: np.concatenate([getattr(p, name) for p in parts]) for name in SOURCE_COLUMNS}
    if trigger is None:
        trigger = np.full(len(window_end), -1, np.int64)
    chosen, counts = _select(part_offsets, cols["source_id"], cols["mjd"], cols["band"], cols["flux"],
                             cols["flux_err"], np.ascontiguousarray(window_end, np.float64), float(window_days),
                             np.ascontiguousarray(trigger, np.int64))
    return Sources.from_arrays(counts, **{k: v[chosen] for k, v in cols.items()})
