"""Test data for `alertfeat batch`: the same simulated sources as Avro alerts and as HATS catalogs
built by the real importer (hats-import), so stream and batch can be compared."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from alertfeat.columns import BANDS
from alertfeat.schema_store import SchemaStore
from alertfeat.simulate import simulate_alerts, simulate_objects

SCHEMA_ID = 1101


def simulated_sources(n_objects: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(objects, flat sources), Rubin column names, as simulate_alerts draws them for this seed.
    Every 7th source has a null psfFlux and every 11th a saturated centre: both are screened out."""
    objects = simulate_objects(n_objects, np.random.default_rng(seed), 80.0, None, min_epochs=3)
    obj = pd.DataFrame({"diaObjectId": [o.object_id for o in objects], "ra": [o.ra for o in objects],
                        "dec": [o.dec for o in objects]})
    counts = [len(o.mjd) for o in objects]
    src = pd.DataFrame({
        "diaObjectId": np.repeat(obj["diaObjectId"].to_numpy(), counts),
        "diaSourceId": np.concatenate([o.source_id for o in objects]),
        "midpointMjdTai": np.concatenate([o.mjd for o in objects]),
        "band": np.array(list(BANDS))[np.concatenate([o.band for o in objects])],
        "psfFlux": np.concatenate([o.flux for o in objects]).astype(np.float32),
        "psfFluxErr": np.concatenate([o.flux_err for o in objects]).astype(np.float32),
        "ra": np.repeat(obj["ra"].to_numpy(), counts),
        "dec": np.repeat(obj["dec"].to_numpy(), counts),
    })
    src["psfFlux"] = src["psfFlux"].astype("Float32")
    src.loc[src["diaSourceId"] % 7 == 0, "psfFlux"] = pd.NA
    src["pixelFlags_saturatedCenter"] = (src["diaSourceId"] % 11 == 0).to_numpy()
    return obj, src


def write_alerts(path: Path, n_objects: int, alerts_per_object: int, seed: int) -> Path:
    """Each object's last `alerts_per_object` detections as alerts (with their 365-day
    prvDiaSources), carrying the same null fluxes and flags as `simulated_sources`."""
    import fastavro

    def spoil(src: dict) -> None:
        if src["diaSourceId"] % 7 == 0:
            src["psfFlux"] = None
        src["pixelFlags_saturatedCenter"] = src["diaSourceId"] % 11 == 0

    records = list(simulate_alerts(n_objects * alerts_per_object, n_objects, SCHEMA_ID, seed))
    for record in records:
        for src in [record["diaSource"], *record["prvDiaSources"]]:
            spoil(src)
    with open(path, "wb") as fh:
        fastavro.writer(fh, SchemaStore().get(SCHEMA_ID).parsed, records)
    return path


def hats_import(client, frame: pd.DataFrame, name: str, root: Path) -> Path:
    """`frame` as a HATS catalog made by hats-import (small partitions, so there are several)."""
    from hats_import.catalog.arguments import ImportArguments
    from hats_import.pipeline import pipeline_with_client

    root.mkdir(parents=True, exist_ok=True)
    parquet = root / f"{name}.parquet"
    frame.to_parquet(parquet)
    args = ImportArguments(output_artifact_name=name, input_file_list=[str(parquet)], file_reader="parquet",
                           ra_column="ra", dec_column="dec", output_path=str(root), pixel_threshold=2_000,
                           resume=False, progress_bar=False)
    pipeline_with_client(args, client)
    return root / name
