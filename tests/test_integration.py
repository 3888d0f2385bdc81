"""The whole path through a real Kafka-protocol broker and a real Redis."""

from __future__ import annotations

import json

import numpy as np
import redis as redis_lib

from alertfeat.app import build_pipeline
from alertfeat.avro_files import framed_messages
from alertfeat.history import RECORD, TRIM_SLACK_DAYS, history_key
from alertfeat.offline import offline_views
from alertfeat.output_json import to_json
from alertfeat.subscribe import enriched_alerts
from tests.helpers import produce_all, write_simulated

import fastavro


def _features_by_source(lines: list[str]) -> dict[int, dict]:
    out = {}
    for line in lines:
        d = json.loads(line)
        out[d["diaSourceId"]] = d
    return out


def test_simulated_stream_is_enriched_once_each_and_matches_offline(make_settings, service, kafka, redis_url, key_prefix, tmp_path):
    path = write_simulated(tmp_path / "alerts.avro", 1000, 200, seed=3)
    settings = make_settings()
    produce_all(kafka.bootstrap, settings.input_topic, framed_messages([path]))

    with service(settings) as svc:
        online = [to_json(r.view) for r in enriched_alerts(settings, max_messages=1000, idle_timeout_s=60)]
        assert svc.metrics.total(svc.metrics.dead_lettered) == 0
    # nothing more than 1000 arrives
    extra = list(enriched_alerts(settings, idle_timeout_s=3))
    assert len(online) == 1000 and len(extra) == 1000

    online_by_id = _features_by_source(online)
    offline_by_id = _features_by_source(
        to_json(v) for v in offline_views(build_pipeline(settings, offline=True), [path]))
    assert len(online_by_id) == 1000 and online_by_id.keys() == offline_by_id.keys()
    for source_id, on in online_by_id.items():
        off = offline_by_id[source_id]
        assert on["historySource"] == "redis_partial" and off["historySource"] == "alert"
        assert on["features"] == off["features"], source_id

    # Redis holds each object's merged history: every source of its latest alert.
    with open(path, "rb") as fh:
        alerts = list(fastavro.reader(fh))
    latest = {}
    for a in alerts:
        latest[a["diaSource"]["diaObjectId"]] = a
    client = redis_lib.Redis.from_url(redis_url)
    sizes = {}
    for object_id, a in latest.items():
        key = history_key(key_prefix, object_id)
        stored = np.frombuffer(client.get(key) or b"", RECORD)
        expected = {a["diaSource"]["diaSourceId"]} | {p["diaSourceId"] for p in a["prvDiaSources"]}
        assert expected <= set(stored["source_id"].tolist())
        assert len(set(stored["source_id"].tolist())) == len(stored)  # no duplicates
        # Anything else has aged out of the 365-day window but not yet past the trim slack.
        extra_mjd = stored["mjd"][~np.isin(stored["source_id"], list(expected))]
        end = a["diaSource"]["midpointMjdTai"]
        assert ((extra_mjd < end - 365) & (extra_mjd >= end - 365 - TRIM_SLACK_DAYS - 30)).all()
        sizes[key] = len(stored)

    # Replaying the same alerts changes no history and gives the same features.
    produce_all(kafka.bootstrap, settings.input_topic, framed_messages([path]))
    with service(settings):
        again = [to_json(r.view) for r in enriched_alerts(settings, max_messages=2000, idle_timeout_s=60)]
    assert len(again) == 2000
    for key, size in sizes.items():
        # Never grows; it may shrink when a replayed alert trims records past the window's slack.
        assert client.strlen(key) <= size * RECORD.itemsize
    second = _features_by_source(again[1000:])
    assert {k: v["features"] for k, v in second.items()} == {k: v["features"] for k, v in online_by_id.items()}
