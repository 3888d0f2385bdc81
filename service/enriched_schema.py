"""The enriched alert schema: the input alert schema with our fields appended at the end.

Appending keeps Avro's record encoding a concatenation (input body + appended fields), and
keeping the record's full name lets a consumer read enriched alerts with the plain Rubin
schema as its reader schema (Avro resolution skips the extra writer fields).

The appended fields depend on the feature version and the configured catalogs. Without a
schema registry, the wire id therefore carries a fingerprint of them:

    id = 1_000_000_000 + fingerprint * 10_000 + input id       (fingerprint: 16 bits)

so a reader configured differently from the writer gets a clear error, never garbage.
"""

from __future__ import annotations

import copy
import json
import zlib
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from .errors import PoisonMessage, TransientError
from .features import feature_spec
from .history import HISTORY_SYMBOLS
from .schema_store import AlertSchema, SchemaStore

ENRICHED_ID_BASE = 1_000_000_000
_INPUT_IDS = 10_000  # Rubin ids are MAJOR*100+MINOR < 10000


def features_record() -> dict[str, Any]:
    spec = feature_spec()
    return {
        "type": "record",
        "name": f"alertfeat.features_v{spec.version}",
        "doc": "alertfeat light-curve features on psfFlux; NaN where undefined. See schemas/features.json.",
        "fields": [
            {"name": name, "type": "float", "doc": f"[{spec.units[_base(name)]}] {spec.docs[_base(name)]}"}
            for name in spec.names
        ],
    }


def _base(name: str) -> str:
    spec = feature_spec()
    return name if name in spec.units else name.split("_", 1)[1]


@dataclass(frozen=True)
class EnrichmentLayout:
    """What we append: features, historySource, featuresVersion, and the cross-match summary
    when catalogs are configured."""

    catalog_names: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def from_settings(cls, settings) -> EnrichmentLayout:
        """What the service writes with these settings, i.e. what a reader must expect."""
        return cls(tuple(settings.xmatch_catalogs))

    @cached_property
    def fields(self) -> list[dict[str, Any]]:
        from .xmatch import appended_fields as xmatch_fields

        fields = [
            {"name": "features", "type": features_record()},
            {
                "name": "historySource",
                "type": {"type": "enum", "name": "alertfeat.HistorySource", "symbols": HISTORY_SYMBOLS},
                "doc": "redis: alert merged with cached history; alert: the alert's own sources only",
            },
            {"name": "featuresVersion", "type": "int"},
        ]
        if self.catalog_names:
            fields += xmatch_fields(self.catalog_names)
        return fields

    @cached_property
    def fingerprint(self) -> int:
        return zlib.crc32(json.dumps(self.fields, sort_keys=True).encode()) & 0xFFFF

    def schema_id(self, input_schema_id: int) -> int:
        """The deterministic wire id when no registry assigns one."""
        if not 0 <= input_schema_id < _INPUT_IDS:
            raise ValueError(f"input schema id {input_schema_id} is outside Rubin's MAJOR*100+MINOR range")
        return ENRICHED_ID_BASE + self.fingerprint * _INPUT_IDS + input_schema_id

    def definition(self, alert_definition: dict[str, Any]) -> dict[str, Any]:
        enriched = copy.deepcopy(alert_definition)
        names = {f["name"] for f in enriched["fields"]}
        for f in self.fields:
            if f["name"] in names:
                raise ValueError(f"alert schema {enriched['name']} already has a field named {f['name']}")
            enriched["fields"].append(f)
        enriched["doc"] = (enriched.get("doc", "") + " + alertfeat enrichment").strip()
        return enriched


def split_enriched_id(enriched_id: int) -> tuple[int, int] | None:
    """(fingerprint, input schema id) of a deterministic enriched id, else None."""
    offset = enriched_id - ENRICHED_ID_BASE
    if not 0 <= offset < 0x10000 * _INPUT_IDS:
        return None
    return offset // _INPUT_IDS, offset % _INPUT_IDS


class EnrichedSchemas:
    """Enriched schemas by id, derived on first use from the input schema in the store.

    With `subject` (e.g. "alerts.enriched-value") and a registry in the store, each enriched
    schema is registered under that subject and the registry's id goes on the wire; otherwise
    the id is the deterministic `layout.schema_id`.
    """

    def __init__(self, store: SchemaStore, layout: EnrichmentLayout | None = None, subject: str | None = None):
        self.store = store
        self.layout = layout or EnrichmentLayout()
        self.subject = subject if store.registry is not None else None
        self._ids: dict[int, int] = {}
        self._schemas: dict[int, AlertSchema] = {}

    def id_for(self, input_schema_id: int) -> int:
        found = self._ids.get(input_schema_id)
        if found is None:
            definition = self.layout.definition(self.store.get(input_schema_id).definition)
            if self.subject is not None:
                try:
                    found = self.store.registry.register(self.subject, definition)
                except OSError as exc:
                    raise TransientError(f"registering the enriched schema under {self.subject} failed: {exc}") \
                        from exc
            else:
                found = self.layout.schema_id(input_schema_id)
            self._schemas[found] = AlertSchema.of(found, definition)
            self._ids[input_schema_id] = found
        return found

    def get(self, enriched_id: int) -> AlertSchema:
        """The schema of an enriched message; PoisonMessage if it cannot be known here."""
        found = self._schemas.get(enriched_id)
        if found is not None:
            return found
        parts = split_enriched_id(enriched_id)
        if parts is not None and parts[0] == self.layout.fingerprint:
            self.id_for(parts[1])
            return self._schemas[enriched_id]
        if self.store.registry is not None:
            # Straight from the registry: its ids may collide with Rubin's bundled input ids.
            try:
                definition = self.store.registry.fetch(enriched_id)
            except OSError as exc:
                raise TransientError(f"schema registry lookup of id {enriched_id} failed: {exc}") from exc
            except (ValueError, KeyError) as exc:
                raise PoisonMessage("unknown_schema", f"schema id {enriched_id}: registry answer unusable: {exc}") \
                    from exc
            if definition is None:
                raise PoisonMessage("unknown_schema", f"schema id {enriched_id} is not in the registry")
            found = self._schemas[enriched_id] = AlertSchema.of(enriched_id, definition)
            return found
        if parts is not None:
            raise PoisonMessage(
                "unknown_schema",
                f"schema id {enriched_id} was written with another enrichment layout (fingerprint {parts[0]}, "
                f"ours {self.layout.fingerprint}): configure the same xmatch_catalogs as the service, "
                "or use a schema registry")
        raise PoisonMessage("unknown_schema", f"schema id {enriched_id} is not an alertfeat enriched schema id")
