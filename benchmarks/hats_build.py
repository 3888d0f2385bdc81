"""Build HATS catalogs with the real `hats-import` pipeline (tests and benchmarks; not the service).

    build_hats(table, out_dir, "cat1", tmp_dir)   # table: a pyarrow.Table with ra/dec columns

Runs hats-import in-process on a small dask cluster of threads (no worker processes to start).
"""

from __future__ import annotations

from pathlib import Path


def build_hats(table, out_dir: str | Path, name: str, tmp_dir: str | Path, *, pixel_threshold: int = 200_000,
               highest_order: int = 9, threads: int = 2, ra_column: str = "ra", dec_column: str = "dec") -> Path:
    """Write `table` (pyarrow.Table, positions in degrees) as the HATS catalog out_dir/name."""
    import pyarrow.parquet as pq
    from dask.distributed import Client
    from hats_import.catalog.arguments import ImportArguments
    from hats_import.pipeline import pipeline_with_client

    tmp_dir = Path(tmp_dir)
    tmp_dir.mkdir(parents=True, exist_ok=True)
    source = tmp_dir / f"{name}-input.parquet"
    pq.write_table(table, source, row_group_size=500_000)
    args = ImportArguments(
        output_artifact_name=name, input_file_list=[str(source)], file_reader="parquet", ra_column=ra_column,
        dec_column=dec_column, output_path=str(out_dir), tmp_dir=str(tmp_dir / f"{name}-tmp"),
        pixel_threshold=pixel_threshold, highest_healpix_order=highest_order, progress_bar=False,
        resume=False, should_write_skymap=False, dask_tmp=str(tmp_dir / f"{name}-dask"),
    )
    with Client(n_workers=1, threads_per_worker=threads, processes=False, dashboard_address=None) as client:
        pipeline_with_client(args, client)
    source.unlink()
    return Path(out_dir) / name
