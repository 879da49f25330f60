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
