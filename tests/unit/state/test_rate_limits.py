"""Pure rate-limit arithmetic."""

from __future__ import annotations

import pytest

from llm_gateway.providers.base import RateLimitInfo
from llm_gateway.state.rate_limits import (
    capacity,
    cooldown_for_429,
    cooldown_from_headers,
    header_remaining,
    header_snapshot,
    near_miss,
    scale_limits,
    snapshot_expiry,
)
from llm_gateway.state.store import Cooldown, ModelKey, ModelState, WindowLimit, WindowUsage

KEY = ModelKey("groq", "m")
NOW = 1_700_000_000.0
LIM = WindowLimit(60, max_requests=10, max_tokens=1000)


def test_429_cooldown_uses_longest_hint_or_default() -> None:
    info = RateLimitInfo(retry_after_s=2, remaining_tokens=0, reset_tokens_s=7.5)
    assert cooldown_for_429(info, NOW).until == NOW + 7.5
    assert cooldown_for_429(None, NOW).until == NOW + 60
    groq_daily = RateLimitInfo(remaining_requests=0, reset_requests_s=3 * 3600, requests_window_s=86_400)
    assert cooldown_for_429(groq_daily, NOW).until == NOW + 3 * 3600


def test_cooldown_from_successful_headers() -> None:
    assert cooldown_from_headers(RateLimitInfo(remaining_requests=5, reset_requests_s=1), NOW) is None
    cd = cooldown_from_headers(RateLimitInfo(remaining_tokens=0, reset_tokens_s=12), NOW)
    assert cd is not None and cd.until == NOW + 12


def test_header_remaining_resets() -> None:
    snap = header_snapshot(RateLimitInfo(remaining_requests=3, reset_requests_s=10, remaining_tokens=50), NOW)
    assert header_remaining(snap, NOW + 1) == (3, 50)
    assert header_remaining(snap, NOW + 11) == (None, 50)
    assert header_remaining(snap, NOW + 61) == (None, None)  # tokens: no reset given, one window
    assert snapshot_expiry(snap.info, NOW) == NOW + 10


def test_capacity_lower_of_windows_and_headers() -> None:
    usage = WindowUsage(LIM, LIM.start(NOW), requests=4, tokens=100)
    hdr = header_snapshot(RateLimitInfo(remaining_requests=2, remaining_tokens=5000, reset_requests_s=30), NOW)
    state = ModelState(KEY, windows=(usage,), headers=hdr)
    cap = capacity([LIM], state, 200, NOW)
    assert cap.ok and cap.remaining_requests == 2 and cap.remaining_tokens == 900


@pytest.mark.parametrize(
    ("state", "tokens", "fragment"),
    [
        (ModelState(KEY, cooldown=Cooldown(NOW + 5, "429")), 1, "cooling down"),
        (ModelState(KEY, windows=(WindowUsage(LIM, LIM.start(NOW), requests=10),)), 1, "used up"),
        (ModelState(KEY, windows=(WindowUsage(LIM, LIM.start(NOW), tokens=950),)), 100, "tokens per 60s left"),
        (None, 1001, "needs 1001 tokens"),
        (ModelState(KEY, headers=header_snapshot(RateLimitInfo(remaining_tokens=10, reset_tokens_s=5), NOW)), 11,
         "provider headers"),
    ],
)
def test_capacity_refusals(state: ModelState | None, tokens: int, fragment: str) -> None:
    cap = capacity([LIM], state, tokens, NOW)
    assert not cap.ok and fragment in cap.reason


def test_old_window_usage_does_not_count() -> None:
    stale = WindowUsage(LIM, LIM.start(NOW) - 60, requests=10)
    assert capacity([LIM], ModelState(KEY, windows=(stale,)), 1, NOW).ok


def test_store_supplied_limit_wins() -> None:
    """Degraded mode hands back scaled limits in the usage; capacity must honour them."""
    scaled = scale_limits([LIM], 0.5)[0]
    usage = WindowUsage(scaled, LIM.start(NOW), requests=5)
    assert not capacity([LIM], ModelState(KEY, windows=(usage,)), 1, NOW).ok
    assert scale_limits([WindowLimit(1, 1, None)], 0.5) == (WindowLimit(1, 1, None),)


def test_near_miss() -> None:
    assert near_miss(RateLimitInfo(limit_requests=100, remaining_requests=5))
    assert not near_miss(RateLimitInfo(limit_requests=100, remaining_requests=50))


def test_previous_window_carries_over_by_its_remaining_overlap() -> None:
    from llm_gateway.state.rate_limits import carried_over, effective_limits

    minute = WindowLimit(60, max_requests=30, max_tokens=6000)
    start = 1_200  # an epoch-aligned minute
    previous = WindowUsage(minute, start - 60, requests=30, tokens=6000)
    state = ModelState(ModelKey("groq", "m"), windows=(WindowUsage(minute, start, 0, 0),), previous=(previous,))
    assert carried_over(state, minute, start) == (30, 6000)  # right at the boundary: all of it
    assert carried_over(state, minute, start + 30) == (15, 3000)  # half-way: half
    assert carried_over(state, minute, start + 59.9) == (1, 10)
    assert carried_over(None, minute, start) == (0, 0)
    assert effective_limits([minute], state, start + 30) == (WindowLimit(60, 15, 3000),)
    # a full previous window leaves nothing right after the boundary: no 2x burst across it
    refused = capacity([minute], state, 1, start + 1)
    assert not refused.ok and "used up" in refused.reason
    assert capacity([minute], state, 1, start + 45).remaining_requests == 22  # 30 - ceil(30 * 0.25)


def test_a_store_refuses_a_burst_across_a_window_boundary() -> None:
    from llm_gateway.selection.catalog import FreeTier
    from llm_gateway.selection.selector import Selector
    from llm_gateway.state.memory import MemoryStore
    from tests.unit.selection.builders import catalog, entry, request

    model = entry("p0", "m", free=FreeTier(rpm=10))
    selector, store = Selector(catalog([model])), MemoryStore()
    start = 6_000
    admitted_before = 0
    for second in (50, 55, 59):  # 10 requests in the last seconds of one minute
        for _ in range(4):
            prep = selector.prepare(request(), {model.key})
            plan = selector.plan(prep, store.load(prep.limits, start + second), start + second)
            if plan.steps and store.reserve(model.key, plan.steps[0].limits, 1, start + second):
                admitted_before += 1
    assert admitted_before == 10
    prep = selector.prepare(request(), {model.key})
    now = start + 61  # the next minute: a fixed window alone would admit 10 more at once
    plan = selector.plan(prep, store.load(prep.limits, now), now)
    assert not plan.steps


def test_next_admission_follows_the_decaying_carry() -> None:
    from llm_gateway.state.rate_limits import next_admission_at

    second = WindowLimit(1, max_requests=1)
    minute = WindowLimit(60, max_requests=30)
    start = 1_200
    # 1 rps: the last second used its request; this second is free only once the carry decays
    state = ModelState(KEY, windows=(WindowUsage(second, start, 0),), previous=(WindowUsage(second, start - 1, 1),))
    assert next_admission_at(state, state.windows[0], start + 0.2) == pytest.approx(start + 1.0)
    # 30 rpm with 30 last minute and 10 now: 19 more fit once 30 * (1 - f) <= 19, at f = 11/30
    state = ModelState(KEY, windows=(WindowUsage(minute, start, 10),), previous=(WindowUsage(minute, start - 60, 30),))
    assert next_admission_at(state, state.windows[0], start + 5) == pytest.approx(start + 60 * (1 - 19 / 30))
    assert next_admission_at(state, state.windows[0], start + 40) is None  # decayed enough already
    full = ModelState(KEY, windows=(WindowUsage(minute, start, 30),))
    assert next_admission_at(full, full.windows[0], start + 5) == start + 60


def test_only_header_snapshots_that_could_bind_are_written() -> None:
    from llm_gateway.state.rate_limits import worth_recording

    plenty = RateLimitInfo(limit_requests=100, remaining_requests=90, limit_tokens=10_000, remaining_tokens=9_000)
    assert not worth_recording(plenty)
    assert worth_recording(RateLimitInfo(limit_requests=100, remaining_requests=40))
    assert worth_recording(RateLimitInfo(limit_tokens=10_000, remaining_tokens=100, limit_requests=100, remaining_requests=99))
    assert worth_recording(RateLimitInfo(remaining_requests=5))  # no limit given: cannot judge, keep it
    assert worth_recording(RateLimitInfo(retry_after_s=3.0))
