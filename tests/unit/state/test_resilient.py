"""Degraded mode: a failing primary never fails a request; local limits are conservative."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from llm_gateway.providers.base import RateLimitInfo
from llm_gateway.state.memory import MemoryStore
from llm_gateway.state.resilient import ResilientStore
from llm_gateway.state.store import ModelKey, WindowLimit

KEY = ModelKey("groq", "m")
LIMIT = WindowLimit(60, max_requests=10, max_tokens=None)
NOW = 1_700_000_040.0


class Broken:
    """A primary whose every call raises, counting calls."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        def fail(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            raise self.error

        return fail


THROTTLED = ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}, "BatchGetItem")


@pytest.mark.parametrize("error", [THROTTLED, EndpointConnectionError(endpoint_url="http://x")])
def test_failures_degrade_to_half_the_limits(error: Exception, caplog: pytest.LogCaptureFixture) -> None:
    seen: list[str] = []
    store = ResilientStore(Broken(error), on_degraded=lambda op, exc: seen.append(op))
    snapshot = store.load({KEY: [LIMIT]}, NOW)
    assert snapshot.degraded and snapshot.models[KEY].windows[0].limit.max_requests == 5
    admitted = [store.reserve(KEY, [LIMIT], 1, NOW) is not None for _ in range(10)]
    assert sum(admitted) == 5
    assert seen == ["load"] and "degraded" in caplog.text


def test_primary_is_retried_after_the_pause() -> None:
    primary = Broken(THROTTLED)
    store = ResilientStore(primary, retry_after_s=30)
    store.load({KEY: [LIMIT]}, NOW)
    store.load({KEY: [LIMIT]}, NOW + 10)
    assert primary.calls == 1
    store.load({KEY: [LIMIT]}, NOW + 31)
    assert primary.calls == 2


def test_healthy_primary_is_used_and_cooldowns_are_kept_locally() -> None:
    primary = MemoryStore()
    store = ResilientStore(primary)
    reservation = store.reserve(KEY, [LIMIT], 5, NOW)
    assert reservation is not None
    store.reconcile(reservation, 7, NOW)
    store.cool_down(KEY, NOW + 20, "429", NOW)
    store.record_headers(KEY, RateLimitInfo(remaining_requests=1), NOW)
    snap = store.load({KEY: [LIMIT]}, NOW)
    assert not snap.degraded and snap.models[KEY].windows[0].tokens == 7
    assert store.fallback.load({KEY: []}, NOW).models[KEY].cooldown is not None


def test_local_reservations_reconcile_locally() -> None:
    primary = Broken(THROTTLED)
    store = ResilientStore(primary)
    reservation = store.reserve(KEY, [LIMIT], 5, NOW)
    assert reservation is not None
    calls = primary.calls
    store.reconcile(reservation, 9, NOW + 100)  # primary would be retried by now, but this one is local
    assert primary.calls == calls
    assert store.fallback.load({KEY: [LIMIT]}, NOW).models[KEY].windows[0].tokens == 9
