"""Damaged payloads never crash the numba decoder or read out of bounds: truncations, bit flips,
random bytes, hostile counts and lengths. Each is reported as an error (or, where the damage
left valid Avro, decoded exactly as fastavro decodes it), and its valid neighbours are unaffected."""

from __future__ import annotations

import copy
import io
import os
import subprocess
import sys
from functools import cache
from pathlib import Path

import fastavro
import numpy as np

from alertfeat.columns import DecodedBatch, Sources
from alertfeat.decode.fastavro_decoder import FastavroDecoder
from alertfeat.decode.numba_decoder import NumbaDecoder
from alertfeat.decode.scanner import E_BLOCK_SIZE, E_UNION, E_VARINT, ERRORS
from alertfeat.schema_store import SchemaStore, bundled_versions
from alertfeat.simulate import simulate_alerts
from alertfeat.wire import frame
from tests.avro_testing import assert_same_batch, encode, parsed, zigzag
from tests.helpers import encode_alert, sample_alerts

REASONS = {"bad_magic", "unknown_schema", "truncated", "malformed", "trailing_bytes"}
STRICTER = tuple(ERRORS[code][1] for code in (E_VARINT, E_UNION, E_BLOCK_SIZE))
STORE = SchemaStore()


def _without_logical_types(node):
    """fastavro turns timestamps into datetimes and rejects those past year 9999; that is
    Python's limit, not Avro's, and the scanner (which skips timestamps) has no such limit."""
    if isinstance(node, dict):
        return {k: _without_logical_types(v) for k, v in node.items() if k != "logicalType"}
    if isinstance(node, list):
        return [_without_logical_types(v) for v in node]
    return node


@cache
def oracle() -> FastavroDecoder:
    store = SchemaStore()
    for sid in bundled_versions():
        store.add(sid, _without_logical_types(STORE.get(sid).definition))
    return FastavroDecoder(store, include_forced=True)


@cache
def decoder() -> NumbaDecoder:
    return NumbaDecoder(STORE, include_forced=True)


def _encode(definition: dict, record: dict) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(definition, _write_hint=False), record)
    return buf.getvalue()


def field_offset(schema_id: int, record: dict, field: str) -> int:
    """Where `field` starts in the record's body: the length of the fields before it
    (record encoding is concatenation)."""
    definition = STORE.get(schema_id).definition
    k = next(i for i, f in enumerate(definition["fields"]) if f["name"] == field)
    return len(_encode(dict(definition, fields=definition["fields"][:k]), record))


@cache
def simulated() -> list[tuple[int, dict]]:
    """v11_1 alerts with 0, 20 and 80 prvDiaSources, one with cutouts."""
    base = max(simulate_alerts(200, 2, 1101, seed=3), key=lambda a: len(a["prvDiaSources"]))
    out = []
    for k in (0, 20, 80):
        a = copy.deepcopy(base)
        a["prvDiaSources"] = (a["prvDiaSources"] * 3)[:k]
        out.append((1101, a))
    out[1][1]["cutoutDifference"] = os.urandom(3000)
    out[1][1]["cutoutTemplate"] = b""
    return out


@cache
def payloads() -> list[tuple[int, dict, bytes]]:
    """(schema id, record, framed payload): every shipped sample, the simulated alerts, and the
    80-source one again with 2-byte union indexes (valid, and slower paths in the scanner)."""
    pairs = list(sample_alerts().items()) + simulated()
    out = [(sid, record, encode_alert(record, sid)) for sid, record in pairs]
    schema, named = parsed(STORE.get(1101).definition)
    sid, record = simulated()[-1]
    return out + [(sid, record, frame(sid, encode(schema, record, named, overlong=True)))]


def mutants(rng: np.random.Generator) -> list[bytes]:
    out = []
    for sid, record, good in payloads():
        body = good[5:]
        # truncations: the header, then positions through the body
        cuts = np.unique(np.concatenate([np.arange(0, 12), rng.integers(5, len(good), 60), [len(good) - 1]]))
        out += [good[:c] for c in cuts.tolist()]
        # single-bit flips and random byte runs
        for _ in range(60):
            m = bytearray(good)
            at = int(rng.integers(5, len(m)))
            m[at] ^= 1 << int(rng.integers(0, 8))
            out.append(bytes(m))
        for _ in range(15):
            m = bytearray(good)
            at = int(rng.integers(5, len(m)))
            run = rng.integers(0, 256, int(rng.integers(1, 12)), dtype=np.uint8).tobytes()
            m[at:at + len(run)] = run
            out.append(bytes(m))
        # hostile counts and lengths where the arrays and the bytes are
        at = field_offset(sid, record, "prvDiaSources")
        if body[at] == 2:  # the array branch of [null, array]
            head, count_end = body[: at + 1], at + 1 + len(zigzag(len(record["prvDiaSources"])))
            for count in (2**62, -(2**62), 2**31, 10**6, -1, -(2**63)):
                out.append(frame(sid, head + zigzag(count) + body[count_end:]))
            out.append(frame(sid, head + zigzag(-1) + zigzag(-5) + body[count_end:]))  # negative block size
            out.append(frame(sid, head + b"\xff" * 11 + b"\x01" + body[count_end:]))  # a 12-byte varint
        names = [f["name"] for f in STORE.get(sid).definition["fields"]]
        cutout = "cutoutDifference"
        if cutout in names and record.get(cutout) is not None:
            at = field_offset(sid, record, cutout) + 1
            for length in (len(body) * 2, 2**40, -7):
                out.append(frame(sid, body[:at] + zigzag(length) + body[at + len(zigzag(len(record[cutout]))):]))
    # random bytes behind a valid header, and no header at all
    ids = list(bundled_versions())
    for _ in range(40):
        n = int(rng.integers(0, 3000))
        out.append(frame(int(rng.choice(ids)), rng.integers(0, 256, n, dtype=np.uint8).tobytes()))
        out.append(rng.integers(0, 256, int(rng.integers(0, 40)), dtype=np.uint8).tobytes())
    return out


def check(messages: list[bytes], good: list[bytes]) -> tuple[int, int]:
    """Decode each mutant between two valid alerts; returns (rejected, decoded) counts."""
    ours = decoder()
    alone = ours.decode(good)
    assert alone.ok.all()
    rejected = 0
    for start in range(0, len(messages), 50):
        chunk = messages[start:start + 50]
        batch = [good[0]] + [x for m in chunk for x in (m, good[1])]
        got = ours.decode(batch)
        # valid neighbours are unaffected
        for k in range(len(chunk) + 1):
            assert_same_batch(_one(got, 2 * k), _one(alone, 0 if k == 0 else 1))
        # each mutant: an error with a reason, or exactly what fastavro reads
        bad_rows = np.arange(1, len(batch), 2)
        want = oracle().decode([batch[i] for i in bad_rows])
        for j, i in enumerate(bad_rows.tolist()):
            if not got.ok[i]:
                rejected += 1
                assert got.error_reason[i] in REASONS and got.error_detail[i]
                assert got.sources.counts()[i] == 0
                # Where fastavro is laxer (it reads over-long varints, negative union indexes as
                # Python list indexes, and ignores block byte sizes), we may reject what it accepts.
                assert not want.ok[j] or got.error_detail[i].startswith(STRICTER), got.error_detail[i]
            else:
                assert want.ok[j], f"we decoded a payload fastavro rejects ({want.error_detail[j]}): {batch[i][:80]!r}"
                assert_same_batch(_one(got, i), _one(want, j))
    return rejected, len(messages) - rejected


def _one(batch: DecodedBatch, i: int) -> DecodedBatch:
    """Alert i of a batch as a batch of one (for assert_same_batch)."""

    def sources(s):
        if s is None:
            return None
        r = s.rows(i)
        return Sources.from_arrays(np.array([r.stop - r.start]), source_id=s.source_id[r], mjd=s.mjd[r],
                                   band=s.band[r], flux=s.flux[r], flux_err=s.flux_err[r], flags=s.flags[r])

    return DecodedBatch(
        ok=batch.ok[i:i + 1], error_reason=batch.error_reason[i:i + 1], error_detail=batch.error_detail[i:i + 1],
        schema_id=batch.schema_id[i:i + 1], alert_id=batch.alert_id[i:i + 1], object_id=batch.object_id[i:i + 1],
        has_object=batch.has_object[i:i + 1], ra=batch.ra[i:i + 1], dec=batch.dec[i:i + 1], mjd=batch.mjd[i:i + 1],
        sources=sources(batch.sources), forced=sources(batch.forced),
    )


def run_fuzz(seed: int) -> tuple[int, int]:
    good = [payloads()[-2][2], payloads()[0][2]]  # 80 prvDiaSources (v11_1), and the v3 sample
    return check(mutants(np.random.default_rng(seed)), good)


def test_damaged_payloads_are_errors_or_exact_and_never_hurt_neighbours():
    rejected, decoded = run_fuzz(seed=1)
    assert rejected > 1000  # the fuzz really damages payloads


def test_every_error_code_has_a_reason():
    assert {reason for reason, _ in ERRORS.values()} <= REASONS


def test_no_read_out_of_bounds_with_numba_bounds_checking(tmp_path: Path):
    """The same fuzz in a fresh process with NUMBA_BOUNDSCHECK=1: any read past a message's
    buffer raises IndexError there, instead of silently reading memory."""
    env = dict(os.environ, NUMBA_BOUNDSCHECK="1", NUMBA_CACHE_DIR=str(tmp_path / "numba-cache"))
    code = "from tests.test_decode_fuzz import run_fuzz; print(run_fuzz(seed=2))"
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=Path(__file__).parent.parent,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
