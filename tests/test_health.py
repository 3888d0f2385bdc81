"""/readyz tells the truth: dependencies probed on a timer, with hysteresis, each reason named.

Every transition is driven by a real fault: redis-server stopped and started again, the input
topic missing and then created, the broker frozen (SIGSTOP) and resumed. The service runs as a
real `alertfeat run` process; /readyz is sampled over HTTP.
"""

from __future__ import annotations

import threading
import time

import psutil
import pytest

from alertfeat.avro_files import framed_messages
from alertfeat.health import BROKER_DOWN, OK, REDIS_DOWN, TOPIC_MISSING
from alertfeat.kafka_io import ensure_topics
from alertfeat.localinfra import LocalRedis, free_port
from alertfeat.probes import Hysteresis
from tests.helpers import produce_all, produce_at_rate, readyz, write_simulated
from tests.service_process import ServiceProcess

INTERVAL_S, FAILURES, SUCCESSES = 0.5, 3, 2


def wait_for(port: int, code: int, reason: str | None, svc: ServiceProcess, timeout_s: float) -> float:
    """Seconds until /readyz answers `code` (with `reason` among its reasons)."""
    t0 = time.monotonic()
    while True:
        got, reasons = readyz(port)
        if got == code and (reason is None or reason in reasons):
            return time.monotonic() - t0
        assert svc.alive(), svc.log()[-3000:]
        assert time.monotonic() - t0 < timeout_s, f"still {got} {reasons} after {timeout_s} s"
        time.sleep(0.05)


def sample(port: int, seconds: float) -> list[tuple[int, list[str]]]:
    out, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        out.append(readyz(port))
        time.sleep(0.1)
    return out


def settle_limit(count: int) -> float:
    # `count` probes in a row, each up to one interval apart, plus HTTP and process scheduling slack.
    return (count + 1) * INTERVAL_S + 3.0


def test_hysteresis_needs_consecutive_results():
    h = Hysteresis(failures=3, successes=2)
    assert h.update(OK) == OK  # the first probe sets the state
    assert [h.update(s) for s in (REDIS_DOWN, REDIS_DOWN, OK, REDIS_DOWN, REDIS_DOWN)] == [OK] * 5  # a blip resets
    assert h.update(REDIS_DOWN) == REDIS_DOWN  # the third in a row
    assert [h.update(s) for s in (OK, REDIS_DOWN, OK)] == [REDIS_DOWN] * 3
    assert h.update(OK) == OK
    h = Hysteresis(failures=1, successes=1)
    assert [h.update(s) for s in (BROKER_DOWN, TOPIC_MISSING, OK)] == [BROKER_DOWN, TOPIC_MISSING, OK]


def _settings(make_settings, **overrides):
    return make_settings(metrics_port=free_port(), xmatch_catalogs=[], xmatch_bright_star_catalog=None,
                         readiness_probe_interval_s=INTERVAL_S, readiness_failures=FAILURES,
                         readiness_successes=SUCCESSES, batch_size=50, **overrides)


def test_redis_outage_and_return_while_idle_and_under_traffic(make_settings, kafka, tmp_path):
    # Alerts with a diaObjectId, so that their batches do go to Redis (and fail there).
    alerts = list(framed_messages([write_simulated(tmp_path / "a.avro", 300, 100, seed=3, mean_epochs=4)]))
    with LocalRedis() as redis_server:
        settings = _settings(make_settings, redis_url=redis_server.url, metrics_host="127.0.0.1")
        port = settings.metrics_port
        produce_all(kafka.bootstrap, settings.input_topic, alerts[:100])
        with ServiceProcess(settings, tmp_path / "service.log") as svc:
            wait_for(port, 200, None, svc, timeout_s=120)
            listening = {c.laddr.ip for c in psutil.Process(svc.proc.pid).net_connections("tcp")
                         if c.status == psutil.CONN_LISTEN and c.laddr.port == port}
            assert listening == {"127.0.0.1"}  # metrics_host, not every interface
            assert {code for code, _ in sample(port, 3)} == {200}  # idle and healthy: steady

            redis_server.stop()  # idle: no batch will notice
            to_unready = wait_for(port, 503, "Redis unreachable", svc, timeout_s=30)
            assert to_unready <= settle_limit(FAILURES)
            # Idle, then under traffic (batches degrade to alert-only history): never a 200.
            idle = sample(port, 3)
            traffic = threading.Thread(target=produce_at_rate, args=(kafka.bootstrap, settings.input_topic, alerts[100:], 50.0))
            traffic.start()
            busy = sample(port, 5)
            traffic.join()
            assert all(code == 503 and "Redis unreachable" in reasons for code, reasons in idle + busy), idle + busy
            assert not any("Kafka" in r for _, reasons in idle + busy for r in reasons)
            assert "Redis unavailable, using alert-only history" in svc.log()  # the batches did hit the outage

            redis_server.start()  # no traffic needed to notice
            to_ready = wait_for(port, 200, None, svc, timeout_s=30)
            assert to_ready <= settle_limit(SUCCESSES)
            assert {code for code, _ in sample(port, 3)} == {200}
    print(f"\nreadiness: unready {to_unready:.1f} s after Redis stopped ({len(idle + busy)} samples during the "
          f"outage, all 503), ready {to_ready:.1f} s after it returned, with no traffic")
    assert "not ready: Redis unreachable" in svc.log() and "redis: ready again" in svc.log()


def test_missing_topic_then_frozen_broker_each_named(make_settings, kafka, tmp_path):
    if kafka.server is None or not hasattr(kafka.server, "pause"):
        pytest.skip("the broker is not ours to freeze")
    # A consumer of a topic that does not exist yet looks for it at each metadata refresh.
    settings = _settings(make_settings, librdkafka_consumer={"session.timeout.ms": 6000, "heartbeat.interval.ms": 500,
                                                             "topic.metadata.refresh.interval.ms": 1000})
    port = settings.metrics_port
    with ServiceProcess(settings, tmp_path / "service.log") as svc:
        missing = f"input topic {settings.input_topic} missing"
        wait_for(port, 503, missing, svc, timeout_s=120)
        during = sample(port, 2)
        assert all(missing in reasons and "Kafka broker unreachable" not in reasons for _, reasons in during), during

        ensure_topics({"bootstrap.servers": kafka.bootstrap}, {settings.input_topic: 1})
        wait_for(port, 200, None, svc, timeout_s=60)

        kafka.server.pause()
        try:
            to_unready = wait_for(port, 503, "Kafka broker unreachable", svc, timeout_s=60)
            frozen = sample(port, 3)
        finally:
            kafka.server.resume()
        assert all(code == 503 and "Kafka broker unreachable" in reasons and missing not in reasons
                   for code, reasons in frozen), frozen
        to_ready = wait_for(port, 200, None, svc, timeout_s=60)
    print(f"\nreadiness: broker frozen -> unready in {to_unready:.1f} s, resumed -> ready in {to_ready:.1f} s")
    # The probe waits up to its timeout for a frozen broker, then counts FAILURES of those.
    assert to_unready <= FAILURES * (max(1.0, 2 * INTERVAL_S) + INTERVAL_S) + 3.0
