"""Parquet and HATS importers, on small generated inputs with the real HATS directory layout."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from alertfeat.errors import CatalogError  # noqa: E402
from alertfeat.xmatch import CatalogSet, load_catalog  # noqa: E402
from alertfeat.xmatch.parquet import ColumnChoice, import_hats, import_parquet  # noqa: E402
from tests.xmatch_data import mjd_of_year  # noqa: E402

N = 4000


def _table(seed: int = 0, n: int = N):
    rng = np.random.default_rng(seed)
    ra = rng.uniform(0, 360, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    ra[:3] = [0.0, 359.9999, 180.0]
    dec[:3] = [89.99, -89.99, 0.0]
    gmag = rng.uniform(8, 20, n).astype(np.float32)
    mag_mask = rng.uniform(size=n) < 0.1
    ra_mask = np.zeros(n, bool)
    ra_mask[[10, 20]] = True  # two rows without a position
    return pa.table({
        "objid": pa.array(np.arange(n, dtype=np.int64) * 7 + 100),
        "ra_deg": pa.array(ra, mask=ra_mask),
        "dec_deg": pa.array(dec),
        "gmag": pa.array(gmag, mask=mag_mask),
        "pmra": pa.array(rng.normal(0, 500, n)),
        "pmdec": pa.array(rng.normal(0, 500, n)),
        "parallax": pa.array(rng.uniform(0, 10, n)),
        "nobs": pa.array(rng.integers(0, 100, n).astype(np.int32)),
        "name": pa.array([f"s{k}" for k in range(n)]),
    })


CHOICE = dict(id="objid", ra="ra_deg", dec="dec_deg", mag="gmag", pmra="pmra", pmdec="pmdec", carry=("parallax", "nobs"))


def _check_catalog(path, table, epoch=2010.0):
    cat = load_catalog(path)
    keep = np.asarray(table["ra_deg"].is_valid())
    assert cat.rows == keep.sum() == N - 2
    assert cat.manifest["epoch"] == epoch and cat.has_pm
    assert "2 rows without a valid ra/dec were dropped" in cat.manifest["notes"]
    by_id = {int(i): k for k, i in enumerate(table["objid"].to_numpy())}
    src = [by_id[int(i)] for i in cat.id]
    np.testing.assert_array_equal(np.asarray(cat.dec), table["dec_deg"].to_numpy()[src])
    mags = table["gmag"].to_numpy(zero_copy_only=False)[src]
    np.testing.assert_array_equal(np.isnan(cat.mag), np.isnan(mags))
    np.testing.assert_allclose(np.asarray(cat.column("parallax")), table["parallax"].to_numpy()[src])
    np.testing.assert_array_equal(np.asarray(cat.column("nobs")), table["nobs"].to_numpy()[src])
    assert cat.column("nobs").dtype == np.int32
    # Every imported star is found at its own (moved) position.
    years = np.full(cat.rows, epoch)
    result = CatalogSet([cat], [1.0]).match(np.asarray(cat.ra), np.asarray(cat.dec), mjd_of_year(years))
    np.testing.assert_array_equal(result.source_id[result.nearest[:, 0]], np.asarray(cat.id))
    return cat


def test_parquet_file_and_directory(tmp_path):
    table = _table()
    pq.write_table(table, tmp_path / "one.parquet", row_group_size=1000)
    cat = _check_catalog(import_parquet(tmp_path / "out", tmp_path / "one.parquet", "mycat", ColumnChoice(**CHOICE),
                                        epoch=2010.0, mag_band="G"), table)
    assert cat.manifest["mag_band"] == "G" and cat.manifest["source"]["format"] == "parquet"
    (tmp_path / "parts").mkdir()
    pq.write_table(table.slice(0, 1500), tmp_path / "parts" / "a.parquet")
    pq.write_table(table.slice(1500), tmp_path / "parts" / "b.parquet")
    again = load_catalog(import_parquet(tmp_path / "out2", tmp_path / "parts", "mycat", ColumnChoice(**CHOICE),
                                        epoch=2010.0))
    np.testing.assert_array_equal(np.asarray(again.id), np.asarray(cat.id))


def test_bucketed_import_equals_in_memory(tmp_path):
    table = _table(1)
    pq.write_table(table, tmp_path / "t.parquet", row_group_size=700)
    memory = load_catalog(import_parquet(tmp_path / "a", tmp_path / "t.parquet", "x", ColumnChoice(**CHOICE), epoch=2010.0))
    bucketed = load_catalog(import_parquet(tmp_path / "b", tmp_path / "t.parquet", "x", ColumnChoice(**CHOICE),
                                           epoch=2010.0, memory_rows=500))
    for col in ("id", "ra", "dec", "mag", "pmra", "pmdec", "index"):
        np.testing.assert_array_equal(np.asarray(getattr(memory, col)), np.asarray(getattr(bucketed, col)))
    assert not list((tmp_path / "b").glob(".import-*"))  # scratch space removed


def test_parquet_errors(tmp_path):
    table = _table()
    pq.write_table(table, tmp_path / "t.parquet")
    with pytest.raises(CatalogError, match="no column.*nope"):
        import_parquet(tmp_path / "o", tmp_path / "t.parquet", "x", ColumnChoice(id="nope", ra="ra_deg", dec="dec_deg"))
    with pytest.raises(CatalogError, match="id column 'name' is string"):
        import_parquet(tmp_path / "o", tmp_path / "t.parquet", "x", ColumnChoice(id="name", ra="ra_deg", dec="dec_deg"))
    with pytest.raises(CatalogError, match="only numbers"):
        import_parquet(tmp_path / "o", tmp_path / "t.parquet", "x",
                       ColumnChoice(id="objid", ra="ra_deg", dec="dec_deg", carry=("name",)))
    with pytest.raises(CatalogError, match="epoch"):
        import_parquet(tmp_path / "o", tmp_path / "t.parquet", "x", ColumnChoice(**CHOICE))
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(CatalogError, match="not readable as Parquet"):
        import_parquet(tmp_path / "o", tmp_path / "bad.parquet", "x", ColumnChoice(id="objid"))
    with pytest.raises(CatalogError, match="name"):
        import_parquet(tmp_path / "o", tmp_path / "t.parquet", "Bad-Name", ColumnChoice(id="objid"))


def _healpix(order: int, ra, dec) -> np.ndarray:
    import astropy.units as u
    from astropy_healpix import HEALPix

    return HEALPix(nside=2 ** order, order="nested").lonlat_to_healpix(np.asarray(ra) * u.deg, np.asarray(dec) * u.deg)


def write_hats(root, table, name: str = "testcat"):
    """A HATS catalog as hats-import lays it out: adaptive partitions (order 1, dense ones split to
    order 2) in dataset/Norder=k/Dir=d/Npix=n.parquet (one as an Npix=n/ directory of files), a
    _healpix_29 column, partition_info.csv and hats.properties."""
    root.mkdir(parents=True)
    ra = table["ra_deg"].to_numpy(zero_copy_only=False)
    dec = table["dec_deg"].to_numpy()
    ok = np.isfinite(ra)
    ra_fill = np.where(ok, ra, 0.0)
    table = table.append_column("_healpix_29", pa.array(np.where(ok, _healpix(29, ra_fill, dec), 0).astype(np.int64)))
    p1 = _healpix(1, ra_fill, dec)
    p2 = _healpix(2, ra_fill, dec)
    parts = []
    for pix in np.unique(p1):
        rows = np.flatnonzero(p1 == pix)
        if len(rows) > 100:  # split a dense order-1 tile into its order-2 children
            for child in np.unique(p2[rows]):
                parts.append((2, int(child), rows[p2[rows] == child]))
        else:
            parts.append((1, int(pix), rows))
    for k, (order, pix, rows) in enumerate(parts):
        leaf = root / "dataset" / f"Norder={order}" / f"Dir={pix // 10000 * 10000}"
        leaf.mkdir(parents=True, exist_ok=True)
        part = table.take(pa.array(rows))
        if k == 0:
            (leaf / f"Npix={pix}").mkdir()
            pq.write_table(part.slice(0, len(rows) // 2), leaf / f"Npix={pix}" / "part0.parquet")
            pq.write_table(part.slice(len(rows) // 2), leaf / f"Npix={pix}" / "part1.parquet")
        else:
            pq.write_table(part, leaf / f"Npix={pix}.parquet")
    pq.write_metadata(table.schema, root / "dataset" / "_common_metadata")
    (root / "partition_info.csv").write_text("Norder,Npix\n" + "".join(f"{o},{p}\n" for o, p, _ in parts))
    (root / "hats.properties").write_text(
        "#HATS catalog\n"
        f"obs_collection={name}\n"
        "dataproduct_type=object\n"
        f"hats_nrows={len(table)}\n"
        "hats_col_ra=ra_deg\n"
        "hats_col_dec=dec_deg\n"
        "hats_col_healpix=_healpix_29\n"
        "hats_col_healpix_order=29\n"
        "hats_npix_suffix=.parquet\n"
        f"hats_order={max(o for o, _, _ in parts)}\n"
        "hats_version=v1.0\n"
    )
    return parts


def test_hats_catalog(tmp_path):
    table = _table(2)
    parts = write_hats(tmp_path / "hats" / "testcat", table)
    assert {o for o, _, _ in parts} == {1, 2}
    choice = dict(CHOICE, ra="ra", dec="dec")  # ra/dec column names come from hats.properties
    cat = _check_catalog(import_hats(tmp_path / "out", tmp_path / "hats" / "testcat", "hatscat",
                                     ColumnChoice(**choice), epoch=2010.0), table)
    assert cat.manifest["source"]["format"] == "hats"
    assert cat.manifest["checks"]["partitions"] == len(parts)
    # (180, 0) lies exactly on a pixel edge, where two HEALPix codes may round differently. Nothing
    # else may disagree; the import re-sorts by its own pixels, so such a row is still found.
    assert cat.manifest["checks"]["rows_outside_their_partition"] <= 1
    # A collection resolves to its primary catalog.
    (tmp_path / "hats" / "collection.properties").write_text("obs_collection=coll\nhats_primary_table_url=testcat\n")
    again = load_catalog(import_hats(tmp_path / "out", tmp_path / "hats", "hatscat", ColumnChoice(**choice), epoch=2010.0))
    np.testing.assert_array_equal(np.asarray(again.id), np.asarray(cat.id))


def test_hats_errors(tmp_path):
    table = _table(3, 500)
    root = tmp_path / "cat"
    write_hats(root, table)
    props = (root / "hats.properties").read_text()
    (root / "hats.properties").write_text(props.replace("hats_nrows=500", "hats_nrows=501"))
    with pytest.raises(CatalogError, match="properties say 501 rows"):
        import_hats(tmp_path / "o", root, "x", ColumnChoice(id="objid"))
    (root / "hats.properties").write_text(props.replace("dataproduct_type=object", "dataproduct_type=margin"))
    with pytest.raises(CatalogError, match="margin"):
        import_hats(tmp_path / "o", root, "x", ColumnChoice(id="objid"))
    (root / "hats.properties").unlink()
    with pytest.raises(CatalogError, match="not a HATS catalog"):
        import_hats(tmp_path / "o", root, "x", ColumnChoice(id="objid"))


def test_cli_import_hats_and_list(tmp_path):
    table = _table(4, 300)
    write_hats(tmp_path / "cat", table)
    env = {"ALERTFEAT_DATA_DIR": str(tmp_path / "data"), "PATH": ""}

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "alertfeat.cli", *args], capture_output=True, text=True,
                              timeout=300, env=env)

    out = cli("catalog", "import", "hats", str(tmp_path / "cat"), "--name", "mine", "--id", "objid", "--mag", "gmag",
              "--carry", "parallax,nobs")
    assert out.returncode == 0, out.stderr
    assert "imported 298 rows" in out.stderr
    listed = cli("catalog", "list")
    assert listed.returncode == 0 and listed.stdout.startswith("mine: 298 rows")
    assert "parallax,nobs" in listed.stdout
    bad = cli("catalog", "import", "hats", str(tmp_path / "cat"), "--name", "mine", "--id", "nope")
    assert bad.returncode == 2 and "no column(s) nope" in bad.stderr
