"""A night of 10,000-alert visits matched in place against ten HATS catalogs at billion-row density.

The catalogs come from benchmarks/xmatch_sky.py (hats-import; built once into --root, which
`alertfeat bench xmatch-hats` builds on first use). Measured in one run:
- cold: the first visit to a field with empty caches (partitions read from Parquet; the files
  themselves may sit in the OS page cache, which this benchmark cannot and does not drop);
- warm: further visits to the same field (new alerts, same partitions);
- the night: `visits` visits walking over the 20 fields in pairs (a row of five fields, then the
  same row again, as a survey revisits a field within the hour), with a bounded cache per
  catalog: time per visit, cache hit rate, evictions, and peak RSS of the process;
- the anchor: astropy `search_around_sky` on the same rows (the partitions our cache read for
  that visit) for three visits, cold (SkyCoord, proper motion to the epoch, KD-tree) and warm
  (tree reused); its nearest match per catalog must equal ours.
"""

from __future__ import annotations

import json
import resource
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from alertfeat.xmatch import CatalogSet
from alertfeat.xmatch.hats import HatsCatalog, HatsColumns

from . import xmatch_sky as sky

MJD = 61500.0  # 2027-02: alerts 11 years after the catalogs' epoch
N_ALERTS = 10_000
RADIUS_PM = 1.0  # arcsec, catalogs with proper motions (Gaia-like)
RADIUS = 2.0  # arcsec, the others


def open_catalogs(root: Path, cache_mb: float) -> CatalogSet:
    cats, radii = [], []
    for k in range(sky.N_CATALOGS):
        pm = k < sky.PM_CATALOGS
        cols = HatsColumns(id="source_id", mag="mag", pmra="pmra" if pm else None, pmdec="pmdec" if pm else None,
                           carry=("parallax",) if pm else ())
        cats.append(HatsCatalog.open(sky.catalog_name(k), root / "hats" / sky.catalog_name(k), cols, epoch=sky.EPOCH,
                                     cache_mb=cache_mb))
        radii.append(RADIUS_PM if pm else RADIUS)
    return CatalogSet(cats, radii, max_matches=5, bright_catalog=None)


def visit_alerts(rng, ra0: float, dec0: float, n: int = N_ALERTS):
    """n alerts uniform over the 1.75-degree field around (ra0, dec0)."""
    r = np.radians(sky.FIELD_RADIUS) * np.sqrt(rng.uniform(0, 1, n))
    t = rng.uniform(0, 2 * np.pi, n)
    dec = dec0 + np.degrees(r * np.sin(t))
    ra = (ra0 + np.degrees(r * np.cos(t)) / np.cos(np.radians(dec))) % 360
    return ra, dec


def on_stars(rng, catalogs: CatalogSet, ra, dec, fraction: float = 0.2):
    """Move a fraction of the alerts onto stars of the cached partitions (variable stars), within 0.5 arcsec."""
    k = int(len(ra) * fraction)
    for j in range(k):
        c = catalogs.catalogs[j % len(catalogs.catalogs)]
        rows = c._arena.used
        if rows:
            r = rng.integers(0, rows)
            near = abs(c._arena.columns["dec"][r] - dec[j]) < 1.5 and abs(c._arena.columns["ra"][r] - ra[j]) < 2
            if near:
                ra[j] = c._arena.columns["ra"][r] + rng.uniform(-0.5, 0.5) / 3600
                dec[j] = c._arena.columns["dec"][r] + rng.uniform(-0.5, 0.5) / 3600
    return ra, dec


def night_plan(rng, visits: int) -> np.ndarray:
    """Visit centres: each row of five fields twice in a row, rows in turn, dithered by up to 0.2 deg."""
    fields = sky.field_centres().reshape(len(sky.GRID_DEC), len(sky.GRID_RA), 2)
    plan = []
    while len(plan) < visits:
        for row in fields:
            for _ in range(2):
                for ra0, dec0 in row:
                    plan.append((ra0 + rng.uniform(-0.2, 0.2), dec0 + rng.uniform(-0.2, 0.2)))
    return np.array(plan[:visits])


def _rss_mb() -> float:
    """Peak RSS of the process so far (includes astropy's part of the run)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _current_rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**20


def _astropy(catalogs: CatalogSet, ra, dec):
    """astropy on the rows our caches hold; (cold s, warm s, nearest ids per catalog)."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord, search_around_sky
    from astropy.time import Time

    year = 2000.0 + (MJD - 51544.5) / 365.25
    alerts = SkyCoord(ra=ra * u.deg, dec=dec * u.deg)
    t0 = time.perf_counter()
    coords, nearest = [], []
    for c, radius in zip(catalogs.catalogs, catalogs.radii_arcsec):
        a = c._arena.columns
        n = c._arena.used
        cat = SkyCoord(ra=a["ra"][:n] * u.deg, dec=a["dec"][:n] * u.deg)
        if c.has_pm:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                moving = SkyCoord(ra=cat.ra, dec=cat.dec, pm_ra_cosdec=a["pmra"][:n].astype(float) * u.mas / u.yr,
                                  pm_dec=a["pmdec"][:n].astype(float) * u.mas / u.yr,
                                  obstime=Time(c.epoch, format="jyear"))
                moved = moving.apply_space_motion(new_obstime=Time(year, format="jyear"))
            cat = SkyCoord(ra=moved.ra, dec=moved.dec)
        search_around_sky(alerts, cat, radius * u.arcsec)
        coords.append(cat)
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    for c, cat, radius in zip(catalogs.catalogs, coords, catalogs.radii_arcsec):
        ia, ic, sep, _ = search_around_sky(alerts, cat, radius * u.arcsec)
        best = np.full(len(ra), -1, np.int64)
        order = np.argsort(-sep.to_value(u.arcsec))  # nearest written last
        best[ia[order]] = c.id[ic[order]]
        nearest.append(best)
    warm = time.perf_counter() - t0
    return cold, warm, nearest


def run(root: str | Path = sky.DEFAULT_ROOT, cache_mb: float = 150.0, visits: int = 800, repeats: int = 10,
        fields: int = 3, seed: int = 7) -> dict:
    root = Path(root)
    info = sky.build(root)
    rng = np.random.default_rng(seed)
    centres = sky.field_centres()
    catalogs = open_catalogs(root, cache_mb)
    catalogs.match(*visit_alerts(rng, *centres[0], n=10), np.full(10, MJD))  # compile the kernels
    rows = sum(v["rows"] for v in info["catalogs"].values())
    out: dict = {"catalogs": len(catalogs.catalogs), "rows_total": rows, "cache_mb_per_catalog": cache_mb,
                 "build_s": round(sum(v["simulate_s"] + v["hats_import_s"] for v in info["catalogs"].values())),
                 "hats_import_s": round(sum(v["hats_import_s"] for v in info["catalogs"].values())),
                 "disk_mb": round(sum(v["bytes"] for v in info["catalogs"].values()) / 2**20),
                 "partitions_per_catalog": statistics.mean(c.partitions for c in catalogs.catalogs)}
    # Cold and warm on three fields, each with fresh caches; astropy on the same rows.
    cold, warm, ratios_cold, ratios_warm, agree, compared = [], [], [], [], 0, 0
    for f in (0, 7, 13)[:fields]:
        catalogs = open_catalogs(root, cache_mb)
        ra, dec = visit_alerts(rng, *centres[f])
        mjd = np.full(len(ra), MJD)
        t0 = time.perf_counter()
        catalogs.match(ra, dec, mjd)
        cold.append(time.perf_counter() - t0)
        times = []
        for _ in range(repeats):
            ra, dec = on_stars(rng, catalogs, *visit_alerts(rng, *(centres[f] + rng.uniform(-0.05, 0.05, 2))))
            t0 = time.perf_counter()
            result = catalogs.match(ra, dec, mjd)
            times.append(time.perf_counter() - t0)
        warm.append(statistics.median(times))
        a_cold, a_warm, nearest = _astropy(catalogs, ra, dec)
        ratios_cold.append(a_cold / cold[-1])
        ratios_warm.append(a_warm / warm[-1])
        for col, best in enumerate(nearest):
            ours = np.where(result.nearest[:, col] >= 0, result.source_id[np.maximum(result.nearest[:, col], 0)], -1)
            agree += int(np.sum(ours == best))
            compared += len(best)
        out.setdefault("astropy_cold_s", []).append(round(a_cold, 3))
        out.setdefault("astropy_warm_s", []).append(round(a_warm, 3))
        out.setdefault("rows_cached_per_visit", []).append(sum(c._arena.used for c in catalogs.catalogs))
        print(json.dumps(out), file=sys.stderr, flush=True)  # partial results: the run is long
    out.update(cold_ms=[round(t * 1e3, 1) for t in cold], warm_ms=[round(t * 1e3, 1) for t in warm],
               astropy_over_ours_cold=[round(r, 1) for r in ratios_cold],
               astropy_over_ours_warm=[round(r, 1) for r in ratios_warm],
               nearest_equal_to_astropy=f"{agree}/{compared}")
    # The night, with fresh caches.
    catalogs = open_catalogs(root, cache_mb)
    plan = night_plan(rng, visits)
    per_visit = []
    rss_start, rss_max = _current_rss_mb(), 0.0
    for ra0, dec0 in plan:
        ra, dec = visit_alerts(rng, ra0, dec0)
        t0 = time.perf_counter()
        catalogs.match(ra, dec, np.full(len(ra), MJD))
        per_visit.append(time.perf_counter() - t0)
        rss_max = max(rss_max, _current_rss_mb())
        if len(per_visit) % 50 == 0:
            print(f"night: {len(per_visit)} visits, median {np.median(per_visit) * 1e3:.0f} ms", file=sys.stderr,
                  flush=True)
    stats = [c.stats for c in catalogs.catalogs]
    hits, misses = sum(s.hits for s in stats), sum(s.misses for s in stats)
    per_visit = np.array(per_visit) * 1e3
    out.update(night_visits=visits, night_median_ms=round(float(np.median(per_visit)), 1),
               night_p95_ms=round(float(np.percentile(per_visit, 95)), 1),
               night_max_ms=round(float(per_visit.max()), 1), night_total_s=round(float(per_visit.sum()) / 1e3, 1),
               night_hit_rate=round(hits / (hits + misses), 3), night_partition_reads=misses,
               night_evictions=sum(s.evictions for s in stats), night_rows_read=sum(s.rows_read for s in stats),
               night_read_s=round(sum(s.read_seconds for s in stats), 1),
               night_cache_grown=sum(s.grown for s in stats),
               cache_peak_mb=round(sum(s.peak_bytes for s in stats) / 2**20),
               night_rss_start_mb=round(rss_start), night_rss_max_mb=round(rss_max),
               peak_rss_mb_whole_run=round(_rss_mb()))
    return out

