"""The wire id of xmatch-topic records: registered when a registry is configured, else a
deterministic id that carries a fingerprint of schemas/xmatch.avsc."""

from __future__ import annotations

import json
import zlib
from functools import cache

from .errors import TransientError
from .schema_store import SchemaRegistryClient
from .xmatch import xmatch_schema

XMATCH_ID_BASE = 900_000_000


@cache
def deterministic_xmatch_id() -> int:
    return XMATCH_ID_BASE + (zlib.crc32(json.dumps(xmatch_schema(), sort_keys=True).encode()) & 0xFFFF)


class XmatchSchema:
    def __init__(self, registry: SchemaRegistryClient | None, subject: str | None):
        self.registry = registry if subject is not None else None
        self.subject = subject
        self._id: int | None = None

    def id(self) -> int:
        if self._id is None:
            if self.registry is None:
                self._id = deterministic_xmatch_id()
            else:
                try:
                    self._id = self.registry.register(self.subject, xmatch_schema())
                except OSError as exc:
                    raise TransientError(f"registering the xmatch schema under {self.subject} failed: {exc}") \
                        from exc
        return self._id
