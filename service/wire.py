"""Confluent wire format: byte 0 is the magic 0, bytes 1-4 the big-endian schema id."""

import struct

from .errors import PoisonMessage

HEADER = struct.Struct(">bI")
HEADER_SIZE = HEADER.size  # 5
MAGIC = 0


def frame(schema_id: int, body: bytes) -> bytes:
    return HEADER.pack(MAGIC, schema_id) + body


def schema_id_of(message: bytes) -> int:
    """Schema id of a framed message; PoisonMessage if the frame is malformed."""
    if message is None or len(message) < HEADER_SIZE:
        raise PoisonMessage("truncated", f"message of {0 if message is None else len(message)} bytes has no 5-byte header")
    magic, schema_id = HEADER.unpack_from(message)
    if magic != MAGIC:
        raise PoisonMessage("bad_magic", f"magic byte is {magic & 0xFF:#04x}, expected 0x00")
    return schema_id


def rubin_schema_id(major: int, minor: int) -> int:
    """Rubin's registry ids are MAJOR*100+MINOR, e.g. 1101 for lsst.v11_1."""
    return major * 100 + minor
