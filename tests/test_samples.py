"""Every sample alert of every schema version lsst-alert-packet ships is enriched."""

from __future__ import annotations

from alertfeat.enriched_schema import EnrichmentLayout, split_enriched_id
from alertfeat.schema_store import bundled_versions
from alertfeat.subscribe import enriched_alerts
from tests.helpers import encode_alert, produce_all, sample_alerts


def test_bundled_versions_cover_v3_to_v11():
    ids = list(bundled_versions())
    assert ids[0] == 300 and ids[-1] == 1101 and len(ids) >= 15


def test_every_shipped_sample_is_enriched(make_settings, service, kafka):
    settings = make_settings()
    samples = sample_alerts()
    produce_all(kafka.bootstrap, settings.input_topic, [encode_alert(r, sid) for sid, r in samples.items()])
    with service(settings):
        got = list(enriched_alerts(settings, max_messages=len(samples), idle_timeout_s=60))
    layout = EnrichmentLayout.from_settings(settings)
    assert sorted(r.schema_id for r in got) == sorted(layout.schema_id(sid) for sid in samples)
    for r in got:
        original = samples[split_enriched_id(r.schema_id)[1]]
        # The input alert survives unchanged; our fields are appended.
        assert {k: r.record[k] for k in original} == original
        assert r.record["historySource"] == "alert"  # the samples have no diaObjectId
        # v3.0-v7.4 samples carry Unix seconds where an MJD belongs: out of range, so no points
        # (docs/data-quality.md); v8.0+ samples carry MJDs.
        assert r.record["features"]["r_nObs"] == (0 if split_enriched_id(r.schema_id)[1] < 800 else 3)
        assert set(r.record["xmatch"]) == {"gaia", "hipparcos", "nearBrightStar"}
