"""Balancer spreading, status rendering and the router's status (all in memory, no sockets)."""

from __future__ import annotations

from collections import Counter

from llm_gateway.routing.balancer import CapacityBalancer
from llm_gateway.selection.catalog import default_catalog
from llm_gateway.selection.selector import PlanStep
from llm_gateway.state.memory import MemoryStore
from llm_gateway.state.store import ModelKey, StateSnapshot, WindowLimit
from sandbox.status_cli import render


def step(provider: str, model: str, limit: WindowLimit) -> PlanStep:
    entry = default_catalog().entries[0]
    return PlanStep(ModelKey(provider, model), True, 8192, "test", (limit,), 10, entry)


def test_balancer_spreads_equal_models_evenly() -> None:
    limit = WindowLimit(60, max_requests=100)
    group = [step("a", "m", limit), step("b", "m", limit), step("c", "m", limit)]
    balancer = CapacityBalancer()
    firsts = Counter(balancer(list(group), StateSnapshot(models={}), 0.0)[0].key.provider for _ in range(300))
    assert firsts == {"a": 100, "b": 100, "c": 100}


def test_balancer_weights_by_remaining_capacity() -> None:
    limit = WindowLimit(60, max_requests=100)
    store = MemoryStore()
    drained = ModelKey("a", "m")
    for _ in range(75):  # a has 25 % left, b 100 %
        store.reserve(drained, (limit,), 1, 30.0)
    group = [step("a", "m", limit), step("b", "m", limit)]
    snapshot = store.load({s.key: s.limits for s in group}, 30.0)
    balancer = CapacityBalancer()
    firsts = Counter(balancer(list(group), snapshot, 30.0)[0].key.provider for _ in range(500))
    assert firsts["b"] == 400 and firsts["a"] == 100  # 1.0 : 0.25
    order = balancer(list(group), snapshot, 30.0)
    assert sorted(s.key.provider for s in order) == ["a", "b"]  # nothing dropped, only reordered


def test_status_table_rendering() -> None:
    now = 1000.0
    status = {"providers": {"groq": {"available": True, "breaker": {"state": "CLOSED"}, "models": {
        "llama": {"breaker": {"state": "OPEN", "until": now + 25}, "cooldown": {"until": now + 9, "reason": "429"},
                  "windows": [{"seconds": 60, "remaining_requests": 3, "max_requests": 30,
                               "remaining_tokens": None, "max_tokens": None}],
                  "last_error_class": "rate_limited"}}}}}
    text = render(status, now)
    assert "OPEN (25s)" in text and "9s (429)" in text and "3/30 req/min" in text and "rate_limited" in text


def test_status_shows_the_capacity_the_selector_sees_carry_over_included():
    from llm_gateway.routing.status import _windows
    from llm_gateway.state.store import ModelKey, ModelState, WindowLimit, WindowUsage

    minute = WindowLimit(60, max_requests=30)
    start = 1_200
    state = ModelState(ModelKey("groq", "m"), windows=(WindowUsage(minute, start, 5),),
                       previous=(WindowUsage(minute, start - 60, 30),))
    [window] = _windows(state, (minute,), start + 30)
    assert window["requests_used"] == 5
    assert window["remaining_requests"] == 30 - 5 - 15  # half of last minute's 30 still counts
