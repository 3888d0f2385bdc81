"""One batch through every stage: decode -> history -> features -> encode. No Kafka here."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .columns import DecodedBatch, Sources
from .decode import AlertDecoder
from .encode import enriched_messages
from .enriched_schema import EnrichedSchemas
from .features import compute_features, feature_spec
from .history import RedisHistory, alert_only
from .schema_store import SchemaStore


@dataclass
class BatchResult:
    decoded: DecodedBatch
    light_curves: Sources
    features: np.ndarray  # float32 [n, F]; rows of failed alerts are undefined
    history_source: np.ndarray  # uint8 [n]
    enriched_rows: np.ndarray  # indices of alerts that were enriched
    enriched: list[bytes]  # framed enriched payloads, aligned with enriched_rows
    seconds: dict[str, float] = field(default_factory=dict)  # wall time per stage

    @property
    def dead_rows(self) -> np.ndarray:
        return np.flatnonzero(~self.decoded.ok)


class Pipeline:
    def __init__(self, schemas: SchemaStore, decoder: AlertDecoder, history: RedisHistory | None,
                 window_days: float = 365.0):
        self.schemas = schemas
        self.decoder = decoder
        self.history = history
        self.window_days = window_days
        self.enriched_schemas = EnrichedSchemas(schemas)

    def process(self, messages: Sequence[bytes]) -> BatchResult:
        seconds = {}
        t0 = time.perf_counter()
        decoded = self.decoder.decode(messages)
        t1 = time.perf_counter()
        if self.history is not None:
            light_curves, history_source = self.history.merge(decoded)
        else:
            light_curves, history_source = alert_only(decoded, self.window_days)
        t2 = time.perf_counter()
        features = compute_features(light_curves)
        t3 = time.perf_counter()
        rows = np.flatnonzero(decoded.ok)
        ids = np.zeros(decoded.n, np.int64)
        for i in rows:
            ids[i] = self.enriched_schemas.id_for(int(decoded.schema_id[i]))
        enriched = enriched_messages(messages, rows, ids, features, history_source, feature_spec().version)
        t4 = time.perf_counter()
        seconds.update(decode=t1 - t0, history=t2 - t1, features=t3 - t2, encode=t4 - t3)
        return BatchResult(decoded, light_curves, features, history_source, rows, enriched, seconds)
