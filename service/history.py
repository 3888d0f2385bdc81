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

Only usable sources (quality.py) are stored, and only alerts whose own epoch is valid read or
write Redis: no single alert can move an object's newest epoch past the wall clock.

A marker key per store holds the epoch from which the store is complete. It is set when absent
(a new store, or Redis restarted empty); alerts whose window starts before it are marked
`redis_partial`. The record format is versioned in the key names (h2:); an object's format-1
key (h:) is migrated on first use. See docs/data-quality.md.

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

from .columns import SOURCE_COLUMNS, DecodedBatch, Sources
from .lightcurve_merge import merge_light_curves, rows_not_in, trigger_rows
from .quality import screen, usable_rows
from .redis_pipe import RawPipeline

log = logging.getLogger(__name__)

# Stored-format version, part of every key name. 1 (keys h:) also held the 8-byte pixel flags;
# they are applied before storing now (docs/data-quality.md), so version 2 drops them.
STORE_FORMAT = 2
RECORD = np.dtype([("source_id", "<i8"), ("mjd", "<f8"), ("flux", "<f4"), ("flux_err", "<f4"), ("band", "i1")])
# Format 1, still read: an object without a format-2 key is migrated from its h: key on first use.
LEGACY_RECORD = np.dtype(
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
    ALERT = 1  # the alert's own sources only (no Redis, Redis down, no diaObjectId, or invalid epoch)
    REDIS_PARTIAL = 2  # as REDIS, but the store began (new, or restarted empty) inside the alert's window


HISTORY_SYMBOLS = [s.name.lower() for s in HistorySource]


def history_key(prefix: str, object_id: int) -> str:
    # The hash tag keeps every key of one object on one Redis Cluster slot.
    return f"{prefix}h{STORE_FORMAT}:{{{object_id}}}"


def legacy_key(prefix: str, object_id: int) -> str:
    return f"{prefix}h:{{{object_id}}}"


def since_key(prefix: str) -> str:
    """The marker: the store holds every usable source from this MJD on. Never expires."""
    return f"{prefix}h{STORE_FORMAT}:since"


def alert_sources(batch: DecodedBatch) -> list[Sources]:
    return [batch.sources] if batch.forced is None else [batch.sources, batch.forced]


def window_ends(batch: DecodedBatch) -> np.ndarray:
    """Each alert's epoch, NaN where it is invalid: such an alert has no window, so no light curve."""
    return np.where(batch.epoch_ok, batch.mjd, np.nan)


def alert_light_curves(batch: DecodedBatch, window_days: float) -> Sources:
    """The alerts' own usable sources, windowed and deduplicated (the triggering diaSource wins)."""
    screen(batch)
    return merge_light_curves(alert_sources(batch), window_ends(batch), window_days,
                              trigger_rows(batch.sources, batch.trigger_kept))


def alert_only(batch: DecodedBatch, window_days: float) -> tuple[Sources, np.ndarray]:
    return alert_light_curves(batch, window_days), np.full(batch.n, HistorySource.ALERT, np.uint8)


def records_to_sources(counts: np.ndarray, rec: np.ndarray) -> Sources:
    return Sources.from_arrays(
        counts,
        source_id=rec["source_id"].astype(np.int64),
        mjd=rec["mjd"].astype(np.float64),
        band=rec["band"].astype(np.int8),
        flux=rec["flux"].astype(np.float64),
        flux_err=rec["flux_err"].astype(np.float64),
        # Format 2 stores only usable sources, so no excluding flag; format 1 kept them.
        flags=rec["flags"].astype(np.int64) if "flags" in rec.dtype.names else np.zeros(len(rec), np.int64),
    )


def interleave(a: Sources, b: Sources) -> Sources:
    """Per alert, a's rows then b's rows."""
    alert_of_row = np.concatenate([np.repeat(np.arange(a.n_alerts), a.counts()),
                                   np.repeat(np.arange(b.n_alerts), b.counts())])
    order = np.argsort(alert_of_row, kind="stable")
    return Sources.from_arrays(a.counts() + b.counts(), **{
        name: np.concatenate([getattr(a, name), getattr(b, name)])[order] for name in SOURCE_COLUMNS})


def sources_to_records(src: Sources, rows: np.ndarray) -> np.ndarray:
    rec = np.empty(len(rows), RECORD)
    for name in RECORD.names:
        rec[name] = getattr(src, name)[rows]
    return rec


def repeated_objects(batch: DecodedBatch, alerts: np.ndarray) -> list[np.ndarray]:
    """Of `alerts`, the indices, in batch order, of each object with more than one of them."""
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
                               **{name: getattr(own, name)[take] for name in SOURCE_COLUMNS})


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
        screen(batch)
        alerts = batch.ok & batch.has_object & batch.epoch_ok
        try:
            stored, mates, since = self._exchange(batch, np.flatnonzero(alerts))
        except (redis.RedisError, RedisClusterException) as exc:  # the latter is not a RedisError
            # Don't hammer a dead Redis every batch: retry after a short pause.
            self._down_until = time.monotonic() + self.retry_after_s
            log.warning("Redis unavailable, using alert-only history: %s", exc)
            return alert_only(batch, self.window_days)
        source = np.where(alerts, HistorySource.REDIS, HistorySource.ALERT).astype(np.uint8)
        source[alerts & (batch.mjd - self.window_days < since)] = HistorySource.REDIS_PARTIAL
        parts = alert_sources(batch) + [stored] + ([] if mates is None else [mates])
        lc = merge_light_curves(parts, window_ends(batch), self.window_days,
                                trigger_rows(batch.sources, batch.trigger_kept))
        return lc, source

    def _exchange(self, batch: DecodedBatch, alerts: np.ndarray) -> tuple[Sources, Sources | None, float]:
        """(each object's usable stored records as they were read, the batch mates' sources or
        None, the store's `since` marker)."""
        if len(alerts) == 0:
            return Sources.empty(batch.n), None, -np.inf
        own = alert_light_curves(batch, self.window_days)
        keys = [history_key(self.prefix, int(o)) for o in batch.object_id[alerts].tolist()]
        marker = since_key(self.prefix)
        pipe = RawPipeline(self.client)
        # A store without the marker is new or lost its data: it is complete from this batch on.
        pipe.add("SET", marker, repr(float(batch.mjd[alerts].max())), "NX", key=marker)
        pipe.add("GET", marker, key=marker)
        for key in keys:
            pipe.add("GET", key, key=key)
        created, since, *replies = pipe.execute()
        since = self._since(created, since)
        stored = self._parse(batch.n, alerts, keys, replies, RECORD)
        stored, migrate = self._with_legacy(batch, alerts, stored)
        stored = stored.kept(usable_rows(stored))  # format 1's flags; else a record stored by hand or a bug
        repeated = repeated_objects(batch, alerts)
        keep = storable(own, newest_epochs(batch.mjd, stored, repeated), self.window_days)
        self._write_back(batch, alerts, keys, own, stored, keep, migrate)
        return stored, batch_mates(own, keep, repeated, batch.n), since

    def _with_legacy(self, batch: DecodedBatch, alerts: np.ndarray, stored: Sources) -> tuple[Sources, list[int]]:
        """Objects without a format-2 key: read their format-1 key, if any (one more round trip).
        Returns the stored records with those added, and the alerts whose object they came from."""
        empty = alerts[stored.counts()[alerts] == 0]
        if len(empty) == 0:
            return stored, []
        keys = [legacy_key(self.prefix, int(o)) for o in batch.object_id[empty].tolist()]
        pipe = RawPipeline(self.client)
        for key in keys:
            pipe.add("GET", key, key=key)
        legacy = self._parse(batch.n, empty, keys, pipe.execute(), LEGACY_RECORD)
        found = empty[legacy.counts()[empty] > 0]
        return (interleave(stored, legacy) if len(found) else stored), found.tolist()

    def _since(self, created, since) -> float:
        for reply in (created, since):
            if isinstance(reply, redis.ResponseError):
                raise reply
        if created is not None:
            log.warning("history store %s had no marker (new, or restarted empty): complete from MJD %s on; "
                        "alerts whose window starts earlier are marked redis_partial", self.prefix, since.decode())
        try:
            return float(since)
        except (TypeError, ValueError):
            log.error("history marker %s holds %r, not an MJD; treating the store as partial", self.prefix, since)
            return np.inf

    def _write_back(self, batch: DecodedBatch, alerts: np.ndarray, keys: list[str], own: Sources,
                    stored: Sources, keep: np.ndarray, migrate: list[int]) -> None:
        """APPEND, once per object, the storable sources Redis lacks; then trim each object once,
        at the cutoff of its newest alert in the batch, if anything held or appended is older.
        The result is the same however the alerts fell into batches. Objects read from format 1
        (the alerts `migrate`) first get those records in format 2, and their old key goes."""
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
        migrated = set()
        for i in migrate:
            key, old = key_of_alert[i], legacy_key(self.prefix, int(batch.object_id[i]))
            if key not in migrated:
                migrated.add(key)
                held = stored.rows(i)
                pipe.add("APPEND", key, sources_to_records(stored, np.arange(held.start, held.stop)).tobytes(), key=key)
                pipe.add("EXPIRE", key, self.ttl_s, key=key)
                pipe.add("UNLINK", old, key=old)
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

    def _parse(self, n: int, alerts: np.ndarray, keys: list[str], replies: list, record: np.dtype) -> Sources:
        counts = np.zeros(n, np.int64)
        chunks = []
        for i, key, raw in zip(alerts.tolist(), keys, replies):
            if isinstance(raw, redis.ResponseError):
                if not str(raw).startswith("WRONGTYPE"):
                    raise raw  # the server cannot answer (cluster down, loading, ...): degrade the batch
                log.error("history key %s holds another type (%s); ignored", key, raw)
            elif raw and len(raw) % record.itemsize:
                log.error("history key %s holds %d bytes, not whole records; ignored", key, len(raw))
            elif raw:
                counts[i] = len(raw) // record.itemsize
                chunks.append(raw)
        return records_to_sources(counts, np.frombuffer(b"".join(chunks), record))
