"""Container files are split into records by the op-code skipper, exactly where fastavro's
decoder would split them, whatever the codec and block size."""

from __future__ import annotations

import io

import fastavro
import pytest

from alertfeat.avro_files import raw_records
from alertfeat.schema_store import SchemaStore, bundled_versions
from alertfeat.simulate import simulate_alerts


def _split_by_decoding(path) -> list[bytes]:
    """The oracle: decode each record with fastavro and cut where it stopped."""
    out = []
    with open(path, "rb") as fh:
        reader = fastavro.block_reader(fh)
        parsed = fastavro.parse_schema(reader.writer_schema, _write_hint=False)
        for block in reader:
            data = block.bytes_.getvalue()
            buf = io.BytesIO(data)
            for _ in range(block.num_records):
                start = buf.tell()
                fastavro.schemaless_reader(buf, parsed, None)
                out.append(data[start:buf.tell()])
    return out


def test_every_shipped_sample_file():
    for avsc in bundled_versions().values():
        path = avsc.parent / "sample_data" / "fakeAlert.avro"
        name, records = raw_records(path)
        assert name.startswith("lsst.v")
        assert list(records) == _split_by_decoding(path)


@pytest.mark.parametrize("codec", ["null", "deflate"])
def test_simulated_file_in_small_blocks(tmp_path, codec):
    path = tmp_path / "sim.avro"
    with open(path, "wb") as fh:
        fastavro.writer(fh, SchemaStore().get(1101).parsed, simulate_alerts(60, 6, 1101, seed=5),
                        codec=codec, sync_interval=20_000)
    got = list(raw_records(path)[1])
    assert len(got) == 60
    assert got == _split_by_decoding(path)


def test_a_corrupt_block_is_an_error_not_garbage(tmp_path):
    path = tmp_path / "sim.avro"
    schema = SchemaStore().get(1101).parsed
    with open(path, "wb") as fh:
        fastavro.writer(fh, schema, simulate_alerts(4, 2, 1101, seed=1))
    data = bytearray(path.read_bytes())
    body = _split_by_decoding(path)[0]
    at = data.find(body)
    data[at:at + 11] = b"\xff" * 11  # the record's first field (a long) becomes an 11-byte varint
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="malformed block"):
        list(raw_records(path)[1])
