"""Pure rate-limit arithmetic: capacity (windows, cooldowns, headers), cooldowns, header snapshots."""

from __future__ import annotations

import pytest

from llm_gateway.providers.base import ProviderError, RateLimitInfo
from llm_gateway.retry.backoff import BackoffPolicy, cooldown_s
from llm_gateway.retry.classifier import ErrorClass
from llm_gateway.state.items import Cooldown, HeaderSnapshot, ModelState
from llm_gateway.state.metering import (
    REQUESTS,
    TOKENS,
    Meter,
    WindowLimit,
    WindowUsage,
    model_counter,
    usage_of,
)
from llm_gateway.state.rate_limits import (
    capacity,
    cooldown_from_headers,
    free_again_in,
    header_remaining,
    near_miss,
    snapshot_expiry,
    window_near_miss,
    worth_recording,
)
from llm_gateway.state.store import ModelKey

KEY = ModelKey("groq", "m")
NOW = 1_700_000_000.0
LIM = WindowLimit.of(60, requests=10, tokens=1000)
METER = Meter(model_counter("groq", "m"), LIM)
START = LIM.period.start(NOW)


def usage(requests: int = 0, tokens: int = 0, start: int = START) -> WindowUsage:
    return WindowUsage(METER, start, {REQUESTS: requests, TOKENS: tokens})


def ask(tokens: int) -> dict[str, int]:
    return {REQUESTS: 1, TOKENS: tokens}


def snapshot(info: RateLimitInfo, at: float = NOW) -> HeaderSnapshot:
    return HeaderSnapshot(info, at)


def test_429_cooldown_uses_longest_hint_or_default() -> None:
    """After a 429 (`retry.backoff.cooldown_s`, what the runner's outcomes use): the provider's
    longest hint, including the reset of an exhausted limit, else the policy's default."""
    policy = BackoffPolicy(default_rate_limit_cooldown_s=60)

    def after_429(info: RateLimitInfo | None) -> float | None:
        return cooldown_s(ProviderError("429", provider="groq", status=429, rate_limit=info), ErrorClass.RATE_LIMITED, policy)

    assert after_429(RateLimitInfo(retry_after_s=2, remaining_tokens=0, reset_tokens_s=7.5)) == 7.5
    assert after_429(None) == 60
    groq_daily = RateLimitInfo(remaining_requests=0, reset_requests_s=3 * 3600, requests_window_s=86_400)
    assert after_429(groq_daily) == 3 * 3600
    assert after_429(RateLimitInfo(retry_after_s=10 * 86_400)) == policy.max_cooldown_s


def test_cooldown_from_successful_headers() -> None:
    assert cooldown_from_headers(RateLimitInfo(remaining_requests=5, reset_requests_s=1), NOW) is None
    cd = cooldown_from_headers(RateLimitInfo(remaining_tokens=0, reset_tokens_s=12), NOW)
    assert cd is not None and cd.until == NOW + 12


def test_header_remaining_resets() -> None:
    snap = snapshot(RateLimitInfo(remaining_requests=3, reset_requests_s=10, remaining_tokens=50))
    assert header_remaining(snap, NOW + 1) == (3, 50)
    assert header_remaining(snap, NOW + 11) == (None, 50)
    assert header_remaining(snap, NOW + 61) == (None, None)  # tokens: no reset given, one window
    assert header_remaining(None, NOW) == (None, None)
    assert snapshot_expiry(snap.info, NOW) == NOW + 10
    assert snapshot_expiry(RateLimitInfo(remaining_requests=3, requests_window_s=86_400), NOW) == NOW + 60
    assert snapshot_expiry(RateLimitInfo(retry_after_s=10 * 86_400), NOW) == NOW + 86_400  # capped


def test_capacity_lower_of_windows_and_headers() -> None:
    hdr = snapshot(RateLimitInfo(remaining_requests=2, remaining_tokens=5000, reset_requests_s=30))
    cap = capacity([usage(4, 100)], ModelState(KEY, headers=hdr), ask(200), NOW)
    assert cap.ok and cap.remaining_requests == 2 and cap.remaining_tokens == 900
    plain = capacity([usage(4, 100)], None, ask(200), NOW)
    assert plain.ok and (plain.remaining_requests, plain.remaining_tokens) == (6, 900)
    unlimited = capacity([], None, ask(10**9), NOW)
    assert unlimited.ok and (unlimited.remaining_requests, unlimited.remaining_tokens) == (None, None)


@pytest.mark.parametrize(
    ("state", "windows", "tokens", "fragment"),
    [
        (ModelState(KEY, cooldown=Cooldown(NOW + 5, "429")), [], 1, "cooling down for 5s (429)"),
        (None, [usage(requests=10)], 1, "0 of 10 requests per 60s left on groq#m, needs 1"),
        (None, [usage(tokens=950)], 100, "50 of 1000 tokens per 60s left"),
        (None, [usage()], 1001, "needs 1001 tokens > 1000 per 60s window"),
        (ModelState(KEY, headers=snapshot(RateLimitInfo(remaining_tokens=10, reset_tokens_s=5))), [], 11,
         "provider headers: 10 tokens remaining"),
        (ModelState(KEY, headers=snapshot(RateLimitInfo(remaining_requests=0, reset_requests_s=5))), [], 1,
         "provider headers: 0 requests remaining"),
    ],
)
def test_capacity_refusals(state: ModelState | None, windows: list[WindowUsage], tokens: int, fragment: str) -> None:
    cap = capacity(windows, state, ask(tokens), NOW)
    assert not cap.ok and fragment in cap.reason


def test_an_expired_cooldown_or_header_does_not_refuse() -> None:
    state = ModelState(KEY, cooldown=Cooldown(NOW - 1, "429"),
                       headers=snapshot(RateLimitInfo(remaining_requests=0, reset_requests_s=5), NOW - 10))
    assert capacity([usage()], state, ask(1), NOW).ok


def test_old_window_usage_does_not_count() -> None:
    """Only the current window and the carry of the one before it count; older counts do not."""
    counters = {METER.pk(START - 120): {REQUESTS: 10}}
    assert capacity([usage_of(METER, counters, NOW)], None, ask(1), NOW).ok


def test_every_window_must_fit_model_and_provider_alike() -> None:
    """A model's own window with room does not help when its provider's shared window is full."""
    provider = Meter("groq#*", WindowLimit.of(1, requests=1))
    shared_full = WindowUsage(provider, int(NOW), {REQUESTS: 1})
    cap = capacity([usage(), shared_full], None, ask(1), NOW)
    assert not cap.ok and "left on groq#*" in cap.reason


def test_free_again_in_is_the_latest_of_cooldown_and_windows() -> None:
    full = usage(requests=10)
    # 10 of 10 used: it closes at START + 60, then carries 10 x overlap into the next minute,
    # which takes the 1 asked for once the carry is down to 9: 6 s into it
    assert free_again_in([full], None, ask(1), NOW) == pytest.approx(START + 60 + 6 - NOW)
    cooling = ModelState(KEY, cooldown=Cooldown(NOW + 300, "429"))
    assert free_again_in([full], cooling, ask(1), NOW) == pytest.approx(300)
    assert free_again_in([usage()], None, ask(1), NOW) == 0.0
    assert free_again_in([usage()], None, ask(1001), NOW) is None  # never fits this window


def test_free_again_in_with_a_memo_works_a_shared_window_out_once_and_answers_the_same(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A planner asks `free_again_in` of every model a provider's shared window fills (Mistral's
    six models, one requests-per-second window), each with its own token ask: with a memo the
    window is worked out once per part of the ask its limit counts, and every answer is the same
    as without one (a token limit asked for different amounts is worked out for each)."""
    second = Meter("mistral#*", WindowLimit.of(1, requests=1))
    shared = WindowUsage(second, int(NOW), {REQUESTS: 1})
    tokens = usage(requests=1, tokens=990)  # takes 10 tokens, not 20 or more
    asks = [{REQUESTS: 1, TOKENS: n} for n in (5, 50, 500, 5)] + [{REQUESTS: 1, TOKENS: 2000}]
    plain = [free_again_in([shared, tokens], None, a, NOW) for a in asks]
    calls: list[WindowUsage] = []
    real = WindowUsage.free_again_at

    def counted(self: WindowUsage, amounts: dict[str, int], now: float) -> float | None:
        calls.append(self)
        return real(self, amounts, now)

    monkeypatch.setattr(WindowUsage, "free_again_at", counted)
    memo: dict[tuple[object, ...], float | None] = {}
    assert [free_again_in([shared, tokens], None, a, NOW, memo) for a in asks] == plain
    assert plain[-1] is None and plain[0] is not None and plain[0] > 0  # 2000 tokens never fit 1000
    assert sum(c is shared for c in calls) == 1
    assert sum(c is tokens for c in calls) == 3  # 50, 500 and 2000 tokens: 5 is asked again


def test_near_miss() -> None:
    assert near_miss(RateLimitInfo(limit_requests=100, remaining_requests=5))
    assert not near_miss(RateLimitInfo(limit_requests=100, remaining_requests=50))


def test_a_near_miss_is_seen_in_the_gateway_s_own_windows_too() -> None:
    """Providers that send no rate-limit headers (Gemini) still show near misses: the window as
    the gateway counts it, after this attempt's use, with less than a tenth of a unit left."""
    assert not window_near_miss([usage(requests=8, tokens=100)], ask(100))  # 9 of 10 requests: 1 left, not < 1
    assert window_near_miss([usage(requests=9, tokens=100)], ask(100))  # 10 of 10
    assert window_near_miss([usage(requests=1, tokens=850)], ask(100))  # 950 of 1,000 tokens
    carried = WindowUsage(METER, START, {REQUESTS: 2, TOKENS: 0}, carried={REQUESTS: 7})
    assert window_near_miss([carried], ask(0))  # the previous minute's carry counts too
    budget = WindowUsage(Meter("user#u", LIM, scope="caller"), START, {REQUESTS: 9})
    assert not window_near_miss([budget], ask(0))  # a caller's own limit is not a provider's near miss


def test_a_store_refuses_a_burst_across_a_window_boundary() -> None:
    """The real planner and reservation path: 10 rpm spent in a minute's last seconds leaves no
    room at the start of the next minute (the two-bucket carry-over), so no 2x burst."""
    from llm_gateway.selection.catalog import FreeTier
    from llm_gateway.selection.planner import Planner
    from llm_gateway.selection.selector import ChatPreparer
    from llm_gateway.selection.tokens import TokenEstimator
    from llm_gateway.state.memory import MemoryStore
    from llm_gateway.state.shared import SharedState
    from tests.unit.selection.builders import catalog, entry, request

    model = entry("p0", "m", free=FreeTier(rpm=10))
    preparer, planner = ChatPreparer(catalog([model]), TokenEstimator()), Planner()
    state = SharedState(MemoryStore(), fold_reconcile=False)
    start = 6_000

    def plan_at(now: float):
        prep = preparer.prepare(request(), {model.key})
        return planner.plan(prep, state.load(prep.all_meters(), prep.keys, now), now)

    admitted_before = 0
    for second in (50, 55, 59):  # 12 attempts in the last seconds of one minute
        for _ in range(4):
            plan = plan_at(start + second)
            if plan.steps and state.reserve(plan.steps[0].usages, plan.steps[0].amounts, start + second):
                admitted_before += 1
    assert admitted_before == 10
    later = plan_at(start + 61)  # the next minute: a fixed window alone would admit 10 more at once
    assert not later.steps and later.capacity_only and later.free_again_in_s is not None
    assert "0 of 10 requests per 60s left on p0#m" in later.dropped[0][1]


def test_only_header_snapshots_that_could_bind_are_written() -> None:
    plenty = RateLimitInfo(limit_requests=100, remaining_requests=90, limit_tokens=10_000, remaining_tokens=9_000)
    assert not worth_recording(plenty)
    assert worth_recording(RateLimitInfo(limit_requests=100, remaining_requests=40))
    assert worth_recording(RateLimitInfo(limit_tokens=10_000, remaining_tokens=100, limit_requests=100, remaining_requests=99))
    assert worth_recording(RateLimitInfo(remaining_requests=5))  # no limit given: cannot judge, keep it
    assert worth_recording(RateLimitInfo(retry_after_s=3.0))
