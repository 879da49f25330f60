"""Balancer spreading, status rendering and the core's status (all in memory, no sockets)."""

from __future__ import annotations

from collections import Counter

import pytest

from llm_gateway.routing.balancer import CapacityBalancer, remaining_fraction
from llm_gateway.selection.catalog import default_catalog
from llm_gateway.selection.planner import PlanStep
from llm_gateway.state.items import StateSnapshot
from llm_gateway.state.memory import MemoryStore
from llm_gateway.state.metering import REQUESTS, Meter, WindowLimit, model_counter, usage_of
from llm_gateway.state.shared import SharedState
from llm_gateway.state.store import ModelKey
from sandbox.status_cli import render

LIMIT = WindowLimit.of(60, requests=100)


def meter(provider: str, model: str, limit: WindowLimit = LIMIT) -> Meter:
    return Meter(model_counter(provider, model), limit)


def step(provider: str, model: str, snapshot: StateSnapshot, now: float, limit: WindowLimit = LIMIT) -> PlanStep:
    entry = default_catalog().entries[0]
    usage = usage_of(meter(provider, model, limit), snapshot.counters, now)
    return PlanStep(ModelKey(provider, model), True, entry, {REQUESTS: 1}, (usage,), "test")


def test_balancer_spreads_equal_models_evenly() -> None:
    empty = StateSnapshot()
    group = [step("a", "m", empty, 0.0), step("b", "m", empty, 0.0), step("c", "m", empty, 0.0)]
    balancer = CapacityBalancer()
    firsts = Counter(balancer(list(group), empty, 0.0)[0].key.provider for _ in range(300))
    assert firsts == {"a": 100, "b": 100, "c": 100}


def test_balancer_weights_by_remaining_capacity() -> None:
    state = SharedState(MemoryStore(), fold_reconcile=False)
    drained = [usage_of(meter("a", "m"), {}, 30.0)]
    for _ in range(75):  # a has 25 % left, b 100 %
        assert state.reserve(drained, {REQUESTS: 1}, 30.0) is not None
    snapshot = state.load([meter("a", "m"), meter("b", "m")], [ModelKey("a", "m"), ModelKey("b", "m")], 30.0)
    group = [step("a", "m", snapshot, 30.0), step("b", "m", snapshot, 30.0)]
    assert remaining_fraction(group[0], snapshot, 30.0) == pytest.approx(0.25)
    balancer = CapacityBalancer()
    firsts = Counter(balancer(list(group), snapshot, 30.0)[0].key.provider for _ in range(500))
    assert firsts["b"] == 400 and firsts["a"] == 100  # 1.0 : 0.25
    order = balancer(list(group), snapshot, 30.0)
    assert sorted(s.key.provider for s in order) == ["a", "b"]  # nothing dropped, only reordered


def test_the_tightest_window_of_any_meter_sets_the_weight() -> None:
    """A provider-wide window counts like the model's own: the balancer sees the same usages as the plan."""
    shared = Meter("a#*", WindowLimit.of(86_400, requests=10))
    counters = {shared.pk(0): {REQUESTS: 8}}
    own = usage_of(meter("a", "m"), counters, 30.0)
    entry = default_catalog().entries[0]
    tight = PlanStep(ModelKey("a", "m"), True, entry, {REQUESTS: 1}, (own, usage_of(shared, counters, 30.0)), "t")
    assert remaining_fraction(tight, StateSnapshot(counters=counters), 30.0) == pytest.approx(0.2)


STATUS_NOW = 1000.0


def _status(windows: list[dict]) -> dict:
    return {"providers": {"groq": {"available": True, "breaker": {"state": "CLOSED"}, "models": {
        "llama": {"breaker": {"state": "OPEN", "until": STATUS_NOW + 25},
                  "cooldown": {"until": STATUS_NOW + 9, "reason": "429"},
                  "windows": windows, "last_error_class": "rate_limited"}}}}}


def test_status_table_rendering_breakers_cooldowns_errors() -> None:
    text = render(_status([]), STATUS_NOW)
    assert "OPEN (25s)" in text and "9s (429)" in text and "rate_limited" in text and "no known limit" in text


def test_status_table_renders_the_windows_the_gateway_reports() -> None:
    from llm_gateway.routing.status import _windows

    minute = meter("groq", "llama", WindowLimit.of(60, requests=30, tokens=6000))
    month = Meter("groq#*", WindowLimit.of(0, requests=1000))  # Period(0): a calendar month
    counters = {minute.pk(960): {REQUESTS: 27}}
    text = render(_status(_windows((minute, month), StateSnapshot(counters=counters), STATUS_NOW)), STATUS_NOW)
    assert "3/30 req/min" in text and "6000/6000 tok/min" in text
    assert "1000/1000 req/month (organisation)" in text


def test_status_shows_the_capacity_the_planner_sees_carry_over_included() -> None:
    from llm_gateway.routing.status import _windows

    minute = meter("groq", "m", WindowLimit.of(60, requests=30))
    start = 1_200
    counters = {minute.pk(start): {REQUESTS: 5}, minute.pk(start - 60): {REQUESTS: 30}}
    [window] = _windows((minute,), StateSnapshot(counters=counters), start + 30)
    assert window["requests_used"] == 5
    assert window["remaining_requests"] == 30 - 5 - 15  # half of last minute's 30 still counts
    assert (window["counter"], window["window"], window["max_requests"], window["resets_at"]) == ("groq#m", "60", 30, start + 60)


def test_core_status_shows_model_and_organisation_windows() -> None:
    from llm_gateway.compose import build_core
    from llm_gateway.config import Settings
    from llm_gateway.observability.metrics import RecordingMetrics
    from llm_gateway.providers.base import ProviderConfig
    from llm_gateway.routing.status import build_status

    settings = Settings(providers=(ProviderConfig(name="mistral", kind="mistral", base_url="http://x", api_key="k"),))
    core = build_core(settings, metrics=RecordingMetrics())
    catalog = core.catalog
    small = catalog.get(ModelKey("mistral", "mistral-small-latest"))
    assert small is not None
    now = 1_700_000_000.0
    usages = [usage_of(m, {}, now) for m in catalog.meters(small)]
    assert core.state.reserve(usages, {REQUESTS: 1, "tokens": 100}, now) is not None
    core.state.cool_down(small.key, now + 30, "429", now)
    available = core.chat_adapters.current().available
    status = build_status(core, available, now)
    models = status["providers"]["mistral"]["models"]
    assert set(models) == {key.model for key in available}
    other = models["ministral-8b-latest"]["windows"]
    per_second = next(w for w in other if w["window"] == "1")
    assert per_second["counter"] == "mistral#*" and per_second["remaining_requests"] == 0  # shared with the other model
    month = next(w for w in other if w["window"] == "month")
    assert month["tokens_used"] == 100 and month["remaining_tokens"] == 1_000_000_000 - 100
    assert models["mistral-small-latest"]["cooldown"] == {"until": now + 30, "reason": "429"}
    assert models["ministral-8b-latest"]["cooldown"] is None
    assert status["providers"]["mistral"]["breaker"] == {"state": "CLOSED"} and not status["state_degraded"]
