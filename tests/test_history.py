"""History merging against a real Redis."""

from __future__ import annotations

import time
import uuid

import numpy as np
import redis as redis_lib
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alertfeat.columns import DecodedBatch, Sources
from alertfeat.history import RECORD, TRIM_SLACK_DAYS, HistorySource, RedisHistory, alert_only, history_key
from alertfeat.features import compute_features
from alertfeat.localinfra import LocalRedis, free_port


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


# --- Data integrity (docs/data-quality.md) -------------------------------------------------------

Row = tuple[int, float, int, float, float]  # diaSourceId, mjd, band, flux, flux error


def _rows_batch(object_id: int, rows: list[Row]) -> DecodedBatch:
    """One alert whose triggering diaSource is rows[0] (its epoch is the alert's)."""
    batch = _batch([(object_id, rows[0][1], [(r[0], r[1]) for r in rows])])
    batch.sources.band = np.array([r[2] for r in rows], np.int8)
    batch.sources.flux = np.array([r[3] for r in rows], np.float64)
    batch.sources.flux_err = np.array([r[4] for r in rows], np.float64)
    return batch


def _now_mjd() -> float:
    return time.time() / 86400.0 + 40587.0


def test_stored_records_are_25_bytes_in_versioned_keys(redis_url, key_prefix):
    """Before: 33-byte records, 8 of them the unused pixel flags, under h:. Now 25 bytes under h2:."""
    store = _store(redis_url, key_prefix)
    store.merge(_batch([(4, 60000.0, [(1, 60000.0), (2, 59990.0)])]))
    raw = redis_lib.Redis.from_url(redis_url).get(history_key(key_prefix, 4))
    assert RECORD.itemsize == 25 and len(raw) == 2 * 25
    assert history_key(key_prefix, 4).startswith(f"{key_prefix}h2:")


def test_unusable_sources_never_reach_redis(redis_url, key_prefix):
    """Before: NaN/inf fluxes were stored and came back with every later alert."""
    store = _store(redis_url, key_prefix)
    now = _now_mjd() - 1
    rows = [(1, now, 2, 10.0, 1.0), (2, now - 1, 2, np.nan, 1.0), (3, now - 2, 2, np.inf, 1.0),
            (4, now - 3, 2, 5.0, np.nan), (5, now - 4, 2, 5.0, -1.0), (6, now - 5, -1, 5.0, 1.0),
            (7, np.inf, 2, 5.0, 1.0), (8, 1e9, 2, 5.0, 1.0), (9, now - 6, 3, -5.0, 2.0)]
    lc, _ = store.merge(_rows_batch(11, rows))
    assert sorted(lc.source_id.tolist()) == [1, 9]
    assert sorted(_stored_ids(redis_url, key_prefix, 11)) == [1, 9]


HOSTILE_EPOCHS = st.one_of(
    st.sampled_from([np.inf, -np.inf, np.nan, 0.0, -1.0, 1e9, 1480360995.0, 2.4e6]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=_now_mjd() - 2000, max_value=_now_mjd() + 1e5),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(trigger_mjd=HOSTILE_EPOCHS, prv_mjd=st.lists(HOSTILE_EPOCHS, max_size=3),
       flux=st.sampled_from([1.0, np.nan, np.inf, -np.inf, 3e38]))
def test_no_single_alert_erases_or_freezes_an_objects_history(redis_url, key_prefix, trigger_mjd, prv_mjd, flux):
    """Before: one alert at +inf or 1e9 left an object with 10 stored records with 1, and its next
    normal alert saw 3 points instead of 10 (issue 12). Now whatever one alert carries, the next
    normal alert sees every stored record of its window, and is stored itself."""
    prefix = f"{key_prefix}{uuid.uuid4().hex[:6]}:"
    store = _store(redis_url, prefix)
    now = _now_mjd()
    history = [(k, now - 300 + 30 * k, 2, 100.0 + k, 5.0) for k in range(10)]  # the last at now - 30
    for row in history:  # alerts that carry only their own diaSource: Redis must remember the rest
        store.merge(_rows_batch(1, [row]))
    hostile = [(100, trigger_mjd, 2, flux, 5.0)] + [(101 + k, m, 2, flux, 5.0) for k, m in enumerate(prv_mjd)]
    store.merge(_rows_batch(1, hostile))
    lc, source = store.merge(_rows_batch(1, [(200, now - 0.5, 2, 50.0, 5.0)]))
    ids = set(lc.source_id.tolist())
    assert set(range(10)) | {200} <= ids, sorted(ids)
    assert set(range(10)) | {200} <= set(_stored_ids(redis_url, prefix, 1))
    assert source.tolist() != [HistorySource.ALERT]


def _features_of(store: RedisHistory, redis_url: str, object_id: int, trigger: Row, in_alert: list[Row],
                 in_redis: list[Row]) -> bytes:
    if in_redis:
        rec = np.zeros(len(in_redis), RECORD)
        for name, column in zip(("source_id", "mjd", "band", "flux", "flux_err"), zip(*in_redis)):
            rec[name] = column
        redis_lib.Redis.from_url(redis_url).set(history_key(store.prefix, object_id), rec.tobytes())
    lc, _ = store.merge(_rows_batch(object_id, [trigger] + in_alert))
    return compute_features(lc).tobytes()


ROW_CONTENT = st.tuples(st.floats(-400, 5), st.integers(-1, 5),
                        st.one_of(st.floats(-1e4, 1e4, width=32), st.sampled_from([0.0, -0.0, np.nan])),
                        st.one_of(st.floats(0.5, 100, width=32), st.just(np.inf)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(copies=st.lists(st.tuples(st.integers(1, 5), ROW_CONTENT), min_size=1, max_size=12),
       trigger_copy=ROW_CONTENT, data=st.data())
def test_duplicate_ids_give_the_same_features_in_any_order(redis_url, key_prefix, copies, trigger_copy, data):
    """Before: the first copy of a diaSourceId won; swapping two prvDiaSources changed 29 of the
    192 features. Now the triggering diaSource wins and other copies are chosen by content: any
    order of the sources, and any split between Redis and the alert, gives bit-identical features."""
    t = 60500.0
    trigger = (0, t, 2, 1000.0, 10.0)
    rows = [(sid, t + dt, band, flux, err) for sid, (dt, band, flux, err) in copies]
    rows.append((0, t + trigger_copy[0], *trigger_copy[1:]))  # another copy of the trigger's id
    store = _store(redis_url, f"{key_prefix}{uuid.uuid4().hex[:6]}:")  # examples share the fixture
    reference = _features_of(store, redis_url, 1, trigger, sorted(rows), [])
    order = data.draw(st.permutations(rows), label="order")
    where = data.draw(st.lists(st.booleans(), min_size=len(rows), max_size=len(rows)), label="in_redis")
    got = _features_of(store, redis_url, 2, trigger, [r for r, r_in in zip(order, where) if not r_in],
                       [r for r, r_in in zip(order, where) if r_in])
    assert got == reference


def test_redis_restarted_empty_marks_alerts_partial():
    """Before: after a restart that lost the data, alerts said historySource=redis with 1 of
    their 11 points. Now the missing marker is noticed, and every alert whose window starts
    before the restart says redis_partial until the window has refilled."""
    with LocalRedis() as server:
        store = RedisHistory.from_url(server.url, "r:", 365.0, 400.0, 2.0)
        store.retry_after_s = 0.0
        t0 = 60000.0
        for k in range(10):  # each alert carries only its own diaSource
            store.merge(_batch([(1, t0 + 40 * k, [(k, t0 + 40 * k)])]))
        lc, source = store.merge(_batch([(1, t0 + 400, [(50, t0 + 400)])]))
        assert source.tolist() == [HistorySource.REDIS] and len(lc.source_id) == 10  # complete since t0
        server.stop()
        server.start()  # persistence is off: the server comes back empty
        sources = [store.merge(_batch([(1, t0 + 410, [(51, t0 + 410)])]))[1][0] for _ in range(2)]
        assert sources[0] in (HistorySource.ALERT, HistorySource.REDIS_PARTIAL)  # ALERT: the old connection broke
        assert sources[1] == HistorySource.REDIS_PARTIAL
        lc, source = store.merge(_batch([(1, t0 + 410 + 365, [(52, t0 + 410 + 365)])]))
        assert source.tolist() == [HistorySource.REDIS]  # the window lies wholly after the restart
        assert lc.source_id.tolist() == [51, 52]


def test_format_1_records_are_migrated_on_first_use(redis_url, key_prefix):
    """Operators upgrade with live Redis: an object's format-1 key (33-byte records with flags)
    is read when it has no format-2 key yet, its usable records move to h2:, and h: goes."""
    from alertfeat.decode.fields import FLAG_FIELDS
    from alertfeat.history import LEGACY_RECORD, legacy_key

    client = redis_lib.Redis.from_url(redis_url)
    old = np.zeros(5, LEGACY_RECORD)
    old["source_id"] = [1, 2, 3, 4, 5]
    old["mjd"] = [60000.0, 60010.0, 60020.0, 60030.0, 60100.0 - 365 - TRIM_SLACK_DAYS - 5]
    old["flux"] = [10.0, 11.0, 12.0, np.nan, 13.0]
    old["flux_err"] = 1.0
    old["band"] = 2
    old["flags"][2] = 1 << FLAG_FIELDS.index("pixelFlags_saturatedCenter")
    client.set(legacy_key(key_prefix, 3), old.tobytes())
    client.expire(legacy_key(key_prefix, 3), 10_000)
    store = _store(redis_url, key_prefix)
    lc, _ = store.merge(_batch([(3, 60100.0, [(6, 60100.0)])]))
    assert lc.source_id.tolist() == [1, 2, 6]  # 3 flagged, 4 NaN, 5 out of the window
    assert sorted(_stored_ids(redis_url, key_prefix, 3)) == [1, 2, 6]  # 5 trimmed at once
    assert not client.exists(legacy_key(key_prefix, 3))
    lc, _ = store.merge(_batch([(3, 60110.0, [(7, 60110.0)])]))
    assert lc.source_id.tolist() == [1, 2, 6, 7]
