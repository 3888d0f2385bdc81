"""What the broker holds, asked from outside the service: per-topic end offsets as a
read_uncommitted and a read_committed reader see them, and the group's committed offsets.

Fault tests use it to kill the service at a chosen moment (a transaction open, outputs
delivered but the input not committed) and to check afterwards that the moment was real."""

from __future__ import annotations

import collections
import uuid

from confluent_kafka import Consumer, TopicPartition

from tests.helpers import drain

# For the fault tests' input producers: retries across a broker fault cannot duplicate the input.
IDEMPOTENT = {"enable.idempotence": True}


def dia_source_id(value: bytes) -> int:
    """diaSourceId is the first field of a v8+ alert and of an xmatch record: a zigzag varint
    right after the 5-byte header."""
    shift = result = 0
    for byte in value[5:15]:
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            break
    return (result >> 1) ^ -(result & 1)


class BrokerProbe:
    def __init__(self, bootstrap: str, group_id: str, extra: dict | None = None):
        base = {"bootstrap.servers": bootstrap, "enable.auto.commit": False, **(extra or {})}
        self.uncommitted = Consumer({**base, "group.id": f"probe-{uuid.uuid4().hex[:8]}",
                                     "isolation.level": "read_uncommitted"})
        self.committed = Consumer({**base, "group.id": f"probe-{uuid.uuid4().hex[:8]}",
                                   "isolation.level": "read_committed"})
        # The group's offsets as last committed: a read_committed consumer would ask for stable
        # offsets only, and wait while a transaction holds some pending.
        self.group = Consumer({**base, "group.id": group_id, "isolation.level": "read_uncommitted"})
        self._known: dict[str, list[TopicPartition]] = {}

    def _partitions(self, topic: str) -> list[TopicPartition]:
        if topic not in self._known:
            metadata = self.uncommitted.list_topics(topic, timeout=10).topics[topic]
            if not metadata.partitions:
                return []  # not created yet
            self._known[topic] = [TopicPartition(topic, p) for p in sorted(metadata.partitions)]
        return self._known[topic]

    def end(self, topic: str, committed_only: bool = False) -> int:
        """Sum over partitions of the high watermark, or of the last stable offset (the end a
        read_committed reader sees: it stops before the first open transaction)."""
        reader = self.committed if committed_only else self.uncommitted
        return sum(reader.get_watermark_offsets(tp, timeout=10, cached=False)[1] for tp in self._partitions(topic))

    def group_committed(self, topic: str) -> int:
        offsets = self.group.committed(self._partitions(topic), timeout=10)
        return sum(max(tp.offset, 0) for tp in offsets)

    def open_transaction(self, topic: str) -> bool:
        """Records of a transaction neither committed nor aborted yet are in the log."""
        return self.end(topic) > self.end(topic, committed_only=True)

    def close(self) -> None:
        for consumer in (self.uncommitted, self.committed, self.group):
            consumer.close()


def id_counts(bootstrap: str, topic: str, expected: int, isolation: str, timeout_s: float = 300,
              settle_s: float = 5.0, value_ids=dia_source_id) -> collections.Counter:
    """diaSourceId -> how often a reader with `isolation` sees it in `topic`."""
    got = drain(bootstrap, topic, expected, timeout_s=timeout_s, settle_s=settle_s, isolation=isolation)
    return collections.Counter(value_ids(m.value()) for m in got)


def lost_and_duplicated(counts: collections.Counter, expected: set[int]) -> tuple[int, int]:
    lost = len(expected - set(counts))
    duplicated = sum(c - 1 for c in counts.values())
    return lost, duplicated
