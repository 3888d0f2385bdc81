"""`alertfeat batch`: HATS catalogs (made by hats-import) in, HATS out, equal to the stream bit for bit."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from alertfeat.app import build_pipeline
from alertfeat.batch.columns import ColumnMap
from alertfeat.batch.lightcurves import Window
from alertfeat.batch.partition import N_SOURCES
from alertfeat.batch.run import batch_features
from alertfeat.cli import main
from alertfeat.config import Settings
from alertfeat.features import feature_spec
from alertfeat.offline import offline_views
from tests.batch_data import hats_import, simulated_sources, write_alerts

lsdb = pytest.importorskip("lsdb")

N_OBJECTS = 120
SEED = 5


@pytest.fixture(scope="module")
def cluster():
    """One in-process Dask cluster for the module: batch_features uses the client it finds."""
    from dask.distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as local, \
            Client(local) as client:
        yield client


@pytest.fixture(scope="module")
def catalogs(tmp_path_factory, cluster):
    """(objects HATS, flat sources HATS, nested HATS, alert file, sources frame)."""
    root = tmp_path_factory.mktemp("batch")
    obj, src = simulated_sources(N_OBJECTS, SEED)
    objects = hats_import(cluster, obj, "objects", root)
    sources = hats_import(cluster, src, "sources", root)
    nested = lsdb.open_catalog(objects).join_nested(
        lsdb.open_catalog(sources), left_on="diaObjectId", right_on="diaObjectId", nested_column_name="diaSource")
    nested.write_catalog(root / "nested", catalog_name="nested", progress_bar=False)
    alerts = write_alerts(root / "alerts.avro", N_OBJECTS, 3, SEED)
    return objects, sources, root / "nested", alerts, src


def _stream_features(alert_file) -> list:
    """Every alert's (objectId, trigger mjd, feature vector) through `alertfeat features`' path."""
    pipeline = build_pipeline(Settings(), offline=True)
    names = feature_spec().names
    return [(v.dia_object_id, v.mjd, np.array([v.features[n] for n in names], np.float32))
            for v in offline_views(pipeline, [alert_file])]


def _same_bits(got: pd.DataFrame, want: np.ndarray) -> bool:
    """Equal bit for bit where the stream has a number; null in the catalog where it has NaN
    (the HATS output stores a feature that cannot be computed as Parquet's null)."""
    values = got.to_numpy(np.float32, na_value=np.nan)
    want = np.asarray(want, np.float32)
    nan = np.isnan(want)
    return bool(np.array_equal(np.isnan(values), nan) and np.array_equal(values[~nan].view(np.uint32),
                                                                          want[~nan].view(np.uint32)))


def _read(path) -> pd.DataFrame:
    return lsdb.open_catalog(path).compute().set_index("diaObjectId").sort_index()


def test_batch_equals_the_stream_bit_for_bit_nested_and_joined(catalogs, tmp_path):
    objects, sources, nested, alerts, src = catalogs
    stream = _stream_features(alerts)
    latest = {}
    for object_id, mjd, vec in stream:  # alerts arrive in time order: the last one wins
        latest[object_id] = vec
    names = list(feature_spec().names)
    # The flat table joined to the objects, in small chunks; and the nested catalog in one chunk.
    joined = batch_features(objects, tmp_path / "joined", sources=sources, chunk_objects=7, progress=False)
    whole = batch_features(nested, tmp_path / "nested", chunk_objects=100_000, progress=False)
    assert joined.objects == whole.objects == N_OBJECTS
    a, b = _read(tmp_path / "joined"), _read(tmp_path / "nested")
    assert sorted(latest) == a.index.tolist() == b.index.tolist()
    want = np.stack([latest[i] for i in a.index])
    assert _same_bits(a[names], want) and _same_bits(b[names], want)
    assert 0 < np.isnan(want).sum() < want.size
    # The window and the screening did something: some sources aged out, some were unusable.
    last = src.groupby("diaObjectId")["midpointMjdTai"].transform("max")
    assert (src["midpointMjdTai"] < last - 365).any()
    assert (a[N_SOURCES].to_numpy() < src.groupby("diaObjectId").size().loc[a.index].to_numpy()).all()


def test_as_of_reproduces_what_the_stream_had_published_then(catalogs, tmp_path):
    objects, sources, _, alerts, _ = catalogs
    stream = _stream_features(alerts)
    as_of = float(np.median([mjd for _, mjd, _ in stream]))
    then = {}
    for object_id, mjd, vec in stream:
        if mjd <= as_of:
            then[object_id] = vec
    out = tmp_path / "as_of"
    batch_features(objects, out, sources=sources, window=Window(as_of=as_of), progress=False)
    got = _read(out)
    names = list(feature_spec().names)
    # Objects whose first alert came later: the batch still has their earlier sources.
    assert set(then) <= set(got.index) and 0 < len(then) < N_OBJECTS
    rows = sorted(then)
    assert _same_bits(got.loc[rows, names], np.stack([then[i] for i in rows]))
    assert (got["lastMjd"] <= as_of + 1e-3).all()


def test_all_time_uses_every_source_and_duplicates_are_resolved_as_the_stream_does(catalogs, tmp_path):
    from alertfeat.batch.lightcurves import windowed_light_curves
    from alertfeat.columns import Sources

    objects, sources, _, _, src = catalogs
    out = tmp_path / "all"
    batch_features(objects, out, sources=sources, window=Window(days=math.inf), progress=False)
    got = _read(out)
    usable = src[src["psfFlux"].notna() & ~src["pixelFlags_saturatedCenter"]]
    assert got[N_SOURCES].to_dict() == usable.groupby("diaObjectId").size().to_dict()
    # A repeated diaSourceId (a re-delivered source) counts once.
    one = usable[usable["diaObjectId"] == usable["diaObjectId"].iloc[0]]
    rows = pd.concat([one, one.iloc[:3]])
    lc = Sources.from_arrays(np.array([len(rows)]), source_id=rows["diaSourceId"].to_numpy(np.int64),
                             mjd=rows["midpointMjdTai"].to_numpy(), band=np.zeros(len(rows), np.int8),
                             flux=rows["psfFlux"].to_numpy(np.float64), flux_err=rows["psfFluxErr"].to_numpy(np.float64),
                             flags=np.zeros(len(rows), np.int64))
    assert windowed_light_curves(lc, Window(days=math.inf)).counts().tolist() == [len(one)]


def test_output_joins_back_to_the_input(catalogs, tmp_path):
    objects, sources, *_ = catalogs
    out = tmp_path / "out"
    batch_features(objects, out, sources=sources, progress=False)
    features = lsdb.open_catalog(out)
    assert features.hc_structure.catalog_info.ra_column == "ra" and features.get_healpix_pixels()
    joined = lsdb.open_catalog(objects).join(features, left_on="diaObjectId", right_on="diaObjectId",
                                             suffixes=("", "_f")).compute()
    assert len(joined) == N_OBJECTS
    assert np.array_equal(joined["ra"].to_numpy(), joined["ra_f"].to_numpy())


def test_cli_on_an_existing_scheduler_prints_a_summary(catalogs, cluster, tmp_path, capsys):
    objects, sources, *_ = catalogs
    code = main(["batch", str(objects), str(tmp_path / "cli"), "--sources", str(sources),
                 "--scheduler", cluster.scheduler.address, "--no-progress", "--chunk", "50"])
    assert code == 0
    assert f"{N_OBJECTS:,} objects" in capsys.readouterr().out


@pytest.mark.parametrize("make_args, message", [
    (lambda c, t: [str(t / "nowhere"), str(t / "o")], "no such file"),
    (lambda c, t: [str(t), str(t / "o")], "is not a HATS catalog"),
    (lambda c, t: [str(c[0]), str(t / "o")], "no nested column 'diaSource'"),
    (lambda c, t: [str(c[0]), str(t / "o"), "--sources", str(c[1]), "--columns", "psfFlux=scienceFlux"],
     "lacks column(s) scienceFlux"),
    (lambda c, t: [str(c[2]), str(t / "o"), "--columns", "fluxx=scienceFlux"], "--columns: 'fluxx=scienceFlux'"),
    (lambda c, t: [str(c[2]), str(c[2])], "exists; pass --overwrite"),
])
def test_bad_input_is_one_clear_line(catalogs, tmp_path, capsys, make_args, message):
    assert main(["batch", *make_args(catalogs, tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("alertfeat batch: ") and message in err and "\n" not in err, err


def test_column_mapping_reads_other_names():
    cols = ColumnMap.parse("psfFlux=scienceFlux,psfFluxErr=scienceFluxErr,midpointMjdTai=mjd", "forced")
    assert (cols.nested, cols.flux, cols.flux_err, cols.mjd, cols.band) == (
        "forced", "scienceFlux", "scienceFluxErr", "mjd", "band")


def test_the_stream_service_does_not_import_the_batch_stack():
    import subprocess
    import sys

    code = ("import sys, alertfeat.app, alertfeat.worker, alertfeat.cli; alertfeat.cli.build_parser(); "
            "print(sorted(m for m in ('lsdb', 'nested_pandas', 'hats', 'hats_import', 'dask', 'distributed', "
            "'alertfeat.batch.run') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
