"""Produce canned alerts from Avro container files to the input topic, framed."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from confluent_kafka import Producer

from .avro_files import framed_messages


def replay(paths: Iterable[str | Path], producer_config: dict, topic: str, *, rate: float | None = None,
           loop: bool = False, schema_id: int | None = None, limit: int | None = None,
           progress: Callable[[int], None] | None = None, stop: threading.Event | None = None) -> int:
    """Send every alert once (or forever with `loop`), at most `rate` per second, until `stop` is
    set. Returns the count."""
    paths = list(paths)
    producer = Producer({**producer_config, "linger.ms": 20})
    sources = itertools.chain.from_iterable(itertools.repeat(paths)) if loop else [paths]
    sent = 0
    start = time.monotonic()
    try:
        for group in sources:
            for message in framed_messages(group, schema_id):
                if (limit is not None and sent >= limit) or (stop is not None and stop.is_set()):
                    return sent
                _produce(producer, topic, message)
                sent += 1
                if progress is not None:
                    progress(1)
                if rate:
                    ahead = sent / rate - (time.monotonic() - start)
                    if ahead > 0:
                        if stop is not None:
                            stop.wait(ahead)
                        else:
                            time.sleep(ahead)
    finally:
        remaining = producer.flush(60)
        if remaining:
            raise RuntimeError(f"{remaining} alerts were not delivered to {topic}")
    return sent


def _produce(producer: Producer, topic: str, value: bytes) -> None:
    while True:
        try:
            producer.produce(topic, value)
            producer.poll(0)
            return
        except BufferError:
            producer.poll(0.05)
