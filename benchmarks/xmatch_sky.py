"""Ten simulated catalogs at the sky density of a billion-row catalog, built with hats-import, and a
night of visits walking over them (benchmarks/xmatch_hats.py matches against them).

Density: n(b) = A * (0.15 + exp(-|sin b| / 0.15)) rows/deg2 with b the galactic latitude and A set
so that the all-sky mean is 24,000 rows/deg2 (a billion rows): ~12,000/deg2 at the galactic poles,
~93,000/deg2 in the plane. The catalogs cover the union of the night's fields plus a 0.5 deg
margin, 214 deg2 at galactic latitudes -25 to -10 degrees, where the density runs from 16,000 to
43,000 rows/deg2 (mean 24,000); each catalog is drawn independently. Catalogs 0-3 carry proper motions (a
Gaia-like distribution: most stars a few mas/yr, a tail of nearby fast movers), the others not.

    python -m alertfeat.benchmarks.xmatch_sky build [--root .bench-catalogs]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

SKY_DEG2 = 4 * math.pi * (180 / math.pi) ** 2
ROWS_PER_SKY = 1_000_000_000
FIELD_RADIUS = 1.75  # deg: a Rubin field of view, 9.6 deg2
MARGIN = 0.5  # deg around every field
N_CATALOGS = 10
PM_CATALOGS = 4
EPOCH = 2016.0
# The night's fields: a 5 x 4 grid ~3 degrees apart (a Rubin-like tiling step) at RA 88-102, dec -30..-21.
GRID_RA = 88.0 + 3.4 * np.arange(5)
GRID_DEC = -30.0 + 3.0 * np.arange(4)
DEFAULT_ROOT = Path(".bench-catalogs")


def _shape(sin_b):
    return 0.15 + np.exp(-np.abs(sin_b) / 0.15)


def density_scale() -> float:
    """A such that the all-sky mean of A * _shape is ROWS_PER_SKY / SKY_DEG2."""
    s = np.linspace(-1, 1, 200_001)  # uniform in sin b is uniform on the sphere
    return ROWS_PER_SKY / SKY_DEG2 / float(np.mean(_shape(s)))


def galactic_sin_b(ra, dec):
    """sin(galactic latitude) of ICRS positions (the J2000 north galactic pole, IAU 1958)."""
    ra_p, dec_p = np.radians(192.85948), np.radians(27.12825)
    ra, dec = np.radians(ra), np.radians(dec)
    return np.sin(dec) * np.sin(dec_p) + np.cos(dec) * np.cos(dec_p) * np.cos(ra - ra_p)


def field_centres() -> np.ndarray:
    ra, dec = np.meshgrid(GRID_RA, GRID_DEC)
    return np.column_stack([ra.ravel(), dec.ravel()])


def _sep_deg(ra1, dec1, ra2, dec2):
    ra1, dec1, ra2, dec2 = map(np.radians, (ra1, dec1, ra2, dec2))
    h = np.sin((dec2 - dec1) / 2) ** 2 + np.cos(dec1) * np.cos(dec2) * np.sin((ra2 - ra1) / 2) ** 2
    return np.degrees(2 * np.arcsin(np.sqrt(np.minimum(1, h))))


def region_bounds() -> tuple[float, float, float, float]:
    c = field_centres()
    reach = FIELD_RADIUS + MARGIN + 0.2
    dec_lo, dec_hi = c[:, 1].min() - reach, c[:, 1].max() + reach
    widest = reach / math.cos(math.radians(max(abs(dec_lo), abs(dec_hi))))
    return c[:, 0].min() - widest, c[:, 0].max() + widest, dec_lo, dec_hi


def in_region(ra, dec) -> np.ndarray:
    keep = np.zeros(len(ra), bool)
    for ra0, dec0 in field_centres():
        keep |= _sep_deg(ra, dec, ra0, dec0) <= FIELD_RADIUS + MARGIN
    return keep


def simulate(seed: int, pm: bool):
    """One catalog's columns over the region (rejection sampling against the peak density)."""
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    ra_lo, ra_hi, dec_lo, dec_hi = region_bounds()
    z_lo, z_hi = math.sin(math.radians(dec_lo)), math.sin(math.radians(dec_hi))
    box_deg2 = math.radians(ra_hi - ra_lo) * (z_hi - z_lo) * (180 / math.pi) ** 2
    a = density_scale()
    peak = a * _shape(0.0)
    n = rng.poisson(peak * box_deg2)
    parts = {"ra": [], "dec": []}
    for lo in range(0, n, 4_000_000):
        m = min(4_000_000, n - lo)
        ra = rng.uniform(ra_lo, ra_hi, m)
        dec = np.degrees(np.arcsin(rng.uniform(z_lo, z_hi, m)))
        keep = (rng.uniform(0, peak, m) < a * _shape(galactic_sin_b(ra, dec))) & in_region(ra, dec)
        parts["ra"].append(ra[keep])
        parts["dec"].append(dec[keep])
    ra, dec = np.concatenate(parts["ra"]), np.concatenate(parts["dec"])
    rows = len(ra)
    cols = {"source_id": (np.int64(seed) << 40) + rng.permutation(rows).astype(np.int64), "ra": ra % 360, "dec": dec,
            "mag": (21.0 - rng.exponential(2.0, rows)).clip(6, 21).astype(np.float32)}
    if pm:
        # Most stars a few mas/yr; one in 10,000 a nearby mover up to 2 arcsec/yr.
        speed = rng.lognormal(math.log(4.0), 1.0, rows)
        fast = rng.uniform(size=rows) < 1e-4
        speed[fast] = rng.uniform(200, 2000, int(fast.sum()))
        angle = rng.uniform(0, 2 * np.pi, rows)
        cols["pmra"] = (speed * np.cos(angle)).astype(np.float32)
        cols["pmdec"] = (speed * np.sin(angle)).astype(np.float32)
        cols["parallax"] = rng.exponential(0.5, rows).astype(np.float32)
    return pa.table(cols)


def catalog_name(k: int) -> str:
    return f"sim{k}"


def build(root: Path = DEFAULT_ROOT, pixel_threshold: int = 200_000) -> dict:
    """Build the ten catalogs (skips those already built); writes and returns root/build.json."""
    from .hats_build import build_hats

    root.mkdir(parents=True, exist_ok=True)
    info_file = root / "build.json"
    info = json.loads(info_file.read_text()) if info_file.is_file() else {"catalogs": {}}
    for k in range(N_CATALOGS):
        name = catalog_name(k)
        if name in info["catalogs"] and (root / "hats" / name / "hats.properties").is_file():
            continue
        t0 = time.perf_counter()
        table = simulate(1000 + k, pm=k < PM_CATALOGS)
        t1 = time.perf_counter()
        build_hats(table, root / "hats", name, root / "tmp", pixel_threshold=pixel_threshold, highest_order=10)
        t2 = time.perf_counter()
        size = sum(f.stat().st_size for f in (root / "hats" / name).rglob("*") if f.is_file())
        info["catalogs"][name] = {"rows": table.num_rows, "proper_motion": k < PM_CATALOGS,
                                  "simulate_s": round(t1 - t0, 1), "hats_import_s": round(t2 - t1, 1),
                                  "bytes": size, "pixel_threshold": pixel_threshold}
        info_file.write_text(json.dumps(info, indent=2) + "\n")
        print(f"{name}: {table.num_rows} rows, simulated {t1 - t0:.1f} s, hats-import {t2 - t1:.1f} s, "
              f"{size / 2**20:.0f} MB", flush=True)
    return info


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["build"])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--pixel-threshold", type=int, default=200_000)
    args = parser.parse_args(argv)
    build(args.root, args.pixel_threshold)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
