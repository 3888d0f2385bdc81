"""`alertfeat demo` on its embedded default: local broker, local Redis, simulated alerts."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

from rich.console import Console

from alertfeat.config import load_settings
from alertfeat.demo import run_demo


def test_demo_enriches_every_alert(tmp_path, monkeypatch):
    for var in list(os.environ):
        if var.startswith("ALERTFEAT_"):
            monkeypatch.delenv(var)
    console = Console(file=open(tmp_path / "out.txt", "w"), width=80)
    summary = run_demo(load_settings(data_dir=tmp_path), n_alerts=300, n_objects=60, console=console, plots=3)
    assert summary.sent == summary.enriched == 300
    assert summary.dead_lettered == 0
    assert summary.history == "redis"
    assert summary.alerts_per_s > 0 and summary.latency_p99_s >= summary.latency_p50_s > 0
    console.file.close()
    text = (tmp_path / "out.txt").read_text()
    assert "300 enriched of 300 sent" in text
    assert "enriched alerts: 300 / 300" in text
    # The table fits 80 columns with whole 18-digit ids and MJDs (never cut into equal prefixes).
    rows = [line for line in text.splitlines() if re.match(r"^\s*3\d{17} ", line)]
    assert rows and all(len(line) <= 80 for line in rows)
    assert all(re.search(r" 6\d{4}\.\d{4} ", line) for line in rows)
    # Plots of periodic and transient-like objects, and their paths printed.
    assert len(summary.plots) == 3 and all(p.stat().st_size > 10_000 for p in summary.plots)
    assert {p.name.split("-")[0] for p in summary.plots} == {"periodic", "transient"}
    for p in summary.plots:
        assert str(p) in text.replace("\n", "")


def test_demo_stops_on_ctrl_c_saying_what_it_stops(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALERTFEAT_")}
    env["ALERTFEAT_DATA_DIR"] = str(tmp_path)
    env["ALERTFEAT_XMATCH_CATALOGS"] = ""
    env["ALERTFEAT_XMATCH_BRIGHT_STAR_CATALOG"] = "none"
    demo = subprocess.Popen([sys.executable, "-m", "alertfeat.cli", "demo", "--alerts", "3000", "--objects", "400",
                             "--rate", "100"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    output = []
    for line in demo.stdout:
        output.append(line)
        if "service ready" in line:
            break
    time.sleep(2)
    demo.send_signal(signal.SIGINT)
    sent = time.monotonic()
    rest, _ = demo.communicate(timeout=60)
    stopped_after = time.monotonic() - sent
    text = "".join(output) + rest
    assert demo.returncode == 130, text
    for what in ("Ctrl-C: stopping the demo", "stopping the service", "stopping the subscriber",
                 "stopping the local redis-server", "stopping the local broker (Tansu)"):
        assert what in text, text
    assert "Traceback" not in text, text
    assert stopped_after < 5, f"stopped {stopped_after:.1f} s after Ctrl-C"  # ~2 s target; a loaded machine
