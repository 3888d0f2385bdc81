"""`alertfeat demo`: the whole path on one machine, with local servers when none are configured."""

from __future__ import annotations

import contextlib
import multiprocessing
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from rich.console import Console
from rich.live import Live
from rich.table import Table

from .app import build_pipeline
from .config import Settings, with_overrides
from .kafka_io import ensure_topics
from .localinfra import LocalKafka, LocalRedis, redis_server_binary
from .metrics import Metrics
from .replay import replay
from .simulate import simulated_file
from .subscribe import enriched_alerts
from .worker import Worker


@dataclass
class DemoSummary:
    sent: int
    enriched: int
    dead_lettered: int
    wall_s: float
    busy_s: float
    latency_p50_s: float
    latency_p99_s: float
    history: str

    @property
    def alerts_per_s(self) -> float:
        """Service throughput: enriched alerts per second of batch processing (its capacity)."""
        return self.enriched / self.busy_s if self.busy_s else 0.0


def _table(rows: deque) -> Table:
    table = Table(title="enriched alerts (latest)", expand=False)
    for col in ("diaObjectId", "MJD", "history", "nObs", "r mean nJy", "period d", "nearest star", "latency ms"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(*r)
    return table


def _number(value: float | None, fmt: str) -> str:
    return "-" if value is None or value != value else format(value, fmt)


def _row(view, latency_s: float | None) -> tuple[str, ...]:
    f = view.features
    n_obs = int(sum(v for k, v in f.items() if k.endswith("_nObs")))
    star = "-"
    for name, match in (view.xmatch or {}).items():
        if isinstance(match, dict):
            star = f"{name} {match['sourceId']} ({match['sepArcsec']:.2f}\")"
            break
    if view.xmatch and view.xmatch.get("nearBrightStar"):
        star += " *bright*"
    return (str(view.dia_object_id), f"{view.mjd:.4f}", view.history_source, str(n_obs),
            _number(f.get("r_psfFluxMean"), ".0f"), _number(f.get("multiPeriod"), ".3f"), star,
            _number(None if latency_s is None else 1000 * latency_s, ".0f"))


def _subscribe_into(settings: Settings, n_alerts: int, rows: multiprocessing.Queue) -> None:
    try:
        for got in enriched_alerts(settings, max_messages=n_alerts, idle_timeout_s=60):
            rows.put((_row(got.view, got.latency_s), got.latency_s))
    finally:
        rows.put(None)


def _subscribed_rows(settings: Settings, n_alerts: int) -> Iterator[tuple[tuple[str, ...], float | None]]:
    """Table rows of the enriched alerts, read by a subscriber in a child process: it decodes with
    plain fastavro (~5 ms per alert), which in this process would hold the GIL the service needs."""
    context = multiprocessing.get_context("spawn")  # no fork of a process running librdkafka threads
    rows = context.Queue()
    child = context.Process(target=_subscribe_into, args=(settings, n_alerts, rows), name="demo-subscriber",
                            daemon=True)
    child.start()
    try:
        while (item := rows.get()) is not None:
            yield item
    finally:
        child.join(10)
        if child.is_alive():
            child.terminate()
    if child.exitcode:
        raise RuntimeError(f"the demo's subscriber failed (exit code {child.exitcode}); see the log above")


def _wait_until_assigned(worker: Worker, thread: threading.Thread, console: Console, timeout_s: float = 120) -> None:
    """Replay only once the service holds its partitions, so that the latencies shown are the
    service's own and not the consumer group's join (~3 s on Tansu)."""
    start = time.monotonic()
    while not worker.health.assigned_partitions:
        if not thread.is_alive():
            raise RuntimeError("the service stopped before joining its consumer group (see the log above)")
        if time.monotonic() - start > timeout_s:
            raise RuntimeError(f"no input partition assigned after {timeout_s:.0f} s")
        time.sleep(0.05)
    console.print(f"service ready: partitions assigned after {time.monotonic() - start:.1f} s")


def run_demo(settings: Settings, n_alerts: int = 2000, n_objects: int = 400, console: Console | None = None,
             rate: float | None = None) -> DemoSummary:
    console = console or Console()
    with contextlib.ExitStack() as stack:
        updates: dict = {"group_id": f"alertfeat-demo-{uuid.uuid4().hex[:6]}", "metrics_port": 0}
        if "kafka_bootstrap_servers" not in settings.model_fields_set:
            console.print("[bold]starting a local Kafka-compatible broker (Tansu)...")
            kafka = stack.enter_context(LocalKafka())
            updates["kafka_bootstrap_servers"] = kafka.bootstrap
            updates["librdkafka_consumer"] = {"session.timeout.ms": 6000, **settings.librdkafka_consumer}
        history = "redis"
        if "redis_url" not in settings.model_fields_set:
            if redis_server_binary() is None:
                console.print("[bold yellow]redis-server is not installed: running with alert-only history "
                              "(features come from each alert's own prvDiaSources).")
                updates["redis_url"] = None
                history = "alert-only"
            else:
                console.print("[bold]starting a local redis-server...")
                updates["redis_url"] = stack.enter_context(LocalRedis()).url
        elif settings.redis_url is None:
            history = "alert-only"
        settings = with_overrides(settings, **updates)
        console.print(f"broker {settings.kafka_bootstrap_servers}, history: {history}")

        console.print(f"simulating {n_alerts} alerts over {n_objects} objects (cached after the first run)...")
        star_catalog = "gaia" if "gaia" in settings.xmatch_catalogs else None
        path = simulated_file(settings.data_dir, n_alerts, n_objects, star_catalog=star_catalog)
        ensure_topics(settings.kafka_common(), {settings.input_topic: 1})

        metrics = Metrics()
        stop = threading.Event()
        worker = Worker(settings, build_pipeline(settings), metrics, stop)
        worker_thread = threading.Thread(target=worker.run, name="worker", daemon=True)
        worker_thread.start()
        stack.callback(lambda: (stop.set(), worker_thread.join(30)))
        _wait_until_assigned(worker, worker_thread, console)

        sent = [0]
        replay_thread = threading.Thread(
            target=lambda: sent.__setitem__(0, replay([path], settings.kafka_producer(), settings.input_topic,
                                                      rate=rate)),
            name="replay", daemon=True)
        start = time.monotonic()
        replay_thread.start()

        latencies: list[float] = []
        recent: deque = deque(maxlen=12)
        with Live(_table(recent), console=console, refresh_per_second=4) as live:
            for row, latency_s in _subscribed_rows(settings, n_alerts):
                if latency_s is not None:
                    latencies.append(latency_s)
                recent.append(row)
                live.update(_table(recent))
        wall = time.monotonic() - start
        replay_thread.join()
        lat = np.array(latencies) if latencies else np.array([np.nan])
        summary = DemoSummary(
            sent=sent[0],
            enriched=int(metrics.total(metrics.enriched)),
            dead_lettered=int(metrics.total(metrics.dead_lettered)),
            wall_s=wall, busy_s=metrics.total(metrics.stage_total),
            latency_p50_s=float(np.percentile(lat, 50)), latency_p99_s=float(np.percentile(lat, 99)),
            history=history,
        )
    console.print(
        f"[bold green]done:[/] {summary.enriched} enriched of {summary.sent} sent, {summary.dead_lettered} dead-lettered, "
        f"{summary.alerts_per_s:,.0f} alerts/s service throughput ({summary.busy_s:.2f} s busy, "
        f"{summary.wall_s:.1f} s wall), latency p50 {1000 * summary.latency_p50_s:.0f} ms, "
        f"p99 {1000 * summary.latency_p99_s:.0f} ms, history {summary.history}")
    return summary

