"""`alertfeat batch` and its notebook twin `batch_features`: a HATS catalog in, a HATS catalog out."""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from .columns import BatchInputError, ColumnMap
from .lightcurves import Window
from .partition import output_meta, partition_features

DEFAULT_CHUNK_OBJECTS = 20_000


@dataclass
class BatchSummary:
    objects: int  # rows written: objects with a usable source in their window
    partitions: int
    wall_s: float
    output: str

    @property
    def light_curves_per_s(self) -> float:
        return self.objects / self.wall_s if self.wall_s > 0 else math.nan

    def line(self) -> str:
        return (f"{self.objects:,} objects in {self.partitions} partitions, {self.light_curves_per_s:,.0f} light "
                f"curves/s, wall {self.wall_s:.1f} s -> {self.output}")


def _open(path: str | Path, what: str, **kwargs):
    import lsdb

    if not Path(path).exists() and "://" not in str(path):
        raise BatchInputError(f"{what} {path}: no such file or directory")
    try:
        return lsdb.open_catalog(path, **kwargs)
    except Exception as exc:  # hats raises several types for "not a catalog"
        raise BatchInputError(f"{what} {path} is not a HATS catalog: {type(exc).__name__}: {exc}") from None


def _require(catalog, names: list[str], what: str) -> None:
    missing = [n for n in names if n not in catalog.columns]
    if missing:
        raise BatchInputError(f"{what} lacks column(s) {', '.join(missing)} (have: {', '.join(catalog.columns)}); "
                              f"use --columns to map names")


def _require_nested(catalog, columns: ColumnMap, what: str) -> None:
    _require(catalog, [columns.object_id, columns.ra, columns.dec, columns.nested], what)
    dtype = catalog.dtypes[columns.nested]
    fields = list(getattr(dtype, "column_dtypes", {}))
    missing = [n for n in columns.source_fields if n not in fields]
    if missing:
        raise BatchInputError(f"{what} nested column {columns.nested!r} lacks {', '.join(missing)} "
                              f"(has: {', '.join(fields)}); use --columns to map names")


def open_input(input_path: str | Path, columns: ColumnMap, sources: str | Path | None = None,
               sources_margin: str | Path | None = None):
    """The input as an lsdb catalog with the sources nested per object. With `sources`, INPUT is the
    object table and the flat source table is joined to it by object id (its margin cache, if
    given, catches sources that fall across a pixel border from their object)."""
    objects = _open(input_path, "INPUT")
    if sources is None:
        if columns.nested not in objects.columns:
            raise BatchInputError(f"INPUT {input_path} has no nested column {columns.nested!r} "
                                  f"(have: {', '.join(objects.columns)}); use --nested, or --sources for a flat table")
        _require_nested(objects, columns, "INPUT")
        return objects
    _require(objects, [columns.object_id, columns.ra, columns.dec], "INPUT (objects)")
    flat = _open(sources, "--sources", **({"margin_cache": str(sources_margin)} if sources_margin else {}))
    _require(flat, [columns.object_id, *columns.source_fields], "--sources")
    from ..quality import EXCLUDING_FLAGS

    flat = flat[[columns.object_id, *columns.source_fields, *(f for f in EXCLUDING_FLAGS if f in flat.columns)]]
    with warnings.catch_warnings():  # the margin is the caller's choice (--sources-margin), documented
        warnings.filterwarnings("ignore", message=".*margin cache.*")
        return objects[[columns.object_id, columns.ra, columns.dec]].join_nested(
            flat, left_on=columns.object_id, right_on=columns.object_id, nested_column_name=columns.nested)


def features_catalog(catalog, columns: ColumnMap, window: Window, chunk_objects: int = DEFAULT_CHUNK_OBJECTS,
                     now_s: float | None = None):
    """Lazy lsdb catalog of the features (nothing computed until written or .compute()d)."""
    meta = output_meta(columns, catalog.meta.index)
    return catalog.map_partitions(partition_features, columns, window, chunk_objects, now_s, meta=meta)


@contextlib.contextmanager
def dask_client(workers: int = 1, scheduler: str | None = None, memory_limit: str | None = None):
    """A client for `scheduler`, or a local cluster of `workers` single-threaded processes."""
    from dask.distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout="10s")
        except OSError as exc:
            raise BatchInputError(f"--scheduler {scheduler}: cannot connect: {exc}") from None
        with client:
            yield client
        return
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                      memory_limit=memory_limit or "auto") as cluster, Client(cluster) as client:
        yield client


def batch_features(input_path: str | Path, output_path: str | Path, *, sources: str | Path | None = None,
                   sources_margin: str | Path | None = None, columns: ColumnMap | None = None,
                   window: Window | None = None, chunk_objects: int = DEFAULT_CHUNK_OBJECTS, workers: int = 1,
                   scheduler: str | None = None, overwrite: bool = False, progress: bool = True,
                   catalog_name: str | None = None) -> BatchSummary:
    """Compute the stream's feature vector for every object of a HATS catalog and write a HATS
    catalog keyed by diaObjectId (notebook entry point; `alertfeat batch` calls it).

    Starts a local Dask cluster of `workers` processes unless `scheduler` names one, or a client
    already exists in this process (a notebook's), which is then used as is."""
    columns = columns or ColumnMap()
    window = window or Window()
    if chunk_objects < 1:
        raise BatchInputError(f"--chunk must be at least 1, got {chunk_objects}")
    output_path = Path(output_path)
    if output_path.exists() and not overwrite:
        raise BatchInputError(f"OUTPUT {output_path} exists; pass --overwrite to replace it")
    catalog = open_input(input_path, columns, sources, sources_margin)
    result = features_catalog(catalog, columns, window, chunk_objects)
    with _client_for(workers, scheduler):
        start = time.perf_counter()  # the cluster's start-up is not the catalog's cost
        result.write_catalog(output_path, catalog_name=catalog_name or output_path.name, overwrite=overwrite,
                       progress_bar=progress, error_if_empty=False)
        wall = time.perf_counter() - start
    return BatchSummary(objects=_written_rows(output_path), partitions=catalog.npartitions, wall_s=wall,
                        output=str(output_path))


def _client_for(workers: int, scheduler: str | None):
    from dask.distributed import get_client

    if scheduler is None:
        with contextlib.suppress(ValueError):
            get_client()
            return contextlib.nullcontext()
    return dask_client(workers, scheduler)


def _written_rows(path: Path) -> int:
    import hats

    catalog = hats.read_hats(path)
    catalog = getattr(catalog, "main_catalog", catalog)  # to_hats writes a collection
    return int(catalog.catalog_info.total_rows or 0)
