"""The enriched alert schema: the input alert schema with our fields appended at the end.

Appending keeps Avro's record encoding a concatenation (input body + appended fields), and
keeping the record's full name lets a consumer read enriched alerts with the plain Rubin
schema as its reader schema (Avro resolution skips the extra writer fields).
"""

from __future__ import annotations

import copy
from typing import Any

from .errors import PoisonMessage
from .features import feature_spec
from .history import HISTORY_SYMBOLS
from .schema_store import AlertSchema, SchemaStore

# Bump when the appended fields change (names, types or order).
ENRICHED_LAYOUT_VERSION = 1


def enriched_schema_id(input_schema_id: int) -> int:
    """Deterministic id when no registry assigns one: (100 + layout) * 10000 + input id.

    e.g. 1011101 = layout 1 over lsst.v11_1 (1101). Rubin ids are MAJOR*100+MINOR < 10000.
    """
    if not 0 <= input_schema_id < 10_000:
        raise ValueError(f"input schema id {input_schema_id} is outside Rubin's MAJOR*100+MINOR range")
    return (100 + ENRICHED_LAYOUT_VERSION) * 10_000 + input_schema_id


def input_schema_id_of(enriched_id: int) -> int:
    return enriched_id % 10_000


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


def appended_fields() -> list[dict[str, Any]]:
    return [
        {"name": "features", "type": features_record()},
        {
            "name": "historySource",
            "type": {"type": "enum", "name": "alertfeat.HistorySource", "symbols": HISTORY_SYMBOLS},
            "doc": "redis: alert merged with cached history; alert: the alert's own sources only",
        },
        {"name": "featuresVersion", "type": "int"},
    ]


def enriched_definition(alert_definition: dict[str, Any]) -> dict[str, Any]:
    enriched = copy.deepcopy(alert_definition)
    names = {f["name"] for f in enriched["fields"]}
    for field in appended_fields():
        if field["name"] in names:
            raise ValueError(f"alert schema {enriched['name']} already has a field named {field['name']}")
        enriched["fields"].append(field)
    enriched["doc"] = (enriched.get("doc", "") + " + alertfeat enrichment").strip()
    return enriched


class EnrichedSchemas:
    """Enriched schemas by id, derived on first use from the input schema in the store."""

    def __init__(self, store: SchemaStore):
        self.store = store
        self._ids: dict[int, int] = {}

    def id_for(self, input_schema_id: int) -> int:
        found = self._ids.get(input_schema_id)
        if found is None:
            found = enriched_schema_id(input_schema_id)
            self.store.add(found, enriched_definition(self.store.get(input_schema_id).definition))
            self._ids[input_schema_id] = found
        return found

    def get(self, enriched_id: int) -> AlertSchema:
        """The schema of an enriched message; PoisonMessage if the id is not ours."""
        if enriched_id // 10_000 != 100 + ENRICHED_LAYOUT_VERSION:
            raise PoisonMessage("unknown_schema", f"{enriched_id} is not an alertfeat layout-{ENRICHED_LAYOUT_VERSION} id")
        self.id_for(input_schema_id_of(enriched_id))
        return self.store.get(enriched_id)
