"""Exactly-once, strictly, on Apache Kafka: the service is killed with SIGKILL three times while a
transaction of its own is open, during a live 20,000-alert replay. A read_committed reader then
sees every input diaSourceId exactly once across enriched + dead letters, and once in xmatch.

The control run does the same in at-least-once mode, killing it after outputs were delivered and
before the input offsets were committed: it must show duplicates, so the test can tell the two
modes apart. Each kill moment is checked on the broker after the process is dead.
"""

from __future__ import annotations

import io
import random
import signal
import threading
import time
from dataclasses import dataclass

import fastavro
import numpy as np
import pytest

from alertfeat.avro_files import framed_messages
from alertfeat.benchmarks._service import metric
from alertfeat.kafka_io import ensure_topics
from alertfeat.localinfra import free_port
from alertfeat.schema_store import SchemaStore
from alertfeat.wire import schema_id_of
from tests.helpers import produce_at_rate, write_simulated
from tests.infra import kafka_choice
from tests.kafka_probe import IDEMPOTENT, BrokerProbe, dia_source_id, id_counts, lost_and_duplicated
from tests.service_process import ServiceProcess

KILLS = 3

# Skipped before the module's fixtures (20,000 simulated alerts) are built for nothing.
pytestmark = pytest.mark.skipif(kafka_choice()[0] != "apache-kafka", reason="needs Apache Kafka (java and mvn)")


@dataclass
class Replay:
    messages: list[bytes]
    cap: int  # max_sources_per_alert: the alerts over it are dead-lettered
    good: set[int]  # diaSourceIds to be enriched
    dead: set[int]  # diaSourceIds to be dead-lettered


def _sources(message: bytes, schemas: SchemaStore) -> int:
    """diaSource + prvDiaSources, decoded by fastavro (not by the service's decoders)."""
    alert = fastavro.schemaless_reader(io.BytesIO(message[5:]), schemas.get(schema_id_of(message)).parsed)
    return 1 + len(alert["prvDiaSources"] or [])


@pytest.fixture(scope="module")
def replay(tmp_path_factory) -> Replay:
    path = write_simulated(tmp_path_factory.mktemp("eos") / "a.avro", 20_000, 8_000, seed=11, mean_epochs=4)
    messages = list(framed_messages([path]))
    schemas = SchemaStore()
    sources = np.array([_sources(m, schemas) for m in messages])
    cap = int(np.percentile(sources, 95))  # a few percent of the alerts become dead letters
    ids = [dia_source_id(m) for m in messages]
    good = {i for i, n in zip(ids, sources) if n <= cap}
    dead = {i for i, n in zip(ids, sources) if n > cap}
    assert len(good) + len(dead) == len(messages) and 0 < len(dead) < len(messages) // 5
    return Replay(messages, cap, good, dead)


def _in_window(probe: BrokerProbe, settings, exactly_once: bool, surplus_before: int) -> bool:
    """Exactly-once: the service's transaction is open (its records are past the last stable
    offset). At-least-once: outputs are delivered that the input offsets do not cover yet."""
    if exactly_once:
        return probe.open_transaction(settings.enriched_topic)
    return _surplus(probe, settings) > surplus_before


def _surplus(probe: BrokerProbe, settings) -> int:
    """Outputs written minus input offsets committed (at-least-once: no transaction markers)."""
    return (probe.end(settings.enriched_topic) + probe.end(settings.dlq_topic)
            - probe.group_committed(settings.input_topic))


def _wait_metric(port: int, name: str, at_least: float, svc: ServiceProcess, timeout_s: float = 120) -> float:
    deadline = time.monotonic() + timeout_s
    while (value := metric(port, name)) < at_least:
        assert svc.alive(), svc.log()[-3000:]
        assert time.monotonic() < deadline, f"{name} stayed below {at_least}"
        time.sleep(0.02)
    return value


def _kill_inside_window(svc: ServiceProcess, in_window, timeout_s: float = 60) -> bool:
    """SIGKILL the service while `in_window()` holds; False if it never held long enough.

    The service is frozen (SIGSTOP) as soon as the window is seen open and killed only if it is
    still open a moment later: a transaction whose commit was already requested gets its markers
    written meanwhile (and an at-least-once offset commit already sent lands), but one left open
    stays open until the restarted service fences it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not in_window():
            assert svc.alive(), svc.log()[-3000:]
            continue
        svc.proc.send_signal(signal.SIGSTOP)
        time.sleep(1.5)
        if in_window():
            svc.kill()
            return True
        svc.proc.send_signal(signal.SIGCONT)
    svc.kill()
    return False


@pytest.mark.slow
@pytest.mark.parametrize("delivery", ["exactly-once", "at-least-once"])
def test_kill_9_inside_three_transactions_of_a_20000_alert_replay(delivery, apache_kafka, make_settings, catalogs,
                                                                  replay, tmp_path):
    exactly_once = delivery == "exactly-once"
    bootstrap = apache_kafka.bootstrap
    settings = make_settings(delivery=delivery, metrics_port=free_port(), batch_size=200,
                             max_sources_per_alert=replay.cap)
    ensure_topics({"bootstrap.servers": bootstrap}, {settings.input_topic: 1})
    # A live replay at 400 alerts/s (~50 s), so that every kill lands mid-stream.
    replayer = threading.Thread(target=produce_at_rate, args=(bootstrap, settings.input_topic, replay.messages, 400.0),
                                kwargs=IDEMPOTENT)
    replayer.start()
    probe = BrokerProbe(bootstrap, settings.group_id)
    rng = random.Random(7)
    kills, recoveries = [], []  # recoveries: restart to first commit, after each kill
    try:
        for attempt in range(4 * KILLS):
            if len(kills) == KILLS:
                break
            surplus_before = 0 if exactly_once else _surplus(probe, settings)
            started = time.monotonic()
            with ServiceProcess(settings, tmp_path / "service.log") as svc:
                _wait_metric(settings.metrics_port, "alertfeat_consumed_total", 1, svc)
                if attempt:
                    recoveries.append(time.monotonic() - started)
                _wait_metric(settings.metrics_port, "alertfeat_consumed_total", rng.randint(200, 1500), svc)
                landed = _kill_inside_window(svc, lambda: _in_window(probe, settings, exactly_once, surplus_before))
                if landed:
                    extra = 0 if exactly_once else _surplus(probe, settings) - surplus_before
                    kills.append((probe.group_committed(settings.input_topic), extra))
        assert len(kills) == KILLS, f"only {len(kills)} kills landed inside a delivery in {attempt + 1} tries"
        replayer.join()
        started = time.monotonic()
        with ServiceProcess(settings, tmp_path / "service.log") as svc:
            _wait_metric(settings.metrics_port, "alertfeat_consumed_total", 1, svc)
            recoveries.append(time.monotonic() - started)
            isolation = "read_committed" if exactly_once else "read_uncommitted"
            enriched = id_counts(bootstrap, settings.enriched_topic, len(replay.good), isolation)
            dead = id_counts(bootstrap, settings.dlq_topic, len(replay.dead), isolation, settle_s=1)
            xmatch = id_counts(bootstrap, settings.xmatch_topic, len(replay.good), isolation, settle_s=1)
            assert svc.alive(), svc.log()[-3000:]
    finally:
        probe.close()
        replayer.join()
    outputs = enriched + dead
    lost, duplicated = lost_and_duplicated(outputs, replay.good | replay.dead)
    xlost, xduplicated = lost_and_duplicated(xmatch, replay.good)
    print(f"\n{delivery} on Apache Kafka: {len(replay.messages)} alerts in, killed inside a delivery with "
          f"{[k for k, _ in kills]} input alerts committed; {sum(enriched.values())} enriched + "
          f"{sum(dead.values())} dead letters seen by a {isolation} reader: lost {lost}, duplicated {duplicated} "
          f"(xmatch: lost {xlost}, duplicated {xduplicated}); first commit {[f'{r:.1f}' for r in recoveries]} s "
          f"after each restart")
    assert set(enriched) <= replay.good and set(dead) <= replay.dead and set(xmatch) <= replay.good
    assert lost == 0 and xlost == 0
    if exactly_once:
        assert duplicated == 0 and xduplicated == 0
    else:
        # Each kill left `extra` outputs delivered past the commit: all of them come again.
        assert duplicated >= sum(extra for _, extra in kills) > 0
