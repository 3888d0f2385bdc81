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


def _clean(value: float) -> float | None:
    """float32 -> the shortest decimal that round-trips it; NaN -> null (JSON has no NaN)."""
    v = np.float32(value)
    return None if math.isnan(v) else float(str(v))


def to_json(view: EnrichedView) -> str:
    out: dict[str, Any] = {
        "diaSourceId": view.dia_source_id,
        "diaObjectId": view.dia_object_id,
        "midpointMjdTai": view.mjd,
        "ra": view.ra,
        "dec": view.dec,
        "featuresVersion": view.features_version,
        "historySource": view.history_source,
        "features": {name: _clean(v) for name, v in view.features.items()},
    }
    return json.dumps(out, allow_nan=False)


def batch_views(decoded, features: np.ndarray, history_source: np.ndarray, rows: np.ndarray,
                names: tuple[str, ...], version: int) -> list[EnrichedView]:
    """Views of the enriched rows of a processed batch (the offline `features` path)."""
    from .history import HISTORY_SYMBOLS

    views = []
    for i in rows.tolist():
        views.append(EnrichedView(
            dia_source_id=int(decoded.alert_id[i]),
            dia_object_id=int(decoded.object_id[i]) if decoded.has_object[i] else None,
            mjd=float(decoded.mjd[i]),
            ra=float(decoded.ra[i]),
            dec=float(decoded.dec[i]),
            features_version=version,
            history_source=HISTORY_SYMBOLS[history_source[i]],
            features=dict(zip(names, features[i].tolist())),
        ))
    return views
