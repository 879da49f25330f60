"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from llm_gateway.routing.circuit_breaker import reset_local_counters
from tests.fakes_fixtures import RemoteFleet


@pytest.fixture
def remote_fleet(remote_fake_fleet: RemoteFleet) -> Iterator[RemoteFleet]:
    """The fakes in their own process, as real providers are, for the deadline checks: in-process
    fake servers compete with the gateway's threads for the GIL, so the timing would measure the
    test rig instead of the gateway. Faults and breaker counters are cleared around each test."""
    reset_local_counters()
    yield remote_fake_fleet
    for fake in remote_fake_fleet.providers.values():
        fake.clear_faults()
    reset_local_counters()
