"""Avro and JSON output of a cross-match: the xmatch-topic record and the enriched summary block.

Both are written by numba into one byte buffer per batch, then cut per alert. Layouts:

xmatch topic (schemas/xmatch.avsc), per alert:
    diaSourceId long | diaObjectId ["null","long"] | ra double | dec double | matches array
    of {catalog string, sourceId long, sepArcsec float, mag float, columns map<double>}
    (columns: the catalog's carried columns, an empty map for catalogs that carry none)

enriched summary (appended_fields(); one record field `xmatch`), per alert:
    per catalog, in configured order: sourceId ["null","long"], sepArcsec float, mag float
    (null, NaN, NaN when nothing matched), then nearBrightStar boolean.
    The floats are fixed 4-byte little-endian; only the id is a varint.
"""

from __future__ import annotations

import json
import math
import sys
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
from numba import njit

from .catalogs import XmatchResult

if sys.byteorder != "little":  # Avro floats are little-endian; the encoder copies native bytes
    raise ImportError("alertfeat.xmatch.output needs a little-endian machine")

NEAREST_RECORD = "alertfeat.XmatchNearest"
SUMMARY_RECORD = "alertfeat.XmatchSummary"


@cache
def xmatch_schema() -> dict[str, Any]:
    """The xmatch-topic schema (schemas/xmatch.avsc) as a dict."""
    return json.loads(resources.files("alertfeat.schemas").joinpath("xmatch.avsc").read_text())


def appended_fields(catalog_names: tuple[str, ...] | list[str]) -> list[dict[str, Any]]:
    """The Avro fields to append to the enriched alert schema, after the existing ones."""
    fields: list[dict[str, Any]] = []
    for k, name in enumerate(catalog_names):
        if k == 0:
            kind: Any = {
                "type": "record",
                "name": NEAREST_RECORD,
                "doc": "The nearest match in one catalog",
                "fields": [
                    {"name": "sourceId", "type": ["null", "long"],
                     "doc": "the catalog's id; null when nothing matched"},
                    {"name": "sepArcsec", "type": "float", "doc": "[arcsec] separation; NaN when nothing matched"},
                    {"name": "mag", "type": "float", "doc": "[mag] catalog magnitude; NaN when none"},
                ],
            }
        else:
            kind = NEAREST_RECORD
        fields.append({"name": name, "type": kind, "doc": f"nearest {name} source within its radius"})
    fields.append({"name": "nearBrightStar", "type": "boolean",
                   "doc": "a star at least as bright as xmatch_bright_star_mag lies within "
                          "xmatch_bright_star_radius_arcsec"})
    return [{"name": "xmatch", "type": {"type": "record", "name": SUMMARY_RECORD, "fields": fields},
             "doc": "alertfeat cross-match summary (schemas/xmatch.md)"}]


# --------------------------------------------------------------------------- numba writers


@njit(cache=True, nogil=True, inline="always")
def _put_long(buf, pos, value):
    z = (value << 1) ^ (value >> 63)  # zigzag, as uint64 bits in an int64
    while z & ~np.int64(0x7F) != 0:
        buf[pos] = np.uint8((z & 0x7F) | 0x80)
        pos += 1
        z = (z >> 7) & np.int64(0x01FFFFFFFFFFFFFF)  # logical shift
    buf[pos] = np.uint8(z)
    return pos + 1


@njit(cache=True, nogil=True, inline="always")
def _put_bytes(buf, pos, src):
    for k in range(len(src)):
        buf[pos + k] = src[k]
    return pos + len(src)


@njit(cache=True, nogil=True)
def _encode_records(rows, source_id, object_id, has_object, ra, dec, offsets, catalog, match_id, sep, mag,
                    name_bytes, name_offsets, carried, col_first, col_count, col_bytes, col_offsets, buf, out_offsets):
    f4 = np.empty(1, np.float32)
    f4b = f4.view(np.uint8)
    f8 = np.empty(1, np.float64)
    f8b = f8.view(np.uint8)
    pos = 0
    for j in range(len(rows)):
        i = rows[j]
        out_offsets[j] = pos
        pos = _put_long(buf, pos, source_id[i])
        if has_object[i]:
            buf[pos] = 2
            pos = _put_long(buf, pos + 1, object_id[i])
        else:
            buf[pos] = 0
            pos += 1
        f8[0] = ra[i]
        pos = _put_bytes(buf, pos, f8b)
        f8[0] = dec[i]
        pos = _put_bytes(buf, pos, f8b)
        count = offsets[i + 1] - offsets[i]
        if count > 0:
            pos = _put_long(buf, pos, count)
            for k in range(offsets[i], offsets[i + 1]):
                c = catalog[k]
                pos = _put_bytes(buf, pos, name_bytes[name_offsets[c]:name_offsets[c + 1]])
                pos = _put_long(buf, pos, match_id[k])
                f4[0] = sep[k]
                pos = _put_bytes(buf, pos, f4b)
                f4[0] = mag[k]
                pos = _put_bytes(buf, pos, f4b)
                n_cols = col_count[c]
                if n_cols > 0:  # the carried columns: a map of doubles
                    pos = _put_long(buf, pos, n_cols)
                    for t in range(n_cols):
                        name = col_first[c] + t
                        pos = _put_bytes(buf, pos, col_bytes[col_offsets[name]:col_offsets[name + 1]])
                        f8[0] = carried[k, t]
                        pos = _put_bytes(buf, pos, f8b)
                buf[pos] = 0  # end of the map
                pos += 1
        buf[pos] = 0  # end of the array
        pos += 1
    out_offsets[len(rows)] = pos


@njit(cache=True, nogil=True)
def _encode_summary(rows, nearest, match_id, sep, mag, near_bright, buf, out_offsets):
    f4 = np.empty(1, np.float32)
    f4b = f4.view(np.uint8)
    pos = 0
    for j in range(len(rows)):
        i = rows[j]
        out_offsets[j] = pos
        for c in range(nearest.shape[1]):
            k = nearest[i, c]
            if k >= 0:
                buf[pos] = 2
                pos = _put_long(buf, pos + 1, match_id[k])
                f4[0] = sep[k]
                pos = _put_bytes(buf, pos, f4b)
                f4[0] = mag[k]
            else:
                buf[pos] = 0
                pos += 1
                f4[0] = np.nan
                pos = _put_bytes(buf, pos, f4b)
            pos = _put_bytes(buf, pos, f4b)
        buf[pos] = 1 if near_bright[i] else 0
        pos += 1
    out_offsets[len(rows)] = pos


def _rows(result: XmatchResult, rows: np.ndarray | None) -> np.ndarray:
    return np.arange(result.n, dtype=np.int64) if rows is None else np.ascontiguousarray(rows, np.int64)


def _split(buf: np.ndarray, offsets: np.ndarray) -> list[bytes]:
    data = buf.tobytes()
    bounds = offsets.tolist()
    return [data[bounds[k]:bounds[k + 1]] for k in range(len(bounds) - 1)]


def xmatch_record_bytes(result: XmatchResult, dia_source_id: np.ndarray, dia_object_id: np.ndarray,
                        has_object: np.ndarray, ra: np.ndarray, dec: np.ndarray,
                        rows: np.ndarray | None = None) -> list[bytes]:
    """Avro body (no wire header) of the xmatch-topic record of each alert in `rows` (default: all)."""
    rows = _rows(result, rows)
    names, name_offsets, name_bytes = _strings(result.catalogs)
    carried_names = result.carried_names or tuple(() for _ in result.catalogs)
    col_count = np.array([len(cols) for cols in carried_names], np.int64)
    col_first = np.zeros(len(col_count), np.int64)
    np.cumsum(col_count[:-1], out=col_first[1:])
    cols, col_offsets, col_bytes = _strings([name for names_ in carried_names for name in names_])
    carried = result.carried if result.carried is not None else np.zeros((len(result.row), 0))
    counts = result.counts()[rows]
    longest = int(np.diff(name_offsets).max(initial=0))
    per_match = longest + 21 + sum(len(b) for b in cols) + 8 * len(cols) + 10
    buf = np.empty(len(rows) * 48 + int(counts.sum()) * per_match + 16, np.uint8)
    out_offsets = np.empty(len(rows) + 1, np.int64)
    _encode_records(rows, np.ascontiguousarray(dia_source_id, np.int64), np.ascontiguousarray(dia_object_id, np.int64),
                    np.ascontiguousarray(has_object, np.bool_), np.ascontiguousarray(ra, np.float64),
                    np.ascontiguousarray(dec, np.float64), result.offsets, result.catalog, result.source_id,
                    result.sep_arcsec, result.mag, name_bytes, name_offsets, carried, col_first, col_count, col_bytes,
                    col_offsets, buf, out_offsets)
    return _split(buf, out_offsets)


def summary_bytes(result: XmatchResult, rows: np.ndarray | None = None) -> list[bytes]:
    """Encoding of the appended `xmatch` field for each alert in `rows` (default: all)."""
    rows = _rows(result, rows)
    buf = np.empty(len(rows) * (len(result.catalogs) * 19 + 1) + 16, np.uint8)
    out_offsets = np.empty(len(rows) + 1, np.int64)
    _encode_summary(rows, result.nearest, result.source_id, result.sep_arcsec, result.mag, result.near_bright_star,
                    buf, out_offsets)
    return _split(buf, out_offsets)


def _strings(texts) -> tuple[list[bytes], np.ndarray, np.ndarray]:
    """Avro encodings of `texts`, their offsets in one byte array, and that array."""
    encoded = [_avro_string(text) for text in texts]
    offsets = np.zeros(len(encoded) + 1, np.int64)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    data = np.frombuffer(b"".join(encoded), np.uint8) if encoded else np.zeros(0, np.uint8)
    return encoded, offsets, data


def _avro_string(text: str) -> bytes:
    from ..encode import zigzag_varint

    raw = text.encode()
    return zigzag_varint(len(raw)) + raw


# --------------------------------------------------------------------------- JSON


def _num(value: float) -> float | None:
    v = float(np.float32(value))
    return None if math.isnan(v) else float(str(np.float32(value)))


def _carried(result: XmatchResult, k: int) -> dict[str, float | None]:
    if not result.carried_names:
        return {}
    names = result.carried_names[int(result.catalog[k])]
    return {name: None if math.isnan(v) else float(v) for name, v in zip(names, result.carried[k].tolist())}


def xmatch_json(result: XmatchResult, i: int) -> dict[str, Any]:
    """The `xmatch` object of alert i for JSON output: nearest per catalog, flag, all matches."""
    out: dict[str, Any] = {}
    for c, name in enumerate(result.catalogs):
        k = int(result.nearest[i, c])
        out[name] = None if k < 0 else {"sourceId": int(result.source_id[k]), "sepArcsec": _num(result.sep_arcsec[k]),
                                        "mag": _num(result.mag[k])}
    out["nearBrightStar"] = bool(result.near_bright_star[i])
    out["matches"] = [
        {"catalog": result.catalogs[int(result.catalog[k])], "sourceId": int(result.source_id[k]),
         "sepArcsec": _num(result.sep_arcsec[k]), "mag": _num(result.mag[k]), "columns": _carried(result, k)}
        for k in range(int(result.offsets[i]), int(result.offsets[i + 1]))
    ]
    return out
