"""`alertfeat run --workers N`: N consumer processes in one consumer group, one HTTP endpoint.

Each worker is a separate process (one per core: numba kernels and librdkafka then run truly in
parallel). The parent serves /metrics, aggregating the workers' Prometheus files
(prometheus_client's multiprocess mode), and /healthz and /readyz from their shared health
slots. SIGTERM/SIGINT are forwarded; each worker finishes and commits its batch. If a worker
dies, the others are stopped and the process exits with its code, so the orchestrator restarts
the pod instead of running silently short-handed.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import tempfile
import time

from .config import Settings, with_overrides
from .health import SLOT_SIZE, Health, HealthGroup
from .health import serve as serve_ops

log = logging.getLogger(__name__)


def _worker_main(settings: Settings, index: int, slot, log_level: str) -> None:
    logging.basicConfig(level=log_level, format=f"%(asctime)s %(levelname)s worker-{index} %(name)s: %(message)s")
    logging.getLogger("numba").setLevel(logging.WARNING)
    from .app import run_service

    run_service(with_overrides(settings, metrics_port=0), worker_index=index, health=Health(slot))


def run_workers(settings: Settings, workers: int) -> int:
    # prometheus_client picks its multiprocess storage at import, from this variable, in each
    # child (spawned, so it imports afresh).
    metrics_dir = tempfile.mkdtemp(prefix="alertfeat-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    ctx = multiprocessing.get_context("spawn")
    slots = [ctx.Array("d", SLOT_SIZE, lock=False) for _ in range(workers)]
    procs = [ctx.Process(target=_worker_main, args=(settings, i, slots[i], settings.log_level),
                         name=f"alertfeat-worker-{i}") for i in range(workers)]
    for p in procs:
        p.start()

    if settings.metrics_port:
        from prometheus_client import CollectorRegistry
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=metrics_dir)
        serve_ops(settings.metrics_port, registry, HealthGroup([Health(s, reset=False) for s in slots]))

    stopping = [False]

    def forward(signum: int, _frame) -> None:
        stopping[0] = True
        log.info("signal %d: stopping %d workers", signum, workers)
        for p in procs:
            if p.is_alive():
                os.kill(p.pid, signal.SIGTERM)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, forward)
    code = 0
    while any(p.is_alive() for p in procs):
        for p in procs:
            if not p.is_alive() and p.exitcode not in (0, None) and not stopping[0]:
                log.error("%s exited with code %s; stopping the others", p.name, p.exitcode)
                code = p.exitcode
                forward(signal.SIGTERM, None)
        time.sleep(0.2)
    for p in procs:
        if p.exitcode:
            code = code or p.exitcode
    return code
