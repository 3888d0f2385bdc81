"""Throughput against the number of worker processes (alertfeat run --workers N), each run
draining the same backlog from an input topic with as many partitions as the most workers."""

from __future__ import annotations

from alertfeat.avro_files import framed_messages
from alertfeat.simulate import simulated_file

from ._service import bench_settings, prefill, run_service, servers


def run(n_alerts: int = 10_000, n_objects: int = 2_000, workers: str = "1,2", copies: int = 3) -> dict:
    """The backlog is `copies` passes over the simulated alerts (later passes: warm history)."""
    counts = [int(w) for w in str(workers).split(",")]
    partitions = max(counts)
    out: dict = {"alerts": n_alerts, "partitions": partitions, "runs": {}}
    with servers() as (bootstrap, redis_url):
        for w in counts:
            settings = bench_settings(bootstrap, redis_url)
            path = simulated_file(settings.data_dir, n_alerts, n_objects)
            n = prefill(settings, list(framed_messages([path])), partitions, copies)
            result = run_service(settings, n, workers=w)
            out["runs"][f"workers={w}"] = {"alerts_per_s_steady": round(result.steady_alerts_per_s, 1),
                                           "alerts_per_s_overall": round(result.alerts_per_s, 1),
                                           "peak_rss_mb": round(result.peak_rss_mb)}
    out["alerts"] = n
    rates = [out["runs"][f"workers={w}"]["alerts_per_s_steady"] for w in counts]
    out["speedup_vs_first"] = [round(r / rates[0], 2) for r in rates]
    return out
