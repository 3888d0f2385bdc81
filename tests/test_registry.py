"""Enriched schemas are registered with a schema registry when one is configured.

No schema registry can run on this machine, so these tests use MockRegistry: a MOCK of the
Confluent schema-registry REST API (the two calls SchemaRegistryClient makes), served by
http.server on loopback. It is the only mock in the test suite.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import fastavro
import pytest

from alertfeat.app import build_pipeline
from alertfeat.config import load_settings
from alertfeat.decode.fastavro_decoder import FastavroDecoder
from alertfeat.decode.numba_decoder import NumbaDecoder
from alertfeat.enriched_schema import EnrichedSchemas, EnrichmentLayout
from alertfeat.schema_store import SchemaRegistryClient, SchemaStore
from alertfeat.wire import HEADER_SIZE, frame, schema_id_of
from tests.helpers import encode_alert, sample_alerts


class MockRegistry:
    """MOCK schema registry (not a real one): POST /subjects/{s}/versions and GET /schemas/ids/{id}.

    Like Confluent's, it gives a schema the same id however often it is registered. Its ids
    start at 700 on purpose: a real registry's ids may collide with Rubin's bundled ids.
    """

    def __init__(self, first_id: int = 700):
        self.schemas: dict[int, str] = {}
        self.registrations: list[tuple[str, int]] = []  # (subject, id) per POST
        self.next_id = first_id
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                parts = self.path.strip("/").split("/")
                if len(parts) != 3 or parts[0] != "subjects" or parts[2] != "versions":
                    return self._reply(404, {"error_code": 404})
                text = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["schema"]
                canonical = json.dumps(json.loads(text), sort_keys=True)
                found = next((i for i, s in registry.schemas.items() if s == canonical), None)
                if found is None:
                    found, registry.next_id = registry.next_id, registry.next_id + 1
                    registry.schemas[found] = canonical
                registry.registrations.append((parts[1], found))
                self._reply(200, {"id": found})

            def do_GET(self) -> None:
                parts = self.path.strip("/").split("/")
                if len(parts) == 3 and parts[:2] == ["schemas", "ids"] and int(parts[2]) in registry.schemas:
                    return self._reply(200, {"schema": registry.schemas[int(parts[2])]})
                self._reply(404, {"error_code": 40403, "message": "Schema not found"})

            def _reply(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def mock_registry() -> Iterator[MockRegistry]:
    registry = MockRegistry()
    thread = threading.Thread(target=registry.server.serve_forever, daemon=True)
    thread.start()
    yield registry
    registry.server.shutdown()
    registry.server.server_close()


def test_enriched_schemas_are_registered_once_per_input_schema_and_their_ids_used(mock_registry, data_dir):
    settings = load_settings(schema_registry_url=mock_registry.url, enriched_topic="enriched-x",
                             xmatch_topic="xmatch-x", redis_url="", data_dir=data_dir)
    pipeline = build_pipeline(settings, offline=True)
    samples = sample_alerts()
    messages = [encode_alert(r, sid) for sid, r in samples.items()]
    result = pipeline.process(messages)
    pipeline.process(messages)  # a second batch registers nothing new
    assert result.decoded.ok.all()

    enriched_ids = [i for subject, i in mock_registry.registrations if subject == "enriched-x-value"]
    xmatch_ids = [i for subject, i in mock_registry.registrations if subject == "xmatch-x-value"]
    assert len(enriched_ids) == len(samples) and len(xmatch_ids) == 1
    assert len(mock_registry.registrations) == len(samples) + 1
    wire_ids = [schema_id_of(p) for p in result.enriched]
    assert sorted(wire_ids) == sorted(enriched_ids)
    assert {schema_id_of(p) for p in result.xmatch_records} == set(xmatch_ids)
    layout = EnrichmentLayout.from_settings(settings)
    store = SchemaStore()
    for i, payload in zip(result.enriched_rows.tolist(), result.enriched):
        sid = int(result.decoded.schema_id[i])
        registered = json.loads(mock_registry.schemas[schema_id_of(payload)])
        assert registered == json.loads(json.dumps(layout.definition(store.get(sid).definition), sort_keys=True))
        # A consumer that knows nothing of alertfeat: the registry's schema, plain fastavro.
        record = fastavro.schemaless_reader(io.BytesIO(payload[HEADER_SIZE:]), fastavro.parse_schema(registered), None)
        assert {k: record[k] for k in samples[sid]} == samples[sid]
        assert set(record) - set(samples[sid]) == {"features", "historySource", "featuresVersion", "xmatch"}


def test_registry_ids_that_collide_with_bundled_ids_still_read_back(mock_registry):
    store = SchemaStore(SchemaRegistryClient(mock_registry.url))
    writer = EnrichedSchemas(store, subject="t-value")
    enriched_id = writer.id_for(1101)
    assert enriched_id == 700  # also the wire id of lsst.v7_0 alerts
    reader = EnrichedSchemas(SchemaStore(SchemaRegistryClient(mock_registry.url)))
    assert reader.get(enriched_id).definition == json.loads(mock_registry.schemas[700])
    assert reader.get(enriched_id).name == "lsst.v11_1.alert"


def test_without_a_registry_the_id_is_deterministic(data_dir):
    settings = load_settings(redis_url="", data_dir=data_dir)
    pipeline = build_pipeline(settings, offline=True)
    result = pipeline.process([encode_alert(sample_alerts()[1101], 1101)])
    assert schema_id_of(result.enriched[0]) == EnrichmentLayout.from_settings(settings).schema_id(1101)


@pytest.mark.parametrize("decoder_class", [NumbaDecoder, FastavroDecoder])
def test_registry_schemas_that_are_not_alerts_are_dead_lettered_not_fatal(mock_registry, decoder_class):
    """A registry may hold key schemas, JSON Schema or unrelated records under any id."""
    mock_registry.schemas.update({
        9001: '"string"',
        9002: json.dumps({"type": "object", "properties": {"a": {"type": "string"}}}),  # JSON Schema
        9003: json.dumps({"type": "record", "name": "notAlert", "fields": [
            {"name": "diaSource", "type": {"type": "array", "items": "long"}}]}),
    })
    good = encode_alert(sample_alerts()[1101], 1101)
    messages = [frame(9001, b"\x06abc"), good, frame(9002, b"{}"), frame(9003, b"\x04\x02\x04\x00"), good]
    batch = decoder_class(SchemaStore(SchemaRegistryClient(mock_registry.url))).decode(messages)
    assert batch.ok.tolist() == [False, True, False, False, True]
    assert [batch.error_reason[i] for i in (0, 2, 3)] == ["unknown_schema"] * 3
    assert all("not" in batch.error_detail[i] for i in (0, 2, 3))
    assert batch.sources.counts()[[1, 4]].tolist() == [len(sample_alerts()[1101]["prvDiaSources"] or []) + 1] * 2
    assert batch.sources.counts()[[0, 2, 3]].tolist() == [0, 0, 0]
