"""Chat preparation and the planner on hand-built catalogs: pinning, drops with reasons, ordering,
ties, recent failures, and the bound on what one state read covers."""

from __future__ import annotations

import pytest

from llm_gateway.api.errors import InvalidRequest, ModelNotFound
from llm_gateway.providers.base import RateLimitInfo
from llm_gateway.selection import planner as planner_module
from llm_gateway.selection.catalog import FreeTier, load_catalog
from llm_gateway.selection.planner import LOAD_ITEM_BUDGET, MIN_LOADED_PAID, Planner, PlanStep, Preparation
from llm_gateway.selection.selector import ChatDetail, ChatPreparer
from llm_gateway.selection.tokens import TokenEstimator
from llm_gateway.state.items import Cooldown, FailureMark, HeaderSnapshot, ModelState, StateSnapshot, pks_for
from llm_gateway.state.metering import CALLER_SCOPE, MINUTE, REQUESTS, TOKENS, Meter, WindowLimit
from llm_gateway.state.store import ModelKey

from .builders import catalog, entry, request

NOW = 1_000_000.0
EMPTY = StateSnapshot()
FREE = FreeTier(rpm=10, tpm=100_000)


class Selector:
    """Preparation and planning as the runner chains them (minus the state read)."""

    def __init__(self, cat) -> None:
        self.catalog = cat
        self.preparer = ChatPreparer(cat, TokenEstimator())
        self.planner = Planner()

    def prepare(self, req, available) -> Preparation:
        return self.preparer.prepare(req, available)

    def plan(self, prep: Preparation, snapshot: StateSnapshot, now: float, **kwargs):
        return self.planner.plan(prep, snapshot, now, **kwargs)


def make() -> Selector:
    return Selector(catalog([
        entry("p0", "free-a", free=FREE),
        entry("p1", "free-b", free=FREE),
        entry("p2", "paid-cheap", price=(0.1, 0.2)),
        entry("p3", "paid-dear", price=(5.0, 10.0)),
        entry("p3", "big-paid", category="large", price=(0.01, 0.01), vision=True),
        entry("p2", "tiny", context=2000, free=FREE),
        entry("p1", "shared", price=(1, 1)),
        entry("p2", "shared", price=(1, 1)),
    ]))


def keys(sel: Selector) -> list[ModelKey]:
    return list(sel.catalog.keys())


def full_minute(sel: Selector, key: ModelKey, requests: int = 10) -> dict[str, dict[str, int]]:
    """Counters that use up `key`'s minute window."""
    entry_ = sel.catalog.get(key)
    assert entry_ is not None
    [meter] = sel.catalog.meters(entry_)
    return {meter.pk(meter.limit.period.start(NOW)): {REQUESTS: requests}}


def test_free_first_then_category_then_cost() -> None:
    sel = make()
    plan = sel.plan(sel.prepare(request(), keys(sel)), EMPTY, NOW)
    order = [str(s.key) for s in plan.steps]
    assert set(order[:3]) == {"p0/free-a", "p1/free-b", "p2/tiny"}
    assert order[3:] == ["p2/paid-cheap", "p1/shared", "p2/shared", "p3/paid-dear", "p3/big-paid"] or \
        order[3:] == ["p2/paid-cheap", "p2/shared", "p1/shared", "p3/paid-dear", "p3/big-paid"]
    assert all(s.free for s in plan.steps[:3]) and not any(s.free for s in plan.steps[3:])
    assert plan.label == "small" and plan.dropped == () and not plan.capacity_only
    assert all(s.est_cost_usd == 0 for s in plan.steps[:3]) and plan.steps[3].est_cost_usd > 0
    assert "free tier with capacity; category match" in plan.steps[0].reason
    assert "category large (wanted small)" in plan.steps[-1].reason


def test_what_a_call_would_consume() -> None:
    sel = make()
    prep = sel.prepare(request(max_tokens=100), keys(sel))
    assert isinstance(prep.detail, ChatDetail) and prep.detail.prompt_tokens > 0
    assert all(c.amounts == {REQUESTS: 1, TOKENS: prep.detail.prompt_tokens + 100} for c in prep.candidates)
    plan = sel.plan(prep, EMPTY, NOW)
    step = next(s for s in plan.steps if s.key == ModelKey("p0", "free-a"))
    assert step.amounts == {REQUESTS: 1, TOKENS: prep.detail.prompt_tokens + 100}
    assert [u.meter for u in step.usages] == list(sel.catalog.meters(step.entry))  # what a reservation writes
    no_cap = sel.prepare(request(), keys(sel))
    assert no_cap.candidates[0].amounts[TOKENS] == no_cap.detail.prompt_tokens + 1024  # expected output default


def test_round_robin_rotates_equals() -> None:
    sel = make()
    prep = sel.prepare(request(), keys(sel))
    firsts = {sel.plan(prep, EMPTY, NOW).steps[0].key for _ in range(3)}
    assert len(firsts) == 3


def test_custom_tie_breaker_receives_groups() -> None:
    sel = make()
    seen: list[list[PlanStep]] = []

    def reverse(group: list[PlanStep], snapshot: StateSnapshot, now: float) -> list[PlanStep]:
        seen.append(group)
        return sorted(group, key=lambda s: str(s.key), reverse=True)

    plan = sel.plan(sel.prepare(request(), keys(sel)), EMPTY, NOW, tie_breaker=reverse)
    assert str(plan.steps[0].key) == "p2/tiny" and len(seen[0]) == 3


def test_context_and_capability_drops() -> None:
    sel = make()
    prep = sel.prepare(request("word " * 3000), keys(sel))
    reason = dict(prep.dropped)[ModelKey("p2", "tiny")]
    assert reason.startswith("prompt ") and "> context window 2000" in reason
    image = [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]
    vision = sel.prepare(request(image), keys(sel))
    assert [c.key for c in vision.candidates] == [ModelKey("p3", "big-paid")]
    assert all(r == "no vision support" for _, r in vision.dropped)
    short = Selector(catalog([entry("p0", "short", max_output=100), entry("p1", "long")]))
    capped = short.prepare(request(max_tokens=200), keys(short))
    assert capped.dropped == ((ModelKey("p0", "short"), "max_tokens 200 > max output 100"),)
    no_tools = Selector(catalog([entry("p0", "plain", tools=False), entry("p1", "tools")]))
    tools = [{"type": "function", "function": {"name": "f"}}]
    assert no_tools.prepare(request(tools=tools), keys(no_tools)).dropped == ((ModelKey("p0", "plain"), "no tools support"),)


def test_nothing_fits_is_a_400() -> None:
    sel = make()
    with pytest.raises(InvalidRequest):
        sel.prepare(request("word " * 200_000), keys(sel))


def test_pinning_and_unknown_models() -> None:
    sel = make()
    prep = sel.prepare(request(model="p3/paid-dear"), keys(sel))
    assert prep.pinned == ModelKey("p3", "paid-dear") and len(prep.candidates) == 1
    assert sel.plan(prep, EMPTY, NOW).pinned == ModelKey("p3", "paid-dear")
    bare = sel.prepare(request(model="free-a"), keys(sel))
    assert bare.pinned == ModelKey("p0", "free-a")
    ambiguous = sel.prepare(request(model="shared"), keys(sel))
    assert ambiguous.pinned is None and len(ambiguous.candidates) == 2
    with pytest.raises(ModelNotFound):
        sel.prepare(request(model="nope"), keys(sel))
    with pytest.raises(ModelNotFound):
        sel.prepare(request(model="p3/paid-dear"), [ModelKey("p0", "free-a")])


def test_pinned_without_capacity_gives_an_empty_plan_with_reason() -> None:
    sel = make()
    key = ModelKey("p0", "free-a")
    prep = sel.prepare(request(model="p0/free-a"), keys(sel))
    state = ModelState(key, cooldown=Cooldown(NOW + 30, "429"))
    plan = sel.plan(prep, StateSnapshot(models={key: state}), NOW)
    assert plan.steps == () and plan.dropped[0][0] == key and "cooling down" in plan.dropped[0][1]
    assert plan.capacity_only and plan.free_again_in_s == pytest.approx(30)  # a 429 with Retry-After


def test_state_drops_full_windows_headers_and_blocked() -> None:
    sel = make()
    prep = sel.prepare(request(), keys(sel))
    full_key, hdr_key = ModelKey("p0", "free-a"), ModelKey("p1", "free-b")
    hdr = ModelState(hdr_key, headers=HeaderSnapshot(RateLimitInfo(remaining_requests=0, reset_requests_s=30), NOW - 5))
    snapshot = StateSnapshot(counters=full_minute(sel, full_key), models={hdr_key: hdr})
    plan = sel.plan(prep, snapshot, NOW, blocked={ModelKey("p2", "tiny"): "breaker open"})
    reasons = dict(plan.dropped)
    assert "0 of 10 requests per 60s left on p0#free-a" in reasons[full_key]
    assert "0 requests remaining" in reasons[hdr_key]
    assert reasons[ModelKey("p2", "tiny")] == "blocked: breaker open"
    assert not any(s.free for s in plan.steps)
    assert not plan.capacity_only  # paid steps remain, and a breaker is not a capacity refusal
    # the header snapshot stops counting once its reset has passed
    later = sel.plan(prep, snapshot, NOW + 60)
    assert hdr_key in {s.key for s in later.steps}


def test_capacity_only_refusals_say_when_one_frees() -> None:
    sel = Selector(catalog([entry("p0", "a", free=FREE), entry("p1", "b", free=FREE)]))
    prep = sel.prepare(request(), keys(sel))
    counters = {**full_minute(sel, ModelKey("p0", "a")), **full_minute(sel, ModelKey("p1", "b"))}
    now = NOW + 10  # NOW is 40 s into its minute
    plan = sel.plan(prep, StateSnapshot(counters=counters), now)
    assert plan.steps == () and plan.capacity_only
    # the minute closes in 10 s; its 10 requests then carry into the next one until 6 s in
    assert plan.free_again_in_s == pytest.approx(16)
    blocked = sel.plan(prep, StateSnapshot(counters=counters), now, blocked={ModelKey("p0", "a"): "bad key"})
    assert blocked.steps == () and not blocked.capacity_only  # a 503, not a 429


def test_recently_failed_providers_go_last() -> None:
    sel = make()
    prep = sel.prepare(request(), keys(sel))
    failures = {"p0": FailureMark("p0", NOW - 5, "server_error"), "p1": FailureMark("p1", NOW - 300, "timeout")}
    plan = sel.plan(prep, EMPTY, NOW, failures=failures)
    order = [s.key for s in plan.steps]
    assert order[-1] == ModelKey("p0", "free-a")  # behind every provider without a recent failure, paid ones too
    assert "provider failed recently" in plan.steps[-1].reason
    assert ModelKey("p1", "free-b") in order[:2]  # a failure long ago does not count
    # the snapshot's shared failure marks are used when none are passed
    shared = sel.plan(prep, StateSnapshot(failures=failures), NOW)
    assert shared.steps[-1].key == ModelKey("p0", "free-a")


def test_real_catalog_smoke() -> None:
    sel = Selector(load_catalog())
    prep = sel.prepare(request(), list(sel.catalog.keys()))
    plan = sel.plan(prep, EMPTY, NOW)
    assert plan.steps[0].free and plan.steps[0].entry.category == "small"
    assert len(plan.steps) == len(prep.candidates)


def test_a_large_catalog_loads_state_for_a_bounded_set_that_keeps_paid_fallbacks() -> None:
    entries = [entry(f"p{i % 4}", f"free-{i}", free=FREE) for i in range(40)]
    entries += [entry(f"p{i % 4}", f"paid-{i}", price=(0.1 * (i + 1), 0.1)) for i in range(10)]
    selector = Selector(catalog(entries))
    prep = selector.prepare(request(), {e.key for e in entries})
    loaded = list(prep.keys)
    read = set(pks_for(prep.all_meters(), loaded, NOW))
    assert len(read) <= LOAD_ITEM_BUDGET  # one BatchGetItem: windows, headers, cooldowns, breakers, failures
    not_loaded = [key for key, why in prep.dropped if why.startswith("not loaded")]
    assert len(not_loaded) == 50 - len(loaded) and not_loaded
    for key in not_loaded:  # and full: not one more candidate would fit
        more = set(pks_for(selector.catalog.meters(selector.catalog.get(key)), [key], NOW)) - read  # type: ignore[arg-type]
        assert len(read) + len(more) > LOAD_ITEM_BUDGET
    paid = [key for key in loaded if key.model.startswith("paid-")]
    assert {key.model for key in paid} >= {f"paid-{i}" for i in range(MIN_LOADED_PAID)}  # the cheapest ones
    free = [key for key in loaded if key.model.startswith("free-")]
    assert len(free) + len(paid) == len(loaded) and free
    # every free model used up: the plan still has the paid fallbacks, cheapest first
    counters: dict[str, dict[str, int]] = {}
    for key in free:
        counters.update(full_minute(selector, key))
    plan = selector.plan(prep, StateSnapshot(counters=counters), NOW)
    assert [step.key.model for step in plan.steps][:MIN_LOADED_PAID] == [f"paid-{i}" for i in range(MIN_LOADED_PAID)]
    assert not any(step.free for step in plan.steps)


def test_small_catalogs_load_every_candidate() -> None:
    selector = make()
    prep = selector.prepare(request(), {e.key for e in selector.catalog.entries})
    assert not any(why.startswith("not loaded") for _, why in prep.dropped)


# --- optional request parameters: honoured where a model lists them, else that model is dropped ---
def _params_catalog() -> Selector:
    return Selector(catalog([
        entry("p0", "plain", free=FREE),
        entry("p1", "logprobs", free=FREE, params=("logprobs", "logit_bias", "parallel_tool_calls")),
        entry("p2", "reasoner", category="reasoning", price=(0.1, 0.2), params=("reasoning_effort",)),
    ]))


@pytest.mark.parametrize(
    ("fields", "kept", "why"),
    [
        ({"logprobs": True, "top_logprobs": 2}, {"p1/logprobs"}, "does not support logprobs"),
        ({"logit_bias": {"42": -100}}, {"p1/logprobs"}, "does not support logit_bias"),
        ({"reasoning_effort": "high"}, {"p2/reasoner"}, "does not support reasoning_effort"),
        ({"parallel_tool_calls": False, "tools": [{"type": "function", "function": {"name": "f"}}]},
         {"p1/logprobs"}, "does not support parallel_tool_calls=false"),
    ],
)
def test_a_parameter_is_a_hard_need_and_models_without_it_are_dropped_with_the_reason(fields, kept, why):
    sel = _params_catalog()
    prep = sel.prepare(request(**fields), keys(sel))
    assert {str(c.key) for c in prep.candidates} == kept
    reasons = dict(prep.dropped)
    assert reasons and all(why in reasons[key] for key in reasons), reasons


@pytest.mark.parametrize(
    "fields",
    [{"logprobs": False}, {"parallel_tool_calls": True, "tools": [{"type": "function", "function": {"name": "f"}}]},
     {"parallel_tool_calls": False}],  # without tools there are no tool calls to serialise
)
def test_default_values_need_nothing(fields):
    sel = _params_catalog()
    prep = sel.prepare(request(**fields), keys(sel))
    assert len(prep.candidates) == 3, prep.dropped


def test_a_pinned_model_that_cannot_honour_a_parameter_is_a_400_naming_it():
    sel = _params_catalog()
    with pytest.raises(InvalidRequest) as info:
        sel.prepare(request(model="p0/plain", logprobs=True), keys(sel))
    assert info.value.code == "no_model_fits" and "logprobs" in info.value.message


def test_degraded_state_plans_against_this_containers_share_of_each_limit() -> None:
    """With the shared table unreachable a container may use half of each limit: past that, the
    plan refuses for capacity (a 429 with Retry-After), not with a 503 at reserve time."""
    sel = Selector(catalog([entry("p0", "a", free=FREE)]))
    prep = sel.prepare(request(), keys(sel))
    half_used = full_minute(sel, ModelKey("p0", "a"), requests=5)  # 5 of 10: the local half is gone
    healthy = sel.plan(prep, StateSnapshot(counters=half_used), NOW)
    assert [s.key for s in healthy.steps] == [ModelKey("p0", "a")]
    degraded = sel.plan(prep, StateSnapshot(counters=half_used, degraded=True, limit_scale=0.5), NOW)
    assert degraded.steps == () and degraded.capacity_only and degraded.free_again_in_s is not None
    assert "0 of 5 requests" in dict(degraded.dropped)[ModelKey("p0", "a")]


# --- conversation affinity: the model that served the previous turn, while it can serve ---------
def conversation(model: str = "auto"):
    """A second turn: the prefix (user, assistant) names a conversation under way."""
    from llm_gateway.api.schemas import ChatCompletionRequest

    return ChatCompletionRequest.model_validate({"model": model, "messages": [
        {"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"},
        {"role": "user", "content": "and again"}]})


def test_only_a_conversation_under_way_and_not_pinned_reads_an_affinity_item() -> None:
    sel = make()
    assert sel.prepare(request(), keys(sel)).prefer is None  # a first turn
    assert sel.prepare(conversation("p0/free-a"), keys(sel)).prefer is None  # pinned: nothing to prefer
    prep = sel.prepare(conversation(), keys(sel))
    assert prep.prefer is not None and prep.prefer.startswith("aff#")
    assert prep.state_pks == (prep.prefer,)


def test_the_model_that_served_the_conversation_goes_first_while_the_balancer_rotates_the_rest() -> None:
    sel = make()
    prep = sel.prepare(conversation(), keys(sel))
    assert len({sel.plan(prep, EMPTY, NOW).steps[0].key for _ in range(3)}) == 3  # without: rotation
    snapshot = StateSnapshot(affinities={prep.prefer: ModelKey("p1", "free-b")})
    plans = [sel.plan(prep, snapshot, NOW) for _ in range(5)]
    assert {plan.steps[0].key for plan in plans} == {ModelKey("p1", "free-b")}
    assert "served this conversation's previous turn" in plans[0].steps[0].reason
    assert len({plan.steps[1].key for plan in plans}) > 1  # the others still balance behind it


def test_affinity_ranks_above_category_but_never_puts_paid_before_free() -> None:
    sel = make()
    prep = sel.prepare(conversation(), keys(sel))
    paid = ModelKey("p3", "big-paid")  # a large (wrong category) paid model
    plan = sel.plan(prep, StateSnapshot(affinities={prep.prefer: paid}), NOW)
    assert all(step.free for step in plan.steps[:3]) and plan.steps[3].key == paid  # first of the paid ones


def test_a_preferred_model_cooling_down_or_failing_falls_back_normally() -> None:
    sel = make()
    prep = sel.prepare(conversation(), keys(sel))
    preferred = ModelKey("p1", "free-b")
    cooling = StateSnapshot(affinities={prep.prefer: preferred},
                            models={preferred: ModelState(preferred, Cooldown(NOW + 30, "rate_limited"))})
    plan = sel.plan(prep, cooling, NOW)
    assert preferred not in [step.key for step in plan.steps] and plan.steps[0].free
    failed = StateSnapshot(affinities={prep.prefer: preferred}, failures={"p1": FailureMark("p1", NOW - 1, "server_error")})
    assert sel.plan(prep, failed, NOW).steps[0].key != preferred


def test_the_affinity_item_still_fits_the_one_state_read() -> None:
    entries = [entry(f"p{i % 4}", f"free-{i}", free=FREE) for i in range(40)]
    selector = Selector(catalog(entries))
    prep = selector.prepare(conversation(), {e.key for e in entries})
    read = set(pks_for(prep.all_meters(), prep.keys, NOW, prep.state_pks))
    assert prep.prefer in read and len(read) <= LOAD_ITEM_BUDGET


@pytest.mark.parametrize("field,value", [("temperature", 0.2), ("top_p", 0.5), ("presence_penalty", 0.5),
                                         ("frequency_penalty", -0.3)])
def test_sampling_controls_keep_a_request_off_models_that_refuse_them(field: str, value: float) -> None:
    """OpenAI's reasoning models answer 400 to temperature, top_p or penalties off their defaults:
    such a request is never routed there (pinned: a 400 naming why), a default value changes nothing."""
    cat = load_catalog()
    gpt5 = ModelKey("openai", "gpt-5-nano")
    openai = [e.key for e in cat.entries if e.provider == "openai"]
    preparer = ChatPreparer(cat, TokenEstimator())
    prep = preparer.prepare(request(**{field: value}), openai)
    assert gpt5 not in prep.keys
    assert "does not accept temperature" in dict(prep.dropped)[gpt5]
    assert ModelKey("openai", "gpt-4o-mini") in prep.keys
    default = {"temperature": 1, "top_p": 1, "presence_penalty": 0, "frequency_penalty": 0}[field]
    assert gpt5 in preparer.prepare(request(**{field: default}), openai).keys
    with pytest.raises(InvalidRequest, match="does not accept temperature"):
        preparer.prepare(request(model="openai/gpt-5-nano", **{field: value}), openai)


def test_no_413_while_a_model_beyond_the_state_read_could_take_the_request() -> None:
    """`request_too_large` says no model's limit could ever take the request; a model ranked
    below what one state read holds (`prep.rest`) with a large enough limit says otherwise (the
    caller may get it served later, so a 429 with its reasons, not a 413)."""
    from dataclasses import replace

    from llm_gateway.selection.planner import Planner
    from llm_gateway.selection.selector import ChatPreparer
    from llm_gateway.selection.tokens import TokenEstimator

    small = entry("p0", "small", free=FreeTier(rpm=100, tpm=1_000), price=None)
    large = entry("p1", "large", free=FreeTier(rpm=100, tpm=100_000), price=None)
    cat = catalog([small, large])
    prep = ChatPreparer(cat, TokenEstimator()).prepare(request(max_tokens=2_000), [small.key, large.key])
    only_small_loaded = replace(prep, candidates=tuple(c for c in prep.candidates if c.key == small.key),
                                rest=tuple(c for c in prep.candidates if c.key == large.key))
    assert Planner().plan(only_small_loaded, StateSnapshot(), NOW).too_large is False
    nothing_beyond = replace(only_small_loaded, rest=())
    assert Planner().plan(nothing_beyond, StateSnapshot(), NOW).too_large is True


def test_what_the_plan_remembers_as_used_up_does_not_depend_on_one_callers_ask() -> None:
    """A day window 95 % used cannot take one caller's 4,000-token request, but can take a small
    one: the plan must not report it as full for hours (`frees_at`, which the container's used-up
    memory reads for every later request), or one caller's large `max_tokens` would send everyone
    else's small requests to paid models. A window that cannot take even the smallest request is
    reported."""
    day = FreeTier(rpm=100, tpd=10_000)
    sel = Selector(catalog([entry("p0", "daily", free=day, price=None), entry("p2", "paid", price=(0.1, 0.2))]))
    key = ModelKey("p0", "daily")
    entry_ = sel.catalog.get(key)
    assert entry_ is not None
    [meter] = [m for m in sel.catalog.meters(entry_) if m.limit.period.seconds == 86_400]
    pk = meter.pk(meter.limit.period.start(NOW))
    nearly = StateSnapshot(counters={pk: {REQUESTS: 40, TOKENS: 9_500}})
    big = sel.prepare(request(max_tokens=4_000), keys(sel))
    plan = sel.plan(big, nearly, NOW)
    assert key not in [step.key for step in plan.steps]  # this request does not fit today
    assert key not in dict(plan.frees_at)  # but the model is not used up for the next caller
    # only for a caller asking as many tokens, until the day's window takes them
    [(model, unit, ask, until)] = plan.full_for
    ask_now = next(c.amounts for c in big.candidates if c.key == key)[TOKENS]
    assert (model, unit, ask) == (key, TOKENS, ask_now) and until - NOW >= 3_600
    spent = StateSnapshot(counters={pk: {REQUESTS: 40, TOKENS: 10_000}})
    assert key in dict(sel.plan(big, spent, NOW).frees_at)


def test_a_models_lowest_ceilings_are_worked_out_once_for_equal_meters() -> None:
    """A caller with limits gets a new meters tuple per request (the model's meters and the
    caller's): the planner's lowest-ceiling cache is keyed by the meters, not by the tuple's
    identity, so it does not grow (and clear) with every such request; the caller's own limit
    never counts as the model's."""
    model = Meter("p#m", WindowLimit(MINUTE, {TOKENS: 1_000}))
    caller = Meter("user#u", WindowLimit(MINUTE, {TOKENS: 10}), CALLER_SCOPE)
    planner_module._LOWEST.clear()
    for _ in range(3):
        assert planner_module._above_a_limit(tuple([model, caller]), {TOKENS: 500}) is None
    assert len(planner_module._LOWEST) == 1
    assert planner_module._above_a_limit((model, caller), {TOKENS: 1_500}) is not None
    # per-end-user keys: every end user's own meter is another caller meter, and must not make
    # another entry (a caller cycling `user` ids would otherwise clear the cache for everyone)
    for end_user in range(50):
        own = Meter(f"user#u#{end_user}", WindowLimit(MINUTE, {TOKENS: 10}), CALLER_SCOPE)
        assert planner_module._above_a_limit((model, own), {TOKENS: 500}) is None
    assert len(planner_module._LOWEST) == 1
