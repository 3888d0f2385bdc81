"""Redis Cluster as the history store: a local 3-node cluster started from redis-server."""

from __future__ import annotations

import collections
import json

import pytest

from alertfeat.app import build_pipeline
from alertfeat.avro_files import framed_messages
from alertfeat.history import HistorySource, RedisHistory, history_key
from alertfeat.localinfra import LocalRedisCluster, redis_server_binary
from alertfeat.offline import offline_views
from alertfeat.output_json import to_json
from alertfeat.subscribe import enriched_alerts
from tests.helpers import produce_all, write_simulated
from tests.test_history import _batch

pytestmark = pytest.mark.skipif(redis_server_binary() is None, reason="redis-server is not installed")


@pytest.fixture(scope="module")
def cluster():
    with LocalRedisCluster() as c:
        yield c


def test_history_is_spread_over_the_nodes_and_merges_as_on_one_server(cluster):
    store = RedisHistory.from_url(cluster.url, "c1:", 365.0, 400.0, 2.0, cluster=True)
    objects = range(60)
    _, source = store.merge(_batch([(o, 60000.0, [(o * 10 + 1, 60000.0), (o * 10, 59990.0)]) for o in objects]))
    assert (source == HistorySource.REDIS_PARTIAL).all()
    lc, _ = store.merge(_batch([(o, 60100.0, [(o * 10 + 2, 60100.0)]) for o in objects]))
    assert [lc.source_id[lc.rows(i)].tolist() for i in range(3)] == [[0, 1, 2], [10, 11, 12], [20, 21, 22]]
    nodes = collections.Counter(store.client.get_node_from_key(history_key("c1:", o)).name for o in objects)
    assert len(nodes) == 3  # every node holds some objects


def test_service_with_a_redis_cluster(cluster, make_settings, service, kafka, tmp_path):
    path = write_simulated(tmp_path / "a.avro", 300, 60, seed=9, mean_epochs=20)
    settings = make_settings(redis_url=cluster.url, redis_cluster=True)
    produce_all(kafka.bootstrap, settings.input_topic, framed_messages([path]))
    with service(settings):
        online = {json.loads(line)["diaSourceId"]: json.loads(line) for line in
                  (to_json(r.view) for r in enriched_alerts(settings, max_messages=300, idle_timeout_s=60))}
    offline = {v.dia_source_id: json.loads(to_json(v)) for v in
               offline_views(build_pipeline(settings, offline=True), [path])}
    assert len(online) == 300 and {d["historySource"] for d in online.values()} == {"redis_partial"}  # a new store
    assert all(online[k]["features"] == offline[k]["features"] for k in offline)


def test_a_cluster_node_going_down_degrades_the_batch_not_the_process():
    with LocalRedisCluster() as own_cluster:
        store = RedisHistory.from_url(own_cluster.url, "c2:", 365.0, 400.0, 1.0, cluster=True)
        store.retry_after_s = 0.0
        batch = _batch([(o, 60000.0, [(o * 10 + 1, 60000.0)]) for o in range(30)])
        assert (store.merge(batch)[1] == HistorySource.REDIS_PARTIAL).all()
        own_cluster.nodes[2].stop()
        for _ in range(3):  # whatever redis-py raises for a lost node (ConnectionError, SlotNotCovered...)
            lc, source = store.merge(batch)
            assert (source == HistorySource.ALERT).all()
            assert lc.source_id.tolist() == [o * 10 + 1 for o in range(30)]
