"""Pure rate-limit arithmetic: provider hints → cooldowns and header snapshots → capacity.

Two views of a model's capacity exist and both are imperfect: our own counts (shared windows in
the store, exact for traffic that went through the gateway) and the provider's headers (the
truth for the whole account, but only as of the last response). Capacity is the lower of the two,
and a 429 overrides both with a cooldown until the provider's reset. No I/O, no clock: `now` is
always passed in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from llm_gateway.providers.base import RateLimitInfo
from llm_gateway.state.items import Cooldown, HeaderSnapshot, ModelState
from llm_gateway.state.metering import (
    PROVIDER_SCOPE,
    REQUESTS,
    TOKENS,
    Amounts,
    WindowUsage,
)

MAX_COOLDOWN_S = 86_400.0
NEAR_MISS_SHARE = 0.1  # a window left with less than this share of a limit is a near miss


@dataclass(slots=True)  # a value, never changed; not frozen: see FAST_VALUES in metering.py
class Capacity:
    """Whether one more request of `amounts` fits now, and why not when it does not."""

    ok: bool
    reason: str
    remaining_requests: int | None = None
    remaining_tokens: int | None = None


def _lower(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    return a if b is None else min(a, b)


_UNLIMITED = Capacity(True, "has capacity")  # what `capacity` says of no windows and no state, whatever the ask


def capacity(usages: Sequence[WindowUsage], state: ModelState | None, amounts: Amounts, now: float) -> Capacity:
    """Can one more request asking `amounts` start now? A model with neither windows nor state
    (no limits known: most paid models) always has room."""
    if state is None and not usages:
        return _UNLIMITED
    if state is not None and state.cooling(now):
        assert state.cooldown is not None
        return Capacity(False, f"cooling down for {state.cooldown.until - now:.0f}s ({state.cooldown.reason})")
    left_requests: int | None = None
    left_tokens: int | None = None
    for usage in usages:  # runs for every candidate of every plan: the lower of each, inlined
        why = usage.fits(amounts)
        if why is not None:
            return Capacity(False, why, usage.remaining(REQUESTS), usage.remaining(TOKENS))
        maxima, used, carried = usage.meter.limit.maxima, usage.used, usage.carried
        ceiling = maxima.get(REQUESTS)
        if ceiling is not None:  # `usage.remaining(REQUESTS)`, inlined
            left = max(0, ceiling - used.get(REQUESTS, 0) - carried.get(REQUESTS, 0))
            if left_requests is None or left < left_requests:
                left_requests = left
        ceiling = maxima.get(TOKENS)
        if ceiling is not None:
            left = max(0, ceiling - used.get(TOKENS, 0) - carried.get(TOKENS, 0))
            if left_tokens is None or left < left_tokens:
                left_tokens = left
    hdr_requests, hdr_tokens = header_remaining(state.headers if state is not None else None, now)
    tokens = amounts.get(TOKENS, 0)
    if hdr_requests is not None and hdr_requests < 1:
        return Capacity(False, "provider headers: 0 requests remaining before reset", 0, hdr_tokens)
    if hdr_tokens is not None and hdr_tokens < tokens:
        return Capacity(False, f"provider headers: {hdr_tokens} tokens remaining, needs {tokens}")
    return Capacity(True, "has capacity", _lower(left_requests, hdr_requests), _lower(left_tokens, hdr_tokens))


def window_free_at(usage: WindowUsage, amounts: Amounts, now: float,
                   memo: dict[tuple[Any, ...], float | None]) -> float | None:
    """`usage.free_again_at(amounts, now)`, worked out once per window (`id`: the caller keeps the
    usages alive while it uses the memo) and part of the ask its limit counts, for one `now`."""
    maxima = usage.meter.limit.maxima  # `free_again_at` reads only the units limited and asked
    key = (id(usage), *[(unit, ask) for unit, ask in amounts.items() if ask > 0 and unit in maxima])
    if key in memo:
        return memo[key]
    at = memo[key] = usage.free_again_at(amounts, now)
    return at


def free_again_in(usages: Sequence[WindowUsage], state: ModelState | None, amounts: Amounts, now: float,
                  memo: dict[tuple[Any, ...], float | None] | None = None) -> float | None:
    """Seconds until a request asking `amounts` fits again (None: never, as far as we know).
    `memo` (`window_free_at`): a planner asks this of every model a provider's shared window
    fills (Mistral's six models, one requests-per-second window) and works that window out once."""
    waits = [0.0]
    if state is not None and state.cooldown is not None and state.cooldown.until > now:
        waits.append(state.cooldown.until - now)
    for usage in usages:
        if usage.takes(amounts):
            continue
        at = usage.free_again_at(amounts, now) if memo is None else window_free_at(usage, amounts, now, memo)
        if at is None:
            return None
        waits.append(at - now)
    return max(waits)


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


def near_miss(info: RateLimitInfo, fraction: float = NEAR_MISS_SHARE) -> bool:
    """Remaining below `fraction` of the limit (feeds the RateLimitNearMiss metric)."""
    # the two (remaining, limit) pairs, written out: this runs after every attempt with headers
    rem, lim = info.remaining_requests, info.limit_requests
    if rem is not None and lim and rem < lim * fraction:
        return True
    rem, lim = info.remaining_tokens, info.limit_tokens
    return bool(rem is not None and lim and rem < lim * fraction)


def window_near_miss(usages: Sequence[WindowUsage], amounts: Amounts, fraction: float = NEAR_MISS_SHARE) -> bool:
    """A provider's window (as the gateway counts it) left with less than `fraction` of some
    unit once `amounts` are added: the near miss that providers sending no rate-limit headers
    (Gemini, Cohere) never report. `usages` are the windows the attempt reserved in, as read for
    it; a caller's own windows are budgets, reported apart (`BudgetWarnings`)."""
    for usage in usages:
        if usage.meter.scope != PROVIDER_SCOPE:
            continue
        for unit, ceiling in usage.meter.limit.maxima.items():
            if ceiling <= 0:
                continue
            counted = usage.used.get(unit, 0) + usage.carried.get(unit, 0) + amounts.get(unit, 0)
            if ceiling - counted < ceiling * fraction:
                return True
    return False


def worth_recording(info: RateLimitInfo, fraction: float = 0.5) -> bool:
    """Whether a header snapshot could ever bind: below `fraction` of a limit, or no limit given.

    Capacity is the lower of our counts and the provider's; while the provider says more than
    half is left our own windows decide, so writing the snapshot would be a DynamoDB write per
    request for nothing.
    """
    if info.retry_after_s:
        return True
    # the two (remaining, limit) pairs, written out: this runs after every attempt with headers
    rem, lim = info.remaining_requests, info.limit_requests
    if rem is not None and (not lim or rem < lim * fraction):
        return True
    rem, lim = info.remaining_tokens, info.limit_tokens
    return rem is not None and (not lim or rem < lim * fraction)
