"""Reference decoder built on fastavro: the oracle in tests and the fallback for exotic schemas."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

import fastavro
import numpy as np

from ..columns import BAND_CODE, UNKNOWN_BAND, DecodedBatch, Sources
from ..errors import PoisonMessage
from ..schema_store import AlertSchema, SchemaStore
from ..wire import HEADER_SIZE, schema_id_of
from .fields import pack_flags, source_field_map
from .schema_walk import NOT_AN_ALERT, alert_record_types, not_an_alert


def decode_body(body: bytes, schema: AlertSchema) -> dict[str, Any]:
    """Decode one unframed alert; PoisonMessage if it is truncated, malformed or has trailing bytes."""
    buf = io.BytesIO(body)
    try:
        record = fastavro.schemaless_reader(buf, schema.parsed, None)
    except (EOFError, StopIteration) as exc:
        raise PoisonMessage("truncated", f"payload ends early: {exc}") from exc
    except Exception as exc:  # fastavro raises many types on garbage; all mean the same here
        raise PoisonMessage("malformed", f"{type(exc).__name__}: {exc}") from exc
    if buf.tell() != len(body):
        raise PoisonMessage("trailing_bytes", f"{len(body) - buf.tell()} bytes after the end of the alert record")
    return record


class FastavroDecoder:
    def __init__(self, schemas: SchemaStore, include_forced: bool = False):
        self.schemas = schemas
        self.include_forced = include_forced
        self._field_maps: dict[int, tuple[dict[str, str], dict[str, str] | None]] = {}

    def field_maps(self, schema: AlertSchema) -> tuple[dict[str, str], dict[str, str] | None]:
        """(DiaSource map, DiaForcedSource map) for a schema, computed once per schema id."""
        maps = self._field_maps.get(schema.schema_id)
        if maps is None:
            types = alert_record_types(schema.definition)
            forced = source_field_map(types.forced_source) if types.forced_source is not None else None
            maps = self._field_maps[schema.schema_id] = (source_field_map(types.dia_source), forced)
        return maps

    def decode(self, messages: Sequence[bytes]) -> DecodedBatch:
        n = len(messages)
        out = _BatchBuilder(n, self.include_forced)
        for i, message in enumerate(messages):
            try:
                schema_id = schema_id_of(message)
                schema = self.schemas.get(schema_id)
                record = decode_body(memoryview(message)[HEADER_SIZE:].tobytes(), schema)
                try:
                    out.add(i, schema_id, record, *self.field_maps(schema))
                except NOT_AN_ALERT as exc:
                    raise not_an_alert(schema_id, exc) from exc
            except PoisonMessage as exc:
                out.fail(i, exc)
        return out.finish()


def _as_float(value: Any) -> float:
    return math.nan if value is None else float(value)


class _BatchBuilder:
    def __init__(self, n: int, include_forced: bool):
        self.batch = DecodedBatch(
            ok=np.zeros(n, bool),
            error_reason=[None] * n,
            error_detail=[None] * n,
            schema_id=np.zeros(n, np.int32),
            alert_id=np.zeros(n, np.int64),
            object_id=np.zeros(n, np.int64),
            has_object=np.zeros(n, bool),
            ra=np.full(n, math.nan),
            dec=np.full(n, math.nan),
            mjd=np.full(n, math.nan),
            sources=Sources.empty(n),
            forced=Sources.empty(n) if include_forced else None,
        )
        self.rows: list[list[tuple]] = [[] for _ in range(n)]
        self.forced_rows: list[list[tuple]] = [[] for _ in range(n)]

    def fail(self, i: int, exc: PoisonMessage) -> None:
        self.batch.ok[i] = False  # `add` may have failed half-way
        self.rows[i], self.forced_rows[i] = [], []
        self.batch.error_reason[i] = exc.reason
        self.batch.error_detail[i] = exc.detail

    def add(
        self, i: int, schema_id: int, record: dict[str, Any],
        source_map: dict[str, str], forced_map: dict[str, str] | None,
    ) -> None:
        trigger = record["diaSource"]
        b = self.batch
        b.ok[i] = True
        b.schema_id[i] = schema_id
        b.alert_id[i] = trigger[source_map["source_id"]]
        object_id = trigger.get(source_map.get("object_id", ""))
        b.has_object[i] = object_id is not None
        b.object_id[i] = object_id or 0
        b.ra[i] = _as_float(trigger[source_map["ra"]])
        b.dec[i] = _as_float(trigger[source_map["dec"]])
        b.mjd[i] = _as_float(trigger[source_map["mjd"]])
        for source in [trigger, *(record.get("prvDiaSources") or [])]:
            self.rows[i].append(_source_row(source, source_map))
        if b.forced is not None and forced_map is not None:
            for source in record.get("prvDiaForcedSources") or []:
                self.forced_rows[i].append(_source_row(source, forced_map))

    def finish(self) -> DecodedBatch:
        self.batch.sources = _to_sources(self.rows)
        if self.batch.forced is not None:
            self.batch.forced = _to_sources(self.forced_rows)
        return self.batch


def _source_row(source: dict[str, Any], field_map: dict[str, str]) -> tuple:
    return (
        source[field_map["source_id"]],
        _as_float(source[field_map["mjd"]]),
        BAND_CODE.get(source.get(field_map["band"]), UNKNOWN_BAND),
        _as_float(source.get(field_map["flux"])),
        _as_float(source.get(field_map["flux_err"])),
        pack_flags(source),
    )


def _to_sources(rows: list[list[tuple]]) -> Sources:
    flat = [row for alert_rows in rows for row in alert_rows]
    counts = np.array([len(r) for r in rows], np.int64)
    cols = list(zip(*flat)) if flat else [()] * 6
    return Sources.from_arrays(
        counts,
        source_id=np.array(cols[0], np.int64),
        mjd=np.array(cols[1], np.float64),
        band=np.array(cols[2], np.int8),
        flux=np.array(cols[3], np.float64),
        flux_err=np.array(cols[4], np.float64),
        flags=np.array(cols[5], np.int64),
    )
