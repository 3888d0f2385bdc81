"""`alertfeat run --workers N`: N consumer processes in one consumer group, one HTTP endpoint.

Each worker is a separate process (one per core: numba kernels and librdkafka then run truly in
parallel). The parent serves /metrics, aggregating the workers' Prometheus files
(prometheus_client's multiprocess mode), and /healthz and /readyz from their shared health
slots. SIGTERM/SIGINT are forwarded; each worker finishes and commits its batch.

A worker that dies is started again after a backoff (1 s, doubling to 30 s while it keeps
crashing), so a host running `alertfeat run --workers 4` with no restart policy does not end up
short-handed or stopped; the group rebalances and its uncommitted batch is consumed again
(at-least-once). Only after more than `worker_max_restarts` crashes within
`worker_restart_window_s` does the supervisor stop the others and exit with the last worker's
code, for the orchestrator (or the operator) to look at a crash loop.
"""

from __future__ import annotations

import collections
import logging
import multiprocessing
import os
import signal
import sys
import tempfile
import time

from .config import Settings, with_overrides
from .errors import AlertfeatError
from .health import SLOT_SIZE, Health, HealthGroup
from .health import serve as serve_ops

log = logging.getLogger(__name__)

BACKOFF_FIRST_S, BACKOFF_MAX_S = 1.0, 30.0


def _worker_main(settings: Settings, index: int, slot, log_level: str) -> None:
    logging.basicConfig(level=log_level, format=f"%(asctime)s %(levelname)s worker-{index} %(name)s: %(message)s")
    logging.getLogger("numba").setLevel(logging.WARNING)
    from .app import run_service

    try:
        run_service(with_overrides(settings, metrics_port=0), worker_index=index, health=Health(slot))
    except AlertfeatError as exc:  # e.g. Kafka unreachable at start: one line, not a traceback
        log.error("%s", exc)
        sys.exit(3)


class CrashPolicy:
    """When to restart a crashed worker, and when to give up."""

    def __init__(self, max_restarts: int, window_s: float):
        self.max_restarts = max_restarts
        self.window_s = window_s
        self.crashes: collections.deque[float] = collections.deque()  # times, all workers

    def crashed(self, now: float) -> float | None:
        """Record a crash; the backoff before restarting, or None to give up."""
        self.crashes.append(now)
        while self.crashes and self.crashes[0] < now - self.window_s:
            self.crashes.popleft()
        if len(self.crashes) > self.max_restarts:
            return None
        return min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** (len(self.crashes) - 1))


def run_workers(settings: Settings, workers: int) -> int:
    # prometheus_client picks its multiprocess storage at import, from this variable, in each
    # child (spawned, so it imports afresh).
    metrics_dir = tempfile.mkdtemp(prefix="alertfeat-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    ctx = multiprocessing.get_context("spawn")
    slots = [ctx.Array("d", SLOT_SIZE, lock=False) for _ in range(workers)]

    def start(i: int) -> multiprocessing.Process:
        p = ctx.Process(target=_worker_main, args=(settings, i, slots[i], settings.log_level),
                        name=f"alertfeat-worker-{i}")
        p.start()
        return p

    procs: list[multiprocessing.Process | None] = [start(i) for i in range(workers)]

    from prometheus_client import CollectorRegistry, Counter

    registry = CollectorRegistry()
    restarts = Counter("alertfeat_worker_restarts", "Workers started again after they died", registry=registry)
    if settings.metrics_port:
        from prometheus_client.multiprocess import MultiProcessCollector

        MultiProcessCollector(registry, path=metrics_dir)
        readers = [Health(s, reset=False, input_topic=settings.input_topic) for s in slots]
        serve_ops(settings.metrics_port, registry, HealthGroup(readers), settings.metrics_host)

    stopping = [False]

    def forward(signum: int, _frame) -> None:
        stopping[0] = True
        log.info("signal %d: stopping %d workers", signum, workers)
        for p in procs:
            if p is not None and p.is_alive():
                os.kill(p.pid, signal.SIGTERM)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, forward)
    policy = CrashPolicy(settings.worker_max_restarts, settings.worker_restart_window_s)
    restart_at: dict[int, float] = {}
    code = 0
    while any(p is not None and p.is_alive() for p in procs) or (restart_at and not stopping[0]):
        now = time.monotonic()
        for i, p in enumerate(procs):
            if p is None or p.is_alive() or stopping[0]:
                continue
            if p.exitcode == 0:  # finished on its own (e.g. a SIGTERM sent to it alone)
                procs[i] = None
                continue
            backoff = policy.crashed(now)
            if backoff is None:
                log.error("%s exited with code %s: more than %d crashes within %.0f s; stopping the others",
                          p.name, p.exitcode, policy.max_restarts, policy.window_s)
                code = p.exitcode
                procs[i] = None
                forward(signal.SIGTERM, None)
                break
            log.error("%s exited with code %s; restarting it in %.0f s", p.name, p.exitcode, backoff)
            procs[i] = None
            restart_at[i] = now + backoff
        for i, when in list(restart_at.items()):
            if stopping[0]:
                restart_at.clear()
            elif now >= when:
                del restart_at[i]
                procs[i] = start(i)
                restarts.inc()
        time.sleep(0.2)
    for p in procs:
        if p is not None and p.exitcode:
            code = code or p.exitcode
    return code
