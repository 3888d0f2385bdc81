"""The embedded default broker stays tested: the main end-to-end test again on Tansu (the demo's
broker), whatever broker the rest of the session uses."""

from __future__ import annotations

import pytest

from tests.infra import tansu_endpoint
from tests.test_integration import test_simulated_stream_is_enriched_once_each_and_matches_offline  # noqa: F401


@pytest.fixture(scope="module")
def kafka():
    """Overrides the session's broker for this module only."""
    with tansu_endpoint() as endpoint:
        yield endpoint
