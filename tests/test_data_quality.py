"""Input screening (docs/data-quality.md) on real lsst-alert-packet sample alerts, mutated."""

from __future__ import annotations

import copy
import io
import json
import math
import subprocess
import sys
import time

import fastavro
import numpy as np
import pytest

from alertfeat.decode.fields import FLAG_FIELDS
from alertfeat.decode.numba_decoder import NumbaDecoder
from alertfeat.enriched_schema import EnrichedSchemas, EnrichmentLayout
from alertfeat.features import feature_spec
from alertfeat.pipeline import Pipeline
from alertfeat.schema_store import SchemaStore
from alertfeat.wire import HEADER_SIZE, schema_id_of
from tests.helpers import encode_alert, sample_alerts

LATEST = 1101

# The spec's list (docs/data-quality.md), written out here rather than imported from the service.
EXCLUDING = {
    "psfFlux_flag", "psfFlux_flag_edge", "psfFlux_flag_noGoodPixels", "pixelFlags_edge", "pixelFlags_offimage",
    "pixelFlags_crCenter", "pixelFlags_nodataCenter", "pixelFlags_interpolatedCenter",
    "pixelFlags_saturatedCenter", "pixelFlags_suspectCenter", "pixelFlags_streakCenter", "pixelFlags_injected",
    "pixelFlags_injectedCenter",
}


def _sample(**trigger) -> dict:
    """The latest sample alert, its diaSource fields overridden."""
    record = copy.deepcopy(sample_alerts()[LATEST])
    record["diaSource"].update(trigger)
    return record


@pytest.fixture(scope="module")
def pipeline() -> Pipeline:
    store = SchemaStore()
    return Pipeline(store, NumbaDecoder(store), history=None)


def _write_avro(path, records) -> None:
    schema = SchemaStore().get(LATEST).parsed
    with open(path, "wb") as fh:
        fastavro.writer(fh, schema, records)


HOSTILE = {
    "nan_epoch": dict(midpointMjdTai=float("nan")),
    "inf_epoch": dict(midpointMjdTai=float("inf")),
    "nan_position": dict(ra=float("nan"), dec=float("nan")),
    "overflowing_flux": dict(psfFlux=3e38, psfFluxErr=1e-20),
    "infinite_flux": dict(psfFlux=float("inf")),
}


def test_features_json_never_fails_and_one_bad_alert_stops_nothing(tmp_path):
    """Before: ValueError 'Out of range float values are not JSON compliant' ended the run at
    the first such alert. Now every alert prints one JSON line; non-finite values are null."""
    records = [_sample()] + [_sample(**fields) for fields in HOSTILE.values()] + [_sample()]
    path = tmp_path / "hostile.avro"
    _write_avro(path, records)
    run = subprocess.run([sys.executable, "-m", "alertfeat.cli", "features", "--json", str(path)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert len(lines) == len(records)
    normal, nan_epoch, inf_epoch, nan_position, overflow, inf_flux, last = lines
    assert normal == last and normal["features"]["r_nObs"] == 3
    assert nan_epoch["midpointMjdTai"] is None and inf_epoch["midpointMjdTai"] is None
    assert nan_position["ra"] is None and nan_position["dec"] is None
    for line in lines:
        assert all(v is None or math.isfinite(v) for v in line["features"].values())
    assert nan_position["features"] == normal["features"]  # the position plays no part in the light curve
    assert inf_flux["features"]["r_nObs"] == 2  # the infinite flux is left out, the prvDiaSources stay


def test_avro_keeps_what_json_writes_as_null(pipeline):
    """Float32 features go into the enriched Avro unchanged, NaN and ±inf included."""
    records = [_sample(**fields) for fields in HOSTILE.values()]
    messages = [encode_alert(r, LATEST) for r in records]
    result = pipeline.process(messages)
    assert result.decoded.ok.all() and len(result.enriched) == len(records)
    spec = feature_spec()
    schemas = EnrichedSchemas(SchemaStore(), EnrichmentLayout(()))
    for i, payload in zip(result.enriched_rows.tolist(), result.enriched):
        record = fastavro.schemaless_reader(io.BytesIO(payload[HEADER_SIZE:]),
                                            schemas.get(schema_id_of(payload)).definition, None)
        got = np.array([record["features"][n] for n in spec.names], np.float32)
        assert got.tobytes() == result.features[i].tobytes()


@pytest.mark.parametrize("flag", FLAG_FIELDS)
def test_excluding_pixel_flags_drop_the_point(pipeline, flag):
    """One prvDiaSource of the real sample carries the flag: it leaves the light curve exactly
    when the spec lists the flag as excluding."""
    record = _sample()
    record["prvDiaSources"][0][flag] = True
    result = pipeline.process([encode_alert(record, LATEST)])
    ids = result.light_curves.source_id.tolist()
    flagged = record["prvDiaSources"][0]["diaSourceId"]
    assert (flagged not in ids) == (flag in EXCLUDING)
    assert len(ids) == (2 if flag in EXCLUDING else 3)
    assert result.excluded == ({"pixel_flags": 1} if flag in EXCLUDING else {})


def test_a_flagged_trigger_is_left_out_but_the_alert_is_enriched(pipeline):
    result = pipeline.process([encode_alert(_sample(pixelFlags_saturatedCenter=True), LATEST)])
    assert len(result.enriched) == 1
    prv_ids = sorted(p["diaSourceId"] for p in _sample()["prvDiaSources"])
    assert sorted(result.light_curves.source_id.tolist()) == prv_ids


def test_unusable_values_are_counted_by_reason(pipeline):
    record = _sample()
    prv = record["prvDiaSources"]
    extra = [dict(prv[0], diaSourceId=prv[0]["diaSourceId"] - k) for k in range(1, 6)]
    extra[0]["psfFlux"] = float("nan")
    extra[1]["psfFluxErr"] = 0.0
    extra[2]["psfFluxErr"] = None
    extra[3]["midpointMjdTai"] = 1e9
    extra[4]["band"] = "q"
    record["prvDiaSources"] = prv + extra
    result = pipeline.process([encode_alert(record, LATEST)])
    assert result.light_curves.counts().tolist() == [3]
    assert result.excluded == {"flux_not_finite": 1, "flux_err_invalid": 2, "epoch_out_of_range": 1,
                               "band_unknown": 1}


def test_samples_with_unix_seconds_are_enriched_without_points(pipeline):
    """lsst-alert-packet's v3.0-v7.4 samples put Unix seconds (1480360995) where their schema
    documents an MJD: out of range. The alerts are enriched, with no light curve; v8.0+ have one."""
    samples = sample_alerts()
    result = pipeline.process([encode_alert(r, sid) for sid, r in samples.items()])
    assert len(result.enriched) == len(samples)
    by_version = dict(zip(samples, result.light_curves.counts().tolist()))
    unix = {sid for sid, r in samples.items() if (r["diaSource"].get("midpointMjdTai")
                                                    or r["diaSource"].get("midPointTai")) > 1e9}
    assert unix == {sid for sid in samples if sid < 800}
    assert all(by_version[sid] == 0 for sid in unix) and all(by_version[sid] == 3 for sid in samples if sid >= 800)
    assert result.excluded["epoch_out_of_range"] == 3 * len(unix)
    assert not result.decoded.epoch_ok[:len(unix)].any()


def _sample_of_object(object_id: int, mjd: float, **trigger) -> dict:
    record = _sample(diaObjectId=object_id, midpointMjdTai=mjd, **trigger)
    for k, prv in enumerate(record["prvDiaSources"]):
        prv.update(diaObjectId=object_id, midpointMjdTai=mjd - 10 * (k + 1))
    return record


def test_the_service_counts_what_it_leaves_out(make_settings, service, kafka):
    """Through Kafka and Redis: alerts with a bad epoch are enriched, not dead-lettered, and
    every left-out source and degraded alert is counted by reason."""
    from alertfeat.subscribe import enriched_alerts
    from tests.helpers import produce_all

    settings = make_settings()
    now = time.time() / 86400 + 40587
    epochs = [now - 20, float("inf"), 1e9, now - 5]
    records = [_sample_of_object(7, mjd, diaSourceId=1000 + k) for k, mjd in enumerate(epochs)]
    records[3]["prvDiaSources"][0]["pixelFlags_interpolatedCenter"] = True
    produce_all(kafka.bootstrap, settings.input_topic, [encode_alert(r, LATEST) for r in records])
    with service(settings) as svc:
        got = list(enriched_alerts(settings, max_messages=len(records), idle_timeout_s=60))
        m = svc.metrics
        assert len(got) == len(records) and m.total(m.dead_lettered) == 0
        assert m.total(m.history_partial) == 2  # a new store: the two valid alerts say redis_partial
        excluded = {s.labels["reason"]: s.value for metric in m.sources_excluded.collect()
                    for s in metric.samples if s.name.endswith("_total")}
        degraded = {s.labels["reason"]: s.value for metric in m.degraded.collect()
                    for s in metric.samples if s.name.endswith("_total")}
    # The inf and 1e9 alerts: their diaSource is out of range (their prvDiaSources are too).
    assert excluded == {"epoch_out_of_range": 6, "pixel_flags": 1}
    assert degraded["epoch_out_of_range"] == 2
    by_epoch = sorted(got, key=lambda r: r.view.mjd)
    assert [r.view.history_source for r in by_epoch] == ["redis_partial", "redis_partial", "alert", "alert"]
