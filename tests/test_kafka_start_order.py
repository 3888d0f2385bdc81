"""Start order: the service starts before its input topic exists (docker-compose starts services
in exactly that order) and picks the topic up within seconds of its creation."""

from __future__ import annotations

import time

from alertfeat.subscribe import enriched_alerts
from tests.helpers import encode_alert, produce_all, sample_alerts


def test_input_topic_created_after_the_service_started_is_consumed_within_seconds(make_settings, service, kafka):
    settings = make_settings()
    samples = sample_alerts()
    with service(settings):
        time.sleep(8)  # subscribed to a topic that does not exist, with librdkafka's metadata settled
        created_at = time.monotonic()
        produce_all(kafka.bootstrap, settings.input_topic, [encode_alert(r, sid) for sid, r in samples.items()])
        first = next(iter(enriched_alerts(settings, max_messages=1, idle_timeout_s=60)), None)
        waited = time.monotonic() - created_at
    print(f"\ninput topic created {waited:.1f} s before its first alert came out enriched")
    assert first is not None and waited < 20
