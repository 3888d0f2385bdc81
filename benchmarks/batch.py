"""`alertfeat batch` throughput per worker against the LSDB tutorial's way, on the same HATS catalog
(built by hats-import from simulated objects with the stream simulator's cadence): lsdb `map_rows`
calling light-curve (comparable statistics + its multiband periodogram on our grid) per object.
Also 1 vs 2 workers for ours, and the output size. Same run, same machine; it may be shared.
"""

from __future__ import annotations

import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from alertfeat.columns import BANDS
from alertfeat.simulate import simulate_objects


def _catalog_frames(n_objects: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    objects = simulate_objects(n_objects, np.random.default_rng(seed), 80.0, None, min_epochs=3)
    counts = [len(o.mjd) for o in objects]
    ids = np.array([o.object_id for o in objects])
    ra, dec = np.array([o.ra for o in objects]), np.array([o.dec for o in objects])
    obj = pd.DataFrame({"diaObjectId": ids, "ra": ra, "dec": dec})
    src = pd.DataFrame({
        "diaObjectId": np.repeat(ids, counts), "diaSourceId": np.concatenate([o.source_id for o in objects]),
        "midpointMjdTai": np.concatenate([o.mjd for o in objects]),
        "band": np.array(list(BANDS))[np.concatenate([o.band for o in objects])],
        "psfFlux": np.concatenate([o.flux for o in objects]).astype(np.float32),
        "psfFluxErr": np.concatenate([o.flux_err for o in objects]).astype(np.float32),
        "ra": np.repeat(ra, counts), "dec": np.repeat(dec, counts)})
    return obj, src


def _import(client, frame: pd.DataFrame, name: str, root: Path, threshold: int) -> Path:
    from hats_import.catalog.arguments import ImportArguments
    from hats_import.pipeline import pipeline_with_client

    parquet = root / f"{name}.parquet"
    frame.to_parquet(parquet)
    pipeline_with_client(ImportArguments(
        output_artifact_name=name, input_file_list=[str(parquet)], file_reader="parquet", ra_column="ra",
        dec_column="dec", output_path=str(root), pixel_threshold=threshold, resume=False, progress_bar=False), client)
    return root / name


def _tutorial_row_function():
    """What the LSDB tutorial does: a Python function per object around a light-curve extractor."""
    from alertfeat.benchmarks.features import light_curve_extractor

    statistics, periodogram, _ = light_curve_extractor()

    def features(t, flux, err, band):
        order = np.argsort(t)
        args = (np.asarray(t, np.float64)[order], np.asarray(flux, np.float64)[order],
                np.asarray(err, np.float64)[order], np.asarray(band)[order])
        values = statistics(*args, fill_value=np.nan)
        try:
            values = np.concatenate([values, periodogram(*args, fill_value=np.nan)])
        except BaseException:  # noqa: B036 light-curve panics (not an Exception) when a band has no point;
            pass  # such a curve is counted as done without its periodogram, which favours light-curve
        return {"n": float(len(t)), "first": float(values[0])}  # the tutorial keeps them all; cost is the same
    return features


def _dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def run(objects: int = 2000, seed: int = 7, chunk: int = 20_000) -> dict:
    import lsdb

    from alertfeat.batch.columns import ColumnMap
    from alertfeat.batch.run import dask_client, features_catalog
    from alertfeat.batch.lightcurves import Window

    root = Path(tempfile.mkdtemp(prefix="alertfeat-bench-batch-"))
    try:
        obj, src = _catalog_frames(objects, seed)
        t0 = time.perf_counter()
        with dask_client(2) as client:
            objects_path = _import(client, obj, "objects", root, max(objects // 4, 100))
            sources_path = _import(client, src, "sources", root, max(len(src) // 4, 1000))
        import_s = time.perf_counter() - t0
        nested = lsdb.open_catalog(objects_path).join_nested(
            lsdb.open_catalog(sources_path), left_on="diaObjectId", right_on="diaObjectId",
            nested_column_name="diaSource")
        ours = {}
        for workers in (1, 2):
            out = root / f"out-{workers}"
            with dask_client(workers):
                features_catalog(nested, ColumnMap(), Window(), chunk).map_partitions(len).compute()  # warm
                start = time.perf_counter()
                features_catalog(nested, ColumnMap(), Window(), chunk).write_catalog(out, progress_bar=False)
                ours[workers] = time.perf_counter() - start
        fields = ["diaSource.midpointMjdTai", "diaSource.psfFlux", "diaSource.psfFluxErr", "diaSource.band"]
        func = _tutorial_row_function()
        with dask_client(1):
            start = time.perf_counter()
            nested.map_rows(func, columns=fields, row_container="args",
                            meta={"n": float, "first": float}).compute()
            theirs = time.perf_counter() - start
        return {
            "objects": objects,
            "sources": len(src),
            "partitions": nested.npartitions,
            "hats_import_s": round(import_s, 1),
            "ours_1_worker_curves_per_s": round(objects / ours[1], 1),
            "ours_2_workers_curves_per_s": round(objects / ours[2], 1),
            "scaling_2_vs_1": round(ours[1] / ours[2], 2),
            "tutorial_map_rows_light_curve_1_worker_curves_per_s": round(objects / theirs, 1),
            "tutorial_ms_per_curve": round(1000 * theirs / objects, 2),
            "speedup_vs_tutorial_per_worker": round(theirs / ours[1], 1),
            "output_bytes": _dir_bytes(root / "out-1"),
            "output_bytes_per_object": round(_dir_bytes(root / "out-1") / objects, 1),
            "driver_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":  # `python -m alertfeat.benchmarks.batch [OBJECTS]`
    import json
    import sys

    print(json.dumps(run(objects=int(sys.argv[1]) if len(sys.argv) > 1 else 2000)))
