"""The batch cone-search kernel: every alert of a batch against one catalog, in one numba call.

For each alert the kernel picks a query order q (at most the catalog's index order) whose
pixels are wide enough that everything within reach of the alert lies in the alert's pixel or
its 8 neighbours, reads those pixels' row ranges from the index, drops rows whose declination
alone is too far, and measures the rest exactly (moving the star to the alert's epoch first when
the catalog has proper motions). Matches are kept nearest-first, at most `cap` per alert.

Why the neighbours suffice: a point outside a pixel's 3x3 neighbourhood is at least
0.675 * sqrt(pixel area) from the pixel (measured over all pixels at orders 1-4, where the
ratio falls 0.738, 0.712, 0.697, 0.688 towards a limit near 0.675). SAFE_FRACTION = 0.5 keeps a
margin. Reach = radius + (fastest proper motion in the catalog) * |alert epoch - catalog epoch|;
when no order is safe (an absurd epoch), the kernel scans the whole catalog for that alert.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .healpix import MAX_ORDER, neighbours_nest, radec_to_vec, vec2pix_nest

SAFE_FRACTION = 0.5
ARCSEC = math.pi / (180.0 * 3600.0)
MAS_PER_YEAR = ARCSEC / 1000.0


def safe_radius_table(max_order: int) -> np.ndarray:
    """Radians within which a cone around any point stays inside its pixel's neighbourhood, per order."""
    orders = np.arange(max_order + 1)
    return SAFE_FRACTION * np.sqrt(4.0 * np.pi / (12.0 * 4.0 ** orders))


@njit(cache=True, nogil=True)
def _separation(ra0, dec0, x0, y0, z0, cos_dec0, ra, dec, pmra, pmdec, dt):
    """Angle (radians) between the alert and a catalog row moved by dt years of proper motion."""
    if dt == 0.0 or (pmra == 0.0 and pmdec == 0.0):
        # Haversine: accurate at small angles, periodic in RA (the 0/360 seam needs no care).
        s_dec = math.sin(math.radians(dec - dec0) * 0.5)
        s_ra = math.sin(math.radians(ra - ra0) * 0.5)
        h = s_dec * s_dec + cos_dec0 * math.cos(math.radians(dec)) * s_ra * s_ra
        return 2.0 * math.asin(math.sqrt(min(1.0, h)))
    a = math.radians(ra)
    d = math.radians(dec)
    sa, ca, sd, cd = math.sin(a), math.cos(a), math.sin(d), math.cos(d)
    # Linear motion in the tangent plane at the catalog position, then back onto the sphere.
    va = pmra * MAS_PER_YEAR * dt
    vd = pmdec * MAS_PER_YEAR * dt
    x = cd * ca - va * sa - vd * sd * ca
    y = cd * sa + va * ca - vd * sd * sa
    z = sd + vd * cd
    cx = y * z0 - z * y0
    cy = z * x0 - x * z0
    cz = x * y0 - y * x0
    return math.atan2(math.sqrt(cx * cx + cy * cy + cz * cz), x * x0 + y * y0 + z * z0)


@njit(cache=True, nogil=True)
def query_order(safe, max_order, reach):
    """The finest order <= max_order whose pixel neighbourhoods hold every cone of `reach`; -1 if none."""
    q = max_order
    while q >= 0 and safe[q] < reach:
        q -= 1
    return q


@njit(cache=True, nogil=True)
def cone_pixels(q, x0, y0, z0, pix):
    """The distinct pixels (order q) of the point's pixel and its neighbours, into pix[:count]; returns count."""
    pix[0] = vec2pix_nest(q, x0, y0, z0)
    neighbours_nest(q, pix[0], pix[1:])
    count = 0
    for m in range(9):
        p = pix[m]
        if p < 0:
            continue
        seen = False
        for k in range(count):
            if pix[k] == p:
                seen = True
        if not seen:
            pix[count] = p
            count += 1
    return count


@njit(cache=True, nogil=True, inline="always")
def _consider(i, r, ra0, dec0, x0, y0, z0, cos_dec0, dt, motion, reach0, reach_deg, ra, dec, pmra, pmdec, mag,
              pm_skip, radius, bright_mag, bright_radius, out_count, out_row, out_sep, out_bright):
    """Measure row r against alert i, keeping its matches nearest first (at most cap)."""
    cap = out_row.shape[1]
    ddec = abs(dec[r] - dec0)
    if ddec > reach_deg:  # |delta dec| never exceeds the separation
        return
    if len(pmra) > 0:
        pa = pmra[r]
        pd = pmdec[r]
        if abs(pa) + abs(pd) > pm_skip:  # a fast star: the caller looks at it separately
            return
        # The same cut with this star's own motion, usually far below the fastest star's.
        if ddec > math.degrees(reach0 + (abs(pa) + abs(pd)) * motion):
            return
        sep = _separation(ra0, dec0, x0, y0, z0, cos_dec0, ra[r], dec[r], pa, pd, dt)
    else:
        sep = _separation(ra0, dec0, x0, y0, z0, cos_dec0, ra[r], dec[r], 0.0, 0.0, 0.0)
    if sep <= bright_radius and mag[r] <= bright_mag:
        out_bright[i] = True
    if sep > radius:
        return
    k = out_count[i]
    if k == cap:
        if sep >= out_sep[i, cap - 1]:
            return
        k = cap - 1
    else:
        out_count[i] = k + 1
    while k > 0 and out_sep[i, k - 1] > sep:  # insertion: nearest first
        out_sep[i, k] = out_sep[i, k - 1]
        out_row[i, k] = out_row[i, k - 1]
        k -= 1
    out_sep[i, k] = sep
    out_row[i, k] = r


@njit(cache=True, nogil=True)
def scan_rows(i, lo, hi, ra0, dec0, x0, y0, z0, cos_dec0, dt, motion, reach0, reach_deg, ra, dec, pmra, pmdec, mag,
              pm_skip, radius, bright_mag, bright_radius, out_count, out_row, out_sep, out_bright):
    """_consider every row of [lo, hi)."""
    for r in range(lo, hi):
        _consider(i, r, ra0, dec0, x0, y0, z0, cos_dec0, dt, motion, reach0, reach_deg, ra, dec, pmra, pmdec, mag,
                  pm_skip, radius, bright_mag, bright_radius, out_count, out_row, out_sep, out_bright)


@njit(cache=True, nogil=True)
def cone_search(alert_ra, alert_dec, alert_dt, ra, dec, pmra, pmdec, mag, index, order, safe, pm_max,
                radius, bright_mag, bright_radius, out_count, out_row, out_sep, out_bright):
    """Match every alert against one catalog.

    alert_ra/alert_dec: degrees; alert_dt: years from the catalog epoch to each alert (0 = do not
    move). Catalog columns as stored; pmra/pmdec empty when the catalog has none; pm_max in
    rad/yr. radius, bright_radius in radians (bright_radius < 0 turns the flag off). Writes
    out_count[i] matches into out_row[i, :], out_sep[i, :] (radians, ascending).
    """
    n = len(alert_ra)
    has_pm = len(pmra) > 0
    nrows = len(ra)
    pix = np.empty(9, np.int64)
    lo_rows = np.empty(9, np.int64)
    hi_rows = np.empty(9, np.int64)
    reach0 = max(radius, bright_radius)
    for i in range(n):
        out_count[i] = 0
        out_bright[i] = False
        ra0 = alert_ra[i]
        dec0 = alert_dec[i]
        if not (math.isfinite(ra0) and math.isfinite(dec0)) or dec0 < -90.0 or dec0 > 90.0 or nrows == 0:
            continue
        dt = alert_dt[i] if has_pm and math.isfinite(alert_dt[i]) else 0.0
        motion = MAS_PER_YEAR * abs(dt)
        reach = reach0 + pm_max * abs(dt)
        reach_deg = math.degrees(reach)
        x0, y0, z0 = radec_to_vec(ra0, dec0)
        cos_dec0 = math.cos(math.radians(dec0))
        # The row ranges to look at: the alert's pixel and its neighbours at a safe order.
        q = query_order(safe, order, reach)
        n_ranges = 0
        if q < 0:  # nothing is local at this reach: look at every row
            lo_rows[0] = 0
            hi_rows[0] = nrows
            n_ranges = 1
        else:
            shift = 2 * (order - q)
            for m in range(cone_pixels(q, x0, y0, z0, pix)):
                lo_rows[n_ranges] = index[pix[m] << shift]
                hi_rows[n_ranges] = index[(pix[m] + 1) << shift]
                n_ranges += 1
        for j in range(n_ranges):
            scan_rows(i, lo_rows[j], hi_rows[j], ra0, dec0, x0, y0, z0, cos_dec0, dt, motion, reach0, reach_deg,
                      ra, dec, pmra, pmdec, mag, np.inf, radius, bright_mag, bright_radius, out_count, out_row, out_sep,
                      out_bright)


@njit(cache=True, nogil=True)
def scatter_matches(start, counts, rows, seps, ids, mags, cat, out_cat, out_id, out_sep, out_mag, out_row,
                    nearest, col):
    """Copy one catalog's per-alert matches into the batch's ragged arrays at start[i]."""
    for i in range(len(counts)):
        o = start[i]
        if counts[i] > 0:
            nearest[i, col] = o
        else:
            nearest[i, col] = -1
        for k in range(counts[i]):
            r = rows[i, k]
            out_cat[o + k] = cat
            out_id[o + k] = ids[r]
            out_sep[o + k] = seps[i, k] / ARCSEC
            out_mag[o + k] = mags[r]
            out_row[o + k] = r


# --------------------------------------------------------------------------- partitioned catalogs (HATS)
#
# A HATS catalog is split into partitions: each a nested pixel (any order) whose rows, sorted by
# their order-29 pixel ("key"), sit in a slot [slot_lo, slot_hi) of an in-memory arena once paged
# in (slot_lo = -1 while not). part_lo/part_hi are the partitions' key ranges, sorted; they tile
# the covered sky without overlap. A cone's neighbourhood pixels (as above) become key ranges; the
# partitions overlapping a range are found by binary search, the rows inside it likewise.

SKY_KEYS = np.int64(12) << np.int64(2 * MAX_ORDER)


@njit(cache=True, nogil=True)
def _cone_key_ranges(safe, reach, x0, y0, z0, pix, lo_keys, hi_keys):
    """Order-29 key ranges covering everything within `reach` of the point; returns their count."""
    q = query_order(safe, len(safe) - 1, reach)
    if q < 0:
        lo_keys[0] = 0
        hi_keys[0] = SKY_KEYS
        return 1
    shift = 2 * (MAX_ORDER - q)
    n = cone_pixels(q, x0, y0, z0, pix)
    for m in range(n):
        lo_keys[m] = pix[m] << shift
        hi_keys[m] = (pix[m] + 1) << shift
    return n


@njit(cache=True, nogil=True)
def _flag_partitions(n_ranges, lo_keys, hi_keys, part_lo, part_hi, slot_lo, out_touched):
    """Flag the partitions overlapping the key ranges; returns how many of them are not paged in."""
    missing = 0
    for m in range(n_ranges):
        j = np.searchsorted(part_hi, lo_keys[m], side="right")
        while j < len(part_lo) and part_lo[j] < hi_keys[m]:
            out_touched[j] = True
            if slot_lo[j] < 0:
                missing += 1
            j += 1
    return missing


@njit(cache=True, nogil=True)
def cone_search_partitioned(alert_ra, alert_dec, alert_dt, alert_order, has_pm, key, ra, dec, pmra, pmdec, mag,
                            part_lo, part_hi, slot_lo, slot_hi, fast_rows, fast_dec, safe, pm_max, pm_slow, radius,
                            bright_mag, bright_radius, out_count, out_row, out_sep, out_bright, out_touched):
    """cone_search over a partitioned arena; rows are arena rows; alerts visited in alert_order
    (sorted by pixel, so that neighbouring alerts read neighbouring rows). has_pm: the catalog has
    proper motions (said apart from pmra, which is empty while nothing is paged in).

    Stars moving faster than pm_slow (|pmra| + |pmdec|, mas/yr) are rare; they are looked up in
    fast_rows (arena rows sorted by declination, fast_dec) within the reach of the fastest
    (pm_max, rad/yr), so that the pixel search of all other stars needs only the reach of pm_slow.
    Flags every partition within reach in out_touched and returns how many were not paged in
    (then the alert is skipped; the caller pages them in and searches again).
    """
    slow_max = min(pm_max, pm_slow * MAS_PER_YEAR)
    pm_skip = pm_slow if has_pm and slow_max < pm_max else np.inf
    pix = np.empty(9, np.int64)
    lo_keys = np.empty(9, np.int64)
    hi_keys = np.empty(9, np.int64)
    reach0 = max(radius, bright_radius)
    missing = 0
    last_q, last_pix, last_absent = -2, -1, 0
    for t in range(len(alert_order)):
        i = alert_order[t]
        out_count[i] = 0
        out_bright[i] = False
        ra0 = alert_ra[i]
        dec0 = alert_dec[i]
        if not (math.isfinite(ra0) and math.isfinite(dec0)) or dec0 < -90.0 or dec0 > 90.0:
            continue
        dt = alert_dt[i] if has_pm and math.isfinite(alert_dt[i]) else 0.0
        motion = MAS_PER_YEAR * abs(dt)
        reach = reach0 + pm_max * abs(dt)
        reach_slow = reach0 + slow_max * abs(dt)
        x0, y0, z0 = radec_to_vec(ra0, dec0)
        cos_dec0 = math.cos(math.radians(dec0))
        if reach_slow < reach:
            # The partitions within the fastest star's reach: the same as the previous alert's
            # when both share a pixel at that order (alerts come sorted), so flagged already.
            q = query_order(safe, len(safe) - 1, reach)
            here = vec2pix_nest(q, x0, y0, z0) if q >= 0 else -1
            if q != last_q or here != last_pix or q < 0:
                n_ranges = _cone_key_ranges(safe, reach, x0, y0, z0, pix, lo_keys, hi_keys)
                last_absent = _flag_partitions(n_ranges, lo_keys, hi_keys, part_lo, part_hi, slot_lo, out_touched)
                last_q, last_pix = q, here
                missing += last_absent
            if last_absent:
                continue
        n_ranges = _cone_key_ranges(safe, reach_slow, x0, y0, z0, pix, lo_keys, hi_keys)
        if reach_slow == reach:
            absent = _flag_partitions(n_ranges, lo_keys, hi_keys, part_lo, part_hi, slot_lo, out_touched)
            if absent:
                missing += absent
                continue
        reach_deg = math.degrees(reach_slow)
        for m in range(n_ranges):
            j = np.searchsorted(part_hi, lo_keys[m], side="right")
            while j < len(part_lo) and part_lo[j] < hi_keys[m]:
                s, e = slot_lo[j], slot_hi[j]
                j += 1
                lo = s + np.searchsorted(key[s:e], lo_keys[m])
                hi = s + np.searchsorted(key[s:e], hi_keys[m])
                scan_rows(i, lo, hi, ra0, dec0, x0, y0, z0, cos_dec0, dt, motion, reach0, reach_deg, ra, dec,
                          pmra, pmdec, mag, pm_skip, radius, bright_mag, bright_radius, out_count, out_row, out_sep,
                          out_bright)
        if pm_skip < np.inf:
            reach_deg = math.degrees(reach)
            lo = np.searchsorted(fast_dec, dec0 - reach_deg)
            hi = np.searchsorted(fast_dec, dec0 + reach_deg, side="right")
            for k in range(lo, hi):
                _consider(i, fast_rows[k], ra0, dec0, x0, y0, z0, cos_dec0, dt, motion, reach0, reach_deg, ra, dec,
                          pmra, pmdec, mag, np.inf, radius, bright_mag, bright_radius, out_count, out_row, out_sep,
                          out_bright)
    return missing
