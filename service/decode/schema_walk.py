"""Find the DiaSource and DiaForcedSource record definitions inside an expanded alert schema."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import PoisonMessage

# What reading a record schema that is not a Rubin alert can raise: a registry may hold anything.
NOT_AN_ALERT = (ValueError, TypeError, KeyError, AttributeError)


def not_an_alert(schema_id: int, exc: Exception) -> PoisonMessage:
    return PoisonMessage("unknown_schema", f"schema id {schema_id} is not an alert schema: "
                                           f"{type(exc).__name__}: {exc}")


@dataclass(frozen=True)
class AlertRecordTypes:
    dia_source: dict[str, Any]
    forced_source: dict[str, Any] | None


def _named_records(node: Any, found: dict[str, dict[str, Any]]) -> None:
    if isinstance(node, dict):
        if node.get("type") == "record" and "name" in node:
            found.setdefault(node["name"], node)
        for value in node.values():
            _named_records(value, found)
    elif isinstance(node, list):
        for value in node:
            _named_records(value, found)


def _field_record(alert: dict[str, Any], field: str, records: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The record type a field holds directly, inside a nullable union, or as array items."""
    for f in alert["fields"]:
        if f["name"] != field:
            continue
        candidates = f["type"] if isinstance(f["type"], list) else [f["type"]]
        for t in candidates:
            if isinstance(t, dict) and t.get("type") == "array":
                t = t["items"]
            if isinstance(t, dict) and t.get("type") == "record":
                return t
            if isinstance(t, str) and t in records:
                return records[t]
    return None


def alert_record_types(alert: dict[str, Any]) -> AlertRecordTypes:
    records: dict[str, dict[str, Any]] = {}
    _named_records(alert, records)
    dia_source = _field_record(alert, "diaSource", records)
    if dia_source is None:
        raise ValueError(f"schema {alert.get('name')} has no diaSource record")
    return AlertRecordTypes(dia_source, _field_record(alert, "prvDiaForcedSources", records))
