"""`alertfeat run --workers 2`: two consumer processes in one group behind one endpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

from alertfeat.avro_files import framed_messages
from alertfeat.benchmarks._service import metric
from alertfeat.localinfra import free_port
from tests.helpers import drain, produce_all, write_simulated


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
