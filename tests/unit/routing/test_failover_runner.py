"""The failover core (ChatRouter over FailoverRunner) on a fake clock, without a socket.

Every test builds the gateway through `compose.build_core` with an `httpx.MockTransport` in front
of three fake providers (see `harness.py`): an `auto` request plans groq → openai → mistral, and
time moves only when a fake provider takes time or the gateway sleeps (recorded). What each test
pins down is in its docstring; each was checked to fail with the behaviour it guards broken.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from llm_gateway.api.errors import GatewayError
from llm_gateway.api.schemas import ChatCompletionRequest
from llm_gateway.observability import metrics as m
from llm_gateway.retry.backoff import BackoffPolicy
from llm_gateway.retry.handler import RetrySettings
from llm_gateway.routing.breaker_store import MemoryBreakerPersistence
from llm_gateway.routing.circuit_breaker import (
    BreakerOpen,
    BreakerSettings,
    CircuitBreakers,
    provider_circuit,
    reset_local_counters,
)
from llm_gateway.routing.failures import AdaptiveTimeouts, TimeoutPolicy
from llm_gateway.selection.catalog import Catalog, Limits, ModelEntry, Pricing, ProviderInfo
from llm_gateway.state.items import failure_pk, meter_expires, window_ref
from llm_gateway.state.memory import MemoryStore
from llm_gateway.state.metering import REQUESTS, TOKENS
from llm_gateway.state.store import CounterAdd, Item, ModelKey
from llm_gateway.tenancy.limits import UserLimits, user_counter
from llm_gateway.tenancy.policy import Policy
from tests.unit.routing.harness import (
    EPOCH,
    FAST_RETRY,
    KEYS,
    MODELS,
    Rig,
    answer,
    chat,
    hang,
    pinned,
    refuse,
    rig,
    status,
)

T = TypeVar("T")
FAST_BUDGET = FAST_RETRY.attempt_timeout_s  # the attempt timeout every rig uses unless told


@pytest.fixture(autouse=True)
def _fresh_breakers() -> Iterator[None]:
    """Powertools keeps failure streaks per circuit name in module globals: one test's failures
    must not open another test's circuits."""
    reset_local_counters()
    yield
    reset_local_counters()


def failing(call: Callable[[], T]) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        call()
    return caught.value


# --- failover order ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("behaviour", "error_class"), [
    (status(500), "server_error"),
    (status(429), "rate_limited"),
    (status(503), "overloaded"),
    (hang(), "timeout"),
], ids=["500", "429", "503", "read-timeout"])
def test_a_failing_first_choice_fails_over_to_the_next_in_plan_order(behaviour, error_class) -> None:
    """500, 429, 503 and a read timeout all move the request to the next planned model at once."""
    r = rig()
    r.fleet.set("groq", behaviour)
    routed = r.router.complete(chat())
    assert routed.provider == "openai"
    assert r.fleet.providers_called() == ["groq", "openai"]
    assert [(a.provider, a.error_class) for a in routed.attempts] == [("groq", error_class), ("openai", None)]
    assert r.clock.sleeps == []  # switching models never waits
    assert r.metrics.total(m.FAILOVERS, provider="groq", to_provider="openai") == 1


def test_two_failures_then_the_third_provider_serves() -> None:
    """500 then 429 then an answer: three attempts in plan order, each error class recorded."""
    r = rig()
    r.fleet.set("groq", status(500))
    r.fleet.set("openai", status(429))
    routed = r.router.complete(chat())
    assert routed.provider == "mistral"
    assert r.fleet.providers_called() == ["groq", "openai", "mistral"]
    assert [(a.provider, a.error_class, a.status) for a in routed.attempts] == [
        ("groq", "server_error", 500), ("openai", "rate_limited", 429), ("mistral", None, None)]


# --- failure memory ---------------------------------------------------------------------------------
def test_a_provider_that_failed_goes_last_for_the_very_next_request() -> None:
    """After groq fails once, the next request plans it behind every other provider and does not
    call it, although groq would now answer: this container learns at once, no breaker needed."""
    r = rig()
    r.fleet.then("groq", status(500))  # one failure, then healthy again
    assert r.router.complete(chat()).provider == "openai"
    assert [s.key.provider for s in r.router.plan(chat()).steps] == ["openai", "mistral", "groq"]
    before = len(r.fleet.calls)
    assert r.router.complete(chat()).provider == "openai"
    assert r.fleet.providers_called(before) == ["openai"]


class UnsharedStore(MemoryStore):
    """A state store whose shared failure marks never arrive (a throttled or failed write)."""

    def put(self, pk: str, item: Item, expires_at: int, now: float) -> None:
        if pk.startswith(failure_pk("")):
            raise ConnectionError("the shared write did not happen")
        super().put(pk, item, expires_at, now)


def test_the_container_remembers_a_failure_even_when_the_shared_mark_is_not_written() -> None:
    """Failure memory is first this container's own: with the shared write failing, the next
    request still plans groq last and does not call it."""
    r = rig(store=UnsharedStore())
    r.fleet.then("groq", status(500))
    r.router.complete(chat())
    assert r.store.load([failure_pk("groq")], r.clock.wall()) == {}, "the shared mark was written"
    before = len(r.fleet.calls)
    assert r.router.complete(chat()).provider == "openai"
    assert r.fleet.providers_called(before) == ["openai"]


def test_another_container_ranks_the_failed_provider_last_after_one_read() -> None:
    """The failure mark goes to the shared store: a second container (same store, own memory)
    plans groq last on its next request."""
    first = rig()
    first.fleet.set("groq", status(500))
    first.router.complete(chat())
    second = rig(store=first.store, clock=first.clock)
    assert [s.key.provider for s in second.router.plan(chat()).steps] == ["openai", "mistral", "groq"]


def never_open() -> CircuitBreakers:
    return CircuitBreakers(MemoryBreakerPersistence(), BreakerSettings(failure_threshold=10**6))


def test_a_provider_that_keeps_failing_is_called_every_few_minutes_not_every_30_s() -> None:
    """Groq is down for ten minutes and a request arrives every 5 s. Each time its failure mark
    runs out, one request tries it again and fails; the mark then holds twice as long (30, 60,
    120, 240, then 300 s), so groq takes 5 requests, not the 18 a fixed 30 s memory sends it.
    (Breakers that never open: Powertools' run on the real clock, and this is failure memory.)"""
    r = rig(breakers=never_open())
    r.fleet.set("groq", status(503))
    before = len(r.fleet.calls)
    for _ in range(120):
        assert r.router.complete(chat()).provider != "groq"
        r.clock.advance(5.0)
    groq = [call.at for call in r.fleet.calls[before:] if call.provider == "groq"]
    assert len(groq) == 5, groq
    gaps = [round(b - a) for a, b in itertools.pairwise(groq)]
    assert gaps == [30, 60, 120, 240], gaps  # each mark's memory (requests come on its last second)


def test_an_answer_between_two_failures_starts_the_memory_again_at_30_s() -> None:
    """A provider that answered since its last failure is not in an outage: its next failure is
    remembered 30 s, however long the streak before was."""
    r = rig(breakers=never_open())
    r.fleet.set("groq", status(503))
    for _ in range(3):  # three failures in a row: the mark now holds 120 s
        r.router.complete(chat())
        r.clock.advance(r.core.failures.merged({})["groq"].until - r.clock.wall() + 1)
    assert r.core.failures.merged({})["groq"].streak == 3
    r.fleet.set("groq", answer())
    assert r.router.complete(chat()).provider == "groq"
    r.fleet.set("groq", status(503))
    r.router.complete(chat())
    mark = r.core.failures.merged({})["groq"]
    assert (mark.streak, mark.until - mark.at) == (1, 30.0)


def test_another_container_continues_the_streak_after_the_mark_ran_out() -> None:
    """The first container's mark ran out before the second container ever read it; when the
    second then fails groq, the shared item (kept past its memory's end) tells it this is the
    same outage: its mark holds 60 s, and the first container reads that."""
    first = rig()
    first.fleet.set("groq", status(503))
    first.router.complete(chat())
    first.clock.advance(31.0)
    second = rig(store=first.store, clock=first.clock)
    second.fleet.set("groq", status(503))
    second.router.complete(chat())
    first.clock.advance(45.0)
    assert [s.key.provider for s in first.router.plan(chat()).steps] == ["openai", "mistral", "groq"]
    first.clock.advance(16.0)
    assert next(s.key.provider for s in first.router.plan(chat()).steps) == "groq"


def test_an_answer_after_a_streak_starts_every_container_over() -> None:
    """Groq failed twice in a row in the first container (its mark holds 60 s), then answers
    again there. A second container that meets one more 503 must not continue the old streak
    (120 s for everyone): the first container shared that groq answered, so the second's mark
    holds 30 s, and the first ranks groq first again once that has passed."""
    first = rig(breakers=never_open())
    first.fleet.set("groq", status(503))
    for _ in range(2):
        first.router.complete(chat())
        first.clock.advance(first.core.failures.merged({})["groq"].until - first.clock.wall() + 1)
    assert first.core.failures.merged({})["groq"].streak == 2
    first.fleet.set("groq", answer())
    assert first.router.complete(chat()).provider == "groq"
    second = rig(store=first.store, clock=first.clock, breakers=never_open())
    second.fleet.set("groq", status(503))
    second.router.complete(chat())
    first.clock.advance(31.0)
    assert next(s.key.provider for s in first.router.plan(chat()).steps) == "groq"


def test_a_call_begun_while_the_mark_held_does_not_grow_the_streak() -> None:
    """A request pinned to groq starts 20 s into groq's 30 s mark and times out after it ran out:
    that is the same incident (the call was not a probe sent after the mark ended), so the mark
    keeps streak 1 and holds 30 s from this failure, not 60."""
    r = rig(breakers=never_open())
    r.fleet.set("groq", status(503))
    r.router.complete(chat())
    r.clock.advance(20.0)
    r.fleet.set("groq", hang())
    failing(lambda: r.router.complete(pinned("groq")))
    mark = r.core.failures.merged({})["groq"]
    assert r.clock.wall() > EPOCH + 0.1 + 30 and (mark.streak, mark.until - mark.at) == (1, 30.0)


def test_a_provider_error_the_caller_s_request_caused_is_not_held_against_the_provider() -> None:
    """A 400 for one caller's malformed request (context-length and content-filter refusals are
    the request's own doing in the same way, `Decision.caller_caused`; a mid-stream one is in the OpenAI-family adapter tests) says
    nothing of the provider: the status page's passive health and failure memory keep no
    failure for it, so one caller's mistakes never make a provider look unhealthy to operators;
    a 500 is recorded."""
    r = rig()
    r.fleet.set("groq", status(400, message="invalid request: bad tool schema"))
    failing(lambda: r.router.complete(pinned("groq")))
    stats = r.core.passive.snapshot().get(ModelKey("groq", MODELS["groq"]), {})
    assert stats.get("failures", 0) == 0 and stats.get("last_error_class") is None, stats
    assert not r.core.failures.recent("groq", r.clock.wall())
    r.fleet.set("groq", status(500))
    r.router.complete(chat())
    stats = r.core.passive.snapshot()[ModelKey("groq", MODELS["groq"])]
    assert (stats["failures"], stats["last_error_class"]) == (1, "server_error")


def test_after_a_failure_a_provider_that_just_answered_is_tried_before_an_unknown_one() -> None:
    """Mistral (last in plan order) answered a moment ago; openai has not been heard from. When
    groq fails, the request's next attempt goes to mistral, not to openai: a provider that is
    hanging has no failure on record yet, and the second attempt should not find that out."""
    r = rig()
    assert r.router.complete(pinned("mistral")).provider == "mistral"
    r.fleet.set("groq", status(500))
    before = len(r.fleet.calls)
    routed = r.router.complete(chat())
    assert r.fleet.providers_called(before) == ["groq", "mistral"]
    assert routed.provider == "mistral"


def _learn_paces(r: Rig) -> None:
    """Three answers each teach the gateway that openai writes slowly (4 s) and mistral fast."""
    r.fleet.set("openai", answer(after_s=4.0))
    r.fleet.set("mistral", answer(after_s=0.5))
    for _ in range(3):
        r.router.complete(pinned("openai"))
        r.router.complete(pinned("mistral"))


def test_after_a_timeout_the_fastest_provider_left_gets_all_the_time_left() -> None:
    """Found by `llm-gateway simulate`: most requests that ended 503 were long answers (2,000 to
    4,000 tokens, no max_tokens) cut by a timeout sized for the usual answer, then failed over in
    plan order to another slow provider, again with the usual timeout. A timeout says the answer
    is long (or the provider hangs): either way the next attempt should go to the provider that
    writes fastest, and get all the time left rather than a timeout it has just been shown to miss.
    openai (next in plan order) answered in 4 s, mistral in 0.5 s; groq times out."""
    r = rig()
    _learn_paces(r)
    r.fleet.set("groq", hang())
    r.fleet.set("mistral", answer(after_s=9.0))  # this answer is long
    before = len(r.fleet.calls)
    routed = r.router.complete(chat())
    assert r.fleet.providers_called(before) == ["groq", "mistral"]
    assert routed.provider == "mistral"
    timed_out, served = r.fleet.calls[before:]
    left = FAST_RETRY.deadline_s - FAST_RETRY.safety_margin_s - timed_out.timeout_s
    assert served.timeout_s == pytest.approx(min(left, FAST_BUDGET), abs=0.01)


def test_after_a_timeout_a_free_tier_still_goes_before_a_faster_paid_model() -> None:
    """Speed orders the free tiers among themselves, and the paid models among themselves: a paid
    model that writes fastest does not jump ahead of a free tier that can still serve."""
    r = rig(paid=("mistral",))
    _learn_paces(r)
    r.fleet.set("groq", hang())
    before = len(r.fleet.calls)
    assert r.router.complete(chat()).provider == "openai"
    assert r.fleet.providers_called(before) == ["groq", "openai"]


def test_a_request_for_a_very_long_answer_goes_first_to_the_fastest_free_tier() -> None:
    """A caller who allows 8,000 output tokens may get an answer that takes a slow provider longer
    than the whole deadline: its first attempt goes to the provider that writes fastest (here
    mistral, last in plan order), not to the first in plan order."""
    r = rig()
    r.fleet.set("groq", answer(after_s=3.0))
    r.fleet.set("openai", answer(after_s=4.0))
    r.fleet.set("mistral", answer(after_s=0.5))
    for provider in ("groq", "openai", "mistral"):
        for _ in range(3):
            r.router.complete(pinned(provider))
    long_answer = ChatCompletionRequest.model_validate(
        {"model": "auto", "max_tokens": 8000, "messages": [{"role": "user", "content": "Write at length."}]})
    before = len(r.fleet.calls)
    assert r.router.complete(long_answer).provider == "mistral"
    assert r.fleet.providers_called(before) == ["mistral"]


# --- waiting briefly for capacity -------------------------------------------------------------------
def test_a_near_miss_is_counted_from_the_gateway_s_own_window_when_the_provider_sends_no_headers() -> None:
    """The dashboard's near misses cover providers that report no remaining capacity: Mistral's
    1 request/s organisation window, filled by one call, is one near miss, with no header seen;
    a roomy window is none."""
    r = rig(mistral_rps=1)
    r.router.complete(pinned("groq"))
    assert r.metrics.total(m.RATE_LIMIT_NEAR_MISS) == 0
    r.router.complete(pinned("mistral"))
    assert r.metrics.total(m.RATE_LIMIT_NEAR_MISS, provider="mistral", model=MODELS["mistral"]) == 1
    assert r.metrics.total(m.RATE_LIMIT_NEAR_MISS) == 1


def test_a_near_miss_is_judged_on_the_window_the_attempt_counted_in_not_the_plan_s() -> None:
    """Found in a second read: the near miss read the windows the plan was made on. Mistral's
    organisation allows 10 requests a second; 9 fill the second the plan sees; the request's
    first choice (groq) hangs past that second, and Mistral serves it in the next one, where it
    is the first of 10: no near miss (the plan's window, 9 + 1 of 10, said one)."""
    r = rig(providers=("groq", "mistral"), mistral_rps=10)
    for _ in range(9):
        r.router.complete(pinned("mistral"))
    assert r.metrics.total(m.RATE_LIMIT_NEAR_MISS) == 0
    r.fleet.set("groq", hang())
    started = r.clock.wall()
    routed = r.router.complete(chat())
    assert routed.provider == "mistral" and r.clock.wall() - started >= 1.0
    assert r.metrics.total(m.RATE_LIMIT_NEAR_MISS) == 0


def test_pinned_one_request_per_second_waits_on_the_fake_clock_and_succeeds() -> None:
    """Mistral allows 1 request/s for the whole organisation. Two back-to-back pinned requests
    both succeed: the second sleeps once (on the fake clock, within LLM_GATEWAY_MAX_WAIT_S) and
    reaches the provider no sooner than a second after the first; no real time passes."""
    r = rig(mistral_rps=1, max_wait_s=2.0)
    real = time.monotonic()
    first = r.router.complete(pinned("mistral"))
    second = r.router.complete(pinned("mistral"))
    assert first.provider == second.provider == "mistral"
    assert len(r.clock.sleeps) == 1 and 0 < r.clock.sleeps[0] <= 2.0
    first_call, second_call = r.fleet.calls
    assert second_call.at - first_call.at >= 1.0
    assert r.metrics.total(m.CAPACITY_WAITS) == 1
    assert time.monotonic() - real < 1.0


@pytest.mark.parametrize("free_wait_s", [None, "0"], ids=["default", "0"])
def test_a_moment_s_wait_for_a_free_tier_comes_before_a_paid_model(free_wait_s: str | None) -> None:
    """Mistral (free, 1 request/s for the organisation) has just served a request; the next one
    could go to openai (paid) at once. By default (LLM_GATEWAY_FREE_WAIT_S=1.5) it waits on the
    fake clock for Mistral's next second and is served free; with 0 it pays at once."""
    env = {} if free_wait_s is None else {"LLM_GATEWAY_FREE_WAIT_S": free_wait_s}
    r = rig(providers=("openai", "mistral"), mistral_rps=1, paid=("openai",), **env)
    assert r.router.complete(chat()).provider == "mistral"
    second = r.router.complete(chat())
    if free_wait_s is None:
        assert second.provider == "mistral" and not second.cost_usd
        assert len(r.clock.sleeps) == 1 and 0 < r.clock.sleeps[0] <= 1.5
        assert r.fleet.calls[1].at - r.fleet.calls[0].at >= 1.0
    else:
        assert second.provider == "openai" and r.clock.sleeps == []


def test_no_wait_for_a_free_tier_that_frees_later_than_the_free_wait() -> None:
    """A free tier full for longer than LLM_GATEWAY_FREE_WAIT_S (0.3 s here; Mistral's 1 request/s
    frees about a second after its last request) is not waited for: the paid model serves at once."""
    r = rig(providers=("openai", "mistral"), mistral_rps=1, paid=("openai",), LLM_GATEWAY_FREE_WAIT_S="0.3")
    assert r.router.complete(chat()).provider == "mistral"
    r.clock.advance(0.2)  # Mistral frees about a second from now: longer than 0.3 s
    assert r.router.complete(chat()).provider == "openai"
    assert r.clock.sleeps == []


def test_no_wait_for_a_free_tier_whose_provider_just_failed() -> None:
    """Mistral answered 500 (its 1 request/s is counted: it saw the call) and openai served. The
    next request does not wait for Mistral's next second: a provider that just failed would rank
    behind the paid model anyway, so the wait would buy nothing."""
    r = rig(providers=("openai", "mistral"), mistral_rps=1, paid=("openai",))
    r.fleet.set("mistral", status(500))
    assert r.router.complete(chat()).provider == "openai"
    slept = list(r.clock.sleeps)
    assert r.router.complete(chat()).provider == "openai"
    assert r.clock.sleeps == slept


def test_free_tiers_seen_used_up_make_room_in_the_state_read_for_others() -> None:
    """Found by `llm-gateway simulate` (full size: a fifth of the day's requests paid while free
    tiers had capacity): state is read for as many candidates as one read holds, best static rank
    first. When those free tiers have used up their day, the plan went paid although free tiers
    ranked lower, never loaded, could serve. A container that saw them used up loads the others
    first until they free again."""
    day = Limits(rpm=1000, rpd=5)
    # enough groq models that the mistral ones do not fit in the first read (one counter item per model)
    free_first = 24
    entries = [ModelEntry(provider="groq", model=f"a{i:02}", category="small", context_window=128_000,
                          max_output=8192, free_tier=day) for i in range(free_first)]
    entries += [ModelEntry(provider="mistral", model=f"b{i:02}", category="small", context_window=128_000,
                           max_output=8192, free_tier=day) for i in range(6)]
    entries += [ModelEntry(provider="openai", model=f"c{i:02}", category="small", context_window=128_000,
                           max_output=8192, price=Pricing(input=1.0 + i, output=2.0)) for i in range(4)]
    providers = {p: ProviderInfo(as_of="test", source="test") for p in ("groq", "mistral", "openai")}
    r = rig(models=Catalog.from_entries(entries, providers))
    prep = r.router.preparer.prepare(chat(), r.router.available())
    loaded = {c.key for c in prep.candidates}
    assert all(ModelKey("mistral", f"b{i:02}") not in loaded for i in range(6)), "the test would prove nothing"
    now = r.clock.wall()
    for entry in entries[:free_first]:  # every groq free tier has used up its day (another container's traffic)
        [meter] = [m for m in r.core.catalog.meters(entry) if m.limit.period.seconds == 86_400]
        start = meter.limit.period.start(now)
        window = window_ref(meter, start)
        r.store.add([CounterAdd(window.item, window.attrs({REQUESTS: 5}), meter_expires(now))], now)
    first = r.router.complete(chat())
    second = r.router.complete(chat())
    assert first.provider == "openai" and not first.free  # the first plan saw only used-up free tiers
    assert second.provider == "mistral" and second.free


def _use_up_day(r: Rig, provider: str, requests: int, unit: str = REQUESTS) -> None:
    """Count `requests` (or that many of `unit`; negative: give them back) on the day window of
    `provider`'s model, as another container's traffic (or a released reservation) would."""
    entry = next(e for e in r.core.catalog.entries if e.provider == provider)
    [meter] = [m for m in r.core.catalog.meters(entry) if m.limit.period.seconds == 86_400]
    now = r.clock.wall()
    window = window_ref(meter, meter.limit.period.start(now))
    r.store.add([CounterAdd(window.item, window.attrs({unit: requests}), meter_expires(now))], now)


def test_a_free_tier_seen_used_up_is_not_planned_until_its_remembered_time() -> None:
    """A container that found a free tier used up for the day leaves it out of the next requests'
    state reads and plans until the day ends (it was read, decoded and found full by every plan of
    every request: a quarter of each plan's candidates at a 100,000-request simulated day), even
    if it frees early: here its day's count is given back, and the next `auto` request goes paid
    rather than read it (before: served by it). A request pinned to it still is; the day over, it
    is planned again."""
    r = rig(providers=("groq", "openai"), paid=("openai",), limits={"groq": Limits(rpm=1000, rpd=5)})
    _use_up_day(r, "groq", 5)
    assert r.router.complete(chat()).provider == "openai"  # groq's day is used up: remembered
    _use_up_day(r, "groq", -5)  # it frees early (what another container reserved is given back)
    assert r.router.complete(chat()).provider == "openai"
    assert r.router.complete(pinned("groq")).provider == "groq"
    r.clock.advance(86_400)
    assert r.router.complete(chat()).provider == "groq"


def test_a_free_tier_remembered_used_up_is_waited_for_within_the_longest_wait_of_its_time() -> None:
    """A model remembered used up until its month ends is kept in reads and plans once that end is
    within the runner's longest wait: a request a second before it waits for the free tier (as
    it would have with the model planned every time) instead of going paid."""
    r = rig(providers=("groq", "openai"), paid=("openai",), limits={"groq": Limits(rpm=1000, rpmonth=5)})
    entry = next(e for e in r.core.catalog.entries if e.provider == "groq")
    [meter] = [m for m in r.core.catalog.meters(entry) if m.limit.period.seconds == 0]  # the calendar month
    now = r.clock.wall()
    start = meter.limit.period.start(now)
    window = window_ref(meter, start)
    r.store.add([CounterAdd(window.item, window.attrs({REQUESTS: 5}), meter_expires(now))], now)
    assert r.router.complete(chat()).provider == "openai"  # used up: remembered until the month ends
    ends = meter.limit.period.start(start + 40 * 86_400)
    r.clock.advance(ends - r.clock.wall() - 1.0)
    assert r.router.complete(chat()).provider == "groq" and r.clock.sleeps, r.clock.sleeps


def test_a_free_tier_seen_too_full_for_a_large_ask_is_not_planned_for_as_large_asks() -> None:
    """A day's tokens nearly used up take a small request but not a large one: the container
    remembers the model as used up for asks of that many tokens or more until the window frees
    them (not for every request: a small one is still planned and served by it). A later large
    request leaves it out of its read and plan even when tokens were given back meanwhile
    (before: it was read, found full by every large request's plans, and served this one)."""
    r = rig(providers=("groq", "openai"), paid=("openai",), limits={"groq": Limits(rpm=1000, tpd=10_000)})

    def asking(max_tokens: int) -> ChatCompletionRequest:
        return ChatCompletionRequest.model_validate(
            {"model": "auto", "max_tokens": max_tokens, "messages": [{"role": "user", "content": "hi"}]})

    _use_up_day(r, "groq", 9_500, TOKENS)
    assert r.router.complete(asking(4_000)).provider == "openai"  # 500 tokens left: remembered for 4,000
    assert r.router.complete(asking(100)).provider == "groq"  # a small ask is still planned
    _use_up_day(r, "groq", -9_500, TOKENS)  # freed early: given back
    assert r.router.complete(asking(4_000)).provider == "openai"
    assert r.router.complete(asking(3_000)).provider == "groq"  # asks less than the one remembered
    r.clock.advance(2 * 86_400)
    assert r.router.complete(asking(4_000)).provider == "groq"


def test_a_plan_left_empty_by_the_used_up_memory_is_made_again_with_every_candidate() -> None:
    """When nothing but the free tiers this container remembers used up can serve, the request is
    planned again with them: one that freed early serves (here groq, its day given back, while
    mistral's minute is full); and with them still full, the 429 and its Retry-After are those of
    the whole pool, as when they were planned every time."""
    r = rig(providers=("groq", "mistral"), limits={"groq": Limits(rpm=1000, rpd=5), "mistral": Limits(rpm=1)})
    _use_up_day(r, "groq", 5)
    assert r.router.complete(chat()).provider == "mistral"  # groq remembered; mistral's minute now full
    error = failing(lambda: r.router.complete(chat()))
    assert error.status == 429 and any(s.startswith("groq/") and "per 86400s" in s for s in error.extra["skipped"])
    retry_after = error.headers["Retry-After"]
    _use_up_day(r, "groq", -5)
    assert r.router.complete(chat()).provider == "groq"
    _use_up_day(r, "groq", 5)
    again = failing(lambda: r.router.complete(chat()))
    assert again.status == 429 and again.headers["Retry-After"] == retry_after


def test_a_key_allowed_only_free_tiers_seen_used_up_gets_their_answer_not_a_403() -> None:
    """A key whose allow-list holds only a model this container remembers used up is not refused
    as if it could use nothing: the request is planned with the model (the 429 of a full day),
    and once the day's count is given back it is served by it."""
    r = rig(providers=("groq", "openai"), paid=("openai",), limits={"groq": Limits(rpm=1000, rpd=5)})
    _use_up_day(r, "groq", 5)
    assert r.router.complete(chat()).provider == "openai"  # groq's day is used up: remembered
    only_groq = UserLimits(Policy(models=(f"groq/{MODELS['groq']}",)), user_counter("alice"), wall=r.clock.wall())
    error = failing(lambda: r.router.complete(chat(), limits=only_groq))
    assert error.status == 429, (error.status, error.code)
    _use_up_day(r, "groq", -5)
    assert r.router.complete(chat(), limits=only_groq).provider == "groq"


def test_a_wait_for_a_model_the_narrowed_read_holds_is_not_lost_to_the_whole_plan() -> None:
    """24 free tiers whose day is used up fill the first state read; 6 Mistral models (one
    1 request/s window between them) rank below it. Once the used-up ones are remembered, the read
    holds Mistral; a request in the same second as Mistral's last waits for its next second and is
    served. Found by review: the empty narrowed plan was replaced by the plan of the original
    read, which holds only the used-up models, so the request was answered 429 with a Retry-After
    of hours instead of waiting a second."""
    day = Limits(rpm=1000, rpd=5)
    entries = [ModelEntry(provider="groq", model=f"a{i:02}", category="small", context_window=128_000,
                          max_output=8192, free_tier=day) for i in range(24)]
    entries += [ModelEntry(provider="mistral", model=f"b{i:02}", category="small", context_window=128_000,
                           max_output=8192, free_tier=Limits(rpm=1000)) for i in range(6)]
    providers = {"groq": ProviderInfo(as_of="test", source="test"),
                 "mistral": ProviderInfo(as_of="test", source="test", free_tier=Limits(rps=1))}
    r = rig(providers=("groq", "mistral"), models=Catalog.from_entries(entries, providers))
    prep = r.router.preparer.prepare(chat(), r.router.available())
    assert not {c.key.provider for c in prep.candidates} & {"mistral"}  # the first read holds groq only
    now = r.clock.wall()
    for entry in entries[:24]:
        [meter] = [m for m in r.core.catalog.meters(entry) if m.limit.period.seconds == 86_400]
        window = window_ref(meter, meter.limit.period.start(now))
        r.store.add([CounterAdd(window.item, window.attrs({REQUESTS: 5}), meter_expires(now))], now)
    failing(lambda: r.router.complete(chat()))  # nothing remembered yet: its read holds used-up groq only
    assert r.router.complete(chat()).provider == "mistral"  # groq remembered: the read holds mistral
    served = r.router.complete(chat())  # mistral's second is taken: it frees within a second
    assert served.provider == "mistral" and r.clock.sleeps, r.clock.sleeps


class _Degradable(MemoryStore):
    """A table this container sees as degraded while `on` (it may use its `fraction` of each limit)."""

    fraction = 0.2
    on = False

    def degraded(self, now: float) -> bool:
        return self.on


def test_a_free_tier_found_used_up_of_a_degraded_share_is_planned_once_the_store_is_back() -> None:
    """While degraded, a container checks only its share of each limit: a free tier whose share
    is used up is not used up for the gateway, and must not be left out of reads and plans after
    the store is back (found by review: groq, 4 of its 5 a day left, was left out until the
    day's end and the request went paid)."""
    store = _Degradable()
    r = rig(providers=("groq", "openai"), paid=("openai",), limits={"groq": Limits(rpm=1000, rpd=5)}, store=store)
    store.on = True  # this container may use 1 of groq's 5 a day
    assert r.router.complete(chat()).provider == "groq"
    assert r.router.complete(chat()).provider == "openai"  # its share is used up
    store.on = False
    assert r.router.complete(chat()).provider == "groq"


def test_a_request_larger_than_a_limit_itself_is_413_not_429() -> None:
    """Found by `llm-gateway simulate`: a request pinned to a model whose tokens-per-minute limit
    is below what the request needs (its prompt and the output it may write) can never be served
    there, whatever the caller waits; it was answered 429 (and the OpenAI SDKs retry a 429 in
    vain). It is a request too large for that model's limits: 413, saying which limit and that
    a smaller max_tokens or prompt would fit, as Groq itself answers."""
    r = rig(limits={"groq": Limits(rpm=100, tpm=1_000)})
    request = ChatCompletionRequest.model_validate(
        {"model": "groq/llama-3.1-8b-instant", "max_tokens": 2_000, "messages": [{"role": "user", "content": "hi"}]})
    error = failing(lambda: r.router.complete(request))
    assert (error.status, error.code) == (413, "request_too_large"), (error.status, error.code, error.message)
    assert "1000 per 60s" in error.message and "Retry-After" not in error.headers
    assert r.fleet.calls == []
    fits = ChatCompletionRequest.model_validate(
        {"model": "groq/llama-3.1-8b-instant", "max_tokens": 200, "messages": [{"role": "user", "content": "hi"}]})
    assert r.router.complete(fits).provider == "groq"


def test_a_long_prompt_without_max_tokens_is_served_by_a_small_token_window_it_fits() -> None:
    """Found by `llm-gateway simulate`: 11,000 prompt tokens pinned to Groq's 12,000 a minute,
    no max_tokens, were answered 413 because the gateway reserved 1,024 output tokens the caller
    never asked for. The provider would serve it (it admits the prompt, counts the answer after),
    so the gateway reserves only what the window leaves beside the prompt; a prompt above the
    window itself is still 413, and so is a max_tokens that does not fit."""
    r = rig(limits={"groq": Limits(rpm=100, tpm=1_000)})
    prompt = "word " * 900  # about 900 tokens: the default 1,024 output would not fit 1,000
    assert r.router.complete(chat("groq/llama-3.1-8b-instant", prompt)).provider == "groq"
    assert failing(lambda: r.router.complete(chat("groq/llama-3.1-8b-instant", "word " * 1_100))).status == 413
    request = ChatCompletionRequest.model_validate({"model": "groq/llama-3.1-8b-instant", "max_tokens": 200,
                                                    "messages": [{"role": "user", "content": prompt}]})
    assert failing(lambda: r.router.complete(request)).status == 413


def test_a_wait_longer_than_max_wait_answers_429_with_retry_after() -> None:
    """With LLM_GATEWAY_MAX_WAIT_S below the time the window needs, the second request is refused
    at once (no sleep, no provider call) with 429 and a Retry-After covering the wait."""
    r = rig(mistral_rps=1, max_wait_s=0.5)
    r.router.complete(pinned("mistral"))
    error = failing(lambda: r.router.complete(pinned("mistral")))
    assert error.status == 429
    assert 1 <= int(error.headers["Retry-After"]) <= 2
    assert r.clock.sleeps == []
    assert len(r.fleet.calls) == 1


def test_pinned_one_request_per_second_succeeds_whatever_the_phase_within_the_second() -> None:
    r = rig(mistral_rps=1)  # the default LLM_GATEWAY_MAX_WAIT_S, 2 s
    r.clock.now = 0.0  # the first request lands at the very start of a second
    r.router.complete(pinned("mistral"))
    assert r.router.complete(pinned("mistral")).provider == "mistral"


# --- breakers and reservations ------------------------------------------------------------------------
class RejectingBreakers(CircuitBreakers):
    """Real breakers, except that one provider's circuit rejects at call time: the race where
    another container opened it (or took its probe) after this request's plan was made."""

    def __init__(self, provider: str) -> None:
        super().__init__(MemoryBreakerPersistence())
        self.provider = provider
        self.rejected = 0

    def call(self, key: ModelKey, fn: Callable[[], T]) -> T:
        if key.provider == self.provider:
            self.rejected += 1
            raise BreakerOpen(provider_circuit(key.provider))
        return super().call(key, fn)


def test_a_breaker_rejecting_an_attempt_releases_its_whole_reservation() -> None:
    """The reservation for the rejected groq attempt was written (requests and tokens) before the
    breaker said no; afterwards every groq counter is back to zero in both units, while openai,
    which served, keeps what it really used (1 request, the 7 tokens the fake reported)."""
    breakers = RejectingBreakers("groq")
    r = rig(breakers=breakers)
    routed = r.router.complete(chat())
    assert routed.provider == "openai" and breakers.rejected == 1
    assert r.fleet.providers_called() == ["openai"]
    groq = r.counters("groq")
    assert groq, "the groq attempt reserved nothing: the test would prove nothing"
    for pk, item in groq.items():
        assert {REQUESTS, TOKENS} <= set(item), pk
        assert item[REQUESTS] == 0 and item[TOKENS] == 0, (pk, item)
    openai = r.counters("openai")
    assert [(item[REQUESTS], item[TOKENS]) for item in openai.values()] == [(1, 7)] * len(openai)


# --- backoff ----------------------------------------------------------------------------------------
def test_same_model_backoff_grows_with_the_attempt_number() -> None:
    """A refused connection is retried once on the same model after a full-jitter wait whose
    ceiling doubles per attempt (`base * 2**(attempt - 1)`); the fake clock records the sleeps.
    groq fails on attempts 1 and 2 (then is shunned), openai on 3 and 4, mistral serves 5th."""
    policy = BackoffPolicy(base_s=0.2, cap_s=2.0)
    r = rig(retry=RetrySettings(max_attempts=5, deadline_s=25.0, attempt_timeout_s=20.0, backoff=policy))
    r.fleet.set("groq", refuse())
    r.fleet.set("openai", refuse())
    routed = r.router.complete(chat())
    assert routed.provider == "mistral"
    assert r.fleet.providers_called() == ["groq", "groq", "openai", "openai", "mistral"]
    jitter = r.clock.rand()
    assert r.clock.sleeps == [pytest.approx(jitter * policy.base_s * 2**0), pytest.approx(jitter * policy.base_s * 2**2)]
    assert r.clock.sleeps[1] > r.clock.sleeps[0]


# --- the deadline -----------------------------------------------------------------------------------
def test_no_attempt_starts_or_runs_past_the_deadline() -> None:
    """Every provider hangs. Attempt 1 gets the full attempt timeout (4 s of a 5 s deadline),
    attempt 2 only what is left (less the safety margin), and no attempt 3 starts: the request
    ends with the aggregated error saying it ran out of time, still inside its deadline."""
    retry = RetrySettings(max_attempts=5, deadline_s=5.0, attempt_timeout_s=4.0, safety_margin_s=0.25,
                          min_attempt_s=0.5)
    r = rig(retry=retry)
    for provider in MODELS:
        r.fleet.set(provider, hang())
    started = r.clock.now
    deadline = started + retry.deadline_s
    error = failing(lambda: r.router.complete(chat()))
    assert error.status == 503 and "ran out of time" in error.message
    assert [c.provider for c in r.fleet.calls] == ["groq", "openai"]
    assert [c.timeout_s for c in r.fleet.calls] == [4.0, pytest.approx(0.75)]
    for call in r.fleet.calls:
        assert call.at < deadline
        assert call.at + call.timeout_s <= deadline - retry.safety_margin_s + 1e-9
    assert r.clock.now <= deadline


# --- adaptive timeouts ------------------------------------------------------------------------------
def short(text: str = "hi") -> ChatCompletionRequest:
    """A request that may use few tokens (max_tokens=8): its timeout is about one call's latency.
    (One that may write 1,024 tokens, the default, gets time for that: see the 3,000-token test.)"""
    return ChatCompletionRequest.model_validate(
        {"model": "auto", "max_tokens": 8, "messages": [{"role": "user", "content": text}]})


def test_a_hanging_provider_costs_the_timeout_floor_not_the_whole_budget() -> None:
    """groq answered eight times in 0.5 s; when it hangs, its attempt times out after the floor
    (2 s), not the 20 s attempt budget. The next attempt (openai) gets all the time left (after a
    timeout the answer may be long); a first call to openai, never seen, borrows the overall
    estimate."""
    r = rig()
    r.fleet.set("groq", answer(after_s=0.5))
    for _ in range(8):
        r.router.complete(short())
    r.fleet.set("groq", hang())
    before, started = len(r.fleet.calls), r.clock.now
    routed = r.router.complete(short())
    hung, served = r.fleet.calls[before:]
    floor = TimeoutPolicy().floor_s
    assert routed.provider == "openai"
    assert (hung.provider, hung.timeout_s) == ("groq", floor)
    assert served.timeout_s == FAST_BUDGET  # 23 s are left: the attempt budget
    assert r.clock.now - started == pytest.approx(floor)
    fresh = rig()
    fresh.fleet.set("groq", answer(after_s=0.5))
    for _ in range(8):
        fresh.router.complete(short())
    fresh.fleet.set("groq", status(500))  # not a timeout: the next attempt keeps an adaptive one
    assert fresh.router.complete(short()).provider == "openai"
    assert fresh.fleet.calls[-1].timeout_s == floor  # never seen: the overall estimate


def test_an_attempt_with_nothing_left_to_fail_over_to_gets_the_whole_budget() -> None:
    """Found by `llm-gateway simulate` (pinned requests ending 503): an adaptive timeout saves
    time for a failover. A request pinned to one model has nothing to fail over to, so cutting
    its call at the learned 2 s only turns a slow answer into an error: it gets the whole budget."""
    r = rig()
    r.fleet.set("groq", answer(after_s=0.5))
    for _ in range(8):
        r.router.complete(short())
    r.fleet.set("groq", answer(after_s=6.0))  # a slow answer, well inside the budget
    pinned_short = ChatCompletionRequest.model_validate(
        {"model": "groq/llama-3.1-8b-instant", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]})
    assert r.router.complete(pinned_short).provider == "groq"
    assert r.fleet.calls[-1].timeout_s == FAST_BUDGET


@pytest.mark.parametrize("code", [500, 503])
def test_with_nothing_left_to_fail_over_to_a_server_error_is_retried_once(code: int) -> None:
    """Found by `llm-gateway simulate` (pinned requests ending 503 after one background 500): a
    5xx moves a request to the next model; a request pinned to one model has none, and its model
    most likely answers a moment later. It is retried once on the same model, after a back-off."""
    r = rig()
    r.fleet.then("groq", status(code))
    served = r.router.complete(pinned("groq"))
    assert served.provider == "groq" and len(served.attempts) == 2
    assert r.fleet.providers_called() == ["groq", "groq"] and len(r.clock.sleeps) == 1
    r.fleet.set("groq", status(code))  # a model that keeps failing: one retry, then the error
    assert failing(lambda: r.router.complete(pinned("groq"))).status == 503
    assert r.fleet.providers_called().count("groq") == 4


def test_timeouts_shrink_toward_observed_latency_and_never_exceed_the_budget() -> None:
    """A provider answering in 3 s: its timeout starts at the budget (nothing known), then falls
    with each answer toward 3 s plus a shrinking deviation, always within [floor, budget]."""
    r = rig()
    r.fleet.set("groq", answer(after_s=3.0))
    for _ in range(12):
        r.router.complete(short())
    timeouts = [c.timeout_s for c in r.fleet.calls]
    assert timeouts[0] == FAST_BUDGET
    assert all(a >= b for a, b in itertools.pairwise(timeouts)), timeouts
    assert all(TimeoutPolicy().floor_s <= t <= FAST_BUDGET for t in timeouts)
    assert timeouts[-1] < 4.0


def test_a_slow_provider_gets_at_most_the_budget() -> None:
    """Observed 15 s answers would ask for 45 s; the attempt budget (20 s) caps it."""
    r = rig()
    r.fleet.set("groq", answer(after_s=15.0))
    r.router.complete(chat())
    r.router.complete(chat())
    assert [c.timeout_s for c in r.fleet.calls] == [FAST_BUDGET, FAST_BUDGET]


@given(st.lists(st.floats(min_value=0.0, max_value=120.0), max_size=30),
       st.floats(min_value=0.1, max_value=60.0))
def test_adaptive_timeout_is_always_within_floor_and_budget(samples: list[float], budget: float) -> None:
    timeouts = AdaptiveTimeouts()
    for sample in samples:
        timeouts.observe("p", sample)
    got = timeouts.timeout_for("p", budget)
    assert min(timeouts.policy.floor_s, budget) <= got <= budget
    assert timeouts.timeout_for("never-seen", budget) == (got if samples else budget)  # borrows the overall


# --- the aggregated error -----------------------------------------------------------------------------
def test_the_aggregated_error_lists_every_attempt_and_no_secret() -> None:
    """Providers echo keys and prompts in their errors; the caller's error lists provider, model,
    error class and status per attempt, and nothing the providers said."""
    prompt = "my confidential prompt text"
    r = rig()
    r.fleet.set("groq", status(401, message=f"Incorrect API key provided: {KEYS['groq']}"))
    r.fleet.set("openai", status(500, message=f"internal error while reading '{prompt}'"))
    r.fleet.set("mistral", status(429, message=f"key {KEYS['mistral']} is over its limit"))
    error = failing(lambda: r.router.complete(chat(text=prompt)))
    body: dict[str, Any] = error.body()
    assert error.status == 503
    attempts = body["error"]["attempts"]
    assert [(a["provider"], a["model"], a["error_class"], a["status"]) for a in attempts] == [
        ("groq", MODELS["groq"], "auth", 401), ("openai", MODELS["openai"], "server_error", 500),
        ("mistral", MODELS["mistral"], "rate_limited", 429)]
    assert all(set(a) <= {"provider", "model", "error_class", "status", "retry_after_s"} for a in attempts)
    everything = json.dumps(body) + error.message + json.dumps(error.headers)
    for secret in (*KEYS.values(), prompt, "Incorrect API key", "over its limit", "internal error"):
        assert secret not in everything, secret


def test_an_unexpected_error_during_the_call_releases_the_reservation() -> None:
    """A bug below the runner (here the transport raises something no layer translates) reaches
    the handler's last resort, but never leaks the capacity it had reserved."""
    r = rig()

    def broken(request: Any, fleet: Any) -> Any:
        raise RuntimeError("a bug, not a provider failure")

    r.fleet.set("groq", broken)
    with pytest.raises(RuntimeError):
        r.router.complete(pinned("groq"))
    groq = r.counters("groq")
    assert groq, "nothing was reserved: the test would prove nothing"
    for pk, item in groq.items():
        assert item[REQUESTS] == 0 and item[TOKENS] == 0, (pk, item)


def test_a_very_long_answer_gets_the_whole_budget_and_its_timeout_is_nobodys_fault() -> None:
    """A caller who allows 8,000 output tokens may wait long for a complete answer: the provider
    that usually answers in 0.5 s gets the full attempt budget, not its 2 s adaptive timeout, and
    a timeout of that call marks nothing (no failure memory, no breaker count)."""
    r = rig()
    r.fleet.set("groq", answer(after_s=0.5))
    for _ in range(8):
        r.router.complete(chat())
    r.fleet.set("groq", hang())
    long_answer = ChatCompletionRequest.model_validate(
        {"model": "groq/llama-3.1-8b-instant", "max_tokens": 8000, "messages": [{"role": "user", "content": "x"}]})
    before = len(r.fleet.calls)
    with pytest.raises(GatewayError):
        r.router.complete(long_answer)
    hung = r.fleet.calls[before]
    assert hung.timeout_s == FAST_BUDGET  # not the 2 s floor the short answers earned
    assert not r.core.failures.recent("groq", r.clock.wall())  # the request caused it
    assert failure_pk("groq") not in r.store.load([failure_pk("groq")], r.clock.wall())


def test_a_failed_call_keeps_its_request_counted_and_gives_back_its_tokens() -> None:
    """The provider saw the request (its own limits count it) but produced nothing: the shared
    window keeps the request and returns the reserved tokens at once."""
    r = rig()
    r.fleet.set("groq", status(500))
    r.router.complete(chat())
    groq = r.counters("groq")
    assert groq, "the groq attempt reserved nothing: the test would prove nothing"
    for pk, item in groq.items():
        assert (item[REQUESTS], item[TOKENS]) == (1, 0), (pk, item)


@pytest.mark.parametrize("behaviour", [hang(), refuse()], ids=["read-timeout", "connection"])
def test_a_call_that_got_no_answer_keeps_everything_it_reserved(behaviour) -> None:
    """Found by `llm-gateway simulate` (Groq's token and audio windows passed at full size): a
    call that ended without an answer may have been received, and its prompt, audio and even its
    output counted by the provider (a timeout says nothing about what the provider did). Giving
    its tokens back left our windows below the provider's own count, and later calls passed the
    provider's limit. Only an error *answer* (a status) shows the provider counted no tokens."""
    r = rig()
    r.fleet.set("groq", behaviour)
    r.router.complete(chat())
    groq = r.counters("groq")
    assert groq, "the groq attempt reserved nothing: the test would prove nothing"
    for pk, item in groq.items():
        assert item[REQUESTS] >= 1 and item[TOKENS] > 0, (pk, item)


def test_a_failover_after_a_slow_attempt_reserves_in_the_window_of_its_own_moment() -> None:
    """Found by `llm-gateway simulate`: the plan computes each step's windows at planning time.
    A step reached after an attempt that took seconds must reserve in the window of *now*, not
    in the plan's: else Mistral's organisation-wide 1 request/s is passed when another container
    used this second meanwhile."""
    one = rig(providers=("groq", "mistral"), mistral_rps=1, max_wait_s=0.0)
    two = rig(providers=("groq", "mistral"), mistral_rps=1, max_wait_s=0.0, store=one.store, clock=one.clock)

    def slow_then_fail(request, fleet):
        fleet.clock.advance(3.0)  # the attempt takes seconds: the plan's 1-second windows are gone
        assert two.router.complete(pinned("mistral")).provider == "mistral"  # meanwhile, elsewhere
        raise httpx.ReadTimeout("no answer", request=request)

    one.fleet.then("groq", slow_then_fail)
    result = None
    try:
        result = one.router.complete(chat())
    except GatewayError as refused:
        assert refused.status in (429, 503)  # refused rather than passing the limit
    calls = sorted(c.at for c in one.fleet.calls + two.fleet.calls if c.provider == "mistral")
    assert all(later - earlier >= 1.0 for earlier, later in itertools.pairwise(calls)), calls
    assert result is None or result.provider == "mistral"


def test_a_longer_answer_gets_a_longer_timeout_than_short_ones_taught() -> None:
    """Found by `llm-gateway simulate`: a timeout learned from short answers (1 s each) cut a
    normal long answer off. Asking for 3,000 output tokens (below LONG_ANSWER_TOKENS, so not
    'slow by request') must be given time in proportion, and be served by the same provider."""
    r = rig()
    r.fleet.set("groq", answer(after_s=1.0))
    for _ in range(20):
        r.router.complete(chat())
    short = r.fleet.calls[-1].timeout_s
    r.fleet.then("groq", answer(after_s=6.0))
    long_request = ChatCompletionRequest.model_validate(
        {"model": "auto", "max_tokens": 3000, "messages": [{"role": "user", "content": "Write at length."}]})
    served = r.router.complete(long_request)
    assert served.provider == "groq" and len(served.attempts) == 1
    assert r.fleet.calls[-1].timeout_s > 6.0 and r.fleet.calls[-1].timeout_s > short


def _streamed() -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {"model": "auto", "max_tokens": 8, "stream": True, "messages": [{"role": "user", "content": "hi"}]})


class _Rest(httpx.SyncByteStream):
    """A stream body whose first event comes at once and the rest `rest_s` fake seconds later."""

    def __init__(self, head: bytes, rest: bytes, clock: Any, rest_s: float) -> None:
        self.head, self.rest, self.clock, self.rest_s = head, rest, clock, rest_s

    def __iter__(self) -> Iterator[bytes]:
        yield self.head
        self.clock.advance(self.rest_s)
        yield self.rest


def _stream_answer(first_chunk_s: float, whole_s: float | None = None) -> Any:
    """A stream whose first chunk comes after `first_chunk_s` fake seconds and whose end after
    `whole_s` (at once after the first chunk if not given)."""

    def behaviour(request: httpx.Request, fleet: Any) -> httpx.Response:
        fleet.clock.advance(first_chunk_s)
        model = json.loads(request.content)["model"]
        head = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": model,
                "choices": [{"index": 0, "delta": {"role": "assistant", "content": "hi"}, "finish_reason": None}]}
        end = {**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
               "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}}
        first, rest = f"data: {json.dumps(head)}\n\n", f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n"
        body = _Rest(first.encode(), rest.encode(), fleet.clock, max(0.0, (whole_s or first_chunk_s) - first_chunk_s))
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=body)

    return behaviour


def _answer_within(after_s: float) -> Any:
    """A whole answer after `after_s` fake seconds, or a read timeout if the call was given less."""

    def behaviour(request: httpx.Request, fleet: Any) -> httpx.Response:
        if fleet.calls[-1].first_byte_s < after_s:
            return hang()(request, fleet)
        return answer(after_s=after_s)(request, fleet)

    return behaviour


def test_streams_first_chunks_do_not_teach_the_timeout_of_whole_answers() -> None:
    """A live stream's attempt ends at its first chunk (0.3 s here), its answer 5 s after it
    began; a whole answer's attempt at its last byte (5 s too). Learned together, the first
    chunks gave groq's whole answers the 2 s floor: cut at 2 s, paid for, and sent elsewhere.
    Each kind learns its own: the streams' first chunks their timeout (the floor), and their
    whole 5 s, learned when each stream ended, the whole answers' timeout, so groq serves one."""
    r = rig()
    r.fleet.set("groq", _stream_answer(0.3, whole_s=5.0))
    for _ in range(12):
        list(r.router.stream(_streamed(), buffered=False).chunks)
    assert r.fleet.calls[-1].first_byte_s == pytest.approx(TimeoutPolicy().floor_s, abs=0.1)
    r.fleet.set("groq", _answer_within(5.0))
    served = r.router.complete(short())
    assert served.provider == "groq" and len(served.attempts) == 1
    assert 5.0 < r.fleet.calls[-1].timeout_s < FAST_BUDGET  # learned, not the budget of a provider never seen


def test_a_buffered_stream_is_given_a_whole_answer_s_timeout_and_teaches_no_first_chunk() -> None:
    """A buffered stream (sent whole to its caller) is read to its end inside the attempt, and its
    timeout bounds all of it: it is given the whole answers' timeout (groq's live streams took
    3 s each, their first chunks 0.3 s), not the first chunks' 2 s floor, and what it took
    teaches live streams' first chunks nothing."""
    r = rig()
    r.fleet.set("groq", _stream_answer(0.3, whole_s=3.0))
    for _ in range(12):
        list(r.router.stream(_streamed(), buffered=False).chunks)
    live = r.fleet.calls[-1].first_byte_s
    assert live == pytest.approx(TimeoutPolicy().floor_s, abs=0.1)
    for _ in range(3):
        routed = r.router.stream(_streamed(), buffered=True)
        list(routed.chunks)
        assert routed.provider == "groq" and r.fleet.calls[-1].first_byte_s > 3.0
    list(r.router.stream(_streamed(), buffered=False).chunks)
    assert r.fleet.calls[-1].first_byte_s == pytest.approx(live, abs=0.1)


def test_a_stream_the_caller_left_teaches_whole_answers_nothing() -> None:
    """A stream whose caller stopped reading after its first chunk did not show how long its
    answer takes: whole answers learn nothing from it (a provider never answered whole keeps
    the whole budget)."""
    r = rig()
    r.fleet.set("groq", _stream_answer(0.3, whole_s=0.4))
    for _ in range(12):
        routed = r.router.stream(_streamed(), buffered=False)
        next(routed.chunks)
        routed.chunks.close()
    r.fleet.set("groq", answer())
    assert r.router.complete(short()).provider == "groq"
    assert r.fleet.calls[-1].timeout_s == FAST_BUDGET
