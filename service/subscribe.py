"""Read enriched alerts back from Kafka, decoded with plain fastavro as any consumer would."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError

from .config import Settings
from .decode.fastavro_decoder import decode_body
from .decode.fields import source_field_map
from .decode.schema_walk import alert_record_types
from .enriched_schema import EnrichedSchemas, EnrichmentLayout
from .kafka_io import ClientLog
from .output_json import EnrichedView, xmatch_summary
from .schema_store import SchemaRegistryClient, SchemaStore
from .wire import HEADER_SIZE, schema_id_of


JOIN_ALLOWANCE_S = 30.0


@dataclass
class Received:
    view: EnrichedView
    record: dict[str, Any]
    schema_id: int
    latency_s: float | None  # input message timestamp -> enriched message timestamp
    schema_definition: dict[str, Any] | None = None  # the enriched writer schema


def view_of(record: dict[str, Any], schema_definition: dict[str, Any]) -> EnrichedView:
    fields = source_field_map(alert_record_types(schema_definition).dia_source)
    src = record["diaSource"]
    return EnrichedView(
        dia_source_id=src[fields["source_id"]],
        dia_object_id=src.get(fields.get("object_id", "")),
        mjd=src[fields["mjd"]],
        ra=src[fields["ra"]],
        dec=src[fields["dec"]],
        features_version=record["featuresVersion"],
        history_source=record["historySource"],
        features=record["features"],
        xmatch=xmatch_summary(record["xmatch"]) if "xmatch" in record else None,
    )


def enriched_alerts(settings: Settings, topic: str | None = None, max_messages: int | None = None,
                    idle_timeout_s: float = 10.0, group_id: str | None = None,
                    join_allowance_s: float = JOIN_ALLOWANCE_S) -> Iterator[Received]:
    """Yield enriched alerts from the start of the topic until `max_messages` or `idle_timeout_s` of silence
    (counted from the partition assignment, which may take up to `join_allowance_s`)."""
    registry = SchemaRegistryClient(settings.schema_registry_url) if settings.schema_registry_url else None
    schemas = EnrichedSchemas(SchemaStore(registry), EnrichmentLayout.from_settings(settings))
    consumer = Consumer({
        **settings.kafka_common(),
        **ClientLog(settings.log_repeat_interval_s).config(),  # a broker going away: one line per cause
        "group.id": group_id or f"alertfeat-subscribe-{uuid.uuid4().hex[:8]}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": group_id is not None,
        "session.timeout.ms": 6000,
        "topic.metadata.refresh.interval.ms": 2000,  # notice a topic created after we subscribed
    })
    # The idle clock starts once partitions are assigned: a group join alone can take seconds.
    last = [time.monotonic() + join_allowance_s]

    def on_assign(_consumer, _partitions) -> None:
        last[0] = time.monotonic()

    consumer.subscribe([topic or settings.enriched_topic], on_assign=on_assign)
    seen = 0
    try:
        while max_messages is None or seen < max_messages:
            msg = consumer.poll(0.2)
            if msg is None:
                if time.monotonic() - last[0] > idle_timeout_s:
                    return
                continue
            if msg.error() is not None:
                # A topic that does not exist yet may be created by the service any moment.
                if msg.error().code() not in (KafkaError._PARTITION_EOF, KafkaError.UNKNOWN_TOPIC_OR_PART):
                    raise RuntimeError(f"consume error: {msg.error()}")
                continue
            last[0] = time.monotonic()
            value = msg.value()
            schema_id = schema_id_of(value)
            schema = schemas.get(schema_id)
            record = decode_body(value[HEADER_SIZE:], schema)
            latency = None
            headers = dict(msg.headers() or [])
            if "alertfeat.input.timestamp" in headers:
                latency = (msg.timestamp()[1] - int(headers["alertfeat.input.timestamp"])) / 1000
            seen += 1
            yield Received(view_of(record, schema.definition), record, schema_id, latency, schema.definition)
    finally:
        consumer.close()
