"""Windows, limits, meters and the two-bucket carry-over (pure arithmetic, no store)."""

from __future__ import annotations

import calendar

import pytest

from llm_gateway.state.metering import (
    CALENDAR_MONTH,
    CALLER_SCOPE,
    DAY,
    MINUTE,
    REQUESTS,
    SECOND,
    TOKENS,
    Meter,
    Period,
    WindowLimit,
    WindowUsage,
    counter_pks,
    model_counter,
    provider_counter,
    scale_limit,
    scaled_meter,
    usage_of,
)


def utc(*parts: int) -> int:
    return calendar.timegm((*parts, *(0,) * (6 - len(parts))))


# --- periods ---------------------------------------------------------------------------------------
def test_second_based_windows_are_epoch_aligned() -> None:
    now = 1_700_000_071.5
    assert MINUTE.start(now) == 1_700_000_040 and MINUTE.end(1_700_000_040) == 1_700_000_100
    assert MINUTE.previous_start(now) == 1_699_999_980
    assert SECOND.start(now) == 1_700_000_071 and SECOND.previous_start(now) == 1_700_000_070
    assert DAY.start(now) % 86_400 == 0 and DAY.start(now) <= now < DAY.end(DAY.start(now))
    assert (MINUTE.name, MINUTE.sliding) == ("60", True)
    # kept one whole window past its end (the next window's carry reads it), plus a minute
    assert MINUTE.expires_at(1_700_000_040) == 1_700_000_100 + 60 + 60


def test_calendar_month_across_a_year_boundary() -> None:
    last_second_of_2026 = utc(2026, 12, 31, 23, 59, 59)
    december, january, february = utc(2026, 12, 1), utc(2027, 1, 1), utc(2027, 2, 1)
    assert CALENDAR_MONTH.start(last_second_of_2026) == december
    assert CALENDAR_MONTH.end(december) == january  # 31 days, into the next year
    assert CALENDAR_MONTH.previous_start(last_second_of_2026) == utc(2026, 11, 1)
    assert CALENDAR_MONTH.start(january) == january  # the first instant belongs to the new month
    assert CALENDAR_MONTH.start(january + 0.5) == january
    assert CALENDAR_MONTH.previous_start(january) == december  # back across the year boundary
    assert CALENDAR_MONTH.end(january) == february
    assert CALENDAR_MONTH.end(utc(2028, 2, 1)) == utc(2028, 3, 1)  # leap February: 29 days
    assert CALENDAR_MONTH.end(utc(2027, 2, 1)) == utc(2027, 3, 1)
    assert (CALENDAR_MONTH.name, CALENDAR_MONTH.sliding) == ("month", False)
    assert CALENDAR_MONTH.expires_at(december) == january + 31 * 86_400 + 60
    meter = Meter(provider_counter("cohere"), WindowLimit(CALENDAR_MONTH, {REQUESTS: 1000}))
    assert counter_pks(meter, last_second_of_2026) == (f"rl#cohere#*#month#{december}", f"rl#cohere#*#month#{utc(2026, 11, 1)}")
    assert counter_pks(meter, january) == (f"rl#cohere#*#month#{january}", f"rl#cohere#*#month#{december}")


def test_a_calendar_month_carries_nothing_into_the_next() -> None:
    """The provider resets its month at the boundary, so a full December leaves January empty."""
    meter = Meter(provider_counter("cohere"), WindowLimit(CALENDAR_MONTH, {REQUESTS: 1000}))
    december, january = utc(2026, 12, 1), utc(2027, 1, 1)
    counters = {meter.pk(december): {REQUESTS: 1000}}
    assert usage_of(meter, counters, january - 1).remaining(REQUESTS) == 0
    fresh = usage_of(meter, counters, january + 1)
    assert fresh.start == january and fresh.carried == {} and fresh.remaining(REQUESTS) == 1000
    assert usage_of(meter, counters, january - 1).free_again_at({REQUESTS: 1}, january - 1) == january


# --- limits and meters -------------------------------------------------------------------------------
def test_limits_and_meter_keys() -> None:
    limit = WindowLimit.of(60, requests=30, tokens=None)
    assert limit == WindowLimit(MINUTE, {REQUESTS: 30}) and hash(limit) == hash(WindowLimit(Period(60), {REQUESTS: 30}))
    assert limit.max_of(REQUESTS) == 30 and limit.max_of(TOKENS) is None
    assert Meter(model_counter("groq", "m"), limit).pk(120) == "rl#groq#m#60#120"
    assert Meter(provider_counter("mistral"), limit).pk(120) == "rl#mistral#*#60#120"


def test_scaled_limits_for_degraded_mode() -> None:
    assert scale_limit(WindowLimit.of(60, requests=10, tokens=1001), 0.5) == WindowLimit.of(60, requests=5, tokens=500)
    # rounded down, even to 0: two containers with half of 1 request/s each would admit 2
    assert scale_limit(WindowLimit.of(1, requests=1), 0.5) == WindowLimit.of(1, requests=0)
    assert scale_limit(WindowLimit.of(60, requests=0), 0.5) == WindowLimit.of(60, requests=0)  # 0 stays 0


# --- usage: what is used, what is carried, what fits ------------------------------------------------
MINUTE_LIMIT = WindowLimit.of(60, requests=30, tokens=6000)
METER = Meter(model_counter("groq", "m"), MINUTE_LIMIT)
START = 1_200  # an epoch-aligned minute


def test_previous_window_carries_over_by_its_remaining_overlap() -> None:
    counters = {METER.pk(START - 60): {REQUESTS: 30, TOKENS: 6000}, METER.pk(START): {}}
    assert usage_of(METER, counters, START).carried == {REQUESTS: 30, TOKENS: 6000}  # at the boundary: all
    assert usage_of(METER, counters, START + 30).carried == {REQUESTS: 15, TOKENS: 3000}  # half-way: half
    assert usage_of(METER, counters, START + 59.9).carried == {REQUESTS: 1, TOKENS: 10}  # rounded up
    assert usage_of(METER, {}, START).carried == {}
    half = usage_of(METER, counters, START + 30)
    assert half.ceilings() == {REQUESTS: 15, TOKENS: 3000}  # what the conditional write enforces
    # a full previous window leaves nothing right after the boundary: no 2x burst across it
    assert "0 of 30 requests per 60s left on groq#m" in (usage_of(METER, counters, START + 1).fits({REQUESTS: 1}) or "")
    assert usage_of(METER, counters, START + 45).remaining(REQUESTS) == 22  # 30 - ceil(30 * 0.25)
    # an older window than the previous one counts for nothing
    stale = {METER.pk(START - 120): {REQUESTS: 30}}
    assert usage_of(METER, stale, START + 1).remaining(REQUESTS) == 30


def test_fits_explains_why_not() -> None:
    usage = WindowUsage(METER, START, {REQUESTS: 4, TOKENS: 5950})
    assert usage.fits({REQUESTS: 1, TOKENS: 50}) is None
    assert usage.fits({REQUESTS: 1, TOKENS: 51}) == "50 of 6000 tokens per 60s left on groq#m, needs 51"
    assert usage.fits({REQUESTS: 1, TOKENS: 6001}) == "needs 6001 tokens > 6000 per 60s window"
    assert usage.fits({REQUESTS: 1, "audio_seconds": 10**6}) is None  # a unit without a limit is not limited
    assert usage.remaining("audio_seconds") is None


def _fits_at(usage: WindowUsage, counters: dict, amounts: dict, at: float) -> bool:
    return usage_of(usage.meter, counters, at).fits(amounts) is None


def test_free_again_follows_the_decaying_carry() -> None:
    one_rps = Meter(provider_counter("mistral"), WindowLimit.of(1, requests=1))
    # 1 rps: the last second used its request; this second is free only once the carry decays
    counters = {one_rps.pk(START - 1): {REQUESTS: 1}}
    assert usage_of(one_rps, counters, START + 0.2).free_again_at({REQUESTS: 1}, START + 0.2) == pytest.approx(START + 1.0)
    # 30 rpm with 30 last minute and 10 now: 19 more fit once the carry has decayed to 19
    counters = {METER.pk(START - 60): {REQUESTS: 30}, METER.pk(START): {REQUESTS: 10}}
    now = START + 5
    usage = usage_of(METER, counters, now)
    assert usage.fits({REQUESTS: 1}) is not None
    at = usage.free_again_at({REQUESTS: 1}, now)
    assert at is not None and at == pytest.approx(START + 60 * (1 - 19 / 30), abs=1.0)
    assert _fits_at(usage, counters, {REQUESTS: 1}, at + 0.01)  # it really fits then
    assert not _fits_at(usage, counters, {REQUESTS: 1}, at - 1.0)  # and not a second before
    decayed = usage_of(METER, counters, START + 40)
    assert decayed.fits({REQUESTS: 1}) is None and decayed.free_again_at({REQUESTS: 1}, START + 40) == START + 40
    full = usage_of(METER, {METER.pk(START): {REQUESTS: 30}}, now)
    closes = full.free_again_at({REQUESTS: 1}, now)
    assert closes is not None and closes >= START + 60  # its own count: not before it closes
    assert full.free_again_at({REQUESTS: 31}, now) is None  # above the limit itself: never
    month = Meter(provider_counter("cohere"), WindowLimit(CALENDAR_MONTH, {REQUESTS: 1}))
    december = utc(2026, 12, 1)
    used_up = usage_of(month, {month.pk(december): {REQUESTS: 1}}, december + 5)
    assert used_up.free_again_at({REQUESTS: 1}, december + 5) == utc(2027, 1, 1)  # no carry: at the boundary


def test_a_full_sliding_window_frees_when_its_carry_has_decayed() -> None:
    counters = {METER.pk(START): {REQUESTS: 30}}
    now = START + 5
    at = usage_of(METER, counters, now).free_again_at({REQUESTS: 1}, now)
    assert at is not None
    assert _fits_at(usage_of(METER, counters, now), counters, {REQUESTS: 1}, at + 0.01)
    one_rps = Meter(provider_counter("mistral"), WindowLimit.of(1, requests=1))
    counters = {one_rps.pk(START): {REQUESTS: 1}}
    assert usage_of(one_rps, counters, START + 0.5).free_again_at({REQUESTS: 1}, START + 0.5) == START + 2


def test_a_stamped_previous_window_stops_carrying_one_length_after_its_last_request() -> None:
    """1 request/s: the previous second's lone request at .01 is out of the sliding window at the
    next second's .01 plus the stamp's slack, not at its end (the estimate alone would hold it for
    the whole second). The slack is 5 % of a length but at least 0.25 s: the stamp is taken before
    the reservation's write and the provider call, and a new connection to the provider takes
    longer than 50 ms (the load test saw Mistral's window passed with 5 % of a second)."""
    one_rps = Meter(provider_counter("mistral"), WindowLimit.of(1, requests=1))
    previous = one_rps.pk(START - 1)
    counters, stamps = {previous: {REQUESTS: 1}}, {previous: START - 1 + 0.01}
    assert usage_of(one_rps, counters, START + 0.005, stamps).fits({REQUESTS: 1}) is not None  # still inside
    assert usage_of(one_rps, counters, START + 0.2, stamps).fits({REQUESTS: 1}) is not None  # within the slack
    assert usage_of(one_rps, counters, START + 0.27, stamps).fits({REQUESTS: 1}) is None  # 1.25 s after it: free
    held = usage_of(one_rps, counters, START + 0.005, stamps)
    assert held.free_again_at({REQUESTS: 1}, START + 0.005) == pytest.approx(START + 0.26)
    unstamped = usage_of(one_rps, counters, START + 0.5)
    assert unstamped.fits({REQUESTS: 1}) is not None  # without a stamp the estimate stays conservative


def test_a_degraded_container_s_share_of_a_meter_is_one_object_and_keeps_the_meter_s_scope() -> None:
    """While the store is down every plan checks each meter at this container's share: the same
    Meter each time (a new one per check defeated the per-meter caches and filled them), and a
    caller's own limit stays the caller's (it was checked as a provider's limit, so the planner
    did not see the caller's refusal)."""
    provider = Meter(model_counter("groq", "m"), WindowLimit(MINUTE, {REQUESTS: 10}))
    caller = Meter("user#u", WindowLimit(MINUTE, {REQUESTS: 10}), CALLER_SCOPE)
    assert scaled_meter(provider, 0.5) is scaled_meter(provider, 0.5)
    assert scaled_meter(provider, 0.5).limit.maxima == {REQUESTS: 5}
    assert (scaled_meter(caller, 0.5).scope, scaled_meter(provider, 0.5).scope) == (CALLER_SCOPE, provider.scope)


def test_a_refusal_names_its_window_as_a_caller_reads_it() -> None:
    """`60s`, `day`, `month`: a user's daily limit read "1 of 25 audio_seconds per days left"."""
    from llm_gateway.state.metering import (
        AUDIO_SECONDS,
        CALENDAR_DAY,
        CALENDAR_MONTH,
        Meter,
        WindowLimit,
        WindowUsage,
    )

    for period, label in ((CALENDAR_DAY, "day"), (CALENDAR_MONTH, "month"), (Period(60), "60s")):
        usage = WindowUsage(Meter("user#u", WindowLimit(period, {AUDIO_SECONDS: 25})), 0, {AUDIO_SECONDS: 24})
        assert usage.fits({AUDIO_SECONDS: 3}) == f"1 of 25 audio_seconds per {label} left on user#u, needs 3"
        assert usage.fits({AUDIO_SECONDS: 30}) == f"needs 30 audio_seconds > 25 per {label} window"
