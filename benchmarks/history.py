"""History stage in steady state: a time-ordered stream of simulated alerts, batch by batch,
against a real Redis. Anchor: a bare redis-py pipeline that only GETs the same keys."""

from __future__ import annotations

import contextlib
import os
import time
import uuid

import numpy as np
import redis

from alertfeat.avro_files import framed_messages
from alertfeat.config import load_settings
from alertfeat.decode.fastavro_decoder import FastavroDecoder
from alertfeat.simulate import simulated_file
from alertfeat.history import RedisHistory, history_key
from alertfeat.localinfra import LocalRedis
from alertfeat.schema_store import SchemaStore


def _subset(batch, rows):
    """The alerts `rows` of a decoded batch, as a batch of their own."""
    from alertfeat.columns import DecodedBatch, Sources

    src = batch.sources
    take = np.concatenate([np.arange(src.offsets[i], src.offsets[i + 1]) for i in rows]) if len(rows) else []
    take = np.asarray(take, np.int64)
    return DecodedBatch(
        ok=batch.ok[rows], error_reason=[batch.error_reason[i] for i in rows],
        error_detail=[batch.error_detail[i] for i in rows], schema_id=batch.schema_id[rows],
        alert_id=batch.alert_id[rows], object_id=batch.object_id[rows], has_object=batch.has_object[rows],
        ra=batch.ra[rows], dec=batch.dec[rows], mjd=batch.mjd[rows],
        sources=Sources.from_arrays(np.diff(src.offsets)[rows], **{
            k: getattr(src, k)[take] for k in ("source_id", "mjd", "band", "flux", "flux_err", "flags")}),
        forced=None,
    )


def _timed(store, batches) -> float:
    total = 0.0
    for b in batches:
        t = time.perf_counter()
        store.merge(b)
        total += time.perf_counter() - t
    return total


def run(n_alerts: int = 10_000, n_objects: int = 2_000, batch_size: int = 1000) -> dict:
    """Cold = an object's first alert (Redis learns its ~80 prvDiaSources); warm = later alerts
    (Redis has the history; the alert adds its new diaSource). Rubin's steady state is mostly warm."""
    settings = load_settings()
    path = simulated_file(settings.data_dir, n_alerts, n_objects)
    messages = list(framed_messages([path]))
    decoded = FastavroDecoder(SchemaStore()).decode(messages)
    _, first = np.unique(decoded.object_id, return_index=True)
    is_first = np.zeros(decoded.n, bool)
    is_first[first] = True
    chunks = lambda rows: [_subset(decoded, rows[i:i + batch_size]) for i in range(0, len(rows), batch_size)]
    cold, warm = chunks(np.flatnonzero(is_first)), chunks(np.flatnonzero(~is_first))
    with contextlib.ExitStack() as stack:
        url = os.environ.get("REDIS_URL") or stack.enter_context(LocalRedis()).url
        prefix = f"bench{uuid.uuid4().hex[:6]}:"
        store = RedisHistory.from_url(url, prefix, 365.0, 400.0, 5.0)
        store.merge(cold[0])  # compile the kernels, then start from an empty Redis
        store.client.delete(*store.client.keys(f"{prefix}*"))
        cold_s = _timed(store, cold)
        warm_s = _timed(store, warm)
        client = redis.Redis.from_url(url)
        t = time.perf_counter()
        for b in warm:
            pipe = client.pipeline(transaction=False)
            for o in b.object_id.tolist():
                pipe.get(history_key(prefix, o))
            pipe.execute()
        bare_s = time.perf_counter() - t
        client.delete(*client.keys(f"{prefix}*"))
    n_cold, n_warm = int(is_first.sum()), int((~is_first).sum())
    warm_us = 1e6 * warm_s / n_warm
    bare_us = 1e6 * bare_s / n_warm
    return {
        "alerts": decoded.n, "batch_size": batch_size,
        "mean_sources_per_alert": round(float(np.diff(decoded.sources.offsets).mean()), 1),
        "cold_us_per_alert": round(1e6 * cold_s / n_cold, 1),
        "warm_us_per_alert": round(warm_us, 1),
        "bare_read_us_per_alert": round(bare_us, 1),
        "warm_over_bare_read": round(warm_us / bare_us, 2),
    }
