"""Parquet and HATS importers, on small generated inputs; the HATS catalog is made by the real hats-import."""

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


@pytest.fixture(scope="module")
def hats_made(tmp_path_factory):
    """The test table (rows with a position) as the real hats-import writes it: adaptive partitions."""
    pytest.importorskip("hats_import")
    from alertfeat.benchmarks.hats_build import build_hats

    table = _table(2)
    table = table.filter(table["ra_deg"].is_valid())
    root = tmp_path_factory.mktemp("hats")
    path = build_hats(table, root / "out", "testcat", root / "tmp", pixel_threshold=85, highest_order=4,
                      ra_column="ra_deg", dec_column="dec_deg")
    return path, table


def test_hats_catalog(tmp_path, hats_made):
    source, table = hats_made
    choice = dict(CHOICE, ra="ra", dec="dec")  # ra/dec column names come from hats.properties
    cat = load_catalog(import_hats(tmp_path / "out", source, "hatscat", ColumnChoice(**choice), epoch=2010.0))
    assert cat.manifest["source"]["format"] == "hats"
    orders = {int(p.name.split("=")[1]) for p in (source / "dataset").glob("Norder=*")}
    assert len(orders) > 1  # hats-import split the dense tiles
    assert cat.manifest["checks"]["partitions"] == len(list((source / "dataset").rglob("Npix=*")))
    # (180, 0) lies exactly on a pixel edge, where hats-import's HEALPix and ours may round
    # differently. Nothing else may disagree; the import re-sorts by its own pixels.
    assert cat.manifest["checks"]["rows_outside_their_partition"] <= 1
    assert cat.rows == table.num_rows and cat.has_pm and cat.manifest["epoch"] == 2010.0
    by_id = {int(i): k for k, i in enumerate(table["objid"].to_numpy())}
    src = [by_id[int(i)] for i in cat.id]
    np.testing.assert_array_equal(np.asarray(cat.dec), table["dec_deg"].to_numpy()[src])
    np.testing.assert_allclose(np.asarray(cat.column("parallax")), table["parallax"].to_numpy()[src])
    np.testing.assert_array_equal(np.asarray(cat.column("nobs")), table["nobs"].to_numpy()[src])
    result = CatalogSet([cat], [1.0]).match(np.asarray(cat.ra), np.asarray(cat.dec), np.full(cat.rows, mjd_of_year(2010.0)))
    np.testing.assert_array_equal(result.source_id[result.nearest[:, 0]], np.asarray(cat.id))
    # A collection resolves to its primary catalog.
    (source.parent / "collection.properties").write_text("obs_collection=coll\nhats_primary_table_url=testcat\n")
    again = load_catalog(import_hats(tmp_path / "out", source.parent, "hatscat", ColumnChoice(**choice), epoch=2010.0))
    np.testing.assert_array_equal(np.asarray(again.id), np.asarray(cat.id))
    (source.parent / "collection.properties").unlink()


def test_hats_errors(tmp_path, hats_made):
    import shutil

    root = tmp_path / "cat"
    shutil.copytree(hats_made[0], root)
    props = (root / "hats.properties").read_text()
    rows = hats_made[1].num_rows
    (root / "hats.properties").write_text(props.replace(f"hats_nrows={rows}", f"hats_nrows={rows + 1}"))
    with pytest.raises(CatalogError, match=f"properties say {rows + 1} rows"):
        import_hats(tmp_path / "o", root, "x", ColumnChoice(id="objid"))
    (root / "hats.properties").write_text(props.replace("dataproduct_type=object", "dataproduct_type=margin"))
    with pytest.raises(CatalogError, match="margin"):
        import_hats(tmp_path / "o", root, "x", ColumnChoice(id="objid"))
    (root / "hats.properties").unlink()
    (root / "properties").unlink()
    with pytest.raises(CatalogError, match="not a HATS catalog"):
        import_hats(tmp_path / "o", root, "x", ColumnChoice(id="objid"))


def test_cli_import_hats_and_list(tmp_path, hats_made):
    source, table = hats_made
    env = {"ALERTFEAT_DATA_DIR": str(tmp_path / "data"), "PATH": ""}

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "alertfeat.cli", *args], capture_output=True, text=True,
                              timeout=300, env=env)

    out = cli("catalog", "import", "hats", str(source), "--name", "mine", "--id", "objid", "--mag", "gmag",
              "--carry", "parallax,nobs")
    assert out.returncode == 0, out.stderr
    assert f"imported {table.num_rows} rows" in out.stderr
    listed = cli("catalog", "list")
    assert listed.returncode == 0 and listed.stdout.startswith(f"mine: {table.num_rows} rows")
    assert "parallax,nobs" in listed.stdout
    bad = cli("catalog", "import", "hats", str(source), "--name", "mine", "--id", "nope")
    assert bad.returncode == 2 and "no column(s) nope" in bad.stderr
