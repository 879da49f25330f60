"""Selector behaviour on hand-built catalogs: pinning, drops with reasons, ordering, ties."""

from __future__ import annotations

import pytest

from llm_gateway.api.errors import InvalidRequest, ModelNotFound
from llm_gateway.providers.base import RateLimitInfo
from llm_gateway.selection.catalog import FreeTier, load_catalog
from llm_gateway.selection.selector import PlanStep, Selector
from llm_gateway.state.store import (
    Cooldown,
    HeaderSnapshot,
    ModelKey,
    ModelState,
    StateSnapshot,
    WindowLimit,
    WindowUsage,
)

from .builders import catalog, entry, request

NOW = 1_000_000.0
EMPTY = StateSnapshot(models={})
FREE = FreeTier(rpm=10, tpm=100_000)


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


def test_free_first_then_category_then_cost() -> None:
    sel = make()
    plan = sel.plan(sel.prepare(request(), keys(sel)), EMPTY, NOW)
    order = [str(s.key) for s in plan.steps]
    assert set(order[:3]) == {"p0/free-a", "p1/free-b", "p2/tiny"}
    assert order[3:] == ["p2/paid-cheap", "p1/shared", "p2/shared", "p3/paid-dear", "p3/big-paid"] or \
        order[3:] == ["p2/paid-cheap", "p2/shared", "p1/shared", "p3/paid-dear", "p3/big-paid"]
    assert all(s.free for s in plan.steps[:3]) and not any(s.free for s in plan.steps[3:])


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
    assert (ModelKey("p2", "tiny"), next(r for k, r in prep.dropped if k == ModelKey("p2", "tiny"))) in prep.dropped
    image = [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]
    vision = sel.prepare(request(image), keys(sel))
    assert [e.key for e in vision.candidates] == [ModelKey("p3", "big-paid")]
    assert all(r == "no vision support" for _, r in vision.dropped)


def test_nothing_fits_is_a_400() -> None:
    sel = make()
    with pytest.raises(InvalidRequest):
        sel.prepare(request("word " * 200_000), keys(sel))


def test_pinning_and_unknown_models() -> None:
    sel = make()
    prep = sel.prepare(request(model="p3/paid-dear"), keys(sel))
    assert prep.pinned == ModelKey("p3", "paid-dear") and len(prep.candidates) == 1
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


def test_state_drops_full_windows_headers_and_blocked() -> None:
    sel = make()
    prep = sel.prepare(request(), keys(sel))
    limit = WindowLimit(60, 10, 100_000)
    full = ModelState(ModelKey("p0", "free-a"), windows=(WindowUsage(limit, limit.start(NOW), requests=10),))
    hdr = ModelState(ModelKey("p1", "free-b"), headers=HeaderSnapshot(RateLimitInfo(remaining_requests=0, reset_requests_s=30), NOW - 5))
    snapshot = StateSnapshot(models={full.key: full, hdr.key: hdr})
    plan = sel.plan(prep, snapshot, NOW, blocked={ModelKey("p2", "tiny"): "breaker open"})
    reasons = dict(plan.dropped)
    assert "used up" in reasons[full.key]
    assert "0 requests remaining" in reasons[hdr.key]
    assert reasons[ModelKey("p2", "tiny")] == "blocked: breaker open"
    assert not any(s.free for s in plan.steps)
    # the header snapshot stops counting once its reset has passed
    later = sel.plan(prep, snapshot, NOW + 60)
    assert hdr.key in {s.key for s in later.steps}


def test_real_catalog_smoke() -> None:
    sel = Selector(load_catalog())
    prep = sel.prepare(request(), list(sel.catalog.keys()))
    plan = sel.plan(prep, EMPTY, NOW)
    assert plan.steps[0].free and plan.steps[0].entry.category == "small"
    assert len(plan.steps) == len(prep.candidates)


def test_a_large_catalog_loads_state_for_a_bounded_set_that_keeps_paid_fallbacks():
    from llm_gateway.selection.selector import MIN_LOADED_PAID
    from llm_gateway.state.store import LOAD_ITEM_BUDGET, PROVIDER_ITEMS_RESERVE, items_per_model

    entries = [entry(f"p{i % 4}", f"free-{i}", free=FREE) for i in range(40)]
    entries += [entry(f"p{i % 4}", f"paid-{i}", price=(0.1 * (i + 1), 0.1)) for i in range(10)]
    selector = Selector(catalog(entries))
    prep = selector.prepare(request(), {e.key for e in entries})
    loaded = list(prep.limits)
    items = sum(items_per_model(limits) for limits in prep.limits.values())
    assert items <= LOAD_ITEM_BUDGET - PROVIDER_ITEMS_RESERVE  # one BatchGetItem, with the breakers
    assert items + items_per_model(entries[0].windows()) > LOAD_ITEM_BUDGET - PROVIDER_ITEMS_RESERVE  # and full
    paid = [key for key in loaded if key.model.startswith("paid-")]
    assert {key.model for key in paid} == {f"paid-{i}" for i in range(MIN_LOADED_PAID)}  # the cheapest ones
    free = [key for key in loaded if key.model.startswith("free-")]
    assert len(free) + len(paid) == len(loaded) and free
    assert sum(1 for _, why in prep.dropped if why.startswith("not loaded")) == 50 - len(loaded)
    # every free model used up: the plan still has the paid fallbacks, cheapest first
    full = StateSnapshot(models={
        key: ModelState(key, windows=(WindowUsage(WindowLimit(60, max_requests=10), int(NOW) - int(NOW) % 60, 10),))
        for key in free
    })
    plan = selector.plan(prep, full, NOW)
    assert [step.key.model for step in plan.steps] == [f"paid-{i}" for i in range(MIN_LOADED_PAID)]


def test_small_catalogs_load_every_candidate():
    selector = make()
    prep = selector.prepare(request(), {e.key for e in selector.catalog.entries})
    assert not any(why.startswith("not loaded") for _, why in prep.dropped)
