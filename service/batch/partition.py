"""Features for one HATS partition, chunk by chunk: one batch-shaped numba call per chunk."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from ..features import compute_features, feature_spec
from .columns import ColumnMap
from .lightcurves import Window, nested_sources, windowed_light_curves

N_SOURCES = "n_sources"  # usable sources in the window: 0 means the stream never saw the object


def output_meta(columns: ColumnMap, index: pd.Index) -> pd.DataFrame:
    """The output's empty frame: id, position, the window's source count, then the features."""
    frame = {columns.object_id: pd.Series(dtype="int64"), columns.ra: pd.Series(dtype="float64"),
             columns.dec: pd.Series(dtype="float64"), N_SOURCES: pd.Series(dtype="int32")}
    frame |= {name: pd.Series(dtype="float32") for name in feature_spec().names}
    return pd.DataFrame(frame, index=index[:0])


def _list_array(partition: pd.DataFrame, columns: ColumnMap) -> pa.ChunkedArray:
    return partition[columns.nested].array.list_array


def partition_features(partition: pd.DataFrame, columns: ColumnMap, window: Window, chunk_objects: int,
                       now_s: float | None = None) -> pd.DataFrame:
    """One row per object with at least one usable source in its window, in partition order.

    The partition's nested column stays in its compact Arrow form; only `chunk_objects` objects at
    a time are expanded to numpy and through the kernels, so the working set is set by the chunk."""
    lists = _list_array(partition, columns)
    n = len(partition)
    names = feature_spec().names
    keep_parts, feature_parts, count_parts = [], [], []
    for lo in range(0, n, chunk_objects):
        chunk = lists.slice(lo, chunk_objects).combine_chunks()
        lc = windowed_light_curves(nested_sources(chunk, columns), window, now_s)
        counts = lc.counts()
        seen = counts > 0
        keep_parts.append(np.flatnonzero(seen) + lo)
        feature_parts.append(compute_features(lc)[seen])
        count_parts.append(counts[seen].astype(np.int32))
    rows = np.concatenate(keep_parts) if keep_parts else np.zeros(0, np.int64)
    features = np.concatenate(feature_parts) if feature_parts else np.zeros((0, len(names)), np.float32)
    out = pd.DataFrame({
        columns.object_id: np.asarray(partition[columns.object_id].to_numpy()[rows], np.int64),
        columns.ra: np.asarray(partition[columns.ra].to_numpy()[rows], np.float64),
        columns.dec: np.asarray(partition[columns.dec].to_numpy()[rows], np.float64),
        N_SOURCES: np.concatenate(count_parts) if count_parts else np.zeros(0, np.int32),
    }, index=partition.index[rows])
    features_frame = pd.DataFrame(features, columns=list(names), index=out.index)
    return pd.concat([out, features_frame], axis=1)
