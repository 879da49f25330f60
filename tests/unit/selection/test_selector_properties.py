"""Selector properties over random catalogs and random state (hypothesis).

1. A model whose context window is too small for prompt + output is never chosen.
2. A model without capacity is never chosen while one with capacity exists (in fact never).
3. The plan is a permutation of the eligible models, with every free model before every paid one.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm_gateway.selection.catalog import FreeTier, ModelEntry
from llm_gateway.selection.selector import DEFAULT_EXPECTED_OUTPUT, Selector
from llm_gateway.state.rate_limits import capacity
from llm_gateway.state.store import Cooldown, ModelKey, ModelState, StateSnapshot, WindowUsage

from .builders import PROVIDERS, catalog, entry, request

NOW = 1_700_000_000.0
WORDS = st.integers(min_value=1, max_value=400)


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
def scenarios(draw: st.DrawFn) -> tuple[list[ModelEntry], StateSnapshot, int]:
    count = draw(st.integers(1, 12))
    entries = [draw(model_entries(i)) for i in range(count)]
    models: dict[ModelKey, ModelState] = {}
    for e in entries:
        windows = tuple(
            WindowUsage(lim, lim.start(NOW), requests=draw(st.integers(0, 6)), tokens=draw(st.integers(0, 6000)))
            for lim in e.windows()
            if draw(st.booleans())
        )
        cooldown = Cooldown(NOW + draw(st.integers(-30, 30)), "429") if draw(st.booleans()) else None
        models[e.key] = ModelState(e.key, windows=windows, cooldown=cooldown)
    return entries, StateSnapshot(models=models), draw(WORDS)


def _prepare(entries: list[ModelEntry], words: int, max_tokens: int | None):
    sel = Selector(catalog(entries))
    extra = {"max_tokens": max_tokens} if max_tokens else {}
    try:
        return sel, sel.prepare(request("word " * words, **extra), [e.key for e in entries])
    except Exception as exc:  # InvalidRequest: nothing could ever fit; that is allowed
        assert getattr(exc, "status", None) == 400
        return sel, None


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.one_of(st.none(), st.integers(1, 3000)))
def test_plan_properties(scenario: tuple[list[ModelEntry], StateSnapshot, int], max_tokens: int | None) -> None:
    entries, snapshot, words = scenario
    sel, prep = _prepare(entries, words, max_tokens)
    if prep is None:
        return
    plan = sel.plan(prep, snapshot, NOW)
    chosen = [step.key for step in plan.steps]
    by_key = {e.key: e for e in entries}

    # 1. context: prompt (provider-scaled) + output fits every chosen model
    for step in plan.steps:
        e = by_key[step.key]
        output = max_tokens if max_tokens else min(DEFAULT_EXPECTED_OUTPUT, e.max_output)
        prompt = step.reserve_tokens - output
        assert prompt >= prep.prompt_tokens
        assert prompt + output <= e.context_window

    # 2. capacity: nothing without capacity is ever chosen
    for key in chosen:
        ok = capacity(by_key[key].windows(), snapshot.models.get(key), prep.reserve_tokens[key], NOW)
        assert ok.ok

    # 3. permutation of the eligible models, free first
    eligible = {
        e.key for e in prep.candidates
        if capacity(e.windows(), snapshot.models.get(e.key), prep.reserve_tokens[e.key], NOW).ok
    }
    assert sorted(chosen) == sorted(eligible) and len(chosen) == len(set(chosen))
    flags = [step.free for step in plan.steps]
    assert flags == sorted(flags, reverse=True)
    dropped = {k for k, _ in plan.dropped}
    assert dropped.isdisjoint(chosen)
    assert dropped | set(chosen) == {e.key for e in entries}


@settings(max_examples=100, deadline=None)
@given(scenarios())
def test_without_capacity_never_chosen_while_one_has_it(scenario: tuple[list[ModelEntry], StateSnapshot, int]) -> None:
    entries, snapshot, words = scenario
    sel, prep = _prepare(entries, words, None)
    if prep is None:
        return
    plan = sel.plan(prep, snapshot, NOW)
    has = [e.key for e in prep.candidates if capacity(e.windows(), snapshot.models.get(e.key), prep.reserve_tokens[e.key], NOW).ok]
    if has:
        assert plan.steps and plan.steps[0].key in has
    else:
        assert plan.steps == ()
