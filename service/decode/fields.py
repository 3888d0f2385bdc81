"""Which Avro fields feed which column, across every Rubin alert schema version.

Names changed over the versions (v3/v4: midPointTai, filterName, psFlux, decl); this table
is the only place that knows. No per-version code elsewhere.
"""

from __future__ import annotations

from typing import Any

# canonical column -> candidate field names, first match wins
SOURCE_FIELDS: dict[str, tuple[str, ...]] = {
    "source_id": ("diaSourceId", "diaForcedSourceId"),
    "object_id": ("diaObjectId",),
    "mjd": ("midpointMjdTai", "midPointTai"),
    "band": ("band", "filterName"),
    "flux": ("psfFlux", "psFlux"),
    "flux_err": ("psfFluxErr", "psFluxErr"),
    "ra": ("ra",),
    "dec": ("dec", "decl"),
}
# Up to v6 a `flags` long is "bitwise OR tbd": no defined meaning, so it is not read (flags = 0).

# Boolean quality flags (v7+), packed into the int64 `flags` column: bit i <-> FLAG_FIELDS[i].
FLAG_FIELDS: tuple[str, ...] = (
    "psfFlux_flag",
    "psfFlux_flag_edge",
    "psfFlux_flag_noGoodPixels",
    "centroid_flag",
    "shape_flag",
    "trail_flag",
    "pixelFlags",
    "pixelFlags_bad",
    "pixelFlags_cr",
    "pixelFlags_crCenter",
    "pixelFlags_edge",
    "pixelFlags_nodata",
    "pixelFlags_nodataCenter",
    "pixelFlags_interpolated",
    "pixelFlags_interpolatedCenter",
    "pixelFlags_offimage",
    "pixelFlags_saturated",
    "pixelFlags_saturatedCenter",
    "pixelFlags_suspect",
    "pixelFlags_suspectCenter",
    "pixelFlags_streak",
    "pixelFlags_streakCenter",
    "pixelFlags_injected",
    "pixelFlags_injectedCenter",
)


def field_names(record: dict[str, Any]) -> set[str]:
    return {f["name"] for f in record["fields"]}


def source_field_map(record: dict[str, Any]) -> dict[str, str]:
    """Canonical column -> the field that carries it in this DiaSource/ForcedSource record."""
    names = field_names(record)
    found = {}
    for column, candidates in SOURCE_FIELDS.items():
        for candidate in candidates:
            if candidate in names:
                found[column] = candidate
                break
    return found


def pack_flags(source: dict[str, Any]) -> int:
    """The int64 flags value of one decoded DiaSource dict (oracle/fallback path)."""
    bits = 0
    for bit, name in enumerate(FLAG_FIELDS):
        if source.get(name):
            bits |= 1 << bit
    return bits
