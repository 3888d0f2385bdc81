"""The Grafana dashboard and the Prometheus configuration against a real Prometheus (Debian's
2.42), scraping `alertfeat run --workers 2` under load: every panel's PromQL returns data with
the labels the panel shows, the accounting gap reads 0, latency quantiles are plausible. The
panels are also rendered into the static HTML report that stands in for Grafana."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from alertfeat.avro_files import framed_messages
from alertfeat.dashboard_report import panel_targets, query, render
from alertfeat.kafka_io import ensure_topics
from alertfeat.localinfra import LocalRedis, free_port
from tests.helpers import produce_at_rate, write_simulated

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = json.loads((ROOT / "deploy" / "grafana" / "dashboards" / "alertfeat.json").read_text())
# The labels each panel's series carry (its legend shows them); the others are one summed series.
EXPECTED_LABELS = {"Consumer lag": {"topic"}, "Dead-letter rate": {"reason"}, "Degraded rate": {"reason"},
                   "Time per alert by stage": {"stage"}}
PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")

if PROMETHEUS is None and os.environ.get("CI") != "true":
    pytest.skip("prometheus is not installed (Debian package prometheus; scripts/bootstrap installs it as root)",
                allow_module_level=True)


def wait_http(url: str, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{what} not ready at {url} within {timeout_s} s")


def value(prom: str, promql: str) -> float | None:
    result = query(prom, promql)
    return float(result[0]["value"][1]) if result else None


def test_promtool_accepts_the_deployed_configuration():
    assert PROMTOOL is not None, "promtool comes with the prometheus package"
    out = subprocess.run([PROMTOOL, "check", "config", "--syntax-only", str(ROOT / "deploy/prometheus/prometheus.yml")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    rules = list((ROOT / "deploy" / "prometheus").glob("*rules*.y*ml"))
    if rules:  # alert rules, if any are deployed
        out = subprocess.run([PROMTOOL, "check", "rules", *map(str, rules)], capture_output=True, text=True)
        assert out.returncode == 0, out.stdout + out.stderr


def test_every_dashboard_panel_returns_data_from_prometheus(make_settings, tmp_path):
    with LocalRedis() as redis:
        metrics_port = free_port()
        settings = make_settings(redis_url=redis.url, metrics_port=metrics_port, metrics_host="127.0.0.1",
                                 redis_timeout_s=0.5, readiness_probe_interval_s=0.5)
        ensure_topics({"bootstrap.servers": settings.kafka_bootstrap_servers}, {settings.input_topic: 2})
        alerts = write_simulated(tmp_path / "alerts.avro", 2400, 300)
        messages = list(framed_messages([alerts]))
        for k in range(0, len(messages), 150):  # poison: no wire header; it must go to the dead-letter topic
            messages.insert(k, b"not an alert")
        env = {k: v for k, v in os.environ.items() if not k.startswith("ALERTFEAT_")} | settings.to_env()
        log = open(tmp_path / "service.log", "wb")
        service = subprocess.Popen([sys.executable, "-m", "alertfeat.cli", "run", "--workers", "2"], env=env,
                                   stdout=log, stderr=subprocess.STDOUT)
        prom_port = free_port()
        prom = f"http://127.0.0.1:{prom_port}"
        config = tmp_path / "prometheus.yml"
        config.write_text(f"global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n"
                          f"scrape_configs:\n  - job_name: alertfeat\n    static_configs:\n"
                          f"      - targets: ['127.0.0.1:{metrics_port}']\n")
        prometheus = subprocess.Popen([PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                                       f"--web.listen-address=127.0.0.1:{prom_port}"],
                                      stdout=subprocess.DEVNULL, stderr=open(tmp_path / "prometheus.log", "wb"))
        try:
            wait_http(f"{prom}/-/ready", 60, "Prometheus")
            wait_http(f"http://127.0.0.1:{metrics_port}/readyz", 300, "the service")

            # Load for ~30 s; Redis frozen for 4 s in the middle, so alerts go out degraded.
            producer = threading.Thread(target=produce_at_rate, args=(settings.kafka_bootstrap_servers,
                                                                      settings.input_topic, messages, 90))
            producer.start()
            time.sleep(10)
            redis.pause()
            time.sleep(4)
            redis.resume()
            producer.join(120)
            deadline = time.monotonic() + 180
            while value(prom, "sum(alertfeat_consumed_total)") != len(messages):
                assert time.monotonic() < deadline, "the service did not consume every message"
                time.sleep(1)
            time.sleep(3)  # a few more scrapes of the final counts

            for title, targets in panel_targets(DASHBOARD):
                labels = next((v for k, v in EXPECTED_LABELS.items() if title.startswith(k)), set())
                for _, expr in targets:
                    result = query(prom, expr)
                    assert result, f"{title}: no data for {expr}"
                    for series in result:
                        assert set(series["metric"]) == labels, (title, series["metric"])
            gap = [t for t in panel_targets(DASHBOARD) if t[0].startswith("Accounting gap")][0][1][0][1]
            assert value(prom, gap) == 0
            assert value(prom, "sum(alertfeat_dead_lettered_total)") == messages.count(b"not an alert")
            assert value(prom, "sum(alertfeat_degraded_total)") > 0
            p50 = value(prom, "histogram_quantile(0.5, sum by (le) (rate(alertfeat_alert_latency_seconds_bucket[5m])))")
            p99 = value(prom, "histogram_quantile(0.99, sum by (le) (rate(alertfeat_alert_latency_seconds_bucket[5m])))")
            assert 0.001 < p50 <= p99 < 30, (p50, p99)  # at 90 alerts/s, with a 4 s Redis freeze

            report = render(prom, DASHBOARD, minutes=5, step_s=2)
            (tmp_path / "dashboard.html").write_text(report)
            for title, _ in panel_targets(DASHBOARD):
                assert report.count(title) >= 2  # a table row and a chart
            assert report.count("<polyline") >= len(panel_targets(DASHBOARD))
            assert "no data" not in report
        finally:
            service.terminate()
            service.wait(60)
            prometheus.terminate()
            prometheus.wait(30)
            log.close()
