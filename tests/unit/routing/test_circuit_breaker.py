"""Breaker transitions through Powertools with the in-memory persistence layer."""

from __future__ import annotations

import time

import pytest

from llm_gateway.observability.metrics import BREAKER_TRANSITIONS, RecordingMetrics
from llm_gateway.providers.base import ProviderError
from llm_gateway.routing.breaker_store import MemoryBreakerPersistence
from llm_gateway.routing.circuit_breaker import (
    BreakerOpen,
    BreakerSettings,
    CircuitBreakers,
    blocked_from,
    blocked_keys,
    model_circuit,
    provider_circuit,
    reset_local_counters,
)
from llm_gateway.state.store import ModelKey

KEY = ModelKey("groq", "llama")
OTHER = ModelKey("groq", "gemma")


@pytest.fixture(autouse=True)
def _fresh_counters():
    reset_local_counters()
    yield
    reset_local_counters()


def failing(status=500, code=None, transport=None):
    def call():
        raise ProviderError("x", provider=KEY.provider, model=KEY.model, status=status, code=code, transport=transport)
    return call


def breakers(**kw) -> tuple[CircuitBreakers, RecordingMetrics]:
    metrics = RecordingMetrics()
    settings = BreakerSettings(failure_threshold=kw.pop("threshold", 3), recovery_timeout_s=kw.pop("recovery", 30))  # tests of recovery pass their own
    return CircuitBreakers(MemoryBreakerPersistence(), settings, metrics=metrics), metrics


def test_closed_to_open_after_consecutive_counted_failures() -> None:
    cb, metrics = breakers()
    for _ in range(3):
        with pytest.raises(ProviderError):
            cb.call(KEY, failing(500))
    calls = []
    with pytest.raises(BreakerOpen):
        cb.call(KEY, lambda: calls.append(1))
    assert calls == []
    assert metrics.total(BREAKER_TRANSITIONS, circuit=model_circuit(KEY), to_state="OPEN") == 1
    # the model circuit is open, the provider's other models still flow
    assert cb.call(OTHER, lambda: "ok") == "ok"


def test_uncounted_errors_never_trip() -> None:
    cb, _ = breakers(threshold=2)
    for _ in range(5):
        with pytest.raises(ProviderError):
            cb.call(KEY, failing(429, "rate_limit_exceeded"))
        with pytest.raises(ProviderError):
            cb.call(KEY, failing(400, "invalid_request_error"))
    assert cb.call(KEY, lambda: "still closed") == "still closed"


def test_success_resets_the_streak() -> None:
    cb, _ = breakers(threshold=3)
    for _ in range(4):
        for _ in range(2):
            with pytest.raises(ProviderError):
                cb.call(KEY, failing(503))
        cb.call(KEY, lambda: None)
    assert cb.call(KEY, lambda: "closed") == "closed"


def test_provider_scope_blocks_every_model_of_the_provider() -> None:
    cb, _ = breakers(threshold=2)
    for _ in range(2):
        with pytest.raises(ProviderError):
            cb.call(KEY, failing(401, "invalid_api_key"))
    with pytest.raises(BreakerOpen) as rejected:
        cb.call(OTHER, lambda: "never")
    assert rejected.value.circuit == provider_circuit("groq")
    items = cb.persistence.read_items([provider_circuit("groq")])
    assert blocked_keys([KEY, OTHER, ModelKey("gemini", "flash")], items, time.time(), 30).keys() == {KEY, OTHER}


def test_open_half_open_probe_closes_on_success_and_reopens_on_failure() -> None:
    cb, metrics = breakers(threshold=1, recovery=1)
    with pytest.raises(ProviderError):
        cb.call(KEY, failing(500))
    items = cb.persistence.read_items([model_circuit(KEY)])
    assert blocked_from(items, time.time(), 1)
    time.sleep(1.05)
    assert blocked_from(items, time.time() + 0.1, 1) == {}  # probe-eligible: not blocked
    with pytest.raises(ProviderError):
        cb.call(KEY, failing(500))  # the probe fails: re-open
    with pytest.raises(BreakerOpen):
        cb.call(KEY, lambda: "no")
    time.sleep(1.05)
    assert cb.call(KEY, lambda: "probe ok") == "probe ok"
    assert cb.call(KEY, lambda: "closed") == "closed"
    states = [dict(r.dimensions)["to_state"] for r in metrics.records if r.name == BREAKER_TRANSITIONS]
    assert states == ["OPEN", "HALF_OPEN", "OPEN", "HALF_OPEN", "CLOSED"]


def test_record_failure_replays_a_mid_stream_break() -> None:
    cb, _ = breakers(threshold=2)
    error = ProviderError("cut", provider="groq", model="llama", transport="stream_cut")
    cb.record_failure(KEY, error)
    cb.record_failure(KEY, error)
    with pytest.raises(BreakerOpen):
        cb.call(KEY, lambda: "no")


def test_blocked_from_ignores_expired_and_closed_items() -> None:
    now = 1_000_000.0
    items = {
        "cb#a": {"state": "OPEN", "opened_at": now - 5, "expires_at": now + 100},
        "cb#b": {"state": "OPEN", "opened_at": now - 5, "expires_at": now - 1},
        "cb#c": {"state": "CLOSED", "expires_at": now + 100},
        "cb#d": {"state": {"S": "HALF_OPEN"}, "probe_lease_expiry": {"N": str(int(now + 3))}},
        "cb#e": {"state": "OPEN", "opened_at": now - 60, "expires_at": now + 100},
    }
    assert set(blocked_from(items, now, 30)) == {"cb#a", "cb#d"}


def test_blocked_from_default_recovery_is_thirty_seconds() -> None:
    """The default used to be `BreakerSettings.recovery_timeout_s`, which on a slots dataclass is
    the slot's descriptor, not 30: a call without the argument raised TypeError (mypy found it)."""
    now = 1_000_000.0
    items = {"cb#a": {"state": "OPEN", "opened_at": now - 29}, "cb#b": {"state": "OPEN", "opened_at": now - 31}}
    assert set(blocked_from(items, now)) == {"cb#a"}


def test_a_success_here_ends_a_streak_another_container_of_the_process_counted() -> None:
    """Powertools counts failures per process (module-level, by circuit name), so the simulator's
    containers share them: a success in one container resets a streak another counted, even on
    the path that skips Powertools' handlers while nothing is counted."""
    persistence = MemoryBreakerPersistence()
    settings = BreakerSettings(failure_threshold=3, recovery_timeout_s=30)
    one, other = CircuitBreakers(persistence, settings), CircuitBreakers(persistence, settings)
    assert other.call(KEY, lambda: "warm") == "warm"  # `other` has run through Powertools before
    for _ in range(3):
        for _ in range(2):
            with pytest.raises(ProviderError):
                one.call(KEY, failing(503))
        assert other.call(KEY, lambda: "ok") == "ok"
    assert one.call(KEY, lambda: "closed") == "closed"


def test_failures_on_the_quiet_path_count_toward_tripping() -> None:
    """Calls that skip Powertools' handlers (closed circuits, nothing counted) still have their
    failures counted through them: the third in a row opens the circuit."""
    cb, metrics = breakers(threshold=3)
    for _ in range(5):
        assert cb.call(KEY, lambda: "ok") == "ok"
    for _ in range(3):
        with pytest.raises(ProviderError):
            cb.call(KEY, failing(500))
    with pytest.raises(BreakerOpen):
        cb.call(KEY, lambda: "no")
    assert metrics.total(BREAKER_TRANSITIONS, circuit=model_circuit(KEY), to_state="OPEN") == 1


def test_a_failure_on_a_circuit_opened_while_the_call_ran_is_not_made_its_probe() -> None:
    """Powertools reads a circuit's state once, before the call: a call admitted on a closed
    circuit that fails is counted as a closed circuit's failure, even if another container opened
    the circuit meanwhile and its recovery time has passed since. Counting it on a state read
    after the call made the failure the probe: the circuit reopened for another recovery period."""
    metrics, store = RecordingMetrics(), MemoryBreakerPersistence()
    cb = CircuitBreakers(store, BreakerSettings(failure_threshold=3, recovery_timeout_s=30, local_cache_max_age_s=0),
                         metrics=metrics)
    assert cb.call(KEY, lambda: "warm") == "warm"
    opened_long_ago = int(time.time()) - 60

    def fails_after_another_container_opened_the_circuit():
        store.save_open(model_circuit(KEY), failure_count=3, opened_at=opened_long_ago)
        failing(500)()

    with pytest.raises(ProviderError):
        cb.call(KEY, fails_after_another_container_opened_the_circuit)
    assert metrics.total(BREAKER_TRANSITIONS, circuit=model_circuit(KEY), to_state="HALF_OPEN") == 0
    assert store.get_state(model_circuit(KEY)).opened_at == opened_long_ago  # still probe-eligible


def test_a_success_ends_a_streak_counted_while_it_ran() -> None:
    """Powertools resets a circuit's streak when a call succeeds, whatever failed while it ran
    (another thread's call): two more failures do not trip a threshold of three."""
    cb, _ = breakers(threshold=3, recovery=30)
    assert cb.call(KEY, lambda: "warm") == "warm"

    def succeeds_while_another_call_fails():
        with pytest.raises(ProviderError):
            cb.call(KEY, failing(500))
        return "ok"

    assert cb.call(KEY, succeeds_while_another_call_fails) == "ok"
    for _ in range(2):
        with pytest.raises(ProviderError):
            cb.call(KEY, failing(500))
    assert cb.call(KEY, lambda: "still closed") == "still closed"
