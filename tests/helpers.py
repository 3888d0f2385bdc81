"""Shared test helpers: canned alerts, producing to and draining topics."""

from __future__ import annotations

import io
import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable
from functools import cache
from pathlib import Path

import fastavro
from confluent_kafka import Consumer, KafkaError, Message, Producer

from alertfeat.kafka_io import ensure_topics
from alertfeat.schema_store import SchemaStore, bundled_versions
from alertfeat.simulate import write_simulated_file
from alertfeat.wire import frame


@cache
def sample_alerts() -> dict[int, dict]:
    """The sample alert lsst-alert-packet ships with each schema version, by wire id."""
    out = {}
    for schema_id, avsc in bundled_versions().items():
        with open(avsc.parent / "sample_data" / "fakeAlert.avro", "rb") as fh:
            out[schema_id] = next(iter(fastavro.reader(fh)))
    return out


def encode_alert(record: dict, schema_id: int) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, SchemaStore().get(schema_id).parsed, record)
    return frame(schema_id, buf.getvalue())


def write_simulated(path: Path, n_alerts: int, n_objects: int, seed: int = 0, schema_id: int = 1101,
                    stars=None, mean_epochs: float = 80.0) -> Path:
    return write_simulated_file(path, n_alerts, n_objects, schema_id, seed, stars, mean_epochs)


def produce_all(bootstrap: str, topic: str, values: Iterable[bytes], partitions: int = 1) -> int:
    ensure_topics({"bootstrap.servers": bootstrap}, {topic: partitions})
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    n = 0
    for v in values:
        while True:
            try:
                producer.produce(topic, v)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
        n += 1
    assert producer.flush(30) == 0
    return n


def drain(bootstrap: str, topic: str, expected: int, timeout_s: float = 60.0, settle_s: float = 1.0,
          isolation: str = "read_uncommitted") -> list[Message]:
    """Every message of `topic` from the beginning: waits for `expected`, then `settle_s` more for extras."""
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": f"drain-{uuid.uuid4().hex[:8]}",
        "auto.offset.reset": "earliest", "enable.auto.commit": False,
        "session.timeout.ms": 6000, "isolation.level": isolation,
        "topic.metadata.refresh.interval.ms": 1000,
    })
    consumer.subscribe([topic])
    out: list[Message] = []
    deadline = time.monotonic() + timeout_s
    settle_until = None
    try:
        while time.monotonic() < deadline:
            if len(out) >= expected and settle_until is None:
                settle_until = time.monotonic() + settle_s
            if settle_until is not None and time.monotonic() > settle_until:
                break
            for m in consumer.consume(1000, 0.2):
                if m.error() is None:
                    out.append(m)
                elif m.error().code() not in (KafkaError._PARTITION_EOF, KafkaError.UNKNOWN_TOPIC_OR_PART):
                    raise RuntimeError(m.error())
    finally:
        consumer.close()
    return out


def produce_at_rate(bootstrap: str, topic: str, messages: list[bytes], rate: float, **config) -> None:
    """`config`: more producer settings (e.g. idempotence, so that retries across a broker fault
    cannot duplicate the input)."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, **config})
    start = time.monotonic()
    for k, m in enumerate(messages):
        producer.produce(topic, m)
        producer.poll(0)
        ahead = k / rate - (time.monotonic() - start)
        if ahead > 0:
            time.sleep(ahead)
    assert producer.flush(30) == 0


def readyz(port: int) -> tuple[int, list[str]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as reply:
            return reply.status, json.loads(reply.read())["reasons"]
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())["reasons"]
    except (urllib.error.URLError, ConnectionError):
        return 0, ["endpoint not up"]
