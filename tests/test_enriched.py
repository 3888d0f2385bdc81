"""Enriched payloads are plain Avro: fastavro reads them with no help from us."""

from __future__ import annotations

import io
from functools import cache

import fastavro
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alertfeat.decode.fastavro_decoder import FastavroDecoder
from alertfeat.decode.numba_decoder import NumbaDecoder
from alertfeat.encode import enriched_messages
from alertfeat.enriched_schema import EnrichedSchemas, EnrichmentLayout, split_enriched_id
from alertfeat.errors import PoisonMessage
from alertfeat.features import feature_spec
from alertfeat.history import HISTORY_SYMBOLS
from alertfeat.pipeline import Pipeline
from alertfeat.schema_store import SchemaStore, bundled_versions
from alertfeat.wire import HEADER_SIZE, schema_id_of
from tests.avro_testing import alert_values, same
from tests.helpers import encode_alert, sample_alerts


def test_enriched_ids_carry_the_layout_fingerprint():
    plain, with_xmatch = EnrichmentLayout(), EnrichmentLayout(("gaia", "hipparcos"))
    assert plain.fingerprint != with_xmatch.fingerprint
    assert split_enriched_id(plain.schema_id(1101)) == (plain.fingerprint, 1101)
    assert split_enriched_id(with_xmatch.schema_id(300)) == (with_xmatch.fingerprint, 300)
    assert split_enriched_id(1101) is None
    assert max(with_xmatch.schema_id(9999), plain.schema_id(9999)) < 2**31  # the wire id is a 32-bit int


def test_a_reader_with_another_layout_gets_a_clear_error():
    store = SchemaStore()
    written = EnrichedSchemas(store, EnrichmentLayout(("gaia",))).id_for(1101)
    with pytest.raises(PoisonMessage, match="another enrichment layout.*xmatch_catalogs"):
        EnrichedSchemas(store, EnrichmentLayout(("gaia", "hipparcos"))).get(written)


def test_enriched_payload_is_the_input_plus_appended_fields(catalogs):
    store = SchemaStore()
    pipeline = Pipeline(store, FastavroDecoder(store), history=None, catalogs=catalogs)
    samples = sample_alerts()
    messages = [encode_alert(r, sid) for sid, r in samples.items()]
    result = pipeline.process(messages)
    assert result.decoded.ok.all()
    enriched_schemas = EnrichedSchemas(store, EnrichmentLayout(("gaia", "hipparcos")))
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
        assert set(record["xmatch"]) == {"gaia", "hipparcos", "nearBrightStar"}
        # A consumer that only knows Rubin's schema reads it too (Avro resolution skips our fields).
        plain = fastavro.schemaless_reader(io.BytesIO(payload[HEADER_SIZE:]), schema.definition,
                                           store.get(sid).definition)
        assert plain == samples[sid]


@cache
def _round_trip_tools() -> tuple[SchemaStore, NumbaDecoder, EnrichedSchemas]:
    store = SchemaStore()
    return store, NumbaDecoder(store), EnrichedSchemas(store)


@pytest.mark.filterwarnings("ignore:Generating overly large repr")
@pytest.mark.parametrize("schema_id", list(bundled_versions()))
@settings(max_examples=4, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example,
                                 HealthCheck.filter_too_much])
@given(data=st.data())
def test_random_enriched_alerts_read_back_with_plain_fastavro(schema_id, data):
    """Every schema version: input payload + appended block, read by fastavro with no help from us,
    is the original alert plus our fields, bit for bit (NaN features included)."""
    store, decoder, schemas = _round_trip_tools()
    strategy = alert_values(store, schema_id)[0]
    alerts = data.draw(st.lists(strategy, min_size=1, max_size=2), label="alerts")
    messages = [encode_alert(a, schema_id) for a in alerts]
    decoded = decoder.decode(messages)
    assert decoded.ok.all()
    spec = feature_spec()
    row = st.lists(st.floats(width=32), min_size=spec.size, max_size=spec.size)
    features = np.array(data.draw(st.lists(row, min_size=len(alerts), max_size=len(alerts)), label="features"),
                        np.float32).reshape(len(alerts), spec.size)
    history_source = np.array(data.draw(st.lists(st.integers(0, len(HISTORY_SYMBOLS) - 1), min_size=len(alerts),
                                                 max_size=len(alerts)), label="historySource"), np.uint8)
    ids = np.array([schemas.id_for(schema_id)] * len(alerts), np.int64)
    payloads = enriched_messages(messages, np.flatnonzero(decoded.ok), ids, features, history_source, spec.version)
    for i, (message, payload) in enumerate(zip(messages, payloads)):
        enriched = schemas.get(schema_id_of(payload)).parsed
        record = fastavro.schemaless_reader(io.BytesIO(payload[HEADER_SIZE:]), enriched, None)
        original = fastavro.schemaless_reader(io.BytesIO(message[HEADER_SIZE:]), store.get(schema_id).parsed, None)
        assert same({k: record[k] for k in original}, original)
        np.testing.assert_array_equal(np.array([record["features"][n] for n in spec.names], np.float32), features[i])
        assert record["historySource"] == HISTORY_SYMBOLS[history_source[i]]
        assert record["featuresVersion"] == spec.version
