"""Avro container files of alerts: find them, and read each record's raw bytes for framing."""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import fastavro

from .decode.opcodes import UnsupportedSchema, compile_skipper
from .decode.scanner import ERRORS, address_of, record_ends
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


def readable_alert_files(paths: Iterable[str | Path]) -> tuple[list[Path], list[str]]:
    """(Avro container files among `paths`, one line per path that is not one: missing, not
    Avro, or a directory without *.avro files). For commands that go on with the good files."""
    files: list[Path] = []
    problems: list[str] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(p.rglob("*.avro"))
            if not found:
                problems.append(f"{p}: no *.avro files in this directory")
            candidates = found
        elif p.exists():
            candidates = [p]
        else:
            problems.append(f"{p}: no such file or directory")
            continue
        for path in candidates:
            problem = _container_problem(path)
            if problem:
                problems.append(f"{path}: {problem}")
            else:
                files.append(path)
    return files, problems


def _container_problem(path: Path) -> str | None:
    try:
        with open(path, "rb") as fh:
            if fh.read(4) != b"Obj\x01":
                return "not an Avro container file (no Obj\\x01 magic)"
            fh.seek(0)
            fastavro.block_reader(fh)
    except OSError as exc:
        return exc.strerror or str(exc)
    except Exception as exc:  # fastavro's errors for a broken header have no common class
        return f"unreadable Avro header ({exc})"
    return None


def alert_count(paths: Iterable[Path]) -> int:
    """Records in the files, from the block headers (nothing is decoded)."""
    total = 0
    for path in paths:
        with open(path, "rb") as fh:
            total += sum(block.num_records for block in fastavro.block_reader(fh))
    return total


def raw_records(path: Path) -> tuple[str, Iterator[bytes]]:
    """(writer schema name, iterator over each record's undecoded Avro body).

    fastavro reads the container (header, blocks, codecs); the op-code skipper finds where each
    record ends without decoding it. A writer schema the op codes cannot express is split by
    decoding with fastavro instead.
    """
    fh = open(path, "rb")
    reader = fastavro.block_reader(fh)
    schema = reader.writer_schema
    try:
        skipper = compile_skipper(schema).code
    except UnsupportedSchema:
        skipper = None
    parsed = fastavro.parse_schema(schema, _write_hint=False) if skipper is None else None

    def split(data: bytes, n_records: int) -> list[int]:
        if skipper is None:
            buf = io.BytesIO(data)
            return [(fastavro.schemaless_reader(buf, parsed, None), buf.tell())[1] for _ in range(n_records)]
        ends, error, pos = record_ends(address_of(data), len(data), 0, n_records, skipper)
        if error:
            raise ValueError(f"{path}: malformed block: {ERRORS[error][1]} at byte {pos} of {len(data)}")
        if pos != len(data):
            raise ValueError(f"{path}: malformed block: {len(data) - pos} bytes after its {n_records} records")
        return ends.tolist()

    def records() -> Iterator[bytes]:
        with fh:
            for block in reader:
                data = block.bytes_.getvalue()
                start = 0
                for end in split(data, block.num_records):
                    yield data[start:end]
                    start = end

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
