"""Avro container files of alerts: find them, and read each record's raw bytes for framing."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import fastavro

from .wire import frame, rubin_schema_id

_VERSIONED_NAME = re.compile(r"lsst\.v(\d+)_(\d+)\.")


def schema_id_from_name(name: str) -> int | None:
    """Rubin's wire id from a schema's full name, e.g. lsst.v11_1.alert -> 1101."""
    match = _VERSIONED_NAME.match(name)
    return rubin_schema_id(int(match.group(1)), int(match.group(2))) if match else None


def alert_files(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given, and every *.avro below each directory, in a stable order."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found.extend(sorted(p.rglob("*.avro")))
        elif p.is_file():
            found.append(p)
        else:
            raise FileNotFoundError(f"no such file or directory: {p}")
    return found


def raw_records(path: Path) -> tuple[str, Iterator[bytes]]:
    """(writer schema name, iterator over each record's undecoded Avro body)."""
    fh = open(path, "rb")
    reader = fastavro.block_reader(fh)
    schema = reader.writer_schema
    parsed = fastavro.parse_schema(schema, _write_hint=False)

    def records() -> Iterator[bytes]:
        with fh:
            for block in reader:
                buf = block.bytes_
                data = buf.getvalue()
                for _ in range(block.num_records):
                    start = buf.tell()
                    fastavro.schemaless_reader(buf, parsed, None)  # decoded only to find the record's end
                    yield data[start:buf.tell()]

    return schema["name"], records()


def framed_messages(paths: Iterable[str | Path], schema_id: int | None = None) -> Iterator[bytes]:
    """Every alert in the files, framed with the Confluent header.

    The id comes from `schema_id` or else from the writer schema's name.
    """
    for path in alert_files(paths):
        name, records = raw_records(path)
        sid = schema_id if schema_id is not None else schema_id_from_name(name)
        if sid is None:
            raise ValueError(f"{path}: cannot tell the schema id from writer schema {name!r}; pass --schema-id")
        for body in records:
            yield frame(sid, body)
