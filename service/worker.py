"""The consumer loop: batching, the dead-letter policy and the commit order."""

from __future__ import annotations

import json
import logging
import threading
import time

import socket

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from .config import Settings
from .dlq import dead_letter
from .errors import NotAuthorized, TransientError
from .health import Health
from .history import HistorySource
from .kafka_io import (AUTHORIZATION_ERRORS, ClientLog, OutputProducer, ensure_topics, next_offsets,
                       not_authorized_message)
from .metrics import Metrics
from .pipeline import BatchResult, Pipeline
from .probes import DependencyProbe

log = logging.getLogger(__name__)

DELIVERY_TIMEOUT_S = 60.0
# (STALE_MEMBER_EPOCH and FENCED_MEMBER_EPOCH are the KIP-848 group protocol's forms.)
_REBALANCE_ERRORS = {KafkaError.UNKNOWN_MEMBER_ID, KafkaError.ILLEGAL_GENERATION, KafkaError.REBALANCE_IN_PROGRESS,
                     KafkaError._ASSIGNMENT_LOST, KafkaError._NO_OFFSET, KafkaError.STALE_MEMBER_EPOCH,
                     KafkaError.FENCED_MEMBER_EPOCH}


def transactional_id(settings: Settings, worker_index: int) -> str:
    """Stable per host and worker, so a restarted worker fences its own zombie."""
    return f"{settings.transactional_id_prefix}-{settings.group_id}-{socket.gethostname()}-{worker_index}"


class Worker:
    """One consumer in the group. Call `run()`; set `stop` to finish the current batch and leave."""

    def __init__(self, settings: Settings, pipeline: Pipeline, metrics: Metrics, stop: threading.Event,
                 worker_index: int = 0, health: Health | None = None):
        self.settings = settings
        self.pipeline = pipeline
        self.metrics = metrics
        self.stop = stop
        self.health = health or Health()
        self.health.input_topic = settings.input_topic
        self.client_log = ClientLog(settings.log_repeat_interval_s)
        self._assigned: set[tuple[str, int]] = set()
        self._backoff_s = 1.0
        self.exactly_once = settings.delivery == "exactly-once"
        producer_config = {**settings.kafka_producer(), **self.client_log.config()}
        if self.exactly_once:
            producer_config["transactional.id"] = transactional_id(settings, worker_index)
        self.producer = OutputProducer(producer_config)
        self.consumer: Consumer | None = None
        # Wall-clock span of the work done, for benchmarks: first batch received, last batch committed.
        self.first_batch_at: float | None = None
        self.last_commit_at: float | None = None

    def run(self) -> None:
        s = self.settings
        probe = DependencyProbe(s, self.health, self.client_log).start()
        try:
            self._consume()
        finally:
            probe.stop()

    def _consume(self) -> None:
        s = self.settings
        if s.create_topics:
            ensure_topics(s.kafka_common(), {t: s.output_partitions for t in (s.enriched_topic, s.xmatch_topic, s.dlq_topic)},
                          client_log=self.client_log)
        if self.exactly_once:
            self.producer.raw.init_transactions(DELIVERY_TIMEOUT_S)
        self.consumer = Consumer({"statistics.interval.ms": 5000, **s.kafka_consumer(), **self.client_log.config(),
                                  "stats_cb": self._on_stats})
        self.consumer.subscribe([s.input_topic], on_assign=self._on_assign, on_revoke=self._on_revoke,
                                on_lost=self._on_revoke)
        log.info("consuming %s as group %s", s.input_topic, s.group_id)
        try:
            while not self.stop.is_set():
                messages = self.consumer.consume(s.batch_size, s.batch_timeout_ms / 1000)
                self.health.last_loop = time.time()
                if messages:
                    self.handle(messages)
        finally:
            self.consumer.close()  # leaves the group at once, so partitions move without waiting for a timeout
            self.producer.close()
            log.info("consumer and producer closed")

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # A set works for both eager (revoke all, assign all) and incremental rebalancing.
        self._assigned |= {(p.topic, p.partition) for p in partitions}
        self.health.assigned_partitions = len(self._assigned)
        log.info("assigned partitions %s", sorted(p.partition for p in partitions))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._assigned -= {(p.topic, p.partition) for p in partitions}
        self.health.assigned_partitions = len(self._assigned)

    def _on_stats(self, stats_json: str) -> None:
        """librdkafka statistics: export the lag of the partitions we own."""
        for topic, t in json.loads(stats_json).get("topics", {}).items():
            for partition, p in t.get("partitions", {}).items():
                lag = p.get("consumer_lag", -1)
                if partition != "-1" and (topic, int(partition)) in self._assigned and lag >= 0:
                    self.metrics.consumer_lag.labels(topic, partition).set(lag)

    def handle(self, messages: list[Message]) -> None:
        """Process one batch. The order is what makes delivery at-least-once:

        1. process every message (decode, history, features, encode);
        2. produce enriched alerts and dead letters;
        3. wait until Kafka acknowledged all of them (DeliveryError otherwise: nothing is committed,
           and the batch is consumed again after a restart or rebalance);
        4. commit the input offsets.
        In exactly-once mode, 2-4 are one Kafka transaction: the outputs and the input offsets
        become visible to read_committed consumers together, or not at all.
        Counters move only after the commit, so consumed = enriched + dead_lettered at every commit.
        """
        records = []
        for m in messages:
            if m.error() is None:
                records.append(m)
            elif m.error().code() != KafkaError._PARTITION_EOF:
                self.client_log.error(m.error())  # e.g. a missing input topic, at every metadata refresh
        if not records:
            return
        if self.first_batch_at is None:
            self.first_batch_at = time.perf_counter()
        self.metrics.batch_size.observe(len(records))
        try:
            result = self.pipeline.process([m.value() or b"" for m in records])
        except TransientError as exc:
            self._retry_later(records, str(exc))
            return
        self._backoff_s = 1.0
        t0 = time.perf_counter()
        if self.exactly_once:
            if not self._publish_transaction(records, result):
                return
            t1 = time.perf_counter()
        else:
            self._produce(records, result)
            try:
                self.producer.wait_delivered(DELIVERY_TIMEOUT_S)
            except NotAuthorized as exc:
                self._retry_later(records, str(exc), logging.ERROR)
                return
            t1 = time.perf_counter()
            self._commit(records)
        delivered_at = time.time()
        t2 = self.last_commit_at = time.perf_counter()
        result.seconds.update(produce=t1 - t0, commit=t2 - t1)
        self._account(records, result, delivered_at)

    def _retry_later(self, records: list[Message], why: str, level: int = logging.WARNING) -> None:
        """Rewind and let the next poll bring the batch back after a backoff: the consumer keeps
        polling (so it stays in the group) while the dependency recovers or an operator acts."""
        log.log(level, "%s; retrying the batch in %.0f s", why, self._backoff_s)
        self._rewind(records)
        self.stop.wait(self._backoff_s)
        self._backoff_s = min(30.0, self._backoff_s * 2)

    def _commit(self, records: list[Message]) -> None:
        try:
            self.consumer.commit(offsets=next_offsets(records), asynchronous=False)
        except KafkaException as exc:
            # Lost the partitions in a rebalance (e.g. after a broker stall): the new owner
            # re-consumes from the last commit. The outputs were delivered: at-least-once.
            if exc.args[0].code() not in _REBALANCE_ERRORS:
                raise
            log.warning("offset commit rejected (%s); the batch will be delivered again", exc.args[0])

    def _publish_transaction(self, records: list[Message], result: BatchResult) -> bool:
        """Produce and commit offsets in one transaction. False if it was aborted and the batch
        rewound (it will be consumed and processed again); fatal errors raise."""
        producer = self.producer.raw
        producer.begin_transaction()
        try:
            self._produce(records, result)
            producer.send_offsets_to_transaction(
                next_offsets(records), self.consumer.consumer_group_metadata(), DELIVERY_TIMEOUT_S)
            producer.commit_transaction(DELIVERY_TIMEOUT_S)
            return True
        except KafkaException as exc:
            error = exc.args[0]
            recoverable = error.txn_requires_abort() or error.retriable()
            if error.fatal() or not recoverable:
                raise
            producer.abort_transaction(DELIVERY_TIMEOUT_S)
            if error.code() in AUTHORIZATION_ERRORS:
                self._retry_later(records, not_authorized_message(error, []), logging.ERROR)
            else:
                log.warning("transaction failed (%s); aborting and reprocessing the batch", error)
                self._rewind(records)
            return False

    def _rewind(self, records: list[Message]) -> None:
        first: dict[tuple[str, int], int] = {}
        for m in records:
            key = (m.topic(), m.partition())
            first[key] = min(first.get(key, m.offset()), m.offset())
        for (topic, partition), offset in first.items():
            self.consumer.seek(TopicPartition(topic, partition, offset))

    def _produce(self, records: list[Message], result: BatchResult) -> None:
        s = self.settings
        decoded = result.decoded
        # Keyed by diaObjectId (else diaSourceId) so one object's outputs stay in order.
        keys = [str(int(o if has else a)).encode() for o, has, a in
                zip(decoded.object_id[result.enriched_rows].tolist(), decoded.has_object[result.enriched_rows].tolist(),
                    decoded.alert_id[result.enriched_rows].tolist())]
        for i, key, payload in zip(result.enriched_rows.tolist(), keys, result.enriched):
            ts_type, ts = records[i].timestamp()
            headers = [("alertfeat.input.timestamp", str(ts).encode())] if ts_type else None
            self.producer.send(s.enriched_topic, payload, key, headers)
        for key, record in zip(keys, result.xmatch_records):
            self.producer.send(s.xmatch_topic, record, key)
        for i in result.dead_rows.tolist():
            m = records[i]
            reason, detail = decoded.error_reason[i], decoded.error_detail[i]
            sid = int(decoded.schema_id[i]) or None
            value, headers = dead_letter(m, reason, detail, sid, s.max_message_bytes)
            self.producer.send(s.dlq_topic, value, m.key(), headers)

    def _account(self, records: list[Message], result: BatchResult, delivered_at: float) -> None:
        m = self.metrics
        m.consumed.inc(len(records))
        m.enriched.inc(len(result.enriched))
        for i in result.dead_rows.tolist():
            m.dead_lettered.labels(result.decoded.error_reason[i]).inc()
        for reason, count in result.excluded.items():
            m.sources_excluded.labels(reason).inc(count)
        d = result.decoded
        bad_epoch = d.ok & ~d.epoch_ok
        if bad_epoch.any():
            m.degraded.labels("epoch_out_of_range").inc(int(bad_epoch.sum()))
        if self.pipeline.history is not None:
            degraded = d.ok & d.has_object & d.epoch_ok & (result.history_source == HistorySource.ALERT)
            if degraded.any():
                m.degraded.labels("redis_unavailable").inc(int(degraded.sum()))
            partial = result.history_source == HistorySource.REDIS_PARTIAL
            if partial.any():
                m.history_partial.inc(int(partial.sum()))
        m.observe_stages(result.seconds)
        for i in result.enriched_rows.tolist():
            ts_type, ts = records[i].timestamp()
            if ts_type:
                m.latency.observe(max(0.0, delivered_at - ts / 1000))
