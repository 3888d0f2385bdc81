"""History merging against a real Redis."""

from __future__ import annotations

import numpy as np
import redis as redis_lib

from alertfeat.columns import DecodedBatch, Sources
from alertfeat.history import RECORD, TRIM_SLACK_DAYS, HistorySource, RedisHistory, alert_only, history_key
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


def _stored_ids(url: str, prefix: str, object_id: int) -> list[int]:
    raw = redis_lib.Redis.from_url(url).get(history_key(prefix, object_id)) or b""
    return np.frombuffer(raw, RECORD)["source_id"].tolist()


def test_history_accumulates_across_alerts_and_replays_add_nothing(redis_url, key_prefix):
    store = _store(redis_url, key_prefix)
    # Alert 1 carries sources 1,2; alert 2 only its own source 3 (e.g. prvDiaSources withheld).
    lc, src = store.merge(_batch([(7, 60010.0, [(2, 60010.0), (1, 60000.0)])]))
    assert lc.source_id.tolist() == [1, 2] and src.tolist() == [HistorySource.REDIS]
    lc, _ = store.merge(_batch([(7, 60020.0, [(3, 60020.0)])]))
    assert lc.source_id.tolist() == [1, 2, 3]
    raw_before = redis_lib.Redis.from_url(redis_url).get(history_key(key_prefix, 7))
    # Re-delivery of both alerts changes nothing in Redis.
    store.merge(_batch([(7, 60010.0, [(2, 60010.0), (1, 60000.0)]), (7, 60020.0, [(3, 60020.0)])]))
    client = redis_lib.Redis.from_url(redis_url)
    assert client.get(history_key(key_prefix, 7)) == raw_before
    assert sorted(_stored_ids(redis_url, key_prefix, 7)) == [1, 2, 3]
    assert client.ttl(history_key(key_prefix, 7)) > 300 * 86400


def test_same_object_twice_in_one_batch(redis_url, key_prefix):
    store = _store(redis_url, key_prefix)
    # The second alert's prvDiaSources lack the first alert's source: it must still see it,
    # and Redis must hold each source once.
    lc, _ = store.merge(_batch([(9, 60000.0, [(1, 60000.0)]), (9, 60001.0, [(2, 60001.0), (1, 60000.0)]),
                                (9, 60002.0, [(3, 60002.0)])]))
    assert [lc.source_id[lc.rows(i)].tolist() for i in range(3)] == [[1], [1, 2], [1, 2, 3]]
    assert sorted(_stored_ids(redis_url, key_prefix, 9)) == [1, 2, 3]


def test_window_keeps_twelve_months_before_the_alert(redis_url, key_prefix):
    store = _store(redis_url, key_prefix)
    store.merge(_batch([(5, 60000.0, [(1, 60000.0)])]))
    lc, _ = store.merge(_batch([(5, 60365.0, [(2, 60365.0)])]))
    assert lc.source_id.tolist() == [1, 2]  # exactly 365 d is inside
    lc, _ = store.merge(_batch([(5, 60390.0, [(3, 60390.0)])]))
    assert lc.source_id.tolist() == [2, 3]
    assert sorted(_stored_ids(redis_url, key_prefix, 5)) == [1, 2, 3]  # out of the window, inside the slack
    store.merge(_batch([(5, 60365.0 + 365.0 + TRIM_SLACK_DAYS + 1, [(4, 60365.0 + 365.0 + TRIM_SLACK_DAYS + 1)])]))
    assert sorted(_stored_ids(redis_url, key_prefix, 5)) == [3, 4]  # trimmed in Redis


def test_replaying_an_old_alert_does_not_restore_trimmed_records(redis_url, key_prefix):
    store = _store(redis_url, key_prefix)
    old_alert = (6, 60000.0, [(2, 60000.0), (1, 59700.0)])
    store.merge(_batch([old_alert]))
    new_alert = (6, 60400.0, [(3, 60400.0), (2, 60000.0)])
    store.merge(_batch([new_alert]))
    assert _stored_ids(redis_url, key_prefix, 6) == [3]  # 1 and 2 trimmed: past 60400 - 365 - slack
    lc, _ = store.merge(_batch([old_alert]))  # redelivered late
    assert lc.source_id.tolist() == [1, 2]  # its own light curve is complete
    assert _stored_ids(redis_url, key_prefix, 6) == [3]  # nothing a later alert could use came back
    # Both replayed in one batch: the newer alert's trim check reads Redis before the old one writes.
    store.merge(_batch([old_alert, new_alert]))
    assert _stored_ids(redis_url, key_prefix, 6) == [3]


def test_trim_removes_duplicate_records(redis_url, key_prefix):
    client = redis_lib.Redis.from_url(redis_url)
    rec = np.zeros(3, RECORD)
    rec["source_id"] = [1, 1, 2]
    rec["mjd"] = [60000.0, 60000.0, 60100.0]
    client.set(history_key(key_prefix, 3), rec.tobytes())  # as after a rare concurrent double append
    store = _store(redis_url, key_prefix)
    lc, _ = store.merge(_batch([(3, 60200.0, [(5, 60200.0)])]))
    assert lc.source_id.tolist() == [1, 2, 5]  # reads deduplicate
    store.merge(_batch([(3, 60000.0 + 365 + TRIM_SLACK_DAYS + 1, [(6, 60000.0 + 365 + TRIM_SLACK_DAYS + 1)])]))
    assert sorted(_stored_ids(redis_url, key_prefix, 3)) == [2, 5, 6]


def test_sources_after_the_alert_epoch_are_not_used(redis_url, key_prefix):
    store = _store(redis_url, key_prefix)
    store.merge(_batch([(4, 60100.0, [(10, 60100.0)])]))
    lc, _ = store.merge(_batch([(4, 60050.0, [(9, 60050.0)])]))  # an older alert replayed late
    assert lc.source_id.tolist() == [9]


def test_corrupt_key_is_ignored_not_fatal(redis_url, key_prefix):
    redis_lib.Redis.from_url(redis_url).set(history_key(key_prefix, 8), b"not records")
    lc, src = _store(redis_url, key_prefix).merge(_batch([(8, 60000.0, [(1, 60000.0)])]))
    assert lc.source_id.tolist() == [1] and src.tolist() == [HistorySource.REDIS]


def test_unreachable_redis_degrades_to_alert_only():
    store = RedisHistory.from_url(f"redis://127.0.0.1:{free_port()}/0", "x:", 365.0, 400.0, timeout_s=0.5)
    batch = _batch([(1, 60000.0, [(1, 60000.0), (0, 59990.0)])])
    lc, src = store.merge(batch)
    expected, _ = alert_only(batch, 365.0)
    assert src.tolist() == [HistorySource.ALERT]
    assert lc.source_id.tolist() == expected.source_id.tolist() == [0, 1]
