from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import hypothesis  # noqa: F401  (imported early: a late import inside pytest's summary hook has crashed CPython 3.11's AST rewriter)
import pytest
import redis as redis_lib

from alertfeat.config import Settings, load_settings
from alertfeat.metrics import Metrics
from tests.infra import KafkaEndpoint, RedisEndpoint, kafka_choice, kafka_endpoint, redis_endpoint


def pytest_report_header(config) -> str:
    kind, why = kafka_choice()
    return f"kafka broker: {kind} ({why})"


@pytest.fixture(scope="session")
def kafka() -> Iterator[KafkaEndpoint]:
    with kafka_endpoint() as endpoint:
        yield endpoint


@pytest.fixture
def apache_kafka(kafka: KafkaEndpoint) -> KafkaEndpoint:
    """The session's broker, for tests that need Apache Kafka's semantics (a log on disk,
    transactions hidden from read_committed readers, SCRAM users, ACLs)."""
    if kafka.kind != "apache-kafka":
        pytest.skip(f"needs Apache Kafka; the session runs on {kafka.kind} ({kafka_choice()[1]})")
    return kafka


@pytest.fixture(scope="session")
def redis_endpoint_() -> Iterator[RedisEndpoint]:
    with redis_endpoint() as endpoint:
        yield endpoint


@pytest.fixture
def redis_url(redis_endpoint_: RedisEndpoint) -> str:
    return redis_endpoint_.url


@pytest.fixture
def key_prefix(redis_url: str) -> Iterator[str]:
    """A unique Redis key prefix; the keys are deleted after the test."""
    prefix = f"t{uuid.uuid4().hex[:10]}:"
    yield prefix
    client = redis_lib.Redis.from_url(redis_url)
    keys = list(client.scan_iter(f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """One data directory per session: the default catalogs are imported into it once."""
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="session")
def catalogs(data_dir: Path):
    """The two real default catalogs (Gaia DR3 bright stars, Hipparcos 2) with default settings."""
    from alertfeat.xmatch import CatalogSet

    return CatalogSet.from_settings(load_settings(data_dir=data_dir))


@pytest.fixture
def make_settings(kafka: KafkaEndpoint, redis_url: str, key_prefix: str, data_dir: Path) -> Callable[..., Settings]:
    """Settings on unique topics, group and key prefix, with fast group joins."""
    suffix = uuid.uuid4().hex[:8]

    def make(**overrides) -> Settings:
        values = dict(
            kafka_bootstrap_servers=kafka.bootstrap,
            group_id=f"g-{suffix}",
            input_topic=f"alerts-{suffix}",
            enriched_topic=f"enriched-{suffix}",
            xmatch_topic=f"xmatch-{suffix}",
            dlq_topic=f"dlq-{suffix}",
            redis_url=redis_url,
            redis_key_prefix=key_prefix,
            metrics_port=0,
            batch_timeout_ms=50,
            data_dir=data_dir,
            librdkafka_consumer={"session.timeout.ms": 6000, "heartbeat.interval.ms": 500},
        )
        values.update(overrides)
        return load_settings(**values)

    return make


class RunningService:
    """The service's worker on a background thread, stopped (batch finished) at teardown."""

    def __init__(self, settings: Settings):
        from alertfeat.app import build_pipeline
        from alertfeat.worker import Worker

        self.settings = settings
        self.metrics = Metrics()
        self.stop = threading.Event()
        self.worker = Worker(settings, build_pipeline(settings), self.metrics, self.stop)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.worker.run()
        except BaseException as exc:  # surfaced by the test through .error
            self.error = exc

    def __enter__(self) -> RunningService:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(60)
        assert not self.thread.is_alive(), "worker did not stop"
        if self.error is not None:
            raise self.error


@pytest.fixture
def service() -> Callable[[Settings], RunningService]:
    return RunningService
