"""Avro output: the xmatch-topic record and the appended enriched summary decode with fastavro."""

from __future__ import annotations

import io
import json

import fastavro
import numpy as np

from alertfeat.xmatch import (Catalog, CatalogSet, appended_fields, summary_bytes, xmatch_json, xmatch_record_bytes,
                              xmatch_schema)

EXTREME_IDS = [0, -1, 1, 2**63 - 1, -(2**63), 6917521541514092416, -113881, 63, 64, -65]


def _result():
    rng = np.random.default_rng(0)
    n = len(EXTREME_IDS)
    ra = rng.uniform(0, 360, n)
    dec = rng.uniform(-80, 80, n)
    a = Catalog.from_arrays("alpha", ra, dec, ids=EXTREME_IDS, mag=rng.uniform(5, 10, n))
    b = Catalog.from_arrays("beta", ra[:4] + 1e-4, dec[:4], ids=[7, 8, 9, 10], pmra=np.zeros(4), pmdec=np.zeros(4))
    catalogs = CatalogSet([a, b], [5.0, 5.0], max_matches=3, bright_catalog="alpha", bright_mag=7.5)
    alert_ra = np.concatenate([ra, [1.0]])
    alert_dec = np.concatenate([dec, [-89.0]])
    return catalogs, catalogs.match(alert_ra, alert_dec, np.full(n + 1, 61000.0)), alert_ra, alert_dec


def test_xmatch_records_decode_with_the_published_schema():
    catalogs, result, ra, dec = _result()
    n = result.n
    src = np.arange(n, dtype=np.int64) * 1000 - 5
    obj = np.array(EXTREME_IDS + [3], np.int64)
    has_obj = np.arange(n) % 3 != 0
    records = xmatch_record_bytes(result, src, obj, has_obj, ra, dec)
    schema = fastavro.parse_schema(xmatch_schema())
    assert result.counts()[:4].tolist() == [2, 2, 2, 2] and result.counts()[-1] == 0
    for i, body in enumerate(records):
        buf = io.BytesIO(body)
        got = fastavro.schemaless_reader(buf, schema)
        assert buf.tell() == len(body)
        assert got["diaSourceId"] == src[i]
        assert got["diaObjectId"] == (int(obj[i]) if has_obj[i] else None)
        assert (got["ra"], got["dec"]) == (ra[i], dec[i])
        want = [(result.catalogs[result.catalog[k]], int(result.source_id[k]), float(np.float32(result.sep_arcsec[k])))
                for k in range(result.offsets[i], result.offsets[i + 1])]
        assert [(m["catalog"], m["sourceId"], m["sepArcsec"]) for m in got["matches"]] == want
    # fastavro's own encoding of the first record is byte-identical.
    first = fastavro.schemaless_reader(io.BytesIO(records[0]), schema)
    out = io.BytesIO()
    fastavro.schemaless_writer(out, schema, first)
    assert out.getvalue() == records[0]
    # Selected rows only.
    assert xmatch_record_bytes(result, src, obj, has_obj, ra, dec, rows=np.array([3, 1])) == [records[3], records[1]]


def test_summary_block_appends_to_an_alert_record():
    catalogs, result, _, _ = _result()
    alert = {"type": "record", "name": "lsst.v9_9.alert",
             "fields": [{"name": "alertId", "type": "long"}, {"name": "note", "type": ["null", "string"]}]}
    enriched = dict(alert, fields=alert["fields"] + appended_fields(catalogs.names))
    writer, reader = fastavro.parse_schema(alert), fastavro.parse_schema(enriched)
    blocks = summary_bytes(result)
    for i, block in enumerate(blocks):
        body = io.BytesIO()
        fastavro.schemaless_writer(body, writer, {"alertId": i, "note": "x" * i})
        got = fastavro.schemaless_reader(io.BytesIO(body.getvalue() + block), reader)
        assert got["alertId"] == i
        summary = got["xmatch"]
        for c, name in enumerate(catalogs.names):
            k = result.nearest[i, c]
            if k < 0:
                assert summary[name]["sourceId"] is None and np.isnan(summary[name]["sepArcsec"])
                assert np.isnan(summary[name]["mag"])
            else:
                assert summary[name]["sourceId"] == result.source_id[k]
                assert summary[name]["sepArcsec"] == np.float32(result.sep_arcsec[k])
        assert summary["nearBrightStar"] == bool(result.near_bright_star[i])
    assert result.near_bright_star.any() and not result.near_bright_star.all()
    # Fixed size apart from the id varint: 1 + 4 + 4 per catalog without a match, plus the flag.
    assert len(blocks[-1]) == 2 * 9 + 1


def test_appended_fields_without_catalogs_and_json():
    fields = appended_fields([])
    assert [f["name"] for f in fields[0]["type"]["fields"]] == ["nearBrightStar"]
    fastavro.parse_schema({"type": "record", "name": "x.y", "fields": fields})
    catalogs, result, _, _ = _result()
    line = json.dumps(xmatch_json(result, 0), allow_nan=False)
    got = json.loads(line)
    assert set(got) == {"alpha", "beta", "nearBrightStar", "matches"}
    assert got["alpha"]["sourceId"] == EXTREME_IDS[0] and len(got["matches"]) == 2


def test_no_catalogs_configured(tmp_path):
    from alertfeat.config import load_settings

    settings = load_settings(data_dir=tmp_path, xmatch_catalogs=[], xmatch_bright_star_catalog=None)
    catalogs = CatalogSet.from_settings(settings)
    result = catalogs.match(np.array([1.0, 2.0]), np.array([3.0, 4.0]), np.array([60000.0, 60000.0]))
    assert result.counts().tolist() == [0, 0] and result.nearest.shape == (2, 0)
    assert summary_bytes(result) == [b"\x00", b"\x00"]
    assert not (tmp_path / "catalogs").exists()
