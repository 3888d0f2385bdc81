"""DiaSource history: merge each alert's own sources with the object's cached history in Redis.

One sorted set per DiaObject, scored by MJD, members are fixed-size packed records that begin
with the diaSourceId, so re-adding an alert's sources changes nothing (idempotent writes).
One pipeline per batch: ZADD the alert's sources, trim to the window, read the window, EXPIRE.
If Redis fails, the batch is computed from the alerts alone and marked as such; the stream
never stops for Redis.
"""

from __future__ import annotations

import logging
import time
from enum import IntEnum

import numpy as np
import redis

from .columns import DecodedBatch, Sources

log = logging.getLogger(__name__)

RECORD = np.dtype(
    [("source_id", "<i8"), ("mjd", "<f8"), ("flux", "<f4"), ("flux_err", "<f4"), ("flags", "<i8"), ("band", "i1")]
)


class HistorySource(IntEnum):
    """Where an enriched alert's light curve came from. Order = the Avro enum's symbols."""

    REDIS = 0  # the alert merged with the object's cached history
    ALERT = 1  # the alert's own sources only (no Redis configured, Redis down, or no diaObjectId)


HISTORY_SYMBOLS = [s.name.lower() for s in HistorySource]


def history_key(prefix: str, object_id: int) -> str:
    # The hash tag keeps every key of one object on one Redis Cluster slot.
    return f"{prefix}h:{{{object_id}}}"


def pack_records(src: Sources, rows: slice) -> np.ndarray:
    rec = np.empty(rows.stop - rows.start, RECORD)
    rec["source_id"] = src.source_id[rows]
    rec["mjd"] = src.mjd[rows]
    rec["flux"] = src.flux[rows]
    rec["flux_err"] = src.flux_err[rows]
    rec["flags"] = src.flags[rows]
    rec["band"] = src.band[rows]
    return rec


def merge_light_curves(parts: list[Sources], window_end: np.ndarray, window_days: float) -> Sources:
    """Union of several ragged sources per alert, deduplicated by source_id and cut to the window.

    Keeps rows with window_end - window_days <= mjd <= window_end; where ids repeat, the
    earliest part wins (callers pass the alert's own sources first). Rows come out sorted
    by (mjd, source_id) within each alert.
    """
    n = len(window_end)
    alert = np.concatenate([np.repeat(np.arange(n), p.counts()) for p in parts])
    priority = np.concatenate([np.full(len(p.source_id), k, np.int8) for k, p in enumerate(parts)])
    cols = {name: np.concatenate([getattr(p, name) for p in parts]) for name in
            ("source_id", "mjd", "band", "flux", "flux_err", "flags")}
    end = window_end[alert]
    keep = (cols["mjd"] >= end - window_days) & (cols["mjd"] <= end)  # NaN mjd fails both
    alert, priority = alert[keep], priority[keep]
    cols = {k: v[keep] for k, v in cols.items()}
    # Deduplicate (alert, source_id), preferring the lowest part index.
    order = np.lexsort((priority, cols["source_id"], alert))
    first = np.ones(len(order), bool)
    first[1:] = (alert[order][1:] != alert[order][:-1]) | (cols["source_id"][order][1:] != cols["source_id"][order][:-1])
    chosen = order[first]
    chosen = chosen[np.lexsort((cols["source_id"][chosen], cols["mjd"][chosen], alert[chosen]))]
    return Sources.from_arrays(
        np.bincount(alert[chosen], minlength=n).astype(np.int64),
        **{k: v[chosen] for k, v in cols.items()},
    )


def alert_sources(batch: DecodedBatch) -> list[Sources]:
    return [batch.sources] if batch.forced is None else [batch.sources, batch.forced]


def alert_only(batch: DecodedBatch, window_days: float) -> tuple[Sources, np.ndarray]:
    lc = merge_light_curves(alert_sources(batch), batch.mjd, window_days)
    return lc, np.full(batch.n, HistorySource.ALERT, np.uint8)


class RedisHistory:
    """The per-object history cache. Only Redis errors are caught; they degrade, never stop."""

    def __init__(self, client: redis.Redis, prefix: str, window_days: float, ttl_days: float,
                 retry_after_s: float = 1.0):
        self.client = client
        self.prefix = prefix
        self.window_days = window_days
        self.ttl_s = int(ttl_days * 86400)
        self.retry_after_s = retry_after_s
        self._down_until = 0.0

    @classmethod
    def from_url(cls, url: str, prefix: str, window_days: float, ttl_days: float, timeout_s: float) -> RedisHistory:
        client = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        return cls(client, prefix, window_days, ttl_days)

    def merge(self, batch: DecodedBatch) -> tuple[Sources, np.ndarray]:
        """(merged light curves, HistorySource per alert)."""
        if time.monotonic() < self._down_until:
            return alert_only(batch, self.window_days)
        try:
            stored = self._exchange(batch)
        except redis.RedisError as exc:
            # Don't hammer a dead Redis every batch: retry after a short pause.
            self._down_until = time.monotonic() + self.retry_after_s
            log.warning("Redis unavailable, using alert-only history: %s", exc)
            return alert_only(batch, self.window_days)
        source = np.where(batch.ok & batch.has_object, HistorySource.REDIS, HistorySource.ALERT).astype(np.uint8)
        return merge_light_curves(alert_sources(batch) + [stored], batch.mjd, self.window_days), source

    def _exchange(self, batch: DecodedBatch) -> Sources:
        """Write each alert's sources, trim, read back the window: one pipeline, one round trip."""
        own = merge_light_curves(alert_sources(batch), batch.mjd, self.window_days)
        pipe = self.client.pipeline(transaction=False)
        asked = []
        for i in np.flatnonzero(batch.ok & batch.has_object):
            key = history_key(self.prefix, int(batch.object_id[i]))
            rows = own.rows(i)
            start = float(batch.mjd[i]) - self.window_days
            if rows.stop > rows.start:
                rec = pack_records(own, rows)
                raw = rec.tobytes()
                size = RECORD.itemsize
                args = []
                for k, mjd in enumerate(rec["mjd"].tolist()):
                    args.append(mjd)
                    args.append(raw[k * size:(k + 1) * size])
                pipe.execute_command("ZADD", key, *args)
            pipe.execute_command("ZREMRANGEBYSCORE", key, "-inf", f"({start!r}")
            pipe.execute_command("ZRANGEBYSCORE", key, repr(start), repr(float(batch.mjd[i])))
            pipe.execute_command("EXPIRE", key, self.ttl_s)
            asked.append((i, rows.stop > rows.start, key))
        replies = pipe.execute() if asked else []
        return self._parse(batch.n, asked, replies)

    def _parse(self, n: int, asked: list[tuple[int, bool, str]], replies: list) -> Sources:
        counts = np.zeros(n, np.int64)
        chunks = []
        pos = 0
        for i, wrote, key in asked:
            members = replies[pos + 1 + wrote]  # reply of ZRANGEBYSCORE
            pos += 3 + wrote
            raw = b"".join(members)
            if len(raw) % RECORD.itemsize:
                log.error("history key %s holds records of an unexpected size; ignored", key)
                continue
            rec = np.frombuffer(raw, RECORD)
            counts[i] = len(rec)
            chunks.append(rec)
        rec = np.concatenate(chunks) if chunks else np.zeros(0, RECORD)
        return Sources.from_arrays(
            counts,
            source_id=rec["source_id"].astype(np.int64),
            mjd=rec["mjd"].astype(np.float64),
            band=rec["band"].astype(np.int8),
            flux=rec["flux"].astype(np.float64),
            flux_err=rec["flux_err"].astype(np.float64),
            flags=rec["flags"].astype(np.int64),
        )
