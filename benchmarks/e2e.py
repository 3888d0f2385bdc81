"""End-to-end throughput: a backlog of simulated alerts through the service, against the anchor of
raw pass-through (consume, produce unchanged, wait for delivery, commit) on the same broker in the
same run."""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from pathlib import Path

from confluent_kafka import Consumer

from alertfeat.app import build_pipeline
from alertfeat.avro_files import framed_messages
from alertfeat.config import Settings, load_settings, with_overrides
from alertfeat.simulate import simulated_file
from alertfeat.kafka_io import OutputProducer, ensure_topics, next_offsets
from alertfeat.localinfra import LocalKafka, LocalRedis
from alertfeat.metrics import Metrics
from alertfeat.replay import replay
from alertfeat.worker import Worker


def _prefill(settings: Settings, path: Path) -> int:
    ensure_topics(settings.kafka_common(), {settings.input_topic: 1})
    return replay([path], settings.kafka_producer(), settings.input_topic)


def passthrough_rate(settings: Settings, n: int) -> float:
    """Alerts/s of the same consume -> produce -> deliver -> commit loop with no processing."""
    consumer = Consumer({**settings.kafka_consumer(), "group.id": f"bench-raw-{uuid.uuid4().hex[:6]}"})
    producer = OutputProducer(settings.kafka_producer())
    out_topic = settings.enriched_topic + ".raw"
    ensure_topics(settings.kafka_common(), {out_topic: 1})
    consumer.subscribe([settings.input_topic])
    done, start = 0, None
    while done < n:
        msgs = [m for m in consumer.consume(settings.batch_size, 1.0) if m.error() is None]
        if not msgs:
            continue
        start = start or time.perf_counter()
        for m in msgs:
            producer.send(out_topic, m.value(), m.key())
        producer.wait_delivered(60)
        consumer.commit(offsets=next_offsets(msgs), asynchronous=False)
        done += len(msgs)
    elapsed = time.perf_counter() - start
    consumer.close()
    producer.close()
    return n / elapsed


def service_rate(settings: Settings, n: int) -> tuple[float, dict[str, float]]:
    metrics = Metrics()
    stop = threading.Event()
    worker = Worker(settings, build_pipeline(settings), metrics, stop)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    while metrics.total(metrics.consumed) < n:
        time.sleep(0.05)
        if not thread.is_alive():
            raise RuntimeError("worker stopped early")
    stop.set()
    thread.join(60)
    elapsed = worker.last_commit_at - worker.first_batch_at
    stages = {}
    for metric in metrics.stage_total.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                stages[sample.labels["stage"]] = 1e6 * sample.value / n
    return n / elapsed, stages


def run(n_alerts: int = 10_000, n_objects: int = 2_000, batch_size: int = 1000) -> dict:
    base = load_settings(batch_size=batch_size)
    with contextlib.ExitStack() as stack:
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or stack.enter_context(LocalKafka()).bootstrap
        redis_url = os.environ.get("REDIS_URL") or stack.enter_context(LocalRedis()).url
        suffix = uuid.uuid4().hex[:6]
        settings = with_overrides(
            base, kafka_bootstrap_servers=bootstrap, redis_url=redis_url, group_id=f"bench-{suffix}",
            input_topic=f"bench-in-{suffix}", enriched_topic=f"bench-out-{suffix}", metrics_port=0,
            redis_key_prefix=f"bench{suffix}:",
            librdkafka_consumer={"session.timeout.ms": 6000},
        )
        path = simulated_file(settings.data_dir, n_alerts, n_objects)
        sent = _prefill(settings, path)
        size = sum(len(m) for m in framed_messages([path])) / sent
        raw = passthrough_rate(settings, sent)
        ours, stages = service_rate(settings, sent)
    return {
        "alerts": sent, "mean_message_bytes": round(size), "batch_size": batch_size,
        "passthrough_alerts_per_s": round(raw, 1), "service_alerts_per_s": round(ours, 1),
        "service_over_passthrough": round(ours / raw, 4),
        "stage_us_per_alert": {k: round(v, 1) for k, v in stages.items()},
    }
