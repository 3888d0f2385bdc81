"""History merging against a real Redis."""

from __future__ import annotations

import numpy as np
import redis as redis_lib

from alertfeat.columns import DecodedBatch, Sources
from alertfeat.history import HistorySource, RedisHistory, alert_only, history_key
from alertfeat.localinfra import free_port


def _batch(alerts: list[tuple[int, float, list[tuple[int, float]]]]) -> DecodedBatch:
    """alerts: (object_id, alert mjd, [(source_id, mjd), ...] with the triggering source first)."""
    n = len(alerts)
    counts = np.array([len(a[2]) for a in alerts])
    ids = np.array([s for a in alerts for s, _ in a[2]], np.int64)
    mjd = np.array([m for a in alerts for _, m in a[2]], np.float64)
    m = len(ids)
    return DecodedBatch(
        ok=np.ones(n, bool), error_reason=[None] * n, error_detail=[None] * n,
        schema_id=np.full(n, 1101, np.int32), alert_id=np.array([a[2][0][0] for a in alerts], np.int64),
        object_id=np.array([a[0] for a in alerts], np.int64), has_object=np.ones(n, bool),
        ra=np.zeros(n), dec=np.zeros(n), mjd=np.array([a[1] for a in alerts]),
        sources=Sources.from_arrays(counts, source_id=ids, mjd=mjd, band=np.full(m, 2, np.int8),
                                    flux=ids.astype(float), flux_err=np.ones(m), flags=np.zeros(m, np.int64)),
        forced=None,
    )


def _store(url: str, prefix: str) -> RedisHistory:
    return RedisHistory.from_url(url, prefix, window_days=365.0, ttl_days=400.0, timeout_s=2.0)


def test_history_accumulates_across_alerts_and_deduplicates(redis_url, key_prefix):
    store = _store(redis_url, key_prefix)
    # Alert 1 carries sources 1,2; alert 2 only its own source 3 (e.g. prvDiaSources withheld).
    lc, src = store.merge(_batch([(7, 60010.0, [(2, 60010.0), (1, 60000.0)])]))
    assert lc.source_id.tolist() == [1, 2] and src.tolist() == [HistorySource.REDIS]
    lc, _ = store.merge(_batch([(7, 60020.0, [(3, 60020.0)])]))
    assert lc.source_id.tolist() == [1, 2, 3]
    # Re-delivery of both alerts adds nothing.
    client = redis_lib.Redis.from_url(redis_url)
    before = client.zcard(history_key(key_prefix, 7))
    store.merge(_batch([(7, 60010.0, [(2, 60010.0), (1, 60000.0)]), (7, 60020.0, [(3, 60020.0)])]))
    assert client.zcard(history_key(key_prefix, 7)) == before == 3
    assert client.ttl(history_key(key_prefix, 7)) > 300 * 86400


def test_same_object_twice_in_one_batch_sees_the_earlier_alert(redis_url, key_prefix):
    store = _store(redis_url, key_prefix)
    lc, _ = store.merge(_batch([(9, 60000.0, [(1, 60000.0)]), (9, 60001.0, [(2, 60001.0)])]))
    assert [lc.source_id[lc.rows(i)].tolist() for i in range(2)] == [[1], [1, 2]]


def test_window_keeps_twelve_months_before_the_alert(redis_url, key_prefix):
    store = _store(redis_url, key_prefix)
    store.merge(_batch([(5, 60000.0, [(1, 60000.0)])]))
    lc, _ = store.merge(_batch([(5, 60365.0, [(2, 60365.0)])]))
    assert lc.source_id.tolist() == [1, 2]  # exactly 365 d is inside
    lc, _ = store.merge(_batch([(5, 60400.0, [(3, 60400.0)])]))
    assert lc.source_id.tolist() == [2, 3]
    client = redis_lib.Redis.from_url(redis_url)
    assert client.zcard(history_key(key_prefix, 5)) == 2  # trimmed in Redis too


def test_sources_after_the_alert_epoch_are_not_used(redis_url, key_prefix):
    store = _store(redis_url, key_prefix)
    store.merge(_batch([(4, 60100.0, [(10, 60100.0)])]))
    lc, _ = store.merge(_batch([(4, 60050.0, [(9, 60050.0)])]))  # an older alert replayed late
    assert lc.source_id.tolist() == [9]


def test_unreachable_redis_degrades_to_alert_only():
    store = RedisHistory.from_url(f"redis://127.0.0.1:{free_port()}/0", "x:", 365.0, 400.0, timeout_s=0.5)
    batch = _batch([(1, 60000.0, [(1, 60000.0), (0, 59990.0)])])
    lc, src = store.merge(batch)
    expected, _ = alert_only(batch, 365.0)
    assert src.tolist() == [HistorySource.ALERT]
    assert lc.source_id.tolist() == expected.source_id.tolist() == [0, 1]
