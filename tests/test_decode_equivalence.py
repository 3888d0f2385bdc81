"""The numba decoder equals the fastavro oracle field for field: random alerts of every shipped
schema version (nulls, empty and long arrays, arrays in negative-count blocks, extreme values,
unicode), Avro features the shipped schemas do not use, and the fallback for what it cannot do."""

from __future__ import annotations

import copy
import io
import logging
from functools import cache

import fastavro
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alertfeat.decode.fastavro_decoder import FastavroDecoder
from alertfeat.decode.numba_decoder import NumbaDecoder
from alertfeat.schema_store import SchemaStore, bundled_versions
from alertfeat.wire import frame
from tests.avro_testing import alert_values, assert_same_batch, encode
from tests.helpers import encode_alert, sample_alerts

pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")  # of the drawn alerts

SCHEMA_IDS = list(bundled_versions())
STORE = SchemaStore()
HYPOTHESIS = settings(max_examples=12, deadline=None, derandomize=False,
                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                             HealthCheck.large_base_example, HealthCheck.filter_too_much])


@cache
def decoders(include_forced: bool) -> tuple[NumbaDecoder, FastavroDecoder]:
    return NumbaDecoder(STORE, include_forced), FastavroDecoder(STORE, include_forced)


def draw_messages(data, schema_ids: list[int], max_alerts: int = 2) -> list[bytes]:
    block = data.draw(st.sampled_from([None, 1, 3]), label="array block size")
    negative = data.draw(st.booleans(), label="negative block counts")
    overlong = data.draw(st.booleans(), label="2-byte union indexes")
    messages = []
    for _ in range(data.draw(st.integers(1, max_alerts), label="alerts")):
        schema_id = data.draw(st.sampled_from(schema_ids), label="schema id")
        strategy, schema, named = alert_values(STORE, schema_id)
        alert = data.draw(strategy, label="alert")
        body = encode(schema, alert, named, block, negative, overlong)
        if block is None and not negative and not overlong and schema_id in SCHEMA_IDS:
            # the test's own encoder agrees with fastavro's
            buf = io.BytesIO()
            fastavro.schemaless_writer(buf, STORE.get(schema_id).parsed, alert)
            assert body == buf.getvalue()
        messages.append(frame(schema_id, body))
    return messages


@pytest.mark.parametrize("schema_id", SCHEMA_IDS)
@HYPOTHESIS
@given(data=st.data())
def test_random_alerts_decode_like_fastavro(schema_id, data):
    messages = draw_messages(data, [schema_id])
    include_forced = data.draw(st.booleans(), label="include_forced")
    ours, oracle = decoders(include_forced)
    got, want = ours.decode(messages), oracle.decode(messages)
    assert want.ok.all()  # the generated alerts are valid
    assert_same_batch(got, want)


@HYPOTHESIS
@given(data=st.data())
def test_batches_mixing_schema_versions(data):
    messages = draw_messages(data, SCHEMA_IDS, max_alerts=5)
    ours, oracle = decoders(True)
    want = oracle.decode(messages)
    assert want.ok.all()
    assert_same_batch(ours.decode(messages), want)


def test_shipped_sample_alerts():
    messages = [encode_alert(r, sid) for sid, r in sample_alerts().items()]
    for include_forced in (False, True):
        ours, oracle = decoders(include_forced)
        got = ours.decode(messages)
        assert got.ok.all()
        assert_same_batch(got, oracle.decode(messages))


def test_ids_stay_int64_at_the_extremes():
    alert = copy.deepcopy(sample_alerts()[1101])
    alert["diaSource"]["diaSourceId"] = 2**63 - 1
    alert["diaSource"]["diaObjectId"] = -(2**63)
    alert["prvDiaSources"] = [dict(alert["diaSource"], diaSourceId=2**62 + 1)]
    got = decoders(False)[0].decode([encode_alert(alert, 1101)])
    assert got.alert_id.dtype == np.int64 and got.alert_id[0] == 2**63 - 1
    assert got.has_object[0] and got.object_id[0] == -(2**63)
    assert got.sources.source_id.tolist() == [2**63 - 1, 2**62 + 1]


# --- Avro features the shipped schemas do not use --------------------------------------------

EXOTIC_ID = 9901  # not a Rubin id: registered in the test's store only


def exotic_schema() -> dict:
    """lsst.v11_1 with maps, enums, fixed, a general union, nested arrays and short-name
    references in diaSource, captured fields in unusual types, and null as a union's second branch."""
    definition = copy.deepcopy(STORE.get(1101).definition)
    source = next(f for f in definition["fields"] if f["name"] == "diaSource")["type"]
    fields = source["fields"]
    at = next(k for k, f in enumerate(fields) if f["name"] == "psfFlux")
    fields[at:at] = [
        {"name": "xMap", "type": {"type": "map", "values": {"type": "array", "items": "long"}}},
        {"name": "xEnum", "type": {"type": "enum", "name": "Kind", "symbols": ["A", "B", "C"]}},
        {"name": "xFixed", "type": {"type": "fixed", "name": "Four", "size": 4}},
        {"name": "xUnion", "type": ["int", "string", "null", {"type": "record", "name": "Pair", "fields": [
            {"name": "a", "type": "double"}, {"name": "kind", "type": "Kind"}]}]},
        {"name": "xNested", "type": {"type": "array", "items": {"type": "array", "items": ["null", "Four"]}}},
        {"name": "xBytes", "type": ["bytes", "null"]},
    ]
    for f in fields:
        if f["name"] in ("psfFlux", "psfFluxErr", "midpointMjdTai", "diaObjectId", "pixelFlags_bad"):
            f.pop("default", None)
        if f["name"] == "psfFlux":
            f["type"] = ["double", "null"]
        elif f["name"] == "psfFluxErr":
            f["type"] = ["null", "float", "long"]
        elif f["name"] == "midpointMjdTai":
            f["type"] = "long"
        elif f["name"] == "diaObjectId":
            f["type"] = ["long", "null"]
        elif f["name"] == "pixelFlags_bad":
            f["type"] = "boolean"
    return definition


@cache
def exotic_id() -> int:
    STORE.add(EXOTIC_ID, exotic_schema())
    return EXOTIC_ID


@HYPOTHESIS
@given(data=st.data())
def test_maps_enums_fixed_unions_and_nested_arrays(data):
    messages = draw_messages(data, [exotic_id(), 1101], max_alerts=3)
    ours, oracle = decoders(True)
    want = oracle.decode(messages)
    assert want.ok.all()
    assert_same_batch(ours.decode(messages), want)
    assert exotic_id() not in ours.fallback_schema_ids


def test_a_schema_the_op_codes_cannot_express_falls_back_to_fastavro(caplog):
    recursive_id = 9902
    definition = copy.deepcopy(STORE.get(1101).definition)
    definition["fields"].append({"name": "tree", "type": {"type": "record", "name": "Node", "fields": [
        {"name": "value", "type": "long"}, {"name": "children", "type": {"type": "array", "items": "Node"}}]}})
    STORE.add(recursive_id, definition)
    leaf = {"value": 4, "children": []}
    tree = {"value": 1, "children": [{"value": 2, "children": []}, {"value": 3, "children": [leaf]}]}
    alerts = [dict(a, tree=tree) for a in (sample_alerts()[1101],)]
    recursive = [frame(recursive_id, _write(definition, a)) for a in alerts]
    plain = [encode_alert(sample_alerts()[sid], sid) for sid in (1101, 300)]
    messages = [plain[0], recursive[0], plain[1], recursive[0][:-3], plain[0]]
    ours, oracle = NumbaDecoder(STORE, True), FastavroDecoder(STORE, True)
    with caplog.at_level(logging.WARNING, logger="alertfeat.decode.numba_decoder"):
        got = ours.decode(messages)
        ours.decode(messages)
    assert [r.message for r in caplog.records].count(caplog.records[0].message) == 1  # logged once
    assert "recursive type" in caplog.records[0].message
    assert recursive_id in ours.fallback_schema_ids
    assert got.ok.tolist() == [True, True, True, False, True]
    assert_same_batch(got, oracle.decode(messages))


def test_a_schema_without_diasource_is_dead_lettered_not_a_crash():
    STORE.add(9903, {"type": "record", "name": "not.an.alert", "fields": [{"name": "x", "type": "long"}]})
    got = NumbaDecoder(STORE).decode([frame(9903, b"\x02"), encode_alert(sample_alerts()[1101], 1101)])
    assert got.ok.tolist() == [False, True]
    assert got.error_reason[0] == "unknown_schema" and "not an alert schema" in got.error_detail[0]


def _write(definition: dict, record: dict) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(definition, _write_hint=False), record)
    return buf.getvalue()
