"""`alertfeat demo` on its embedded default: local broker, local Redis, simulated alerts."""

from __future__ import annotations

from rich.console import Console

from alertfeat.config import load_settings
from alertfeat.demo import run_demo


def test_demo_enriches_every_alert(tmp_path, monkeypatch):
    for var in list(__import__("os").environ):
        if var.startswith("ALERTFEAT_"):
            monkeypatch.delenv(var)
    console = Console(file=open(tmp_path / "out.txt", "w"), width=120)
    summary = run_demo(load_settings(data_dir=tmp_path), n_alerts=300, n_objects=60, console=console)
    assert summary.sent == summary.enriched == 300
    assert summary.dead_lettered == 0
    assert summary.history == "redis"
    assert summary.alerts_per_s > 0 and summary.latency_p99_s >= summary.latency_p50_s > 0
    console.file.close()
    text = (tmp_path / "out.txt").read_text()
    assert "enriched alerts" in text and "300 enriched of 300 sent" in text
