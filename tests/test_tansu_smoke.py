"""The embedded default broker stays tested: the main end-to-end test again on Tansu (the demo's
broker), whatever broker the rest of the session uses; and the start-order test, which only Tansu
makes discriminating (with librdkafka's default 300 s metadata refresh the service found a topic
created after it started only after 63 s there, but after 2 s on Apache Kafka 4.1)."""

from __future__ import annotations

import pytest

from tests.infra import tansu_endpoint
from tests.test_integration import test_simulated_stream_is_enriched_once_each_and_matches_offline  # noqa: F401
from tests.test_kafka_start_order import (  # noqa: F401
    test_input_topic_created_after_the_service_started_is_consumed_within_seconds)


@pytest.fixture(scope="module")
def kafka():
    """Overrides the session's broker for this module only."""
    with tansu_endpoint() as endpoint:
        yield endpoint
