"""One batch through every stage: decode -> history -> features -> xmatch -> encode. No Kafka here."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .columns import DecodedBatch, Sources
from .decode import AlertDecoder
from .encode import enriched_messages
from .enriched_schema import EnrichedSchemas, EnrichmentLayout
from .features import compute_features, feature_spec
from .history import RedisHistory, alert_only
from .quality import screen
from .schema_store import SchemaStore
from .wire import frame
from .xmatch import CatalogSet, XmatchResult, summary_bytes, xmatch_record_bytes
from .xmatch_schema import XmatchSchema


@dataclass(frozen=True)
class Limits:
    """Caps on hostile input; anything over goes to the dead-letter topic."""

    max_message_bytes: int = 8 * 1024 * 1024
    max_sources_per_alert: int = 20_000


@dataclass
class BatchResult:
    decoded: DecodedBatch
    light_curves: Sources
    features: np.ndarray  # float32 [n, F]; rows of failed alerts are undefined
    history_source: np.ndarray  # uint8 [n]
    xmatch: XmatchResult | None
    enriched_rows: np.ndarray  # indices of alerts that were enriched
    enriched: list[bytes]  # framed enriched payloads, aligned with enriched_rows
    xmatch_records: list[bytes]  # framed xmatch-topic records, aligned with enriched_rows (empty: no catalogs)
    seconds: dict[str, float] = field(default_factory=dict)  # wall time per stage
    excluded: dict[str, int] = field(default_factory=dict)  # sources dropped as unusable, by reason

    @property
    def dead_rows(self) -> np.ndarray:
        return np.flatnonzero(~self.decoded.ok)


class Pipeline:
    def __init__(self, schemas: SchemaStore, decoder: AlertDecoder, history: RedisHistory | None,
                 window_days: float = 365.0, catalogs: CatalogSet | None = None, limits: Limits = Limits(),
                 enriched_subject: str | None = None, xmatch_subject: str | None = None):
        """`*_subject`: registry subjects our schemas are registered under, when `schemas` has a
        registry (see EnrichedSchemas); otherwise deterministic ids are used."""
        self.schemas = schemas
        self.decoder = decoder
        self.history = history
        self.window_days = window_days
        self.catalogs = catalogs if catalogs is not None and catalogs.names else None
        self.limits = limits
        layout = EnrichmentLayout(tuple(self.catalogs.names) if self.catalogs else ())
        self.enriched_schemas = EnrichedSchemas(schemas, layout, enriched_subject)
        self.xmatch_schema = XmatchSchema(schemas.registry, xmatch_subject)

    def process(self, messages: Sequence[bytes]) -> BatchResult:
        t0 = time.perf_counter()
        decoded = self._decode(messages)
        excluded = screen(decoded)
        t1 = time.perf_counter()
        if self.history is not None:
            light_curves, history_source = self.history.merge(decoded)
        else:
            light_curves, history_source = alert_only(decoded, self.window_days)
        t2 = time.perf_counter()
        features = compute_features(light_curves)
        t3 = time.perf_counter()
        rows = np.flatnonzero(decoded.ok)
        xmatch = tails = None
        records: list[bytes] = []
        if self.catalogs is not None:
            # Failed rows get NaN positions: no match, no garbage.
            ra = np.where(decoded.ok, decoded.ra, np.nan)
            dec = np.where(decoded.ok, decoded.dec, np.nan)
            xmatch = self.catalogs.match(ra, dec, decoded.mjd)
        t4 = time.perf_counter()
        if xmatch is not None:
            tails = summary_bytes(xmatch, rows)
            xid = self.xmatch_schema.id()
            records = [frame(xid, body) for body in xmatch_record_bytes(
                xmatch, decoded.alert_id, decoded.object_id, decoded.has_object, decoded.ra, decoded.dec, rows)]
        ids = np.zeros(decoded.n, np.int64)
        for i in rows.tolist():
            ids[i] = self.enriched_schemas.id_for(int(decoded.schema_id[i]))
        enriched = enriched_messages(messages, rows, ids, features, history_source, feature_spec().version, tails)
        t5 = time.perf_counter()
        seconds = dict(decode=t1 - t0, history=t2 - t1, features=t3 - t2, xmatch=t4 - t3, encode=t5 - t4)
        return BatchResult(decoded, light_curves, features, history_source, xmatch, rows, enriched, records,
                           seconds, excluded)

    def _decode(self, messages: Sequence[bytes]) -> DecodedBatch:
        cap = self.limits.max_message_bytes
        too_large = np.array([len(m) > cap for m in messages], bool)
        if too_large.any():  # never hand an oversized payload to the decoder
            messages = [b"" if big else m for m, big in zip(messages, too_large)]
        decoded = self.decoder.decode(messages)
        decoded.reject(too_large, "too_large", f"message exceeds max_message_bytes={cap}")
        counts = decoded.sources.counts() + (decoded.forced.counts() if decoded.forced is not None else 0)
        cap = self.limits.max_sources_per_alert
        decoded.reject(counts > cap, "too_many_sources", f"alert carries more than max_sources_per_alert={cap} sources")
        return decoded
