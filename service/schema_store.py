"""Alert schemas by wire id: the bundled lsst-alert-packet schemas first, then a schema registry."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import fastavro
import lsst.alert.packet

from .errors import PoisonMessage, TransientError
from .wire import rubin_schema_id


@dataclass(frozen=True)
class AlertSchema:
    schema_id: int
    definition: dict[str, Any]  # fully expanded, JSON-serialisable
    parsed: Any  # fastavro's parsed form, for the oracle/fallback paths

    @property
    def name(self) -> str:
        return self.definition["name"]

    @classmethod
    def of(cls, schema_id: int, definition: dict[str, Any]) -> AlertSchema:
        return cls(schema_id, definition, fastavro.parse_schema(definition, _write_hint=False))


@cache
def bundled_versions() -> dict[int, Path]:
    """Every alert schema lsst-alert-packet ships: wire id -> path of its alert .avsc."""
    root = Path(lsst.alert.packet.get_schema_root())
    found: dict[int, Path] = {}
    for avsc in root.glob("*/*/lsst.v*_*.alert.avsc"):
        major, minor = int(avsc.parent.parent.name), int(avsc.parent.name)
        found[rubin_schema_id(major, minor)] = avsc
    return dict(sorted(found.items()))


def latest_bundled_id() -> int:
    major, minor = lsst.alert.packet.get_latest_schema_version()
    return rubin_schema_id(major, minor)


def load_bundled(schema_id: int) -> dict[str, Any]:
    path = bundled_versions()[schema_id]
    return fastavro.schema.load_schema(str(path), _write_hint=False)


class SchemaRegistryClient:
    """Minimal Confluent schema-registry client (GET /schemas/ids/{id}, POST a subject version)."""

    def __init__(self, url: str, timeout_s: float = 5.0):
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s

    def fetch(self, schema_id: int) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"{self.url}/schemas/ids/{schema_id}", timeout=self.timeout_s) as resp:
                return json.loads(json.loads(resp.read())["schema"])
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise

    def register(self, subject: str, definition: dict[str, Any]) -> int:
        body = json.dumps({"schema": json.dumps(definition)}).encode()
        req = urllib.request.Request(
            f"{self.url}/subjects/{subject}/versions",
            data=body,
            headers={"Content-Type": "application/vnd.schemaregistry.v1+json"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
            return int(json.loads(resp.read())["id"])


class SchemaStore:
    """Resolves and caches alert schemas by id. Thread-safe."""

    def __init__(self, registry: SchemaRegistryClient | None = None):
        self.registry = registry
        self._cache: dict[int, AlertSchema] = {}
        self._lock = threading.Lock()

    def get(self, schema_id: int) -> AlertSchema:
        found = self._cache.get(schema_id)
        if found is not None:
            return found
        with self._lock:
            if schema_id not in self._cache:
                self._cache[schema_id] = self._resolve(schema_id)
            return self._cache[schema_id]

    def add(self, schema_id: int, definition: dict[str, Any]) -> AlertSchema:
        schema = AlertSchema.of(schema_id, definition)
        with self._lock:
            self._cache[schema_id] = schema
        return schema

    def _resolve(self, schema_id: int) -> AlertSchema:
        if schema_id in bundled_versions():
            definition = load_bundled(schema_id)
        elif self.registry is not None:
            try:
                definition = self.registry.fetch(schema_id)
            except OSError as exc:  # unreachable or 5xx: the alert is not at fault
                raise TransientError(f"schema registry lookup of id {schema_id} failed: {exc}") from exc
            except (ValueError, KeyError) as exc:
                raise PoisonMessage("unknown_schema", f"schema id {schema_id}: registry answer unusable: {exc}") from exc
            if definition is None:
                raise PoisonMessage("unknown_schema", f"schema id {schema_id} is not in the registry")
        else:
            raise PoisonMessage("unknown_schema", f"schema id {schema_id} is not a bundled lsst-alert-packet schema")
        if not (isinstance(definition, dict) and definition.get("type") == "record"):
            raise PoisonMessage("unknown_schema", f"schema id {schema_id} is not an Avro record schema")
        try:
            return AlertSchema.of(schema_id, definition)
        except Exception as exc:  # a registry can hold JSON Schema, Protobuf or broken Avro
            raise PoisonMessage("unknown_schema", f"schema id {schema_id} is not a usable Avro schema: "
                                                  f"{type(exc).__name__}: {exc}") from exc
