"""Test helpers for the decoders: hypothesis values from any Avro schema, an independent Avro
encoder (arrays in blocks, negative block counts), and column-by-column batch comparison."""

from __future__ import annotations

import math
import struct
from functools import cache
from typing import Any

import fastavro
import numpy as np
from hypothesis import strategies as st

from alertfeat.columns import DecodedBatch
from alertfeat.schema_store import SchemaStore

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
# Logical types fastavro turns into Python objects on reading: keep their values convertible.
_LOGICAL_RANGES = {
    "timestamp-micros": (-(2**55), 2**57),  # about 1 BC .. 6500 AD
    "timestamp-millis": (-(2**45), 2**47),
    "local-timestamp-micros": (-(2**55), 2**57),
    "local-timestamp-millis": (-(2**45), 2**47),
    "date": (-700_000, 2_900_000),
    "time-millis": (0, 86_399_999),
    "time-micros": (0, 86_399_999_999),
}
BAND_FIELDS = ("band", "filterName")
ARRAY_FIELDS_LONG = ("prvDiaSources", "prvDiaForcedSources")


def parsed(definition: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """(fastavro's parsed schema, full name -> named type), for the strategies and the encoder."""
    named: dict[str, Any] = {}
    return fastavro.parse_schema(definition, named_schemas=named, _write_hint=False), named


@cache
def alert_values(store: SchemaStore, schema_id: int) -> tuple[st.SearchStrategy, Any, dict[str, Any]]:
    """(strategy of alert records, parsed schema, named types) for one schema id of `store`."""
    schema, named = parsed(store.get(schema_id).definition)
    return values(schema, named), schema, named


def same(a: Any, b: Any) -> bool:
    """Deep equality of decoded Avro values, where NaN equals NaN."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def values(t: Any, named: dict[str, Any], field: str | None = None, small: bool = True) -> st.SearchStrategy:
    """Values of Avro type t: nulls, empty and long arrays, extreme numbers, any unicode."""
    if isinstance(t, list):
        return st.one_of([values(b, named, field, small) for b in t])
    if isinstance(t, str) and t in named:
        return values(named[t], named, field, small)
    if isinstance(t, dict):
        kind = t["type"]
        logical = t.get("logicalType")
        if kind == "record":
            return st.fixed_dictionaries({f["name"]: values(f["type"], named, f["name"]) for f in t["fields"]})
        if kind == "array":
            item = values(t["items"], named, None, small)
            short = st.lists(item, max_size=4)
            if field in ARRAY_FIELDS_LONG:  # long light curves, cheaply: one drawn item, repeated
                return st.one_of(short, st.tuples(item, st.integers(40, 400)).map(lambda x: [x[0]] * x[1]))
            return short
        if kind == "map":
            return st.dictionaries(st.text(max_size=5), values(t["values"], named, None, small), max_size=3)
        if kind == "enum":
            return st.sampled_from(t["symbols"])
        if kind == "fixed":
            return st.binary(min_size=t["size"], max_size=t["size"])
        if logical in _LOGICAL_RANGES and kind in ("int", "long"):
            return st.integers(*_LOGICAL_RANGES[logical])
        if logical is not None:
            raise NotImplementedError(f"no strategy for logicalType {logical}")
        return values(kind, named, field, small)
    if t == "null":
        return st.none()
    if t == "boolean":
        return st.booleans()
    if t == "int":
        return st.integers(*INT32)
    if t == "long":
        return st.integers(*INT64)
    if t == "float":
        return st.floats(width=32)
    if t == "double":
        return st.floats()
    if t == "string":
        if field in BAND_FIELDS:
            return st.one_of(st.sampled_from("ugrizy"), st.text(max_size=3))
        return st.text(max_size=12)
    if t == "bytes":
        return st.binary(max_size=40)
    raise NotImplementedError(f"no strategy for Avro type {t!r}")


# --- an independent encoder: blocks of `block` items, with negative counts when asked ---------

def zigzag(n: int) -> bytes:
    """Avro int/long encoding, written independently of the code under test."""
    z = (n << 1) ^ (n >> 63)
    out = bytearray()
    while z > 0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def _matches(t: Any, value: Any, named: dict[str, Any]) -> bool:
    if isinstance(t, str) and t in named:
        t = named[t]
    kind = t["type"] if isinstance(t, dict) else t
    return {
        "null": value is None,
        "boolean": isinstance(value, bool),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "long": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, float),
        "double": isinstance(value, float),
        "string": isinstance(value, str),
        "bytes": isinstance(value, bytes),
        "fixed": isinstance(value, bytes),
        "enum": isinstance(value, str),
        "record": isinstance(value, dict),
        "map": isinstance(value, dict),
        "array": isinstance(value, list),
    }[kind]


def encode(t: Any, value: Any, named: dict[str, Any], block: int | None = None, negative: bool = False,
           overlong: bool = False) -> bytes:
    """Avro binary encoding of value; arrays and maps in blocks of `block` items (None: one
    block), with negative block counts, and union indexes as non-minimal 2-byte varints if asked
    (legal input that no writer produces, but a reader must accept)."""
    if isinstance(t, list):
        branch = next(k for k, b in enumerate(t) if _matches(b, value, named))
        index = bytes([(branch << 1) | 0x80, 0]) if overlong else zigzag(branch)
        return index + encode(t[branch], value, named, block, negative, overlong)
    if isinstance(t, str) and t in named:
        return encode(named[t], value, named, block, negative, overlong)
    kind = t["type"] if isinstance(t, dict) else t
    if isinstance(t, dict) and kind not in ("record", "array", "map", "enum", "fixed"):
        return encode(kind, value, named, block, negative, overlong)  # a primitive with a logicalType
    if kind == "record":
        return b"".join(encode(f["type"], value[f["name"]], named, block, negative, overlong) for f in t["fields"])
    if kind in ("array", "map"):
        items = list(value.items()) if kind == "map" else value
        size = block or max(len(items), 1)
        out = bytearray()
        for at in range(0, len(items), size):
            chunk = items[at:at + size]
            if kind == "map":
                body = b"".join(encode("string", k, named) + encode(t["values"], v, named, block, negative, overlong)
                                for k, v in chunk)
            else:
                body = b"".join(encode(t["items"], v, named, block, negative, overlong) for v in chunk)
            out += (zigzag(-len(chunk)) + zigzag(len(body))) if negative else zigzag(len(chunk))
            out += body
        return bytes(out + b"\0")
    if kind == "enum":
        return zigzag(t["symbols"].index(value))
    if kind == "fixed":
        return value
    return {
        "null": lambda v: b"",
        "boolean": lambda v: b"\1" if v else b"\0",
        "int": zigzag,
        "long": zigzag,
        "float": lambda v: struct.pack("<f", v),
        "double": lambda v: struct.pack("<d", v),
        "string": lambda v: zigzag(len(v.encode())) + v.encode(),
        "bytes": lambda v: zigzag(len(v)) + v,
    }[kind](value)


# --- comparing decoded batches -----------------------------------------------------------------

ALERT_COLUMNS = ("ok", "alert_id", "object_id", "has_object", "ra", "dec", "mjd")
SOURCE_COLUMNS = ("offsets", "source_id", "mjd", "band", "flux", "flux_err", "flags")


def assert_same_batch(ours: DecodedBatch, oracle: DecodedBatch, rows: np.ndarray | None = None) -> None:
    """Field-for-field equality (NaN == NaN, same dtypes) over all alerts, or only `rows`."""
    rows = np.arange(oracle.n) if rows is None else np.asarray(rows)
    assert ours.n == oracle.n
    assert [ours.error_reason[i] for i in rows] == [oracle.error_reason[i] for i in rows]
    ok = rows[oracle.ok[rows]]
    np.testing.assert_array_equal(ours.schema_id[ok], oracle.schema_id[ok], err_msg="schema_id")
    for name in ALERT_COLUMNS:
        a, b = getattr(ours, name), getattr(oracle, name)
        assert a.dtype == b.dtype, name
        np.testing.assert_array_equal(a[rows], b[rows], err_msg=name)
    for part in ("sources", "forced"):
        a, b = getattr(ours, part), getattr(oracle, part)
        assert (a is None) == (b is None), part
        if a is None:
            continue
        for name in SOURCE_COLUMNS:
            assert getattr(a, name).dtype == getattr(b, name).dtype, f"{part}.{name}"
        np.testing.assert_array_equal(a.counts()[rows], b.counts()[rows], err_msg=f"{part} counts")
        for i in rows.tolist():
            for name in SOURCE_COLUMNS[1:]:
                np.testing.assert_array_equal(getattr(a, name)[a.rows(i)], getattr(b, name)[b.rows(i)],
                                              err_msg=f"{part}.{name} of alert {i}")
