"""Enriched payloads by concatenation: header + input Avro body + encoding of the appended fields."""

from __future__ import annotations

import numpy as np

from .wire import HEADER, HEADER_SIZE, MAGIC


def zigzag_varint(value: int) -> bytes:
    """Avro's encoding of an int/long (and of an enum's symbol index)."""
    z = (value << 1) ^ (value >> 63)
    out = bytearray()
    while z > 0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def enriched_messages(
    messages: list[bytes],
    rows: np.ndarray,
    enriched_ids: np.ndarray,
    features: np.ndarray,
    history_source: np.ndarray,
    features_version: int,
    tails: list[bytes] | None = None,
) -> list[bytes]:
    """Enriched payload for each message index in `rows`.

    features is float32 [n, F]; a record of float fields encodes as little-endian float32,
    so the features block is the row's bytes. `tails` (aligned with `rows`) are the encodings
    of any further appended fields, e.g. the cross-match summary.
    """
    block = np.ascontiguousarray(features, dtype="<f4")
    version = zigzag_varint(features_version)
    enum_bytes = [zigzag_varint(k) for k in range(4)]
    out = []
    for k, i in enumerate(rows.tolist()):
        out.append(
            b"".join((
                HEADER.pack(MAGIC, int(enriched_ids[i])),
                memoryview(messages[i])[HEADER_SIZE:],
                block[i].tobytes(),
                enum_bytes[history_source[i]],
                version,
                tails[k] if tails is not None else b"",
            ))
        )
    return out
