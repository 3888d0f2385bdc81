"""A chunk of objects' nested sources -> the light curves the stream would use.

The same rules as the stream, by calling the same functions: quality.usable_rows (the usable-source
rule) and lightcurve_merge.merge_light_curves (windowing and duplicate resolution by content).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..columns import BANDS, Sources
from ..decode.fields import FLAG_FIELDS
from ..lightcurve_merge import merge_light_curves
from ..quality import EXCLUDING_FLAGS, epoch_range, usable_rows
from .columns import ColumnMap

_BAND_SET = pa.array(list(BANDS))


@dataclass(frozen=True)
class Window:
    """Each object's light curve ends at its newest source (at or before `as_of`, if set)
    and spans `days` before it: the vector the stream published at that object's latest alert."""

    days: float = 365.0  # math.inf: all time
    as_of: float | None = None  # MJD (TAI)


def _numpy(arr: pa.Array, dtype) -> np.ndarray:
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype)


def _band_codes(arr: pa.Array) -> np.ndarray:
    """Band letters -> codes into BANDS; anything else -> -1 (quality drops it)."""
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(pa.string())
    return _numpy(pc.fill_null(pc.index_in(arr.cast(pa.string()), value_set=_BAND_SET), -1), np.int8)


def _flags(values: pa.StructArray) -> np.ndarray:
    """The excluding pixel flags the input carries, packed as the decoder packs them (absent = unset)."""
    flags = np.zeros(len(values), np.int64)
    names = {values.type.field(i).name for i in range(values.type.num_fields)}
    for name in EXCLUDING_FLAGS:
        if name in names:
            bit = _numpy(pc.fill_null(values.field(name), False), bool)
            flags |= bit.astype(np.int64) << FLAG_FIELDS.index(name)
    return flags


def nested_sources(lists: pa.ListArray, columns: ColumnMap) -> Sources:
    """Per object (one list each, null = none) its rows, as the decoder would give them."""
    counts = _numpy(pc.fill_null(pc.list_value_length(lists), 0), np.int64)
    values = lists.flatten()
    return Sources.from_arrays(
        counts,
        source_id=_numpy(values.field(columns.source_id), np.int64),
        mjd=_numpy(values.field(columns.mjd), np.float64),
        band=_band_codes(values.field(columns.band)),
        flux=_numpy(pc.fill_null(values.field(columns.flux), np.nan), np.float64),
        flux_err=_numpy(pc.fill_null(values.field(columns.flux_err), np.nan), np.float64),
        flags=_flags(values),
    )


def windowed_light_curves(src: Sources, window: Window, now_s: float | None = None) -> Sources:
    """Usable sources only, cut to each object's window, one copy per diaSourceId.

    The window ends at the object's newest source with a valid epoch, usable or not: the stream's
    window ends at its alert's epoch even when the triggering source itself is screened out."""
    lo, hi = epoch_range(time.time() if now_s is None else now_s)
    if window.as_of is not None:
        hi = min(hi, window.as_of)
    dated = np.where((src.mjd >= lo) & (src.mjd <= hi), src.mjd, -np.inf)  # NaN fails too
    end = np.full(src.n_alerts, np.nan)
    has = src.counts() > 0
    if has.any():
        newest = np.maximum.reduceat(dated, src.offsets[:-1][has])
        end[has] = np.where(np.isfinite(newest), newest, np.nan)
    return merge_light_curves([src.kept(usable_rows(src, now_s))], end, window.days)
