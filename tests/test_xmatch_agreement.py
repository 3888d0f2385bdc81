"""The batch cross-match equals astropy `search_around_sky` (with astropy's own proper-motion
propagation): identical matched sets, separations within 1 mas, on >= 100,000 positions per test
including the poles and the 0/360 seam."""

from __future__ import annotations

import numpy as np
import pytest

from alertfeat.xmatch import Catalog, CatalogSet, load_catalog
from alertfeat.xmatch.store import prepare_columns, write_catalog
from tests.xmatch_data import assert_same_pairs, astropy_pairs, catalog_coords, gaia, hipparcos, mjd_of_year, offset, real_data_dir  # noqa: F401

YEARS = np.array([1991.25, 2016.0, 2024.7, 2027.3, 2035.0, 2060.0])


def _ours(result, catalog_index: int) -> dict:
    out = {}
    for i in range(result.n):
        for k in range(result.offsets[i], result.offsets[i + 1]):
            if result.catalog[k] == catalog_index:
                out[(i, int(result.row[k]))] = float(result.sep_arcsec[k])
    return out


def _assert_nearest_first(result) -> None:
    for i in range(result.n):
        lo, hi = result.offsets[i], result.offsets[i + 1]
        cats, seps = result.catalog[lo:hi], result.sep_arcsec[lo:hi]
        assert np.all(np.diff(cats) >= 0)
        for c in np.unique(cats):
            assert np.all(np.diff(seps[cats == c]) >= 0)


def _near_rows(rng, c: Catalog, rows: np.ndarray, year_of: np.ndarray, max_arcsec: float):
    """Positions within max_arcsec of the given rows as they are at each alert's epoch."""
    ra = np.empty(len(rows))
    dec = np.empty(len(rows))
    for year in np.unique(year_of):
        sel = np.flatnonzero(year_of == year)
        moved = catalog_coords(c, float(year))[rows[sel]]
        ra[sel], dec[sel] = moved.ra.deg, moved.dec.deg
    sep = max_arcsec * np.sqrt(rng.uniform(0, 1, len(rows)))
    return offset(ra, dec, sep, rng.uniform(0, 2 * np.pi, len(rows)))


def test_real_catalogs_match_astropy_on_100k_positions(gaia, hipparcos):
    rng = np.random.default_rng(11)
    radius = {"gaia": 5.0, "hipparcos": 5.0}
    parts_ra, parts_dec = [], []
    n_uniform, n_near, n_cap, n_seam = 40_000, 20_000, 10_000, 10_000
    # Anywhere on the sky.
    parts_ra.append(rng.uniform(0, 360, n_uniform))
    parts_dec.append(np.degrees(np.arcsin(rng.uniform(-1, 1, n_uniform))))
    # Polar caps (|dec| > 89 deg) and the 0/360 seam (|ra| < 0.05 deg), with exact edge values.
    cap_dec = 90 - np.degrees(np.arccos(rng.uniform(np.cos(np.radians(1.0)), 1, n_cap)))
    parts_ra.append(rng.uniform(0, 360, n_cap))
    parts_dec.append(np.where(rng.uniform(size=n_cap) < 0.5, cap_dec, -cap_dec))
    parts_ra.append(rng.uniform(-0.05, 0.05, n_seam) % 360)
    parts_dec.append(np.degrees(np.arcsin(rng.uniform(-1, 1, n_seam))))
    parts_ra.append(np.array([0.0, 359.9999999999, 0.0, 180.0, 0.0, 359.99999]))
    parts_dec.append(np.array([90.0, -90.0, 0.0, 89.9999999, -89.9999999, 45.0]))
    base_ra, base_dec = np.concatenate(parts_ra), np.concatenate(parts_dec)
    years_base = rng.choice(YEARS, len(base_ra))
    # Near stars (within two radii), favouring stars near the poles and the seam.
    near_ra, near_dec, near_years = [], [], []
    for c in (gaia, hipparcos):
        edge = np.flatnonzero((np.abs(np.asarray(c.dec)) > 80) | (np.asarray(c.ra) < 1) | (np.asarray(c.ra) > 359))
        rows = np.concatenate([rng.integers(0, c.rows, n_near - n_near // 4), rng.choice(edge, n_near // 4)])
        years = rng.choice(YEARS, len(rows))
        r, d = _near_rows(rng, c, rows, years, 2 * radius[c.name])
        near_ra.append(r)
        near_dec.append(d)
        near_years.append(years)
    ra = np.concatenate([base_ra, *near_ra])
    dec = np.concatenate([base_dec, *near_dec])
    years = np.concatenate([years_base, *near_years])
    assert len(ra) >= 100_000

    catalogs = CatalogSet([gaia, hipparcos], [radius["gaia"], radius["hipparcos"]], max_matches=64,
                          bright_catalog="gaia", bright_mag=8.0, bright_radius_arcsec=40.0)
    result = catalogs.match(ra, dec, mjd_of_year(years))
    assert result.counts().max() < 64  # the cap never cut a set short, so sets must be equal
    for index, c in enumerate((gaia, hipparcos)):
        theirs = astropy_pairs(ra, dec, years, c, radius[c.name])
        assert len(theirs) > (7_000 if c is gaia else 4_500)  # enough matches to mean something
        assert_same_pairs(_ours(result, index), theirs, c.name)
    bright = astropy_pairs(ra, dec, years, gaia, 40.0, mag_max=8.0)
    flagged = np.zeros(len(ra), bool)
    flagged[[a for a, _ in bright]] = True
    assert flagged.sum() > 1000
    np.testing.assert_array_equal(result.near_bright_star, flagged)
    _assert_nearest_first(result)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Catalog:
    """60,000 stars crowded at both poles and along the 0/360 seam, some moving up to 8"/yr,
    written to disk at a fine index order so that fast stars force coarser query orders."""
    rng = np.random.default_rng(3)
    n = 20_000
    polar = 90 - np.degrees(np.arccos(rng.uniform(np.cos(np.radians(2.0)), 1, n)))
    ra = np.concatenate([rng.uniform(0, 360, n), rng.uniform(-0.3, 0.3, n) % 360, rng.uniform(0, 360, n)])
    dec = np.concatenate([np.where(rng.uniform(size=n) < 0.5, polar, -polar),
                          np.degrees(np.arcsin(rng.uniform(-1, 1, n))), np.degrees(np.arcsin(rng.uniform(-1, 1, n)))])
    pm_scale = np.where(rng.uniform(size=3 * n) < 0.05, 8000.0, 60.0)
    angle = rng.uniform(0, 2 * np.pi, 3 * n)
    speed = pm_scale * rng.uniform(0, 1, 3 * n)
    pmra, pmdec = speed * np.cos(angle), speed * np.sin(angle)
    pmra[::7] = 0.0
    pmdec[::7] = 0.0
    cols = prepare_columns(ra, dec, ids=np.arange(3 * n) * 3 + 1, mag=rng.uniform(5, 15, 3 * n), pmra=pmra, pmdec=pmdec)
    root = tmp_path_factory.mktemp("synthetic")
    path = write_catalog(root, "synth", cols, epoch=2000.0, source={"test": "synthetic"}, mag_band="V", index_order=9)
    return load_catalog(path)


def test_synthetic_poles_seam_and_fast_stars_match_astropy(synthetic):
    rng = np.random.default_rng(4)
    radius = 20.0
    years_choice = np.array([2000.0, 1950.0, 2027.3, 2100.0, 2500.0])
    rows = rng.integers(0, synthetic.rows, 70_000)
    years_near = rng.choice(years_choice, len(rows))
    near_ra, near_dec = _near_rows(rng, synthetic, rows, years_near, 2 * radius)
    m = 30_000
    cap = 90 - np.degrees(np.arccos(rng.uniform(np.cos(np.radians(2.0)), 1, m // 2)))
    ra = np.concatenate([near_ra, rng.uniform(0, 360, m // 2), rng.uniform(-0.3, 0.3, m // 2) % 360])
    dec = np.concatenate([near_dec, np.where(rng.uniform(size=m // 2) < 0.5, cap, -cap),
                          np.degrees(np.arcsin(rng.uniform(-1, 1, m // 2)))])
    years = np.concatenate([years_near, rng.choice(years_choice, m)])
    # A handful at an epoch so far away that no pixel neighbourhood is safe: the whole-catalog path.
    ra[:20], dec[:20], years[:20] = near_ra[:20], near_dec[:20], 40000.0
    assert len(ra) >= 100_000

    result = CatalogSet([synthetic], [radius], max_matches=64).match(ra, dec, mjd_of_year(years))
    assert result.counts().max() < 64
    theirs = astropy_pairs(ra, dec, years, synthetic, radius)
    assert len(theirs) > 15_000
    far = {k: v for k, v in theirs.items() if k[0] < 20}
    assert far, "the far-epoch alerts found nothing: the whole-catalog path went untested"
    assert_same_pairs(_ours(result, 0), theirs, "synthetic")
    _assert_nearest_first(result)


def test_cap_keeps_the_nearest(synthetic):
    rng = np.random.default_rng(5)
    rows = rng.integers(0, synthetic.rows, 5000)
    years = np.full(len(rows), 2030.0)
    ra, dec = _near_rows(rng, synthetic, rows, years, 200.0)
    full = CatalogSet([synthetic], [600.0], max_matches=64).match(ra, dec, mjd_of_year(years))
    capped = CatalogSet([synthetic], [600.0], max_matches=3).match(ra, dec, mjd_of_year(years))
    assert (full.counts() > 3).sum() > 100
    for i in range(len(ra)):
        lo, hi = full.offsets[i], full.offsets[i + 1]
        want = full.row[lo:min(hi, lo + 3)]
        np.testing.assert_array_equal(capped.row[capped.offsets[i]:capped.offsets[i + 1]], want)
