"""Union of several ragged light-curve sources per alert: deduplicated by id, cut to a time window.

Pure numba over numpy arrays; the Sources plumbing stays in `merge_light_curves`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .columns import SOURCE_COLUMNS, Sources


@njit(cache=True, nogil=True)
def _select(part_offsets, ids, mjd, window_end, window_days):
    """Row indices (into the concatenated parts) kept for each alert, and per-alert counts.

    part_offsets[k] are part k's offsets shifted to the concatenation. Keeps
    window_end - window_days <= mjd <= window_end; for a repeated id, the lowest part wins.
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
        # Stable sort by id keeps part order among equal ids: the first of each run wins.
        by_id = cand[:m][np.argsort(ids[cand[:m]], kind="mergesort")]
        keep = np.empty(m, np.int64)
        u = 0
        for j in range(m):
            if j == 0 or ids[by_id[j]] != ids[by_id[j - 1]]:
                keep[u] = by_id[j]
                u += 1
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


def merge_light_curves(parts: list[Sources], window_end: np.ndarray, window_days: float) -> Sources:
    """Union of `parts` per alert, deduplicated by source_id (earliest part wins), cut to
    [window_end - window_days, window_end], sorted by (mjd, source_id) within each alert."""
    base = np.cumsum([0] + [len(p.source_id) for p in parts[:-1]])
    part_offsets = np.stack([p.offsets + b for p, b in zip(parts, base)]).astype(np.int64)
    cols = {name: np.concatenate([getattr(p, name) for p in parts]) for name in SOURCE_COLUMNS}
    chosen, counts = _select(part_offsets, cols["source_id"], cols["mjd"],
                             np.ascontiguousarray(window_end, np.float64), float(window_days))
    return Sources.from_arrays(counts, **{k: v[chosen] for k, v in cols.items()})
