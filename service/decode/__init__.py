"""Decoding framed alerts into columns. Every decoder has the same one-method interface."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ..columns import DecodedBatch


class AlertDecoder(Protocol):
    def decode(self, messages: Sequence[bytes]) -> DecodedBatch:
        """Decode framed alerts (Confluent header + Avro body); never raises for bad input."""
        ...
