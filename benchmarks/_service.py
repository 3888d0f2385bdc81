"""Shared by the process-level benchmarks: a backlog on a local (or given) broker and Redis, and
`alertfeat run` as a child process watched through its /metrics endpoint."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from alertfeat.config import Settings, load_settings, with_overrides
from alertfeat.kafka_io import ensure_topics
from alertfeat.localinfra import LocalKafka, LocalRedis, free_port


@contextlib.contextmanager
def servers() -> Iterator[tuple[str, str]]:
    """(bootstrap, redis_url): from KAFKA_BOOTSTRAP_SERVERS/REDIS_URL, else local servers."""
    with contextlib.ExitStack() as stack:
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or stack.enter_context(LocalKafka()).bootstrap
        redis_url = os.environ.get("REDIS_URL") or stack.enter_context(LocalRedis()).url
        yield bootstrap, redis_url


def bench_settings(bootstrap: str, redis_url: str, **overrides) -> Settings:
    suffix = uuid.uuid4().hex[:6]
    values = dict(
        kafka_bootstrap_servers=bootstrap, redis_url=redis_url, group_id=f"bench-{suffix}",
        input_topic=f"bench-in-{suffix}", enriched_topic=f"bench-out-{suffix}", xmatch_topic=f"bench-xm-{suffix}",
        dlq_topic=f"bench-dlq-{suffix}", redis_key_prefix=f"bench{suffix}:", metrics_port=free_port(),
        librdkafka_consumer={"session.timeout.ms": 6000})
    values.update(overrides)
    return with_overrides(load_settings(), **values)


def prefill(settings: Settings, messages: list[bytes], partitions: int, copies: int = 1) -> int:
    from confluent_kafka import Producer

    ensure_topics(settings.kafka_common(), {settings.input_topic: partitions})
    producer = Producer({**settings.kafka_common(), "linger.ms": 20})
    n = 0
    for _ in range(copies):
        for m in messages:
            while True:
                try:
                    producer.produce(settings.input_topic, m)
                    break
                except BufferError:
                    producer.poll(0.05)
            n += 1
    if producer.flush(120):
        raise RuntimeError("prefill not delivered")
    return n


def metric(port: int, name: str) -> float:
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    except OSError:
        return 0.0
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name) and not line.startswith("#"))


@dataclass
class RunResult:
    alerts: int
    seconds: float  # from the first consumed alert to the last
    peak_rss_mb: float  # all processes of the service together
    steady_alerts_per_s: float  # between 25 % and 95 % of the backlog: no start-up, no group joins

    @property
    def alerts_per_s(self) -> float:
        return self.alerts / self.seconds


def run_service(settings: Settings, n: int, workers: int = 1, timeout_s: float = 1800) -> RunResult:
    """Start `alertfeat run`, wait until it consumed `n` alerts, stop it; measure time and memory."""
    import psutil

    env = {k: v for k, v in os.environ.items() if not k.startswith("ALERTFEAT_")}
    env.update(settings.to_env())
    proc = subprocess.Popen([sys.executable, "-m", "alertfeat.cli", "run", "--workers", str(workers)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = 0.0
    start = None
    marks: dict[float, tuple[float, float]] = {}  # fraction -> (time, alerts) when first passed
    deadline = time.monotonic() + timeout_s
    try:
        root = psutil.Process(proc.pid)
        while True:
            done = metric(settings.metrics_port, "alertfeat_consumed_total")
            now = time.monotonic()
            if done and start is None:
                start = now
            for fraction in (0.25, 0.95):
                if done >= fraction * n and fraction not in marks:
                    marks[fraction] = (now, done)
            rss = 0
            for p in [root, *root.children(recursive=True)]:
                try:
                    rss += p.memory_info().rss
                except psutil.Error:  # a worker that just exited
                    pass
            peak = max(peak, rss / 2**20)
            if done >= n:
                (t0, a0), (t1, a1) = marks[0.25], marks[0.95]
                return RunResult(n, now - start, peak, (a1 - a0) / (t1 - t0))
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"alertfeat run stopped or stalled after {done} alerts")
            time.sleep(0.05)
    finally:
        proc.terminate()
        proc.wait(60)
