"""Dead letters: what the worker writes for a message it cannot enrich, and `alertfeat dlq replay`,
which sends dead-lettered alerts back to the input topic after a fix.

Progress is committed under its own consumer group, so a second run does not resubmit what the
first one did. Re-submitted alerts go through the service like any other (and are counted as
consumed again: the accounting stays consumed = enriched + dead_lettered).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaError, Message

from .config import Settings
from .kafka_io import Headers, OutputProducer, next_offsets

JOIN_ALLOWANCE_S = 30.0
REASON_HEADER = "alertfeat.error.class"
# On a dead letter whose payload was left out (its size in bytes); the original stays at the
# alertfeat.source.{topic,partition,offset} of the input topic.
PAYLOAD_OMITTED_HEADER = "alertfeat.payload.omitted"


def dead_letter(msg: Message, reason: str, detail: str, schema_id: int | None,
                max_payload_bytes: int) -> tuple[bytes, Headers]:
    """(value, headers) of the dead letter for the input message `msg`. A payload over
    `max_payload_bytes` is too big for any output topic: the dead letter points at it instead."""
    headers: Headers = [
        (REASON_HEADER, reason.encode()),
        ("alertfeat.error.message", detail.encode("utf-8", "replace")[:4096]),
        ("alertfeat.source.topic", msg.topic().encode()),
        ("alertfeat.source.partition", str(msg.partition()).encode()),
        ("alertfeat.source.offset", str(msg.offset()).encode()),
    ]
    if schema_id is not None:
        headers.append(("alertfeat.schema.id", str(schema_id).encode()))
    value = msg.value() or b""
    if len(value) > max_payload_bytes:
        headers.append((PAYLOAD_OMITTED_HEADER, str(len(value)).encode()))
        value = b""
    return value, headers


@dataclass
class DlqReplayResult:
    resubmitted: Counter = field(default_factory=Counter)  # by reason
    skipped: Counter = field(default_factory=Counter)  # by reason, not matching the filter


def replay_dead_letters(settings: Settings, reasons: set[str] | None = None, target: str | None = None,
                        max_messages: int | None = None, idle_timeout_s: float = 10.0,
                        group_id: str | None = None) -> DlqReplayResult:
    target = target or settings.input_topic
    consumer = Consumer({
        **settings.kafka_common(),
        "group.id": group_id or f"{settings.group_id}-dlq-replay",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "topic.metadata.refresh.interval.ms": 2000,
        **settings.librdkafka_consumer,
    })
    producer = OutputProducer(settings.kafka_producer())
    result = DlqReplayResult()
    last = [time.monotonic() + JOIN_ALLOWANCE_S]
    consumer.subscribe([settings.dlq_topic], on_assign=lambda *_: last.__setitem__(0, time.monotonic()))
    seen = 0
    try:
        while (max_messages is None or seen < max_messages) and time.monotonic() - last[0] < idle_timeout_s:
            batch = [m for m in consumer.consume(min(500, (max_messages or 500) - seen) or 1, 0.5)
                     if _usable(m)]
            if not batch:
                continue
            last[0] = time.monotonic()
            for m in batch:
                headers = dict(m.headers() or [])
                reason = headers.get(REASON_HEADER, b"unknown").decode()
                if reasons and reason not in reasons:
                    result.skipped[reason] += 1
                    continue
                if PAYLOAD_OMITTED_HEADER in headers:  # nothing to resubmit; the original is on the input topic
                    result.skipped["payload_omitted"] += 1
                    continue
                producer.send(target, m.value() or b"", m.key(), [
                    ("alertfeat.dlq.source", f"{m.topic()}/{m.partition()}/{m.offset()}".encode()),
                    ("alertfeat.dlq.reason", reason.encode()),
                ])
                result.resubmitted[reason] += 1
            producer.wait_delivered(60.0)  # then commit: nothing is lost if we stop in between
            consumer.commit(offsets=next_offsets(batch), asynchronous=False)
            seen += len(batch)
    finally:
        consumer.close()
        producer.close()
    return result


def _usable(m) -> bool:
    if m.error() is None:
        return True
    if m.error().code() in (KafkaError._PARTITION_EOF, KafkaError.UNKNOWN_TOPIC_OR_PART):
        return False
    raise RuntimeError(f"consume error on the dead-letter topic: {m.error()}")
