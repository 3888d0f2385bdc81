"""Thin typed wrappers around confluent_kafka. No network calls in constructors."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from .errors import DeliveryError, KafkaUnavailable, NotAuthorized
from .repeat_log import RepeatLimiter

log = logging.getLogger(__name__)
Headers = list[tuple[str, bytes]]
AUTHORIZATION_ERRORS = {KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.CLUSTER_AUTHORIZATION_FAILED,
                        KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, KafkaError.GROUP_AUTHORIZATION_FAILED}


def not_authorized_message(error: KafkaError, topics: Iterable[str]) -> str:
    where = ", ".join(sorted(topics)) or "the output topics"
    return f"Kafka refuses the service's principal ({error.name()}) on {where}: grant it WRITE and DESCRIBE there"


class ClientLog:
    """Where librdkafka's log lines and error callbacks go: our logger, one line per cause per
    interval. Give every client `config()`; the same failure seen by the consumer, the producer
    and the admin client is one cause."""

    def __init__(self, interval_s: float):
        self.limiter = RepeatLimiter(logging.getLogger("alertfeat.kafka"), interval_s)

    @staticmethod
    def cause(text: str) -> str:
        # "[thrd:...]: host:1/bootstrap: Connect ... (after 0ms ...)" -> same cause at every attempt
        return re.sub(r"\d+", "#", re.sub(r"^\[thrd:[^\]]*\]: ", "", text))

    def log(self, level: int, fmt: str, facility: str, client: str, text: str) -> None:
        """The `logger` interface confluent_kafka calls (a logging.Logger's `log`)."""
        self.limiter.log(level, self.cause(text), "librdkafka %s: %s", facility, text)

    def error(self, error: KafkaError) -> None:
        self.limiter.log(logging.WARNING, self.cause(error.str()), "Kafka client error: %s", error.str())

    def config(self) -> dict:
        return {"logger": self, "error_cb": self.error}


def check_client_config(kind: str, config: dict, suspects: dict) -> str | None:
    """librdkafka's objection to `config` for a "consumer" or "producer", or None.

    Builds the client with no brokers (so nothing connects) and closes it again; `suspects` are
    the keys to blame, tried one by one to name the culprit. The value is never echoed: it may be
    a secret.
    """
    def objection(cfg: dict) -> str | None:
        cfg = {k: v for k, v in cfg.items() if k != "bootstrap.servers"}
        cfg["log_level"] = 0  # no "no bootstrap.servers" warning on stderr
        try:
            client = Consumer(cfg) if kind == "consumer" else Producer(cfg)
        except (KafkaException, ValueError, TypeError) as exc:
            error = exc.args[0]
            return error.str() if isinstance(error, KafkaError) else str(error)
        client.close() if kind == "consumer" else client.flush(0)
        return None

    problem = objection(config)
    if problem is None:
        return None
    base = {k: v for k, v in config.items() if k not in suspects}
    for key, value in suspects.items():
        if objection({**base, key: value}) is not None:
            return f"{key!r}: {problem}"
    return problem


def admin_config(config: dict) -> dict:
    """The client-wide part of a consumer or producer config, for an AdminClient."""
    return {k: v for k, v in config.items() if not k.startswith(("group.", "enable.auto"))}


def ensure_topics(config: dict, partitions: dict[str, int], timeout_s: float = 30.0,
                  client_log: ClientLog | None = None) -> None:
    """Create the topics that do not exist yet; existing ones are left as they are.

    Fails with the client's own reason (e.g. an authentication or TLS error), not just a timeout.
    `client_log` takes librdkafka's log lines (otherwise they go to stderr).
    """
    errors: list[KafkaError] = []
    logger = {"logger": client_log} if client_log is not None else {}
    admin = AdminClient({**admin_config(config), **logger, "error_cb": errors.append})
    try:
        existing = admin.list_topics(timeout=timeout_s).topics
    except KafkaException as exc:
        admin.poll(0.5)  # delivers the queued client errors (TLS, SASL, ...) to error_cb
        # The same failure at every reconnect attempt differs only in its timings: name it once.
        reasons = "; ".join(sorted({ClientLog.cause(e.str()): e.str() for e in errors}.values())) or str(exc.args[0])
        raise KafkaUnavailable(f"cannot reach Kafka at {config.get('bootstrap.servers')}: {reasons}") from exc
    missing = [NewTopic(t, num_partitions=n, replication_factor=-1) for t, n in partitions.items() if t not in existing]
    if not missing:
        return
    for topic, future in admin.create_topics(missing, operation_timeout=timeout_s).items():
        try:
            future.result(timeout=timeout_s)
            log.info("created topic %s", topic)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise


def next_offsets(messages: Iterable[Message]) -> list[TopicPartition]:
    """The offsets to commit after `messages`: last offset + 1 per partition."""
    last: dict[tuple[str, int], int] = {}
    for m in messages:
        key = (m.topic(), m.partition())
        last[key] = max(last.get(key, -1), m.offset())
    return [TopicPartition(t, p, o + 1) for (t, p), o in last.items()]


class OutputProducer:
    """A producer that tracks delivery of everything sent since the last `wait_delivered`."""

    def __init__(self, config: dict):
        self._producer = Producer(config)
        self._failures: list[str] = []
        self._denied: dict[str, KafkaError] = {}  # topic -> authorization error

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self._failures.append(f"{msg.topic()}: {err}")
            if err.code() in AUTHORIZATION_ERRORS:
                self._denied[msg.topic()] = err

    def send(self, topic: str, value: bytes, key: bytes | None = None, headers: Headers | None = None) -> None:
        while True:
            try:
                self._producer.produce(topic, value, key, headers=headers, on_delivery=self._on_delivery)
                return
            except BufferError:
                # Local queue full: serve delivery reports until there is room (bounded memory).
                self._producer.poll(0.05)

    def wait_delivered(self, timeout_s: float) -> None:
        """Block until every sent message is acknowledged; DeliveryError otherwise."""
        remaining = self._producer.flush(timeout_s)
        failures, self._failures = self._failures, []
        denied, self._denied = self._denied, {}
        if denied:
            raise NotAuthorized(not_authorized_message(next(iter(denied.values())), denied))
        if remaining or failures:
            raise DeliveryError(f"{remaining} message(s) undelivered after {timeout_s}s; failures: {failures[:5]}")

    def close(self, timeout_s: float = 10.0) -> None:
        self._producer.flush(timeout_s)
        self._producer.close()

    @property
    def raw(self) -> Producer:
        return self._producer
