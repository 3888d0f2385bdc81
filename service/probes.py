"""Readiness from probes: Redis, the Kafka broker and the input topic, checked on a timer.

Batches used to set readiness as a side effect, so /readyz was only as fresh as the last batch:
it missed an outage while idle, stayed unready after a recovery without traffic, and flapped as
the history store's retry pause came and went. Here a thread probes every
`readiness_probe_interval_s`, whatever the consumer does, and a state changes only after
`readiness_failures` consecutive failures (to unready) or `readiness_successes` consecutive
successes (to ready again), so one slow reply does not take the pod out of service.
"""

from __future__ import annotations

import logging
import threading

import redis
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException

from .config import Settings
from .health import BROKER_DOWN, NOT_CONFIGURED, OK, PROBING, REDIS_DOWN, TOPIC_MISSING, Health
from .kafka_io import ClientLog, admin_config

log = logging.getLogger(__name__)


class Hysteresis:
    """A dependency's state: OK, or the latest failure code. The first probe sets it directly;
    after that, leaving OK takes `failures` bad probes in a row and returning takes `successes`
    good ones. A change between two failure kinds is immediate (the reason must stay true)."""

    def __init__(self, failures: int, successes: int):
        self.failures, self.successes = failures, successes
        self.state: int | None = None
        self._streak = 0

    def update(self, observed: int) -> int:
        if self.state is None or (observed != OK and self.state != OK):
            self.state, self._streak = observed, 0
        elif (observed == OK) == (self.state == OK):
            self._streak = 0
        else:
            self._streak += 1
            if self._streak >= (self.successes if observed == OK else self.failures):
                self.state, self._streak = observed, 0
        return self.state


class DependencyProbe:
    """Probes on a daemon thread and writes the settled states into `health`."""

    def __init__(self, settings: Settings, health: Health, client_log: ClientLog):
        self.settings = settings
        self.health = health
        self.interval_s = settings.readiness_probe_interval_s
        self.timeout_s = max(1.0, min(5.0, 2 * self.interval_s))
        self._admin = AdminClient({**admin_config(settings.kafka_common()), **client_log.config()})
        self._redis: redis.Redis | RedisCluster | None = None
        self._states = {"kafka": Hysteresis(settings.readiness_failures, settings.readiness_successes),
                        "redis": Hysteresis(settings.readiness_failures, settings.readiness_successes)}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dependency-probe", daemon=True)
        if settings.redis_url is None:
            health.redis = NOT_CONFIGURED

    def start(self) -> DependencyProbe:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(self.timeout_s + self.settings.redis_timeout_s + 1)

    def _run(self) -> None:
        while True:
            self.probe_once()
            if self._stop.wait(self.interval_s):
                return

    def probe_once(self) -> None:
        self._settle("kafka", self.probe_kafka())
        if self.settings.redis_url is not None:
            self._settle("redis", self.probe_redis())

    def _settle(self, name: str, observed: int) -> None:
        before = getattr(self.health, name)
        after = self._states[name].update(observed)
        setattr(self.health, name, after)
        if after != before and not (before == PROBING and after == OK):  # the first OK is not news
            if after == OK:
                log.info("%s: ready again", name)
            else:
                log.warning("not ready: %s", ", ".join(self.health.ready()[1]))

    def probe_kafka(self) -> int:
        try:
            topics = self._admin.list_topics(timeout=self.timeout_s).topics
        except KafkaException:
            return BROKER_DOWN
        finally:
            self._admin.poll(0)  # serve queued client log lines and errors
        topic = topics.get(self.settings.input_topic)
        return OK if topic is not None and topic.error is None else TOPIC_MISSING

    def probe_redis(self) -> int:
        s = self.settings
        try:
            if self._redis is None:  # a cluster client talks to the cluster when it is built
                url, timeout = s.redis_url.get_secret_value(), s.redis_timeout_s
                client_type = RedisCluster if s.redis_cluster else redis.Redis
                self._redis = client_type.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
            return OK if self._redis.ping() else REDIS_DOWN
        except (redis.RedisError, RedisClusterException, OSError):
            if s.redis_cluster:
                self._redis = None  # rebuild: the slot map may have changed
            return REDIS_DOWN
