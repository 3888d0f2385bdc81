"""Broker and group faults on Apache Kafka with a real log on disk.

- one broker killed with SIGKILL mid-stream and restarted on the same log dir: nothing lost;
- a 3-node KRaft cluster (topics at RF 3, min.insync.replicas 2, idempotent acks=all producers)
  losing the leader of the input and output partitions mid-stream: exactly-once mode loses and
  duplicates nothing;
- a consumer group of two service processes, one killed with SIGKILL, then a third joining
  (KIP-848 rebalancing): nothing lost, and no duplicate in exactly-once mode.
"""

from __future__ import annotations

import threading
import time

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from alertfeat.avro_files import framed_messages
from alertfeat.benchmarks._service import metric
from alertfeat.localinfra import free_port
from tests.helpers import produce_at_rate, write_simulated
from tests.infra import kafka_choice
from tests.kafka.broker import KafkaCluster, KafkaNode
from tests.kafka_probe import IDEMPOTENT, dia_source_id, id_counts, lost_and_duplicated
from tests.service_process import ServiceProcess

# Skipped before the module's fixtures (20,000 simulated alerts) are built for nothing.
pytestmark = pytest.mark.skipif(kafka_choice()[0] != "apache-kafka", reason="needs Apache Kafka (java and mvn)")


@pytest.fixture(scope="module")
def alerts(tmp_path_factory) -> list[bytes]:
    path = write_simulated(tmp_path_factory.mktemp("kfaults") / "a.avro", 6000, 2500, seed=12, mean_epochs=4)
    return list(framed_messages([path]))


def _fast(settings_factory, bootstrap: str, **overrides):
    return settings_factory(kafka_bootstrap_servers=bootstrap, metrics_port=free_port(), xmatch_catalogs=[],
                            xmatch_bright_star_catalog=None, batch_size=200, **overrides)


def _wait(predicate, what: str, timeout_s: float, *services: ServiceProcess) -> float:
    """Seconds until `predicate()` holds; every service must stay alive meanwhile."""
    t = time.monotonic()
    while not predicate():
        for svc in services:
            assert svc.alive(), svc.log()[-3000:]
        assert time.monotonic() - t < timeout_s, f"{what}: not within {timeout_s} s"
        time.sleep(0.05)
    return time.monotonic() - t


def _create(bootstrap: str, topics: dict[str, int], replicas: list[int] | None = None,
            config: dict[str, str] | None = None) -> None:
    """Topics with `replicas` as every partition's replica list (its first is the preferred leader)."""
    new = [NewTopic(t, num_partitions=n, replica_assignment=[replicas] * n, config=config or {}) if replicas
           else NewTopic(t, num_partitions=n, replication_factor=1, config=config or {}) for t, n in topics.items()]
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics(new, operation_timeout=30).values():
        future.result(30)


def _fault_mid_stream(settings, bootstrap: str, alerts: list[bytes], tmp_path, fault, isolation: str):
    """Replay `alerts` live at 300/s through the service; once 1500 are committed, call `fault()`.
    Returns (enriched seen by an `isolation` reader, lost, duplicated, seconds from the fault
    until the service commits again)."""
    replayer = threading.Thread(target=produce_at_rate, args=(bootstrap, settings.input_topic, alerts, 300.0),
                                kwargs=IDEMPOTENT)
    replayer.start()
    with ServiceProcess(settings, tmp_path / "service.log") as svc:
        consumed = lambda: metric(settings.metrics_port, "alertfeat_consumed_total")  # noqa: E731
        _wait(lambda: consumed() >= 1500, "progress before the fault", 120, svc)
        at_fault, t = consumed(), time.monotonic()
        fault()
        _wait(lambda: consumed() > at_fault, "progress after the fault", 180, svc)
        recovery_s = time.monotonic() - t
        replayer.join()
        counts = id_counts(bootstrap, settings.enriched_topic, len(alerts), isolation, timeout_s=180, settle_s=3)
        assert svc.alive(), svc.log()[-3000:]
    lost, duplicated = lost_and_duplicated(counts, {dia_source_id(m) for m in alerts})
    return sum(counts.values()), lost, duplicated, recovery_s


@pytest.mark.slow
def test_broker_killed_and_restarted_on_its_log_mid_stream_loses_nothing(apache_kafka, make_settings, alerts,
                                                                         tmp_path):
    restart = []

    def kill_and_restart() -> None:
        broker.kill()
        time.sleep(5)  # the service and the replayer face a dead broker
        restart.append(broker.restart())

    with KafkaNode() as broker:
        settings = _fast(make_settings, broker.bootstrap)
        _create(broker.bootstrap, {settings.input_topic: 1})
        enriched, lost, duplicated, recovery_s = _fault_mid_stream(
            settings, broker.bootstrap, alerts, tmp_path, kill_and_restart, "read_uncommitted")
    print(f"\nbroker kill -9 + restart on its log: {len(alerts)} alerts in, {enriched} enriched, "
          f"lost {lost}, duplicated {duplicated}; broker down 5 s then serving {restart[0]:.1f} s after its "
          f"restart; service committing again {recovery_s:.1f} s after the kill")
    assert lost == 0


@pytest.mark.slow
def test_leader_of_input_and_outputs_killed_in_a_3_node_cluster_exactly_once(apache_kafka, make_settings, alerts,
                                                                            tmp_path):
    with KafkaCluster() as cluster:
        settings = _fast(make_settings, cluster.bootstrap, delivery="exactly-once",
                         librdkafka_producer={"acks": "all", "enable.idempotence": True})
        topics = {t: 1 for t in (settings.input_topic, settings.enriched_topic, settings.xmatch_topic,
                                 settings.dlq_topic)}
        _create(cluster.bootstrap, topics, replicas=[1, 2, 3], config={"min.insync.replicas": "2"})
        assert {cluster.leader(t) for t in topics} == {1}

        def kill_the_leader() -> None:
            cluster.node(1).kill()
            _wait(lambda: cluster.leader(settings.input_topic) in (2, 3), "a new leader", 60)

        enriched, lost, duplicated, recovery_s = _fault_mid_stream(
            settings, cluster.bootstrap, alerts, tmp_path, kill_the_leader, "read_committed")
    print(f"\n3-node cluster, leader of input+outputs killed: {len(alerts)} alerts in, {enriched} "
          f"enriched (read_committed), lost {lost}, duplicated {duplicated}; committing again "
          f"{recovery_s:.1f} s after the kill")
    assert lost == 0 and duplicated == 0


@pytest.mark.slow
@pytest.mark.parametrize("delivery", ["exactly-once", "at-least-once"])
def test_group_member_killed_then_a_third_joins_kip848(delivery, make_settings, apache_kafka, alerts, tmp_path):
    bootstrap = apache_kafka.bootstrap
    base = _fast(make_settings, bootstrap, delivery=delivery, librdkafka_consumer={"group.protocol": "consumer"})
    _create(bootstrap, {base.input_topic: 4})
    # One endpoint and one transactional id per process (on Kubernetes each pod has its own host name).
    members = [base.model_copy(update={"metrics_port": free_port(), "transactional_id_prefix": f"member{k}"})
               for k in range(3)]
    replayer = threading.Thread(target=produce_at_rate, args=(bootstrap, base.input_topic, alerts, 300.0),
                                kwargs=IDEMPOTENT)
    replayer.start()
    consumed = lambda s: metric(s.metrics_port, "alertfeat_consumed_total")  # noqa: E731
    with ServiceProcess(members[0], tmp_path / "m0.log") as a, ServiceProcess(members[1], tmp_path / "m1.log") as b:
        _wait(lambda: consumed(members[0]) > 0 and consumed(members[1]) > 0, "both members working", 120, a, b)
        _wait(lambda: consumed(members[0]) + consumed(members[1]) >= 1500, "progress before the kill", 120, a, b)
        b.kill()
        killed_at = time.monotonic()
        at_kill = consumed(members[0])
        with ServiceProcess(members[2], tmp_path / "m2.log") as c:
            _wait(lambda: consumed(members[2]) > 0, "the third member working", 120, a, c)
            replayer.join()
            isolation = "read_committed" if delivery == "exactly-once" else "read_uncommitted"
            counts = id_counts(bootstrap, base.enriched_topic, len(alerts), isolation, timeout_s=180, settle_s=3)
            took_over_s = time.monotonic() - killed_at
            assert a.alive() and c.alive()
    lost, duplicated = lost_and_duplicated(counts, {dia_source_id(m) for m in alerts})
    print(f"\ngroup (KIP-848, {delivery}), one of two members killed, a third joined: {len(alerts)} alerts in, "
          f"{sum(counts.values())} enriched ({isolation}), lost {lost}, duplicated {duplicated}; "
          f"survivor had committed {at_kill:.0f} at the kill; all drained {took_over_s:.1f} s after it")
    assert lost == 0
    if delivery == "exactly-once":
        assert duplicated == 0
    else:
        # At-least-once redelivers only what was delivered but not committed: the killed member's
        # batch in flight, and at most one batch per member whose commit a rebalance rejected
        # (two rebalances, two members each).
        assert duplicated <= base.batch_size * (1 + 2 * 2)
