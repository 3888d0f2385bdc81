"""Memory under backpressure: a 100,000-alert backlog drained while the producer's local queue
is kept small (as when the output broker is slower than the input). Peak RSS must stay
bounded by the batch size and librdkafka's queues, not grow with the backlog."""

from __future__ import annotations

from alertfeat.avro_files import framed_messages
from alertfeat.simulate import simulated_file

from ._service import bench_settings, prefill, run_service, servers


def run(n_alerts: int = 100_000, batch_size: int = 1000, producer_queue_kbytes: int = 16_384) -> dict:
    with servers() as (bootstrap, redis_url):
        settings = bench_settings(
            bootstrap, redis_url, batch_size=batch_size,
            librdkafka_producer={"queue.buffering.max.kbytes": producer_queue_kbytes},
            librdkafka_consumer={"session.timeout.ms": 6000, "queued.max.messages.kbytes": 65536})
        path = simulated_file(settings.data_dir, 10_000, 2_000)
        messages = list(framed_messages([path]))
        copies = -(-n_alerts // len(messages))
        n = prefill(settings, messages, 1, copies)  # the same alerts again: history writes are no-ops
        result = run_service(settings, n)
    return {
        "backlog_alerts": n, "backlog_mb": round(n * sum(map(len, messages)) / len(messages) / 2**20),
        "batch_size": batch_size, "producer_queue_kbytes": producer_queue_kbytes,
        "alerts_per_s": round(result.alerts_per_s, 1), "alerts_per_s_steady": round(result.steady_alerts_per_s, 1),
        "peak_rss_mb": round(result.peak_rss_mb),
    }
