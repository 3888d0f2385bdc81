"""Poison messages go to the dead-letter topic with the reason; their neighbours are enriched."""

from __future__ import annotations

import os

from confluent_kafka import Consumer, TopicPartition

from alertfeat.wire import frame
from tests.helpers import drain, encode_alert, produce_all, sample_alerts


def test_poison_messages_are_dead_lettered_and_the_stream_continues(make_settings, service, kafka):
    settings = make_settings()
    good = encode_alert(sample_alerts()[1101], 1101)
    poison = {
        "random": os.urandom(300),
        "bad_magic": b"\x07" + good[1:],
        "unknown_schema": frame(4242, good[5:]),
        "truncated": good[: len(good) // 2],
        "trailing": good + b"\x00\x01",
        "empty": b"",
    }
    messages = []
    for p in poison.values():
        messages += [good, p]
    messages.append(good)
    produce_all(kafka.bootstrap, settings.input_topic, messages)

    with service(settings) as svc:
        enriched = drain(kafka.bootstrap, settings.enriched_topic, len(poison) + 1)
        dead = drain(kafka.bootstrap, settings.dlq_topic, len(poison))
        m = svc.metrics
    assert len(enriched) == len(poison) + 1
    assert len(dead) == len(poison)
    by_value = {d.value(): dict(d.headers()) for d in dead}
    assert set(by_value) == set(poison.values())
    reasons = {name: by_value[value]["alertfeat.error.class"].decode() for name, value in poison.items()}
    assert reasons["bad_magic"] == "bad_magic"
    assert reasons["unknown_schema"] == "unknown_schema"
    assert reasons["truncated"] == "truncated"
    assert reasons["trailing"] == "trailing_bytes"
    assert reasons["empty"] == "truncated"
    for headers in by_value.values():
        assert headers["alertfeat.source.topic"].decode() == settings.input_topic
        assert int(headers["alertfeat.source.offset"]) >= 0
        assert headers["alertfeat.error.message"]
    # accounting and committed offsets
    assert m.total(m.consumed) == len(messages)
    assert m.total(m.enriched) + m.total(m.dead_lettered) == len(messages)
    probe = Consumer({"bootstrap.servers": kafka.bootstrap, "group.id": settings.group_id})
    committed = probe.committed([TopicPartition(settings.input_topic, 0)], timeout=10)
    probe.close()
    assert committed[0].offset == len(messages)
