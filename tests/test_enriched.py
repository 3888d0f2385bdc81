"""Enriched payloads are plain Avro: fastavro reads them with no help from us."""

from __future__ import annotations

import io

import fastavro
import numpy as np

from alertfeat.decode.fastavro_decoder import FastavroDecoder
from alertfeat.enriched_schema import EnrichedSchemas, enriched_schema_id, input_schema_id_of
from alertfeat.features import feature_spec
from alertfeat.pipeline import Pipeline
from alertfeat.schema_store import SchemaStore
from alertfeat.wire import HEADER_SIZE, schema_id_of
from tests.helpers import encode_alert, sample_alerts


def test_enriched_ids_round_trip():
    assert enriched_schema_id(1101) == 1011101
    assert input_schema_id_of(enriched_schema_id(300)) == 300


def test_enriched_payload_is_the_input_plus_appended_fields():
    store = SchemaStore()
    pipeline = Pipeline(store, FastavroDecoder(store), history=None)
    samples = sample_alerts()
    messages = [encode_alert(r, sid) for sid, r in samples.items()]
    result = pipeline.process(messages)
    assert result.decoded.ok.all()
    enriched_schemas = EnrichedSchemas(store)
    spec = feature_spec()
    for i, payload in zip(result.enriched_rows.tolist(), result.enriched):
        sid = int(result.decoded.schema_id[i])
        assert payload[HEADER_SIZE:].startswith(messages[i][HEADER_SIZE:])
        schema = enriched_schemas.get(schema_id_of(payload))
        record = fastavro.schemaless_reader(io.BytesIO(payload[HEADER_SIZE:]), schema.definition, None)
        assert {k: record[k] for k in samples[sid]} == samples[sid]
        assert list(record["features"]) == list(spec.names)
        got = np.array(list(record["features"].values()), np.float32)
        np.testing.assert_array_equal(got, result.features[i])
        assert record["featuresVersion"] == spec.version and record["historySource"] == "alert"
        # A consumer that only knows Rubin's schema reads it too (Avro resolution skips our fields).
        plain = fastavro.schemaless_reader(io.BytesIO(payload[HEADER_SIZE:]), schema.definition,
                                           store.get(sid).definition)
        assert plain == samples[sid]
