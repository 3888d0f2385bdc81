"""The JSON line printed for an enriched alert, shared by `subscribe --json` and `features --json`."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class EnrichedView:
    dia_source_id: int
    dia_object_id: int | None
    mjd: float
    ra: float
    dec: float
    features_version: int
    history_source: str
    features: dict[str, float]
    # {catalog: {sourceId, sepArcsec, mag} | None, ..., nearBrightStar}; None without catalogs.
    # Every match (not just the nearest) is on the xmatch topic.
    xmatch: dict[str, Any] | None = None


def _clean(value: float) -> float | None:
    """float32 -> the shortest decimal that round-trips it; NaN and ±inf -> null (JSON has neither)."""
    v = np.float32(value)
    return float(str(v)) if math.isfinite(v) else None


def _finite(value: float) -> float | None:
    """A float64 as is; NaN and ±inf -> null."""
    return value if math.isfinite(value) else None


def xmatch_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """The decoded Avro `xmatch` field in JSON form: a catalog without a match is null."""
    out: dict[str, Any] = {}
    for name, value in summary.items():
        if name == "nearBrightStar":
            out[name] = bool(value)
        elif value is None or value["sourceId"] is None:
            out[name] = None
        else:
            out[name] = {"sourceId": value["sourceId"], "sepArcsec": _clean(value["sepArcsec"]),
                         "mag": _clean(value["mag"])}
    return out


def to_json(view: EnrichedView) -> str:
    out: dict[str, Any] = {
        "diaSourceId": view.dia_source_id,
        "diaObjectId": view.dia_object_id,
        "midpointMjdTai": _finite(view.mjd),
        "ra": _finite(view.ra),
        "dec": _finite(view.dec),
        "featuresVersion": view.features_version,
        "historySource": view.history_source,
        "features": {name: _clean(v) for name, v in view.features.items()},
    }
    if view.xmatch is not None:
        out["xmatch"] = view.xmatch
    return json.dumps(out, allow_nan=False)


def batch_views(result, names: tuple[str, ...], version: int) -> list[EnrichedView]:
    """Views of the enriched rows of a processed batch (the offline `features` path)."""
    from .history import HISTORY_SYMBOLS
    from .xmatch import xmatch_json

    decoded = result.decoded
    views = []
    for i in result.enriched_rows.tolist():
        xmatch = None
        if result.xmatch is not None:
            xmatch = xmatch_json(result.xmatch, i)
            del xmatch["matches"]  # as in the enriched alert; all matches go to the xmatch topic
        views.append(EnrichedView(
            dia_source_id=int(decoded.alert_id[i]),
            dia_object_id=int(decoded.object_id[i]) if decoded.has_object[i] else None,
            mjd=float(decoded.mjd[i]),
            ra=float(decoded.ra[i]),
            dec=float(decoded.dec[i]),
            features_version=version,
            history_source=HISTORY_SYMBOLS[result.history_source[i]],
            features=dict(zip(names, result.features[i].tolist())),
            xmatch=xmatch,
        ))
    return views
