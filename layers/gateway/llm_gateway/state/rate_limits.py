"""Pure rate-limit arithmetic: provider hints → cooldowns and header snapshots → capacity.

Two views of a model's capacity exist and both are imperfect: our own counts (shared windows in
the store, exact for traffic that went through the gateway) and the provider's headers (the
truth for the whole account, but only as of the last response). Capacity is the lower of the two,
and a 429 overrides both with a cooldown until the provider's reset. No I/O, no clock: `now` is
always passed in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from llm_gateway.providers.base import RateLimitInfo
from llm_gateway.state.store import Cooldown, HeaderSnapshot, ModelState, WindowLimit, WindowUsage

DEFAULT_429_COOLDOWN_S = 60.0
MAX_COOLDOWN_S = 86_400.0


@dataclass(frozen=True, slots=True)
class Capacity:
    """Whether one more request of `tokens` fits now, and why not when it does not."""

    ok: bool
    reason: str
    remaining_requests: int | None = None
    remaining_tokens: int | None = None


def scale_limits(limits: Sequence[WindowLimit], fraction: float) -> tuple[WindowLimit, ...]:
    """Conservative limits for degraded mode (other containers share the real ones unseen)."""

    def part(value: int | None) -> int | None:
        return None if value is None else max(1, int(value * fraction)) if value > 0 else 0

    return tuple(WindowLimit(lim.seconds, part(lim.max_requests), part(lim.max_tokens)) for lim in limits)


def current_usage(state: ModelState | None, limit: WindowLimit, now: float) -> WindowUsage:
    """Usage of the window that contains `now`; the store's limit wins (it may be scaled down)."""
    start = limit.start(now)
    if state is not None:
        for usage in state.windows:
            if usage.limit.seconds == limit.seconds and usage.start == start:
                return usage
    return WindowUsage(limit=limit, start=start)


def carried_over(state: ModelState | None, limit: WindowLimit, now: float) -> tuple[int, int]:
    """(requests, tokens) of the previous window still counted against the current one.

    Providers enforce sliding windows or token buckets, not our epoch-aligned fixed windows: a
    full window just before a boundary and another just after it would be twice the limit in a
    few seconds, and the provider would answer 429. So the previous window's usage is carried
    into the current one, weighted by how much of it still overlaps the sliding window ending
    now (the classic two-bucket estimate): at the boundary all of it, half-way through half.
    """
    if state is None:
        return 0, 0
    previous = limit.start(now) - limit.seconds
    for usage in state.previous:
        if usage.limit.seconds == limit.seconds and usage.start == previous:
            overlap = 1.0 - (now - limit.start(now)) / limit.seconds
            return math.ceil(usage.requests * overlap), math.ceil(usage.tokens * overlap)
    return 0, 0


def next_admission_at(state: ModelState, usage: WindowUsage, now: float) -> float | None:
    """When this window, with the previous one's carry-over, takes one more request (None = now).

    The carry decays linearly through the window, so a request fits again once
    `previous * (1 - elapsed/length) <= limit - used - 1`; a window whose own count is full
    only frees at its end.
    """
    limit, closes = usage.limit, usage.start + usage.limit.seconds
    if closes <= now:
        return None
    carry_requests, carry_tokens = carried_over(state, limit, now)
    tokens_left = usage.remaining_tokens()
    if tokens_left is not None and tokens_left - carry_tokens <= 0:
        return closes
    if limit.max_requests is None:
        return None
    room = limit.max_requests - usage.requests - 1
    if room < 0:
        return closes
    if room >= carry_requests:
        return None
    previous = next(u.requests for u in state.previous if u.limit.seconds == limit.seconds)
    return min(closes, usage.start + limit.seconds * (1 - room / previous))


def remaining_now(state: ModelState | None, usage: WindowUsage, now: float) -> tuple[int | None, int | None]:
    """(requests, tokens) this window can still take now: its own room less the carry-over."""
    carry_requests, carry_tokens = carried_over(state, usage.limit, now)
    r_left, t_left = usage.remaining_requests(), usage.remaining_tokens()
    return (None if r_left is None else max(0, r_left - carry_requests),
            None if t_left is None else max(0, t_left - carry_tokens))


def effective_limits(limits: Sequence[WindowLimit], state: ModelState | None, now: float) -> tuple[WindowLimit, ...]:
    """What the current fixed windows may still take, after the previous windows' carry-over.

    These are the limits a reservation is conditioned on, so the conditional write enforces the
    sliding estimate too, with no extra read.
    """
    out = []
    for limit in limits:
        carry_requests, carry_tokens = carried_over(state, limit, now)
        out.append(WindowLimit(
            limit.seconds,
            None if limit.max_requests is None else max(0, limit.max_requests - carry_requests),
            None if limit.max_tokens is None else max(0, limit.max_tokens - carry_tokens),
        ))
    return tuple(out)


def header_snapshot(info: RateLimitInfo, now: float) -> HeaderSnapshot:
    return HeaderSnapshot(info=info, observed_at=now)


def snapshot_expiry(info: RateLimitInfo, now: float) -> float:
    """When a header snapshot stops saying anything: the later of its resets (or one window)."""
    resets = [info.reset_requests_s, info.reset_tokens_s, info.retry_after_s]
    known = [r for r in resets if r is not None and r > 0]
    horizon = max(known) if known else float(min(info.requests_window_s, info.tokens_window_s))
    return now + min(horizon, MAX_COOLDOWN_S)


def header_remaining(snapshot: HeaderSnapshot | None, now: float) -> tuple[int | None, int | None]:
    """(requests, tokens) the provider said were left, or None once that figure has reset."""
    if snapshot is None:
        return None, None
    info, age = snapshot.info, now - snapshot.observed_at
    requests = info.remaining_requests
    reset_r = info.reset_requests_s if info.reset_requests_s is not None else info.requests_window_s
    if requests is not None and age >= reset_r:
        requests = None
    tokens = info.remaining_tokens
    reset_t = info.reset_tokens_s if info.reset_tokens_s is not None else info.tokens_window_s
    if tokens is not None and age >= reset_t:
        tokens = None
    return requests, tokens


def _lower(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    return a if b is None else min(a, b)


def capacity(
    limits: Sequence[WindowLimit], state: ModelState | None, tokens: int, now: float
) -> Capacity:
    """Can one more request of `tokens` (prompt + expected output) start now?"""
    if state is None:
        return _capacity_fresh(limits, tokens)
    if state.cooling(now):
        assert state.cooldown is not None
        return Capacity(False, f"cooling down for {state.cooldown.until - now:.0f}s ({state.cooldown.reason})")
    left_requests: int | None = None
    left_tokens: int | None = None
    for limit in limits:
        usage = current_usage(state, limit, now)
        eff = usage.limit
        if eff.max_tokens is not None and tokens > eff.max_tokens:
            return Capacity(False, f"needs {tokens} tokens > {eff.max_tokens} per {eff.seconds}s window")
        r_left, t_left = remaining_now(state, usage, now)
        if r_left is not None and r_left < 1:
            return Capacity(False, f"{eff.max_requests} requests per {eff.seconds}s used up", 0, t_left)
        if t_left is not None and t_left < tokens:
            return Capacity(False, f"{t_left} of {eff.max_tokens} tokens per {eff.seconds}s left, needs {tokens}")
        left_requests, left_tokens = _lower(left_requests, r_left), _lower(left_tokens, t_left)
    hdr_requests, hdr_tokens = header_remaining(state.headers, now)
    if hdr_requests is not None and hdr_requests < 1:
        return Capacity(False, "provider headers: 0 requests remaining before reset", 0, hdr_tokens)
    if hdr_tokens is not None and hdr_tokens < tokens:
        return Capacity(False, f"provider headers: {hdr_tokens} tokens remaining, needs {tokens}")
    left_requests, left_tokens = _lower(left_requests, hdr_requests), _lower(left_tokens, hdr_tokens)
    return Capacity(True, "has capacity", left_requests, left_tokens)


def _capacity_fresh(limits: Sequence[WindowLimit], tokens: int) -> Capacity:
    """Fast path for a model with no recorded state: only the window sizes can say no."""
    left_requests: int | None = None
    left_tokens: int | None = None
    for lim in limits:
        if lim.max_tokens is not None and tokens > lim.max_tokens:
            return Capacity(False, f"needs {tokens} tokens > {lim.max_tokens} per {lim.seconds}s window")
        if lim.max_requests is not None and lim.max_requests < 1:
            return Capacity(False, f"{lim.max_requests} requests per {lim.seconds}s used up", 0)
        left_requests, left_tokens = _lower(left_requests, lim.max_requests), _lower(left_tokens, lim.max_tokens)
    return Capacity(True, "has capacity", left_requests, left_tokens)


def cooldown_for_429(
    info: RateLimitInfo | None, now: float, *, default_s: float = DEFAULT_429_COOLDOWN_S
) -> Cooldown:
    """After a 429: the provider's longest hint (retry-after, or the reset of an exhausted limit)."""
    hint = info.cooldown_s() if info is not None else None
    seconds = min(hint if hint is not None else default_s, MAX_COOLDOWN_S)
    source = "provider hint" if hint is not None else "default"
    return Cooldown(until=now + seconds, reason=f"429, {source} {seconds:.1f}s")


def cooldown_from_headers(info: RateLimitInfo, now: float) -> Cooldown | None:
    """A successful response that says 0 left: stop before the provider has to 429 us."""
    waits = []
    if info.remaining_requests == 0 and info.reset_requests_s:
        waits.append(info.reset_requests_s)
    if info.remaining_tokens == 0 and info.reset_tokens_s:
        waits.append(info.reset_tokens_s)
    if not waits:
        return None
    seconds = min(max(waits), MAX_COOLDOWN_S)
    return Cooldown(until=now + seconds, reason=f"headers: limit exhausted, resets in {seconds:.1f}s")


def near_miss(info: RateLimitInfo, fraction: float = 0.1) -> bool:
    """Remaining below `fraction` of the limit (feeds the RateLimitNearMiss metric)."""
    pairs = ((info.remaining_requests, info.limit_requests), (info.remaining_tokens, info.limit_tokens))
    return any(rem is not None and lim and rem < lim * fraction for rem, lim in pairs)


def worth_recording(info: RateLimitInfo, fraction: float = 0.5) -> bool:
    """Whether a header snapshot could ever bind: below `fraction` of a limit, or no limit given.

    Capacity is the lower of our counts and the provider's; while the provider says more than
    half is left our own windows decide, so writing the snapshot would be a DynamoDB write per
    request for nothing.
    """
    pairs = ((info.remaining_requests, info.limit_requests), (info.remaining_tokens, info.limit_tokens))
    known = [(rem, lim) for rem, lim in pairs if rem is not None]
    return bool(info.retry_after_s) or any(not lim or rem < lim * fraction for rem, lim in known)
