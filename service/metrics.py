"""Prometheus metrics. Every name starts with alertfeat_."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
STAGE_BUCKETS = (1e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.consumed = Counter("alertfeat_consumed", "Input messages consumed", registry=r)
        self.enriched = Counter("alertfeat_enriched", "Alerts enriched and delivered", registry=r)
        self.dead_lettered = Counter("alertfeat_dead_lettered", "Messages sent to the dead-letter topic",
                                     ["reason"], registry=r)
        self.degraded = Counter("alertfeat_degraded", "Alerts enriched from alert-only history",
                                ["reason"], registry=r)
        self.history_partial = Counter("alertfeat_history_partial",
                                       "Alerts merged with a history store that began inside their window",
                                       registry=r)
        self.sources_excluded = Counter("alertfeat_sources_excluded",
                                        "DiaSources left out of light curves and Redis (docs/data-quality.md)",
                                        ["reason"], registry=r)
        self.latency = Histogram("alertfeat_alert_latency_seconds",
                                 "Input message timestamp to delivered enriched message",
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.batch_stage = Histogram("alertfeat_batch_stage_seconds", "Wall time of one batch in a stage",
                                     ["stage"], buckets=STAGE_BUCKETS, registry=r)
        self.stage_total = Counter("alertfeat_stage_seconds", "Wall time spent per stage (divide by alerts)",
                                   ["stage"], registry=r)
        self.consumer_lag = Gauge("alertfeat_consumer_lag", "Messages behind the partition end (from librdkafka)",
                                  ["topic", "partition"], multiprocess_mode="livemax", registry=r)
        self.batch_size = Histogram("alertfeat_batch_size", "Messages per batch",
                                    buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000), registry=r)

    def observe_stages(self, seconds: dict[str, float]) -> None:
        for stage, s in seconds.items():
            self.batch_stage.labels(stage).observe(s)
            self.stage_total.labels(stage).inc(s)

    @staticmethod
    def total(counter: Counter) -> float:
        """Sum of a counter over all its label values."""
        return sum(s.value for m in counter.collect() for s in m.samples if s.name.endswith("_total"))

