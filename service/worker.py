"""The consumer loop: batching, the dead-letter policy and the commit order."""

from __future__ import annotations

import logging
import threading
import time

from confluent_kafka import Consumer, KafkaError, Message

from .config import Settings
from .kafka_io import Headers, OutputProducer, ensure_topics, next_offsets
from .metrics import Metrics
from .pipeline import BatchResult, Pipeline

log = logging.getLogger(__name__)

DELIVERY_TIMEOUT_S = 60.0


def dlq_headers(msg: Message, reason: str, detail: str, schema_id: int | None) -> Headers:
    headers: Headers = [
        ("alertfeat.error.class", reason.encode()),
        ("alertfeat.error.message", detail.encode("utf-8", "replace")[:4096]),
        ("alertfeat.source.topic", msg.topic().encode()),
        ("alertfeat.source.partition", str(msg.partition()).encode()),
        ("alertfeat.source.offset", str(msg.offset()).encode()),
    ]
    if schema_id is not None:
        headers.append(("alertfeat.schema.id", str(schema_id).encode()))
    return headers


class Worker:
    """One consumer in the group. Call `run()`; set `stop` to finish the current batch and leave."""

    def __init__(self, settings: Settings, pipeline: Pipeline, metrics: Metrics, stop: threading.Event):
        self.settings = settings
        self.pipeline = pipeline
        self.metrics = metrics
        self.stop = stop
        self.producer = OutputProducer(settings.kafka_producer())
        self.consumer: Consumer | None = None
        # Wall-clock span of the work done, for benchmarks: first batch received, last batch committed.
        self.first_batch_at: float | None = None
        self.last_commit_at: float | None = None

    def run(self) -> None:
        s = self.settings
        if s.create_topics:
            ensure_topics(s.kafka_common(), {t: s.output_partitions for t in (s.enriched_topic, s.xmatch_topic, s.dlq_topic)})
        self.consumer = Consumer(s.kafka_consumer())
        self.consumer.subscribe([s.input_topic])
        log.info("consuming %s as group %s", s.input_topic, s.group_id)
        try:
            while not self.stop.is_set():
                messages = self.consumer.consume(s.batch_size, s.batch_timeout_ms / 1000)
                if messages:
                    self.handle(messages)
        finally:
            self.consumer.close()  # leaves the group at once, so partitions move without waiting for a timeout
            self.producer.close()
            log.info("consumer and producer closed")

    def handle(self, messages: list[Message]) -> None:
        """Process one batch. The order is what makes delivery at-least-once:

        1. process every message (decode, history, features, encode);
        2. produce enriched alerts and dead letters;
        3. wait until Kafka acknowledged all of them (DeliveryError otherwise: nothing is committed,
           and the batch is consumed again after a restart or rebalance);
        4. commit the input offsets.
        """
        records = []
        for m in messages:
            if m.error() is None:
                records.append(m)
            elif m.error().code() != KafkaError._PARTITION_EOF:
                log.warning("consume error on %s[%s]: %s", m.topic(), m.partition(), m.error())
        if not records:
            return
        if self.first_batch_at is None:
            self.first_batch_at = time.perf_counter()
        self.metrics.batch_size.observe(len(records))
        result = self.pipeline.process([m.value() or b"" for m in records])
        t0 = time.perf_counter()
        self._produce(records, result)
        self.producer.wait_delivered(DELIVERY_TIMEOUT_S)
        delivered_at = time.time()
        t1 = time.perf_counter()
        self.consumer.commit(offsets=next_offsets(records), asynchronous=False)
        t2 = self.last_commit_at = time.perf_counter()
        result.seconds.update(produce=t1 - t0, commit=t2 - t1)
        self._account(records, result, delivered_at)

    def _produce(self, records: list[Message], result: BatchResult) -> None:
        s = self.settings
        decoded = result.decoded
        for i, payload in zip(result.enriched_rows.tolist(), result.enriched):
            m = records[i]
            key = str(int(decoded.object_id[i] if decoded.has_object[i] else decoded.alert_id[i])).encode()
            ts_type, ts = m.timestamp()
            headers = [("alertfeat.input.timestamp", str(ts).encode())] if ts_type else None
            self.producer.send(s.enriched_topic, payload, key, headers)
        for i in result.dead_rows.tolist():
            m = records[i]
            reason, detail = decoded.error_reason[i], decoded.error_detail[i]
            sid = int(decoded.schema_id[i]) or None
            self.producer.send(s.dlq_topic, m.value() or b"", m.key(), dlq_headers(m, reason, detail, sid))

    def _account(self, records: list[Message], result: BatchResult, delivered_at: float) -> None:
        m = self.metrics
        m.consumed.inc(len(records))
        m.enriched.inc(len(result.enriched))
        for i in result.dead_rows.tolist():
            m.dead_lettered.labels(result.decoded.error_reason[i]).inc()
        m.observe_stages(result.seconds)
        for i in result.enriched_rows.tolist():
            ts_type, ts = records[i].timestamp()
            if ts_type:
                m.latency.observe(max(0.0, delivered_at - ts / 1000))
