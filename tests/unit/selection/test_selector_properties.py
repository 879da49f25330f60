"""Preparation + planning properties over random catalogs and random state (hypothesis).

1. A model whose context window is too small for prompt + output is never chosen.
2. A model without capacity (its own windows, carry-over included, or its cooldown) is never
   chosen while one with capacity exists (in fact never).
3. The plan is a permutation of the eligible models, with every free model before every paid one.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm_gateway.selection.catalog import Catalog, FreeTier, ModelEntry
from llm_gateway.selection.planner import Planner, Preparation
from llm_gateway.selection.selector import DEFAULT_EXPECTED_OUTPUT, ChatPreparer
from llm_gateway.selection.tokens import TokenEstimator, scaled
from llm_gateway.state.items import Cooldown, ModelState, StateSnapshot
from llm_gateway.state.metering import REQUESTS, TOKENS, usage_of
from llm_gateway.state.rate_limits import capacity
from llm_gateway.state.store import ModelKey

from .builders import PROVIDERS, catalog, entry, request

NOW = 1_700_000_000.0
WORDS = st.integers(min_value=1, max_value=400)
Scenario = tuple[list[ModelEntry], StateSnapshot, int]


@st.composite
def model_entries(draw: st.DrawFn, index: int) -> ModelEntry:
    free = draw(st.booleans())
    tier = None
    if free:
        tier = FreeTier(
            rpm=draw(st.one_of(st.none(), st.integers(0, 5))),
            tpm=draw(st.one_of(st.none(), st.integers(0, 5000))),
            rpd=draw(st.one_of(st.none(), st.integers(0, 50))),
        )
    return entry(
        draw(st.sampled_from(PROVIDERS)),
        f"m{index}",
        category=draw(st.sampled_from(["small", "large", "reasoning"])),
        context=draw(st.integers(200, 5000)),
        max_output=draw(st.integers(64, 4096)),
        free=tier,
        price=None if free else (draw(st.floats(0, 10)), draw(st.floats(0, 10))),
    )


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    count = draw(st.integers(1, 12))
    entries = [draw(model_entries(i)) for i in range(count)]
    cat = catalog(entries)
    counters: dict[str, dict[str, int]] = {}
    models: dict[ModelKey, ModelState] = {}
    for e in entries:
        for meter in cat.meters(e):
            period = meter.limit.period
            for start in (period.start(NOW), period.previous_start(NOW)):  # this window and the carry
                if draw(st.booleans()):
                    counters[meter.pk(start)] = {REQUESTS: draw(st.integers(0, 6)), TOKENS: draw(st.integers(0, 6000))}
        if draw(st.booleans()):
            models[e.key] = ModelState(e.key, cooldown=Cooldown(NOW + draw(st.integers(-30, 30)), "429"))
    return entries, StateSnapshot(counters=counters, models=models), draw(WORDS)


def _prepare(entries: list[ModelEntry], words: int, max_tokens: int | None) -> tuple[Catalog, Preparation | None]:
    cat = catalog(entries)
    extra = {"max_tokens": max_tokens} if max_tokens else {}
    try:
        return cat, ChatPreparer(cat, TokenEstimator()).prepare(request("word " * words, **extra), [e.key for e in entries])
    except Exception as exc:  # InvalidRequest: nothing could ever fit; that is allowed
        assert getattr(exc, "status", None) == 400
        return cat, None


def has_capacity(cat: Catalog, e: ModelEntry, snapshot: StateSnapshot, amounts: dict[str, int]) -> bool:
    """Worked out independently of the plan: every meter of the model, from the raw counters."""
    usages = [usage_of(meter, snapshot.counters, NOW) for meter in cat.meters(e)]
    return capacity(usages, snapshot.models.get(e.key), amounts, NOW).ok


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.one_of(st.none(), st.integers(1, 3000)))
def test_plan_properties(scenario: Scenario, max_tokens: int | None) -> None:
    entries, snapshot, words = scenario
    cat, prep = _prepare(entries, words, max_tokens)
    if prep is None:
        return
    plan = Planner().plan(prep, snapshot, NOW)
    chosen = [step.key for step in plan.steps]
    by_key = {e.key: e for e in entries}

    # 1. context: prompt (provider-scaled) + output fits every chosen model; without max_tokens
    #    the output reserved is the default, cut to what the smallest token window leaves
    for step in plan.steps:
        e = by_key[step.key]
        prompt = scaled(prep.detail.prompt_tokens, cat.token_factor(e))
        output = max_tokens if max_tokens else min(DEFAULT_EXPECTED_OUTPUT, e.output_cap)
        room = min((n for m in cat.meters(e) if (n := m.limit.max_of(TOKENS)) is not None), default=None)
        if not max_tokens and room is not None and prompt + output > room:
            output = max(1, room - prompt)
        assert step.amounts[TOKENS] == prompt + output
        assert prompt >= prep.detail.prompt_tokens
        assert prompt + min(DEFAULT_EXPECTED_OUTPUT, e.output_cap) <= e.window or max_tokens
        assert prompt + output <= e.window
        assert step.amounts[REQUESTS] == 1

    # 2. capacity: nothing without capacity is ever chosen
    for step in plan.steps:
        assert has_capacity(cat, by_key[step.key], snapshot, dict(step.amounts))

    # 3. permutation of the eligible models, free first
    eligible = {c.key for c in prep.candidates if has_capacity(cat, c.entry, snapshot, dict(c.amounts))}
    assert sorted(chosen) == sorted(eligible) and len(chosen) == len(set(chosen))
    flags = [step.free for step in plan.steps]
    assert flags == sorted(flags, reverse=True)
    dropped = {k for k, _ in plan.dropped}
    assert dropped.isdisjoint(chosen)
    assert dropped | set(chosen) == {e.key for e in entries}


@settings(max_examples=100, deadline=None)
@given(scenarios())
def test_without_capacity_never_chosen_while_one_has_it(scenario: Scenario) -> None:
    entries, snapshot, words = scenario
    cat, prep = _prepare(entries, words, None)
    if prep is None:
        return
    plan = Planner().plan(prep, snapshot, NOW)
    has = [c.key for c in prep.candidates if has_capacity(cat, c.entry, snapshot, dict(c.amounts))]
    if has:
        assert plan.steps and plan.steps[0].key in has
    else:
        assert plan.steps == ()
        assert plan.capacity_only  # nothing but capacity stopped them: a 429, not a 503
