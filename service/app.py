"""Wiring: build the pipeline and the worker from Settings, and run with signal handling."""

from __future__ import annotations

import logging
import signal
import threading

from .config import Settings
from .decode.fastavro_decoder import FastavroDecoder
from .features import warm_up
from .history import RedisHistory
from .metrics import Metrics
from .pipeline import Pipeline
from .schema_store import SchemaRegistryClient, SchemaStore
from .worker import Worker

log = logging.getLogger(__name__)


def build_pipeline(settings: Settings, *, offline: bool = False) -> Pipeline:
    """The batch pipeline; `offline` means no Redis (history from the alerts alone)."""
    registry = SchemaRegistryClient(settings.schema_registry_url) if settings.schema_registry_url else None
    schemas = SchemaStore(registry)
    history = None
    if not offline and settings.redis_url is not None:
        history = RedisHistory.from_url(
            settings.redis_url.get_secret_value(), settings.redis_key_prefix,
            settings.history_days, settings.history_ttl_days, settings.redis_timeout_s,
        )
    decoder = FastavroDecoder(schemas, include_forced=settings.include_forced_sources)
    warm_up()
    return Pipeline(schemas, decoder, history, settings.history_days)


def run_service(settings: Settings, stop: threading.Event | None = None, metrics: Metrics | None = None) -> None:
    """Run one worker until SIGTERM/SIGINT (or `stop`); the current batch always finishes."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda signum, _frame: (log.info("signal %d: finishing the batch", signum), stop.set()))
    metrics = metrics or Metrics()
    if settings.metrics_port:
        metrics.serve(settings.metrics_port)
    log.info("settings: %s", settings.redacted())
    Worker(settings, build_pipeline(settings), metrics, stop).run()
