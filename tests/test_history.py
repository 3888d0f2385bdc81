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
    assert lc.source_id.tolist() == [1, 2] and src.tolist() == [HistorySource.REDIS_PARTIAL]  # a new store
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
    rec["flux_err"] = 1.0
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
    assert lc.source_id.tolist() == [1] and src.tolist() == [HistorySource.REDIS_PARTIAL]


def test_unreachable_redis_degrades_to_alert_only():
    store = RedisHistory.from_url(f"redis://127.0.0.1:{free_port()}/0", "x:", 365.0, 400.0, timeout_s=0.5)
    batch = _batch([(1, 60000.0, [(1, 60000.0), (0, 59990.0)])])
    lc, src = store.merge(batch)
    expected, _ = alert_only(batch, 365.0)
    assert src.tolist() == [HistorySource.ALERT]
    assert lc.source_id.tolist() == expected.source_id.tolist() == [0, 1]


def _stream(rng: np.random.Generator, n_objects: int, n_alerts: int) -> list[tuple[int, float, list[tuple[int, float]]]]:
    """Alerts of a few objects over ~3 years; each carries its diaSource and the object's
    sources of the 365 days before it (as Rubin's prvDiaSources do)."""
    alerts, next_id = [], 1
    for obj in range(1, n_objects + 1):
        mjd, history = 60000.0, []
        for _ in range(n_alerts):
            mjd += float(rng.uniform(5, 120))
            prv = [(s, m) for s, m in history if m >= mjd - 365]
            history.append((next_id, mjd))
            alerts.append((obj, mjd, [(next_id, mjd)] + prv[::-1]))
            next_id += 1
    return alerts


def _run(store: RedisHistory, alerts, cuts: list[int]):
    lcs = []
    for lo, hi in zip([0] + cuts, cuts + [len(alerts)]):
        lc, _ = store.merge(_batch(alerts[lo:hi]))
        lcs += [lc.source_id[lc.rows(i)].tolist() for i in range(hi - lo)]
    return lcs


def test_batching_does_not_change_light_curves_or_the_stored_history(redis_url, key_prefix):
    """Processed in random batches or one by one, in time order or shuffled (late alerts,
    replays): each alert gets the same light curve and Redis ends with the same records."""
    rng = np.random.default_rng(11)
    for trial in range(12):
        alerts = _stream(rng, n_objects=3, n_alerts=20)
        alerts.sort(key=lambda a: a[1])
        if trial % 2:  # some alerts arrive late, and some are delivered twice
            order = np.argsort(np.arange(len(alerts)) + rng.normal(0, 6, len(alerts)))
            order = np.r_[order, rng.choice(len(alerts), 10)]
            alerts = [alerts[i] for i in order]
        cuts = sorted(rng.choice(np.arange(1, len(alerts)), size=int(rng.integers(3, 15)), replace=False).tolist())
        one_prefix, batch_prefix = f"{key_prefix}{trial}a:", f"{key_prefix}{trial}b:"
        one_by_one = _run(_store(redis_url, one_prefix), alerts, list(range(1, len(alerts))))
        batched = _run(_store(redis_url, batch_prefix), alerts, cuts)
        assert batched == one_by_one, trial
        for obj in (1, 2, 3):
            assert sorted(_stored_ids(redis_url, batch_prefix, obj)) == sorted(_stored_ids(redis_url, one_prefix, obj))
