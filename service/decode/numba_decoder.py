"""The production decoder: op-code programs compiled per schema id, one numba call per batch.

Same interface, columns and error reason codes as FastavroDecoder, which stays the oracle in
tests and the fallback for a schema the op codes cannot express (logged once per schema id).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from ..columns import DecodedBatch, Sources
from ..errors import PoisonMessage
from ..schema_store import SchemaStore
from ..wire import HEADER_SIZE, schema_id_of
from . import scanner
from .fastavro_decoder import FastavroDecoder
from .opcodes import Program, UnsupportedSchema, compile_alert
from .schema_walk import NOT_AN_ALERT, not_an_alert

log = logging.getLogger(__name__)

FALLBACK = "fallback"


class NumbaDecoder:
    def __init__(self, schemas: SchemaStore, include_forced: bool = False):
        self.schemas = schemas
        self.include_forced = include_forced
        self.fallback = FastavroDecoder(schemas, include_forced)
        # Every compiled program, concatenated; a schema id maps to where its program starts.
        self._code = np.zeros(0, np.int64)
        self._programs: dict[int, tuple[int, Program] | str | PoisonMessage] = {}

    def _program(self, schema_id: int) -> tuple[int, Program] | str | PoisonMessage:
        """(offset in self._code, program), FALLBACK, or the PoisonMessage for this schema id."""
        found = self._programs.get(schema_id)
        if found is not None:
            return found
        try:
            schema = self.schemas.get(schema_id)
        except PoisonMessage as exc:
            return exc  # not cached: a registry may learn the id later
        try:
            program = compile_alert(schema.definition, self.include_forced)
            found = (len(self._code), program)
            self._code = np.concatenate([self._code, program.code])
        except UnsupportedSchema as exc:
            log.warning("schema %d (%s): %s; decoding it with fastavro", schema_id, schema.name, exc)
            found = FALLBACK
        except NOT_AN_ALERT as exc:  # e.g. no diaSource record: no alert of it can be enriched
            found = not_an_alert(schema_id, exc)
        self._programs[schema_id] = found
        return found

    @property
    def fallback_schema_ids(self) -> set[int]:
        """Schema ids decoded with fastavro because the op codes cannot express them."""
        return {sid for sid, found in self._programs.items() if isinstance(found, str)}

    def warm_up(self, schema_id: int | None = None) -> None:
        """Load (or compile) the numba kernel, and the program of `schema_id`, before the first batch."""
        if schema_id is not None:
            self._program(schema_id)
        self.decode([])

    def decode(self, messages: Sequence[bytes]) -> DecodedBatch:
        n = len(messages)
        reasons: list[str | None] = [None] * n
        details: list[str | None] = [None] * n
        schema_ids = np.zeros(n, np.int32)
        prog_at = np.full(n, -1, np.int64)
        source_row_bytes = np.zeros(n, np.int64)
        forced_row_bytes = np.zeros(n, np.int64)
        sizes = np.zeros(n, np.int64)
        addresses = np.zeros(n, np.int64)
        keep: list[bytes] = []  # copies of messages that are not `bytes`, alive until the scan is done
        fallback: list[int] = []
        for i, message in enumerate(messages):
            try:
                schema_id = schema_id_of(message)
            except PoisonMessage as exc:
                reasons[i], details[i] = exc.reason, exc.detail
                continue
            found = self._program(schema_id)
            if isinstance(found, PoisonMessage):
                reasons[i], details[i] = found.reason, found.detail
                continue
            schema_ids[i] = schema_id  # also for alerts that fail to decode: dead-letter headers name it
            if found == FALLBACK:
                fallback.append(i)
                continue
            at, program = found
            prog_at[i] = at
            source_row_bytes[i] = program.source_row_bytes
            forced_row_bytes[i] = program.forced_row_bytes
            if type(message) is not bytes:
                message = bytes(message)
                keep.append(message)
            sizes[i] = len(message)
            addresses[i] = scanner.address_of(message)
        (error, error_pos, alert_i, alert_f, src_off, src_i, src_f, frc_off, frc_i, frc_f) = scanner.scan_batch(
            addresses, sizes, HEADER_SIZE, prog_at, self._code, source_row_bytes, forced_row_bytes)
        del keep
        for i in np.flatnonzero(error).tolist():
            reasons[i], what = scanner.ERRORS[int(error[i])]
            details[i] = f"{what} (at byte {int(error_pos[i])} of the {int(sizes[i]) - HEADER_SIZE}-byte body)"
        batch = DecodedBatch(
            ok=(prog_at >= 0) & (error == 0),
            error_reason=reasons,
            error_detail=details,
            schema_id=schema_ids,
            alert_id=alert_i[scanner.A_ALERT_ID],
            object_id=alert_i[scanner.A_OBJECT_ID],
            has_object=alert_i[scanner.A_HAS_OBJECT].astype(bool),
            ra=alert_f[scanner.A_RA],
            dec=alert_f[scanner.A_DEC],
            mjd=alert_f[scanner.A_MJD],
            sources=_sources(src_off, src_i, src_f),
            forced=_sources(frc_off, frc_i, frc_f) if self.include_forced else None,
        )
        if fallback:
            self._merge_fallback(batch, np.array(fallback), self.fallback.decode([messages[i] for i in fallback]))
        return batch

    @staticmethod
    def _merge_fallback(batch: DecodedBatch, rows: np.ndarray, other: DecodedBatch) -> None:
        """Put the fallback decoder's results for messages `rows` into `batch` (which has no rows for them)."""
        batch.ok[rows] = other.ok
        for i, reason, detail in zip(rows.tolist(), other.error_reason, other.error_detail):
            batch.error_reason[i], batch.error_detail[i] = reason, detail
        for name in ("alert_id", "object_id", "has_object", "ra", "dec", "mjd"):
            getattr(batch, name)[rows] = getattr(other, name)
        batch.sources = _merge_sources(batch.sources, rows, other.sources)
        if batch.forced is not None:
            batch.forced = _merge_sources(batch.forced, rows, other.forced)


def _sources(offsets: np.ndarray, rows_i: np.ndarray, rows_f: np.ndarray) -> Sources:
    return Sources(
        offsets=offsets,
        source_id=rows_i[scanner.C_SOURCE_ID],
        mjd=rows_f[scanner.C_MJD],
        band=rows_i[scanner.C_BAND].astype(np.int8),
        flux=rows_f[scanner.C_FLUX],
        flux_err=rows_f[scanner.C_FLUX_ERR],
        flags=rows_i[scanner.C_FLAGS],
    )


_COLUMNS = ("source_id", "mjd", "band", "flux", "flux_err", "flags")


def _merge_sources(a: Sources, rows: np.ndarray, b: Sources) -> Sources:
    """a's rows, with alert rows[k] taking b's rows of alert k (a has none for those alerts)."""
    counts = a.counts()
    counts[rows] = b.counts()
    merged = Sources.from_arrays(counts, **{c: np.empty(int(counts.sum()), getattr(a, c).dtype) for c in _COLUMNS})
    for part, alerts in ((a, np.arange(a.n_alerts)), (b, rows)):
        alert_of_row = np.repeat(alerts, part.counts())
        within = np.arange(len(part.source_id)) - np.repeat(part.offsets[:-1], part.counts())
        dest = merged.offsets[alert_of_row] + within
        for c in _COLUMNS:
            getattr(merged, c)[dest] = getattr(part, c)
    return merged
