"""Wiring: build the pipeline and the worker from Settings, and run with signal handling."""

from __future__ import annotations

import logging
import os
import signal
import threading

from .config import Settings
from .decode.numba_decoder import NumbaDecoder
from .errors import ConfigError
from .features import warm_up
from .health import Health
from .health import serve as serve_ops
from .history import RedisHistory
from .kafka_io import check_client_config
from .metrics import Metrics
from .pipeline import Limits, Pipeline
from .xmatch import CatalogSet
from .schema_store import SchemaRegistryClient, SchemaStore, latest_bundled_id
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
            settings.history_days, settings.history_ttl_days, settings.redis_timeout_s, settings.redis_cluster,
        )
    decoder = NumbaDecoder(schemas, include_forced=settings.include_forced_sources)
    decoder.warm_up(latest_bundled_id())
    warm_up()
    catalogs = None
    if settings.xmatch_catalogs:
        catalogs = CatalogSet.from_settings(settings)  # imports the default catalogs on first use
        catalogs.warm_up()
    limits = Limits(settings.max_message_bytes, settings.max_sources_per_alert)
    return Pipeline(schemas, decoder, history, settings.history_days, catalogs, limits,
                    enriched_subject=f"{settings.enriched_topic}-value" if registry is not None else None,
                    xmatch_subject=f"{settings.xmatch_topic}-value" if registry is not None else None)



def run_service(settings: Settings, stop: threading.Event | None = None, metrics: Metrics | None = None,
                worker_index: int = 0, health: Health | None = None) -> None:
    """Run one worker until SIGTERM/SIGINT (or `stop`); the current batch finishes and commits.

    If it cannot finish within `shutdown_grace_s`, the process exits anyway: the batch was not
    committed, so it is consumed again (at-least-once) or its transaction aborts (exactly-once).
    """
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        def on_signal(signum: int, _frame) -> None:
            log.info("signal %d: finishing the current batch (grace %.0f s)", signum, settings.shutdown_grace_s)
            stop.set()
            watchdog = threading.Timer(settings.shutdown_grace_s, _exit_after_grace)
            watchdog.daemon = True
            watchdog.start()

        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, on_signal)
    metrics = metrics or Metrics()
    health = health or Health()
    if settings.metrics_port:
        serve_ops(settings.metrics_port, metrics.registry, health, settings.metrics_host)
    log.info("settings: %s", settings.redacted())
    Worker(settings, build_pipeline(settings), metrics, stop, worker_index, health).run()


def check_kafka_clients(settings: Settings) -> None:
    """ConfigError if librdkafka refuses the client settings as a whole (e.g. SASL without a
    user, a CA file that does not exist), before anything connects."""
    for kind, config in (("consumer", settings.kafka_consumer()), ("producer", settings.kafka_producer())):
        problem = check_client_config(kind, config, suspects={})
        if problem:
            raise ConfigError(f"invalid configuration: Kafka {kind} settings (kafka_*, librdkafka*): {problem}")


def _exit_after_grace() -> None:
    log.error("shutdown grace period exceeded; exiting without committing the current batch")
    os._exit(3)
