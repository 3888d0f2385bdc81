"""Hostile input, caps, accounting, health endpoints and the dead-letter replay."""

from __future__ import annotations

import itertools
import json
import random
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from confluent_kafka import Producer

from alertfeat.app import build_pipeline
from alertfeat.avro_files import framed_messages
from alertfeat.dlq import replay_dead_letters
from alertfeat.kafka_io import ensure_topics
from alertfeat.localinfra import free_port
from alertfeat.subscribe import enriched_alerts
from tests.helpers import drain, readyz, encode_alert, produce_all, sample_alerts, write_simulated


def _scrape(port: int) -> dict[str, float]:
    """Metric name (with labels) -> value, from the live /metrics endpoint."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def _total(metrics: dict[str, float], name: str) -> float:
    return sum(v for k, v in metrics.items() if k == name or k.startswith(name + "{"))


@pytest.fixture(scope="module")
def short_alerts(tmp_path_factory) -> list[bytes]:
    path = write_simulated(tmp_path_factory.mktemp("rel") / "a.avro", 600, 200, seed=5, mean_epochs=12)
    return list(framed_messages([path]))


def test_caps_accounting_and_health_endpoints(make_settings, service, kafka, short_alerts):
    port = free_port()
    huge = encode_alert(sample_alerts()[1101] | {"cutoutDifference": b"x" * 300_000}, 1101)
    settings = make_settings(metrics_port=port, max_message_bytes=200_000, max_sources_per_alert=10)
    n_many = sum(1 for m in short_alerts[:100] if _sources(m) > 10)
    messages = short_alerts[:100] + [huge, b"\x00\x00\x00\x04\x4d garbage"]
    with service(settings) as svc:
        from alertfeat.health import serve

        serve(port, svc.metrics.registry, svc.worker.health)
        produce_all(kafka.bootstrap, settings.input_topic, messages)
        dead = drain(kafka.bootstrap, settings.dlq_topic, n_many + 2, timeout_s=60)
        drain(kafka.bootstrap, settings.enriched_topic, len(messages) - n_many - 2, timeout_s=60)
        health = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5).read())
        deadline = time.monotonic() + 30  # readiness comes from timed probes (2 successes in a row)
        while readyz(port)[0] != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        ready = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5).read())
        metrics = _scrape(port)
    reasons = sorted(dict(m.headers())["alertfeat.error.class"].decode() for m in dead)
    assert reasons.count("too_large") == 1 and reasons.count("too_many_sources") == n_many > 0
    assert health["status"] == "ok" and ready["status"] == "ok", ready
    consumed = _total(metrics, "alertfeat_consumed_total")
    assert consumed == len(messages)
    assert consumed == _total(metrics, "alertfeat_enriched_total") + _total(metrics, "alertfeat_dead_lettered_total")
    assert metrics['alertfeat_dead_lettered_total{reason="too_large"}'] == 1
    assert _total(metrics, "alertfeat_alert_latency_seconds_count") == len(messages) - n_many - 2
    assert any(k.startswith("alertfeat_batch_stage_seconds_count{stage=\"features\"") for k in metrics)


def _sources(message: bytes) -> int:
    from alertfeat.decode.fastavro_decoder import decode_body
    from alertfeat.schema_store import SchemaStore

    alert = decode_body(message[5:], SchemaStore().get(1101))
    return 1 + len(alert["prvDiaSources"] or [])


def test_readyz_is_503_before_partitions_are_assigned(make_settings):
    from alertfeat.health import Health, serve

    port = free_port()
    server = serve(port, __import__("prometheus_client").CollectorRegistry(), Health())
    try:
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5)
        assert err.value.code == 503 and "no partitions assigned" in err.value.read().decode()
        assert urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5).status == 200
    finally:
        server.shutdown()


def test_dlq_replay_resubmits_after_a_fix(make_settings, service, kafka, short_alerts):
    settings = make_settings(max_sources_per_alert=10)
    produce_all(kafka.bootstrap, settings.input_topic, short_alerts[:100])
    n_many = sum(1 for m in short_alerts[:100] if _sources(m) > 10)
    with service(settings):
        assert len(drain(kafka.bootstrap, settings.dlq_topic, n_many, timeout_s=60)) == n_many
    fixed = settings.model_copy(update={"max_sources_per_alert": 20_000})  # the fix: a sane cap
    result = replay_dead_letters(fixed, idle_timeout_s=5)
    assert result.resubmitted == {"too_many_sources": n_many}
    assert replay_dead_letters(fixed, idle_timeout_s=5).resubmitted == {}  # progress was committed
    with service(fixed) as svc:
        got = list(enriched_alerts(fixed, max_messages=100, idle_timeout_s=30))
        m = svc.metrics
    assert len(got) == 100 and len({g.view.dia_source_id for g in got}) == 100
    assert m.total(m.consumed) == n_many and m.total(m.enriched) == n_many  # same accounting, again


def _mutations(good: list[bytes], rng: random.Random):
    """Endless hostile variants of real payloads."""
    while True:
        base = rng.choice(good)
        kind = rng.randrange(5)
        if kind == 0:
            yield base[: rng.randrange(len(base))]
        elif kind == 1:
            b = bytearray(base)
            for _ in range(rng.randint(1, 8)):
                b[rng.randrange(5, len(b))] ^= 1 << rng.randrange(8)
            yield bytes(b)
        elif kind == 2:
            yield rng.randbytes(rng.randrange(0, 2000))
        elif kind == 3:
            yield base[:5] + rng.randbytes(rng.randrange(1, 400)) + base[5:]
        else:
            yield base + rng.randbytes(rng.randint(1, 64)) * rng.randint(1, 2000)  # over-long


@pytest.mark.slow
def test_fuzz_the_whole_ingest_path_100000_cases(make_settings, short_alerts):
    """Decode, Redis history, features, cross-match and encode on hostile input: no crash, and
    the good alerts of every batch come out exactly as they do in a batch of their own.

    Good alerts and the payloads mutated into hostile ones belong to disjoint objects, so that a
    mutation that still decodes (a flipped flux bit is valid Avro) cannot legitimately change a
    good alert's light curve."""
    settings = make_settings(max_message_bytes=64 * 1024)
    pipeline = build_pipeline(settings)
    objects = [_object_id(m) for m in short_alerts]
    good_pool = [m for m, o in zip(short_alerts, objects) if o % 2 == 0]
    bad_pool = [m for m, o in zip(short_alerts, objects) if o % 2 == 1]
    rng = random.Random(2026)
    hostile = _mutations(bad_pool, rng)
    tried = 0
    for n_batch in itertools.count():
        if tried >= 100_000:
            break
        good = rng.sample(good_pool, 100)
        batch = [next(hostile) for _ in range(900)] + good
        rng.shuffle(batch)
        tried += 900
        pipeline.history.prefix = f"{settings.redis_key_prefix}ref{n_batch}:"
        reference = pipeline.process(good).features
        pipeline.history.prefix = f"{settings.redis_key_prefix}fuzz{n_batch}:"
        result = pipeline.process(batch)
        decoded = result.decoded
        for k, message in enumerate(batch):
            if message in good:
                assert decoded.ok[k], decoded.error_detail[k]
                assert np.array_equal(result.features[k], reference[good.index(message)], equal_nan=True)
            elif not decoded.ok[k]:
                assert decoded.error_reason[k] in {"bad_magic", "unknown_schema", "truncated", "malformed",
                                                   "trailing_bytes", "too_large", "too_many_sources"}
        assert len(result.enriched) == int(decoded.ok.sum())
    print(f"\nfuzzed {tried} hostile payloads through the whole ingest path: no crash, no good alert lost")


def _object_id(message: bytes) -> int:
    from alertfeat.decode.fastavro_decoder import decode_body
    from alertfeat.schema_store import SchemaStore

    return decode_body(message[5:], SchemaStore().get(1101))["diaSource"]["diaObjectId"]


def test_alerts_over_a_megabyte_are_enriched_and_over_the_cap_dead_lettered_without_payload(
        make_settings, service, kafka):
    """librdkafka refuses messages over its producer's message.max.bytes (default 1,000,000) by
    raising; the service's producer allows the input cap plus the appended fields."""
    sample = sample_alerts()[1101]
    big = encode_alert(sample | {"cutoutDifference": b"x" * 1_200_000}, 1101)
    huge = encode_alert(sample | {"cutoutDifference": b"x" * 2_500_000}, 1101)
    small = encode_alert(sample, 1101)
    settings = make_settings(max_message_bytes=2_000_000)
    ensure_topics({"bootstrap.servers": kafka.bootstrap}, {settings.input_topic: 1})
    producer = Producer({"bootstrap.servers": kafka.bootstrap, "message.max.bytes": 4_000_000})
    for value in (big, huge, small):
        producer.produce(settings.input_topic, value)
    assert producer.flush(30) == 0
    with service(settings) as svc:
        dead = drain(kafka.bootstrap, settings.dlq_topic, 1, timeout_s=60)
        enriched = drain(kafka.bootstrap, settings.enriched_topic, 2, timeout_s=60)
        m = svc.metrics
    appended = [len(e.value()) - len(v) for e, v in zip(enriched, (big, small))]
    assert appended[0] == appended[1] > 0  # the 1.2 MB alert came through whole, plus the same fields
    headers = dict(dead[0].headers())
    assert headers["alertfeat.error.class"] == b"too_large" and dead[0].value() in (b"", None)
    assert int(headers["alertfeat.payload.omitted"]) == len(huge) and headers["alertfeat.source.offset"] == b"1"
    assert m.total(m.consumed) == 3 == m.total(m.enriched) + m.total(m.dead_lettered)
    replayed = replay_dead_letters(settings, idle_timeout_s=5)
    assert replayed.resubmitted == {} and replayed.skipped == {"payload_omitted": 1}
