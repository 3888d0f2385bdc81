"""`alertfeat demo`: the whole path on one machine, with local servers when none are configured."""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import signal
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich import box
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
    plots: list[Path] = field(default_factory=list)

    @property
    def alerts_per_s(self) -> float:
        """Service throughput: enriched alerts per second of batch processing (its capacity)."""
        return self.enriched / self.busy_s if self.busy_s else 0.0


# Column headers of the live table; the values are short so that ids and MJDs are never cut
# (an 18-digit diaObjectId cut to its first digits looks the same on every row) in 80 columns.
# star: the nearest catalog match, as the catalog's initial and the separation; * = near a bright star.
COLUMNS = ("diaObjectId", "MJD", "hist", "nObs", "r nJy", "P d", "star", "ms")
HISTORY_SHORT = {"redis": "redis", "redis_partial": "part", "alert": "alert"}


def _table(rows: deque, done: int, total: int, waiting: str = "") -> Table:
    table = Table(title=f"enriched alerts: {done} / {total}", box=box.HORIZONTALS, show_edge=False,
                  pad_edge=False, padding=(0, 1), expand=False)
    for col in COLUMNS:
        table.add_column(col, justify="right", no_wrap=True, overflow="fold")
    for r in rows:
        table.add_row(*r)
    if not rows:
        table.caption = waiting
    return table


def _number(value: float | None, fmt: str) -> str:
    return "-" if value is None or value != value else format(value, fmt)


def _row(view, latency_s: float | None) -> tuple[str, ...]:
    f = view.features
    n_obs = int(sum(v for k, v in f.items() if k.endswith("_nObs")))
    star = "-"
    for name, match in (view.xmatch or {}).items():
        if isinstance(match, dict):  # nearest match: catalog and separation (arcsec)
            star = f"{name[0]} {match['sepArcsec']:.1f}\""
            break
    if view.xmatch and view.xmatch.get("nearBrightStar"):
        star += "*"
    return (str(view.dia_object_id), f"{view.mjd:.4f}", HISTORY_SHORT.get(view.history_source, view.history_source),
            str(n_obs), _number(f.get("r_psfFluxMean"), ".0f"), _number(f.get("multiPeriod"), ".3f"), star,
            _number(None if latency_s is None else 1000 * latency_s, ".0f"))


def _traits(view) -> tuple[int, float, float]:
    """(diaObjectId, multiFap, largest per-band flux skew): to pick periodic and transient objects to plot."""
    f = view.features
    fap = f.get("multiFap")
    skews = [v for k, v in f.items() if k.endswith("_psfFluxSkew") and v is not None and math.isfinite(v)]
    return (int(view.dia_object_id), fap if fap is not None and math.isfinite(fap) else 1.0,
            max(skews, default=0.0))


def _subscribe_into(settings: Settings, n_alerts: int, rows: multiprocessing.Queue) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it stops us
    try:
        for got in enriched_alerts(settings, max_messages=n_alerts, idle_timeout_s=60):
            rows.put((_row(got.view, got.latency_s), got.latency_s, _traits(got.view)))
    finally:
        rows.put(None)


class _Subscriber:
    """Reads the enriched alerts in a child process: it decodes with plain fastavro (~5 ms per
    alert), which in this process would hold the GIL the service needs. Started before the
    service, so that its start and group join overlap the service's warm-up."""

    def __init__(self, settings: Settings, n_alerts: int):
        context = multiprocessing.get_context("spawn")  # no fork of a process running librdkafka threads
        self.rows = context.Queue()
        self.child = context.Process(target=_subscribe_into, args=(settings, n_alerts, self.rows),
                                     name="demo-subscriber", daemon=True)
        self.child.start()

    def items(self) -> Iterator[tuple[tuple[str, ...], float | None, tuple[int, float, float]]]:
        while (item := self.rows.get()) is not None:
            yield item
        self.child.join(10)
        if self.child.exitcode:
            raise RuntimeError(f"the demo's subscriber failed (exit code {self.child.exitcode}); see the log above")

    def stop(self) -> None:
        if self.child.is_alive():
            self.child.terminate()
            self.child.join(2)


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
             rate: float | None = None, plots: int = 5) -> DemoSummary:
    console = console or Console()
    interrupted = threading.Event()
    previous = None
    if threading.current_thread() is threading.main_thread():
        def on_sigint(_signum, _frame) -> None:
            interrupted.set()
            console.print("[bold]Ctrl-C: stopping the demo...")
            raise KeyboardInterrupt

        previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        return _run_demo(settings, n_alerts, n_objects, console, rate, plots, interrupted)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _run_demo(settings: Settings, n_alerts: int, n_objects: int, console: Console, rate: float | None, plots: int,
              interrupted: threading.Event) -> DemoSummary:
    with contextlib.ExitStack() as stack:
        def on_exit(what: str, stop: Callable[[], object]) -> None:
            def run() -> None:
                if interrupted.is_set():
                    console.print(f"stopping {what}")
                stop()
            stack.callback(run)

        updates: dict = {"group_id": f"alertfeat-demo-{uuid.uuid4().hex[:6]}", "metrics_port": 0}
        if "kafka_bootstrap_servers" not in settings.model_fields_set:
            console.print("[bold]starting a local Kafka-compatible broker (Tansu)...")
            kafka = LocalKafka()
            on_exit("the local broker (Tansu)", lambda: kafka.__exit__(None, None, None))
            kafka.start()
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
                redis_server = LocalRedis()
                on_exit("the local redis-server", lambda: redis_server.__exit__(None, None, None))
                updates["redis_url"] = redis_server.start().url
        elif settings.redis_url is None:
            history = "alert-only"
        settings = with_overrides(settings, **updates)
        console.print(f"broker {settings.kafka_bootstrap_servers}, history: {history}")

        console.print(f"simulating {n_alerts} alerts over {n_objects} objects (cached after the first run)...")
        star_catalog = "gaia" if "gaia" in settings.xmatch_catalogs else None
        path = simulated_file(settings.data_dir, n_alerts, n_objects, star_catalog=star_catalog)
        ensure_topics(settings.kafka_common(), {settings.input_topic: 1,
                                                settings.enriched_topic: settings.output_partitions})
        subscriber = _Subscriber(settings, n_alerts)  # joins its group while the service warms up
        on_exit("the subscriber", subscriber.stop)

        metrics = Metrics()
        stop = threading.Event()
        worker = Worker(settings, build_pipeline(settings), metrics, stop)
        worker_thread = threading.Thread(target=worker.run, name="worker", daemon=True)
        worker_thread.start()
        # Interrupted: the batch in flight is not waited for (at-least-once: it is consumed again).
        on_exit("the service", lambda: (stop.set(), worker_thread.join(1.5 if interrupted.is_set() else 30)))
        _wait_until_assigned(worker, worker_thread, console)

        sent = [0]
        stop_replay = threading.Event()
        replay_thread = threading.Thread(
            target=lambda: sent.__setitem__(0, replay([path], settings.kafka_producer(), settings.input_topic,
                                                      rate=rate, stop=stop_replay)),
            name="replay", daemon=True)
        start = time.monotonic()
        replay_thread.start()
        # Before the broker stops: a client still connected holds up its shutdown (measured: ~6 s).
        on_exit("the replay", lambda: (stop_replay.set(), replay_thread.join(1.5)))

        latencies: list[float] = []
        traits: dict[int, tuple[float, float]] = {}
        recent: deque = deque(maxlen=12)
        done = 0
        waiting = "waiting for the first enriched alert..."
        with Live(_table(recent, done, n_alerts, waiting), console=console, refresh_per_second=4) as live:
            for row, latency_s, (object_id, fap, skew) in subscriber.items():
                if latency_s is not None:
                    latencies.append(latency_s)
                traits[object_id] = (fap, skew)
                recent.append(row)
                done += 1
                live.update(_table(recent, done, n_alerts))
        if not console.is_terminal:
            console.line()  # Live ends a non-terminal output without a newline
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
    if plots:
        summary.plots = _write_plots(path, traits, settings.data_dir / "plots", plots, console)
    return summary


def _write_plots(path: Path, traits: dict[int, tuple[float, float]], out_dir: Path, n: int,
                 console: Console) -> list[Path]:
    """Plots of the most clearly periodic objects (lowest FAP) and the most transient-like ones
    (most skewed flux), from the replayed file."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        console.print("no plots: matplotlib is not installed (pip install 'alertfeat[plot]')")
        return []
    from .plot import alerts_in_files, curve_from_alerts, plot_object

    periodic = [oid for oid, (fap, _) in sorted(traits.items(), key=lambda kv: kv[1][0]) if fap < 1e-3][:(n + 1) // 2]
    transient = [oid for oid, _ in sorted(traits.items(), key=lambda kv: -kv[1][1]) if oid not in periodic]
    written = []
    for kind, ids in (("periodic", periodic), ("transient", transient[:n - len(periodic)])):
        for oid in ids:
            out = out_dir / f"{kind}-{oid}.png"
            plot_object(curve_from_alerts(alerts_in_files([path]), oid), out)
            written.append(out)
            console.print(f"plot ({kind}): {out}", soft_wrap=True)  # a path must stay whole to be copied
    return written
