"""Guarantees of the retry paths, on the session's broker: a schema registry outage rewinds and
retries the batch (nothing dead-lettered, everything enriched after it recovers); a delivery
failure commits nothing and the restarted service delivers everything; /healthz goes to 503
while the consumer loop is stalled (here: waiting on a frozen broker) and back to 200.

The registry is the labelled MOCK of tests/test_registry.py (no registry runs here)."""

from __future__ import annotations

import subprocess
import threading
import time
import urllib.error
import urllib.request
from http.server import ThreadingHTTPServer

import pytest

import alertfeat.benchmarks._service
import alertfeat.health
from alertfeat.avro_files import framed_messages
from alertfeat.localinfra import free_port
from alertfeat.subscribe import enriched_alerts
from tests.helpers import drain, encode_alert, produce_all, produce_at_rate, sample_alerts, write_simulated
from tests.kafka_probe import BrokerProbe, dia_source_id, id_counts, lost_and_duplicated
from tests.service_process import ServiceProcess
from tests.test_registry import MockRegistry


@pytest.fixture(scope="module")
def alerts(tmp_path_factory) -> list[bytes]:
    path = write_simulated(tmp_path_factory.mktemp("retry") / "a.avro", 3000, 1000, seed=8, mean_epochs=4)
    return list(framed_messages([path]))


def test_schema_registry_outage_rewinds_and_retries_then_everything_is_enriched(make_settings, service, kafka):
    registry = MockRegistry()
    port = registry.server.server_address[1]
    handler = registry.server.RequestHandlerClass
    registry.server.server_close()  # down: connections are refused
    settings = make_settings(schema_registry_url=registry.url)
    samples = sample_alerts()
    produce_all(kafka.bootstrap, settings.input_topic, [encode_alert(r, sid) for sid, r in samples.items()])
    with service(settings) as svc:
        time.sleep(8)  # the first tries and their backoffs (1 s, 2 s, 4 s)
        m = svc.metrics
        assert svc.thread.is_alive() and m.total(m.consumed) == 0 and m.total(m.dead_lettered) == 0
        registry.server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        threading.Thread(target=registry.server.serve_forever, daemon=True).start()
        recovered_at = time.monotonic()
        got = list(enriched_alerts(settings, max_messages=len(samples), idle_timeout_s=60))
        took = time.monotonic() - recovered_at
    registry.server.shutdown()
    registry.server.server_close()
    print(f"\nregistry outage: {len(samples)} alerts in, {len(got)} enriched {took:.1f} s after the registry "
          f"came back, {m.total(m.dead_lettered)} dead-lettered")
    assert len(got) == len(samples) and m.total(m.dead_lettered) == 0
    assert m.total(m.consumed) == len(samples)
    assert registry.registrations, "the enriched schemas were registered after the outage"
    assert drain(kafka.bootstrap, settings.dlq_topic, 0, timeout_s=5, settle_s=1) == []


def _healthz(port: int) -> int:
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5).status
    except urllib.error.HTTPError as err:
        return err.code


def test_delivery_failure_commits_nothing_and_the_restarted_service_delivers_everything(make_settings, kafka,
                                                                                         alerts, tmp_path):
    if kafka.server is None:
        pytest.skip("needs a broker the tests own (to freeze it)")
    settings = make_settings(metrics_port=free_port(), batch_size=200, xmatch_catalogs=[],
                             xmatch_bright_star_catalog=None, librdkafka_producer={"message.timeout.ms": 3000})
    # Input keeps arriving (100 alerts/s), so the freeze finds a batch being produced rather than
    # an idle consumer, whose only symptom would be a session timeout and a redelivered batch.
    feeder = threading.Thread(target=produce_at_rate, args=(kafka.bootstrap, settings.input_topic, alerts, 100.0),
                              kwargs={"enable.idempotence": True}, daemon=True)
    feeder.start()
    with ServiceProcess(settings, tmp_path / "service.log") as svc:
        deadline = time.monotonic() + 120
        while alertfeat.benchmarks._service.metric(settings.metrics_port, "alertfeat_consumed_total") < 200:
            assert svc.alive() and time.monotonic() < deadline, svc.log()[-3000:]
            time.sleep(0.05)
        # A freeze can still land between produces (only the group session times out, and the batch
        # is redelivered); then the broker is frozen again while input keeps arriving, up to 4 times.
        for attempt in range(4):
            kafka.server.pause()  # the batch in flight cannot be acknowledged within message.timeout.ms
            try:
                time.sleep(8)
            finally:
                kafka.server.resume()
            try:
                code = svc.proc.wait(25)
                break
            except subprocess.TimeoutExpired:
                if attempt == 3:
                    raise
    assert code != 0 and "undelivered" in svc.log() and "Message timed out" in svc.log(), svc.log()[-3000:]
    probe = BrokerProbe(kafka.bootstrap, settings.group_id)
    committed = probe.group_committed(settings.input_topic)
    probe.close()
    assert 200 <= committed < len(alerts)
    with ServiceProcess(settings, tmp_path / "service.log"):
        counts = id_counts(kafka.bootstrap, settings.enriched_topic, len(alerts), "read_uncommitted", settle_s=2)
    lost, duplicated = lost_and_duplicated(counts, {dia_source_id(m) for m in alerts})
    print(f"\ndelivery failure: the service stopped with {committed} of {len(alerts)} committed; after the "
          f"restart {sum(counts.values())} enriched, lost {lost}, duplicated {duplicated}")
    assert lost == 0


def test_healthz_is_503_while_the_loop_is_stalled_and_200_after(make_settings, service, kafka, alerts,
                                                                  monkeypatch):
    if kafka.server is None:
        pytest.skip("needs a broker the tests own (to freeze it)")
    monkeypatch.setattr(alertfeat.health, "LIVENESS_TIMEOUT_S", 3.0)  # 180 s in production
    messages = alerts
    port = free_port()
    settings = make_settings(metrics_port=port, batch_size=200, xmatch_catalogs=[],
                             xmatch_bright_star_catalog=None)
    with service(settings) as svc:
        alertfeat.health.serve(port, svc.metrics.registry, svc.worker.health, host="127.0.0.1")
        produce_all(kafka.bootstrap, settings.input_topic, messages)
        m = svc.metrics
        deadline = time.monotonic() + 120
        while m.total(m.consumed) < 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert _healthz(port) == 200
        kafka.server.pause()  # the next batch (already fetched) waits for its delivery reports
        try:
            deadline = time.monotonic() + 30
            while _healthz(port) != 503:
                assert time.monotonic() < deadline, "healthz never went to 503"
                time.sleep(0.2)
            stalled_seen = time.monotonic()
        finally:
            kafka.server.resume()
        deadline = time.monotonic() + 60
        while _healthz(port) != 200:
            assert time.monotonic() < deadline, "healthz did not recover"
            time.sleep(0.2)
        print(f"\nloop stall: /healthz 503 while the broker was frozen, 200 again "
              f"{time.monotonic() - stalled_seen:.1f} s after it resumed")
        got = drain(kafka.bootstrap, settings.enriched_topic, len(messages), timeout_s=120, settle_s=1)
    assert len({m.value() for m in got}) == len(messages)
