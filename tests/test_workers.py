"""`alertfeat run --workers 2`: two consumer processes in one group behind one endpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import psutil

from alertfeat.avro_files import framed_messages
from alertfeat.benchmarks._service import metric
from alertfeat.localinfra import free_port
from tests.helpers import drain, produce_all, produce_at_rate, write_simulated
from tests.test_faults import _dia_source_id


def test_two_workers_share_the_partitions_and_one_endpoint(make_settings, kafka, tmp_path):
    messages = list(framed_messages([write_simulated(tmp_path / "a.avro", 1200, 300, seed=4, mean_epochs=10)]))
    port = free_port()
    settings = make_settings(metrics_port=port, xmatch_catalogs=[], xmatch_bright_star_catalog=None, batch_size=100)
    produce_all(kafka.bootstrap, settings.input_topic, messages, partitions=2)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALERTFEAT_")} | settings.to_env()
    log = open(tmp_path / "run.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "alertfeat.cli", "run", "--workers", "2"], env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        got = drain(kafka.bootstrap, settings.enriched_topic, len(messages), timeout_s=180, settle_s=2)
        deadline = time.monotonic() + 30
        while metric(port, "alertfeat_consumed_total") < len(messages):
            assert time.monotonic() < deadline, "metrics not aggregated"
            time.sleep(0.2)
        ready = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5).read())
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
    assert len(got) == len(messages)
    assert metric(port, "alertfeat_enriched_total") == 0  # the endpoint is gone after shutdown
    assert ready["status"] == "ok"
    log_text = (tmp_path / "run.log").read_text()
    assert "alertfeat_consumed_total" in text and code == 0, log_text[-2000:]
    # Each process ended up owning one of the two partitions.
    finals = {w: line for line in log_text.splitlines() for w in ("worker-0", "worker-1")
              if w in line and "assigned partitions" in line}
    assert set(finals) == {"worker-0", "worker-1"}
    assert {finals["worker-0"].rsplit(" ", 1)[1], finals["worker-1"].rsplit(" ", 1)[1]} == {"[0]", "[1]"}


def _workers(proc: subprocess.Popen) -> list[psutil.Process]:
    """The worker processes (spawned children; not multiprocessing's resource tracker)."""
    return [c for c in psutil.Process(proc.pid).children() if "spawn_main" in " ".join(c.cmdline())]


def _wait_workers(proc: subprocess.Popen, n: int, exclude: set[int], timeout_s: float = 60) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout_s
    while True:
        found = [w for w in _workers(proc) if w.pid not in exclude]
        if len(found) >= n:
            return found
        assert proc.poll() is None and time.monotonic() < deadline, f"{len(found)} of {n} workers"
        time.sleep(0.1)


def _start(settings, tmp_path, workers: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALERTFEAT_")} | settings.to_env()
    return subprocess.Popen([sys.executable, "-m", "alertfeat.cli", "run", "--workers", str(workers)], env=env,
                            stdout=open(tmp_path / "run.log", "wb"), stderr=subprocess.STDOUT)


def _wait_metric(port: int, name: str, at_least: float, proc: subprocess.Popen, timeout_s: float = 120) -> float:
    deadline = time.monotonic() + timeout_s
    while (value := metric(port, name)) < at_least:
        assert proc.poll() is None and time.monotonic() < deadline, f"{name} = {value} < {at_least}"
        time.sleep(0.1)
    return value


def test_kill_9_of_one_worker_restarts_it_loses_nothing_and_the_other_keeps_consuming(make_settings, kafka, tmp_path):
    alerts = list(framed_messages([write_simulated(tmp_path / "a.avro", 3000, 800, seed=8, mean_epochs=6)]))
    port = free_port()
    settings = make_settings(metrics_port=port, xmatch_catalogs=[], xmatch_bright_star_catalog=None, batch_size=50)
    produce_all(kafka.bootstrap, settings.input_topic, alerts[:600], partitions=2)
    proc = _start(settings, tmp_path, workers=2)
    try:
        _wait_metric(port, "alertfeat_consumed_total", 600, proc)
        victim, survivor = _wait_workers(proc, 2, set())
        # Steady traffic on both partitions while one worker is killed in the middle of it.
        traffic = threading.Thread(target=produce_at_rate, args=(kafka.bootstrap, settings.input_topic, alerts[600:], 400.0))
        traffic.start()
        time.sleep(1.5)
        victim.send_signal(signal.SIGKILL)
        killed_at = metric(port, "alertfeat_consumed_total")
        time.sleep(2.0)  # the restart waits 1 s, then imports and warms up: only the survivor consumes
        during = metric(port, "alertfeat_consumed_total") - killed_at
        assert survivor.is_running() and victim.pid not in {w.pid for w in _workers(proc)}
        traffic.join()
        _wait_metric(port, "alertfeat_worker_restarts_total", 1, proc)
        _wait_workers(proc, 2, {victim.pid})
        _wait_metric(port, "alertfeat_consumed_total", len(alerts), proc, timeout_s=180)
        got = drain(kafka.bootstrap, settings.enriched_topic, len(alerts), timeout_s=120, settle_s=2)
        restarts = metric(port, "alertfeat_worker_restarts_total")
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(90)
    log_text = (tmp_path / "run.log").read_text()
    assert code == 0, log_text[-3000:]
    assert {_dia_source_id(m.value()) for m in got} == {_dia_source_id(m) for m in alerts}  # nothing lost
    assert during > 0 and restarts == 1
    assert "exited with code -9; restarting it in 1 s" in log_text
    print(f"\nworker kill -9: the survivor consumed {during:.0f} alerts in the 2 s after; "
          f"{len(got)} enriched for {len(alerts)} alerts ({len(got) - len(alerts)} redelivered), 1 restart")


def test_a_crash_loop_gives_up_and_exits_non_zero(make_settings, kafka, tmp_path):
    port = free_port()
    settings = make_settings(metrics_port=port, xmatch_catalogs=[], xmatch_bright_star_catalog=None,
                             worker_max_restarts=1, worker_restart_window_s=120)
    produce_all(kafka.bootstrap, settings.input_topic, [], partitions=2)
    proc = _start(settings, tmp_path, workers=2)
    try:
        first = _wait_workers(proc, 2, set())
        first[0].send_signal(signal.SIGKILL)
        _wait_metric(port, "alertfeat_worker_restarts_total", 1, proc)
        (second,) = _wait_workers(proc, 1, {w.pid for w in first})
        assert proc.poll() is None  # one crash within the window is tolerated
        second.send_signal(signal.SIGKILL)
        code = proc.wait(90)  # the second is one too many: the other worker is stopped too
    finally:
        if proc.poll() is None:
            proc.kill()
    log_text = (tmp_path / "run.log").read_text()
    assert code != 0, log_text[-3000:]
    assert "more than 1 crashes within 120 s; stopping the others" in log_text
