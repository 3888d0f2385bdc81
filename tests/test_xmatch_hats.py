"""HATS catalogs matched in place: a catalog built by the real `hats-import`, paged into a bounded
cache, equals astropy `search_around_sky` on the same rows for >= 100,000 alerts placed at partition
boundaries, the poles and the RA 0/360 seam, at the density of a billion-row catalog."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
pytest.importorskip("hats_import")

from alertfeat.benchmarks.hats_build import build_hats  # noqa: E402
from alertfeat.errors import CatalogError  # noqa: E402
from alertfeat.xmatch import CatalogSet  # noqa: E402
from alertfeat.xmatch.hats import HatsCatalog, HatsColumns  # noqa: E402
from alertfeat.xmatch.healpix import MAX_ORDER, ang2pix_nest_array  # noqa: E402
from tests.xmatch_data import assert_same_pairs, astropy_pairs, mjd_of_year, offset  # noqa: E402

DENSITY = 24_000  # rows per deg2: a billion rows over the sky
EPOCH = 2016.0
RADIUS = 10.0  # arcsec: about one star per cone at this density
COLUMNS = HatsColumns(id="source_id", mag="phot_g_mean_mag", pmra="pmra", pmdec="pmdec", carry=("parallax",))
# Patches (centre ra, dec, half-width deg): both poles, the RA 0/360 seam, a vertex where three
# base pixels meet (z = 2/3) and one on the equator where four meet.
PATCHES = [(0.0, 90.0, 0.45), (0.0, -90.0, 0.45), (0.0, 0.0, 0.5), (90.0, 41.8103, 0.5), (45.0, 0.0, 0.5)]


def _patch(rng, ra0, dec0, half):
    """Uniform points within `half` degrees (a cap) of the centre, DENSITY per deg2."""
    area = 2 * np.pi * (1 - np.cos(np.radians(half))) * (180 / np.pi) ** 2
    n = rng.poisson(DENSITY * area)
    sep = np.degrees(np.arccos(rng.uniform(np.cos(np.radians(half)), 1, n))) * 3600
    return offset(np.full(n, ra0), np.full(n, dec0), sep, rng.uniform(0, 2 * np.pi, n))


def _rows(rng):
    ra, dec = map(np.concatenate, zip(*(_patch(rng, *p) for p in PATCHES)))
    n = len(ra)
    pm = rng.normal(0, 15, (2, n))
    fast = rng.uniform(size=n) < 0.002  # a few nearby stars, up to 3 arcsec/yr
    pm[:, fast] = rng.uniform(-3000, 3000, (2, int(fast.sum())))
    return {"source_id": rng.permutation(n).astype(np.int64) * 3 + 1, "ra": ra % 360, "dec": dec,
            "phot_g_mean_mag": rng.uniform(12, 21, n).astype(np.float32), "pmra": pm[0], "pmdec": pm[1],
            "parallax": rng.uniform(0, 5, n)}


@pytest.fixture(scope="module")
def hats_seams(tmp_path_factory):
    rng = np.random.default_rng(19)
    cols = _rows(rng)
    root = tmp_path_factory.mktemp("hats")
    # A low split threshold: many partitions, of orders 6 to 9, so most cones meet a boundary.
    path = build_hats(pa.table(cols), root / "out", "seams", root / "tmp", pixel_threshold=2500, highest_order=10)
    return path, cols


def _boundary_alerts(rng, cat: HatsCatalog, cols, n: int):
    """Half near stars whose cone crosses a partition boundary, half on partition edges, plus the exact poles/seam."""
    import astropy.units as u
    from astropy_healpix import HEALPix

    part = lambda ra, dec: np.searchsorted(cat.part_hi, ang2pix_nest_array(MAX_ORDER, ra, dec), side="right")  # noqa: E731
    star = rng.integers(0, len(cols["ra"]), 8 * n)
    ra, dec = offset(cols["ra"][star], cols["dec"][star], rng.uniform(0, 2 * RADIUS, len(star)),
                     rng.uniform(0, 2 * np.pi, len(star)))
    crossing = part(ra, dec) != part(cols["ra"][star], cols["dec"][star])
    near_ra, near_dec = ra[crossing][: n // 2], dec[crossing][: n // 2]
    # Points on the edges of the partitions (sampled along each side), moved up to a radius off.
    orders = MAX_ORDER - (np.log2(cat.part_hi - cat.part_lo).astype(int) // 2)
    edge_ra, edge_dec = [], []
    want = n - len(near_ra) - 8
    per = want // len(cat.part_lo) + 1
    for lo, order in zip(cat.part_lo, orders):
        pix = lo >> (2 * (MAX_ORDER - order))
        b = HEALPix(nside=2 ** int(order), order="nested").boundaries_lonlat([pix], step=per // 4 + 1)
        edge_ra.append(b[0].to_value(u.deg).ravel()[:per])
        edge_dec.append(b[1].to_value(u.deg).ravel()[:per])
    edge_ra, edge_dec = np.concatenate(edge_ra)[:want], np.concatenate(edge_dec)[:want]
    edge_ra, edge_dec = offset(edge_ra, edge_dec, rng.uniform(0, RADIUS, len(edge_ra)),
                               rng.uniform(0, 2 * np.pi, len(edge_ra)))
    exact_ra = np.array([0.0, 359.9999999999, 0.0, 180.0, 0.0, 359.99999, 90.0, 45.0])
    exact_dec = np.array([90.0, -90.0, 0.0, 89.9999999, -89.9999999, 0.0, 41.8103, 0.0])
    return np.concatenate([near_ra, edge_ra, exact_ra]) % 360, np.concatenate([near_dec, edge_dec, exact_dec])


def _ours(result, ids) -> dict:
    out = {}
    for i in range(result.n):
        for k in range(result.offsets[i], result.offsets[i + 1]):
            out[(i, int(result.source_id[k]))] = float(result.sep_arcsec[k])
    return out


def _oracle(ra, dec, years, cols) -> dict:
    rows = SimpleNamespace(ra=cols["ra"], dec=cols["dec"], pmra=cols["pmra"], pmdec=cols["pmdec"], epoch=EPOCH,
                           has_pm=True, rows=len(cols["ra"]), mag=cols["phot_g_mean_mag"])
    return {(a, int(cols["source_id"][r])): s for (a, r), s in astropy_pairs(ra, dec, years, rows, RADIUS).items()}


def test_hats_in_place_equals_astropy_at_partition_boundaries(hats_seams):
    path, cols = hats_seams
    cat = HatsCatalog.open("seams", path, COLUMNS, epoch=EPOCH, cache_mb=512)
    assert cat.partitions > 100  # the layout hats-import chose: many boundaries inside each patch
    rng = np.random.default_rng(5)
    ra, dec = _boundary_alerts(rng, cat, cols, 100_000)
    assert len(ra) >= 100_000
    years = rng.choice([2016.0, 2027.5], len(ra))
    theirs = _oracle(ra, dec, years, cols)
    # Matches whose star lies in another partition than the alert: the seams under test.
    star_of = dict(zip(cols["source_id"].tolist(), range(len(cols["ra"]))))
    alert_part = np.searchsorted(cat.part_hi, ang2pix_nest_array(MAX_ORDER, ra, dec), side="right")
    star_part = np.searchsorted(cat.part_hi, ang2pix_nest_array(MAX_ORDER, cols["ra"], cols["dec"]), side="right")
    across = sum(alert_part[a] != star_part[star_of[s]] for a, s in theirs)
    print(f"{len(ra)} alerts, {len(theirs)} astropy pairs, {across} across a partition boundary")
    assert across > 10_000
    result = CatalogSet([cat], [RADIUS], max_matches=64).match(ra, dec, mjd_of_year(years))
    assert_same_pairs(_ours(result, cols["source_id"]), theirs, "one batch")
    # Carried columns follow the arena rows of the matches.
    parallax = dict(zip(cols["source_id"].tolist(), cols["parallax"].tolist()))
    got = cat.column("parallax")[result.row]
    np.testing.assert_array_equal(got, [parallax[int(s)] for s in result.source_id])

    # The same alerts in batches through a cache far smaller than the catalog: evictions,
    # compaction and re-reads, and still the same matches.
    small = HatsCatalog.open("seams", path, COLUMNS, epoch=EPOCH, cache_mb=0.25)
    matcher = CatalogSet([small], [RADIUS], max_matches=64)
    order = np.argsort(ang2pix_nest_array(4, ra, dec), kind="stable")  # batches walk across the sky
    pieces = {}
    for lo in range(0, len(ra), 5000):
        sel = order[lo:lo + 5000]
        part = matcher.match(ra[sel], dec[sel], mjd_of_year(years[sel]))
        pieces.update({(int(sel[i]), s): v for (i, s), v in _ours(part, cols["source_id"]).items()})
        assert small.cached_bytes <= max(small.cache_bytes, small.stats.peak_bytes)
    assert_same_pairs(pieces, theirs, "batches through a small cache")
    assert small.stats.evictions > 0 and small.stats.hits > 0
    assert cat.stats.evictions == 0 and cat.stats.misses == cat.cached_partitions


def test_hats_opens_only_what_a_batch_touches(hats_seams):
    path, cols = hats_seams
    cat = HatsCatalog.open("seams", path, COLUMNS, epoch=EPOCH, cache_mb=64)
    assert cat.cached_partitions == 0  # opening reads properties and the partition list only
    CatalogSet([cat], [RADIUS]).match(np.array([0.0]), np.array([90.0]), np.array([mjd_of_year(2016.0)]))
    # The north pole: the four partitions that meet there, and their ring of neighbours at most.
    assert 4 <= cat.cached_partitions <= 16
    assert cat.stats.rows_read < len(cols["ra"]) // 4
    CatalogSet([cat], [RADIUS]).match(np.array([0.0]), np.array([90.0]), np.array([mjd_of_year(2016.0)]))
    assert cat.stats.hits == cat.cached_partitions  # the second visit reads nothing
    # A cold cache and a distant epoch: the reach of the fastest star (10.5 arcsec/yr x 24 yr)
    # decides what is paged in, even before any proper motion has been read.
    cold = HatsCatalog.open("seams", path, COLUMNS, epoch=EPOCH, cache_mb=64)
    CatalogSet([cold], [RADIUS]).match(np.array([0.0]), np.array([90.0]), np.array([mjd_of_year(2040.0)]))
    assert cold.cached_partitions > cat.cached_partitions


def test_hats_errors(hats_seams, tmp_path):
    path, _ = hats_seams
    with pytest.raises(CatalogError, match="no column"):
        HatsCatalog.open("x", path, HatsColumns(id="objid"))
    with pytest.raises(CatalogError, match="both pmra and pmdec"):
        HatsCatalog.open("x", path, HatsColumns(id="source_id", pmra="pmra"))
    with pytest.raises(CatalogError, match="not a HATS catalog"):
        HatsCatalog.open("x", tmp_path, HatsColumns(id="source_id"))


def test_service_opens_hats_catalogs_from_settings(hats_seams, tmp_path):
    from alertfeat.config import load_settings

    path, cols = hats_seams
    settings = load_settings(
        data_dir=tmp_path, xmatch_catalogs=["seams"], xmatch_bright_star_catalog=None,
        xmatch_catalog_radius_arcsec={"seams": 1.0},
        xmatch_hats={"seams": {"path": str(path), "id": "source_id", "mag": "phot_g_mean_mag", "pmra": "pmra",
                               "pmdec": "pmdec", "epoch": EPOCH, "cache_mb": 8, "columns": ["parallax"]}})
    catalogs = CatalogSet.from_settings(settings)
    assert not (tmp_path / "catalogs" / "seams").exists()  # read in place: nothing imported
    rows = np.arange(0, len(cols["ra"]), 997)
    result = catalogs.match(cols["ra"][rows], cols["dec"][rows], np.full(len(rows), mjd_of_year(EPOCH)))
    np.testing.assert_array_equal(result.source_id[result.nearest[:, 0]], cols["source_id"][rows])
    np.testing.assert_array_equal(catalogs.catalogs[0].column("parallax")[result.row[result.nearest[:, 0]]],
                                  cols["parallax"][rows])
    # The carried column reaches the xmatch topic: records decode with the published schema.
    import io

    import fastavro

    from alertfeat.xmatch import xmatch_record_bytes, xmatch_schema

    n = len(rows)
    bodies = xmatch_record_bytes(result, np.arange(n), np.zeros(n, np.int64), np.zeros(n, bool), cols["ra"][rows],
                                 cols["dec"][rows])
    schema = fastavro.parse_schema(xmatch_schema())
    for i, body in enumerate(bodies):
        got = fastavro.schemaless_reader(io.BytesIO(body), schema)["matches"]
        assert got[0]["sourceId"] == cols["source_id"][rows[i]]
        assert got[0]["columns"] == {"parallax": cols["parallax"][rows[i]]}
