"""DiaSource history: merge each alert's own sources with the object's cached history in Redis.

One Redis string per DiaObject holds fixed-size packed records (diaSourceId first). Per batch:
1. one pipeline GETs every object's records;
2. the alert's sources that Redis lacks (by diaSourceId) are APPENDed, and the key's expiry is
   refreshed; records that aged out of the window (plus a slack) are trimmed by a small Lua
   script that also drops duplicate ids.
Writing only what is missing makes re-delivery a no-op, and records older than the window
before the object's newest known epoch are never appended, so replaying old alerts cannot bring
back what a trim removed. An alert sees the sources of its object's earlier alerts in the same
batch, and each key is trimmed once at its newest alert's cutoff: light curves and the stored
history are the same however alerts fall into batches (tested). Two concurrent workers can,
rarely, append the same record twice; reads deduplicate by id and the next trim removes the copy.

Why not a sorted set per object (DESIGN.md's first idea): measured on this machine, a ZADD into
a ~75-member listpack zset costs ~12 µs of Redis CPU and a windowed read ~13-30 µs, against ~1 µs
for GET/APPEND of a ~2.5 KB string; the window is applied client-side anyway.

If Redis fails, the batch is computed from the alerts alone and marked as such; the stream never
stops for Redis.
"""

from __future__ import annotations

import logging
import time
from enum import IntEnum

import numpy as np
import redis
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException

from .columns import DecodedBatch, Sources
from .lightcurve_merge import merge_light_curves, rows_not_in
from .redis_pipe import RawPipeline

log = logging.getLogger(__name__)

RECORD = np.dtype(
    [("source_id", "<i8"), ("mjd", "<f8"), ("flux", "<f4"), ("flux_err", "<f4"), ("flags", "<i8"), ("band", "i1")]
)
# Records older than window + slack are trimmed, so a rewrite happens about once a month per
# object instead of at every alert. Reads always cut to the exact window.
TRIM_SLACK_DAYS = 30.0

# Keep records with mjd >= ARGV[1], first occurrence of each id; the key keeps its TTL.
_TRIM_SCRIPT = """
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local cutoff, size = tonumber(ARGV[1]), tonumber(ARGV[2])
local out, seen = {}, {}
for i = 1, #v - size + 1, size do
  local rec = string.sub(v, i, i + size - 1)
  local id = string.sub(rec, 1, 8)
  if struct.unpack('<d', rec, 9) >= cutoff and not seen[id] then
    seen[id] = true
    out[#out + 1] = rec
  end
end
if #out == 0 then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], table.concat(out), 'KEEPTTL') end
return #out
"""


class HistorySource(IntEnum):
    """Where an enriched alert's light curve came from. Order = the Avro enum's symbols."""

    REDIS = 0  # the alert merged with the object's cached history
    ALERT = 1  # the alert's own sources only (no Redis configured, Redis down, or no diaObjectId)


HISTORY_SYMBOLS = [s.name.lower() for s in HistorySource]


def history_key(prefix: str, object_id: int) -> str:
    # The hash tag keeps every key of one object on one Redis Cluster slot.
    return f"{prefix}h:{{{object_id}}}"


def alert_sources(batch: DecodedBatch) -> list[Sources]:
    return [batch.sources] if batch.forced is None else [batch.sources, batch.forced]


def alert_only(batch: DecodedBatch, window_days: float) -> tuple[Sources, np.ndarray]:
    lc = merge_light_curves(alert_sources(batch), batch.mjd, window_days)
    return lc, np.full(batch.n, HistorySource.ALERT, np.uint8)


def records_to_sources(counts: np.ndarray, rec: np.ndarray) -> Sources:
    return Sources.from_arrays(
        counts,
        source_id=rec["source_id"].astype(np.int64),
        mjd=rec["mjd"].astype(np.float64),
        band=rec["band"].astype(np.int8),
        flux=rec["flux"].astype(np.float64),
        flux_err=rec["flux_err"].astype(np.float64),
        flags=rec["flags"].astype(np.int64),
    )


def sources_to_records(src: Sources, rows: np.ndarray) -> np.ndarray:
    rec = np.empty(len(rows), RECORD)
    for name in RECORD.names:
        rec[name] = getattr(src, name)[rows]
    return rec


def repeated_objects(batch: DecodedBatch) -> list[np.ndarray]:
    """Alert indices, in batch order, of each object with more than one alert in the batch."""
    alerts = np.flatnonzero(batch.ok & batch.has_object)
    _, inverse, counts = np.unique(batch.object_id[alerts], return_inverse=True, return_counts=True)
    return [alerts[inverse == g] for g in np.flatnonzero(counts > 1)]


def newest_epochs(alert_mjd: np.ndarray, stored: Sources, repeated: list[np.ndarray]) -> np.ndarray:
    """Per alert, the latest of its own epoch, the newest record Redis holds for its object and
    the epochs of the object's earlier alerts in the batch: what Redis would hold by its turn."""
    newest = np.array(alert_mjd, np.float64)
    held = stored.counts() > 0
    if held.any():
        stored_newest = np.maximum.reduceat(stored.mjd, stored.offsets[:-1][held])
        newest[held] = np.maximum(newest[held], stored_newest)
    for members in repeated:
        newest[members] = np.maximum.accumulate(newest[members])
    return newest


def storable(own: Sources, newest: np.ndarray, window_days: float) -> np.ndarray:
    """Mask over `own` rows worth keeping in Redis: inside the window before the object's newest
    epoch. Anything older no later alert can use, so a late or replayed alert never restores it."""
    return own.mjd >= np.repeat(newest, own.counts()) - window_days


def batch_mates(own: Sources, keep: np.ndarray, repeated: list[np.ndarray], n: int) -> Sources | None:
    """For alerts whose object appears more than once in the batch, the storable sources of its
    *earlier* alerts: what Redis would hold had they been processed one by one (Redis was read
    before any of them wrote). None when every object is unique."""
    if not repeated:
        return None
    rows: list[np.ndarray] = [np.zeros(0, np.int64)] * n
    for members in repeated:
        member_rows = [np.flatnonzero(keep[own.offsets[j]:own.offsets[j + 1]]) + own.offsets[j] for j in members]
        for k in range(1, len(members)):
            rows[members[k]] = np.concatenate(member_rows[:k])
    take = np.concatenate(rows)
    return Sources.from_arrays(np.array([len(r) for r in rows], np.int64),
                               **{name: getattr(own, name)[take] for name in RECORD.names})


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
    def from_url(cls, url: str, prefix: str, window_days: float, ttl_days: float, timeout_s: float,
                 cluster: bool = False) -> RedisHistory:
        """`cluster`: the URL names any node of a Redis Cluster; keys spread over its nodes."""
        if cluster:
            client = RedisCluster.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        else:
            client = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        return cls(client, prefix, window_days, ttl_days)

    @property
    def available(self) -> bool:
        """False while Redis is considered down (after a failure, until the retry pause ends)."""
        return time.monotonic() >= self._down_until

    def merge(self, batch: DecodedBatch) -> tuple[Sources, np.ndarray]:
        """(merged light curves, HistorySource per alert)."""
        if time.monotonic() < self._down_until:
            return alert_only(batch, self.window_days)
        try:
            own, stored, mates = self._exchange(batch)
        except (redis.RedisError, RedisClusterException) as exc:  # the latter is not a RedisError
            # Don't hammer a dead Redis every batch: retry after a short pause.
            self._down_until = time.monotonic() + self.retry_after_s
            log.warning("Redis unavailable, using alert-only history: %s", exc)
            return alert_only(batch, self.window_days)
        source = np.where(batch.ok & batch.has_object, HistorySource.REDIS, HistorySource.ALERT).astype(np.uint8)
        parts = [own, stored] if mates is None else [own, stored, mates]
        return merge_light_curves(parts, batch.mjd, self.window_days), source

    def _exchange(self, batch: DecodedBatch) -> tuple[Sources, Sources, Sources | None]:
        """(the alerts' own windowed sources, each object's stored records as they were read,
        the batch mates' sources or None)."""
        own = merge_light_curves(alert_sources(batch), batch.mjd, self.window_days)
        alerts = np.flatnonzero(batch.ok & batch.has_object)
        if len(alerts) == 0:
            return own, Sources.empty(batch.n), None
        keys = [history_key(self.prefix, int(o)) for o in batch.object_id[alerts].tolist()]
        pipe = RawPipeline(self.client)
        for key in keys:
            pipe.add("GET", key, key=key)
        stored = self._parse(batch.n, alerts, keys, pipe.execute())
        repeated = repeated_objects(batch)
        keep = storable(own, newest_epochs(batch.mjd, stored, repeated), self.window_days)
        self._write_back(batch, alerts, keys, own, stored, keep)
        return own, stored, batch_mates(own, keep, repeated, batch.n)

    def _write_back(self, batch: DecodedBatch, alerts: np.ndarray, keys: list[str], own: Sources,
                    stored: Sources, keep: np.ndarray) -> None:
        """APPEND, once per object, the storable sources Redis lacks; then trim each object once,
        at the cutoff of its newest alert in the batch, if anything held or appended is older.
        The result is the same however the alerts fell into batches."""
        alert_of_row = np.repeat(np.arange(batch.n), own.counts())
        missing = rows_not_in(own.offsets, own.source_id, stored.offsets, stored.source_id, alerts) & keep
        rows = np.flatnonzero(missing)
        key_of_alert = dict(zip(alerts.tolist(), keys))
        oldest: dict[str, float] = {}
        cutoff: dict[str, float] = {}
        for i, key in zip(alerts.tolist(), keys):
            cutoff[key] = max(cutoff.get(key, -np.inf), float(batch.mjd[i]) - self.window_days - TRIM_SLACK_DAYS)
            held = stored.rows(i)
            if held.stop > held.start:
                oldest[key] = float(stored.mjd[held].min())
        pipe = RawPipeline(self.client)
        if len(rows):
            # One object may have several alerts in the batch, all of which read the same state:
            # append each (object, source id) once.
            obj = batch.object_id[alert_of_row[rows]]
            order = np.lexsort((own.source_id[rows], obj))
            rows, obj = rows[order], obj[order]
            first = np.ones(len(rows), bool)
            first[1:] = (obj[1:] != obj[:-1]) | (own.source_id[rows][1:] != own.source_id[rows][:-1])
            rows, obj = rows[first], obj[first]
            records = sources_to_records(own, rows)
            raw = records.tobytes()
            size = RECORD.itemsize
            starts = np.flatnonzero(np.r_[True, obj[1:] != obj[:-1]])
            ends = np.r_[starts[1:], len(rows)]
            for lo, hi in zip(starts.tolist(), ends.tolist()):
                key = key_of_alert[int(alert_of_row[rows[lo]])]
                pipe.add("APPEND", key, raw[lo * size:hi * size], key=key)
                pipe.add("EXPIRE", key, self.ttl_s, key=key)
                oldest[key] = min(oldest.get(key, np.inf), float(records["mjd"][lo:hi].min()))
        for key, oldest_mjd in oldest.items():
            if oldest_mjd < cutoff[key]:
                pipe.add("EVAL", _TRIM_SCRIPT, 1, key, cutoff[key], RECORD.itemsize, key=key)
        for reply in pipe.execute():
            if isinstance(reply, redis.ResponseError):
                log.error("history write failed: %s", reply)

    def _parse(self, n: int, alerts: np.ndarray, keys: list[str], replies: list) -> Sources:
        counts = np.zeros(n, np.int64)
        chunks = []
        for i, key, raw in zip(alerts.tolist(), keys, replies):
            if isinstance(raw, redis.ResponseError):
                if not str(raw).startswith("WRONGTYPE"):
                    raise raw  # the server cannot answer (cluster down, loading, ...): degrade the batch
                log.error("history key %s holds another type (%s); ignored", key, raw)
            elif raw and len(raw) % RECORD.itemsize:
                log.error("history key %s holds %d bytes, not whole records; ignored", key, len(raw))
            elif raw:
                counts[i] = len(raw) // RECORD.itemsize
                chunks.append(raw)
        return records_to_sources(counts, np.frombuffer(b"".join(chunks), RECORD))
