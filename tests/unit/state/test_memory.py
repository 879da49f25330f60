"""MemoryStore (items: all-or-nothing conditional adds, expiry, extend-only writes, thread safety),
and SharedState on top of it (reservations, reconciliation, cooldowns, headers, breakers)."""

from __future__ import annotations

import threading

import pytest

from llm_gateway.providers.base import RateLimitInfo
from llm_gateway.state import memory
from llm_gateway.state.items import FAILURE_MEMORY_MAX_S, FAILURE_MEMORY_S, FailureMark
from llm_gateway.state.memory import MemoryStore
from llm_gateway.state.metering import REQUESTS, TOKENS, Meter, WindowLimit, model_counter, usage_of
from llm_gateway.state.shared import SharedState
from llm_gateway.state.store import CounterAdd, ModelKey

KEY = ModelKey("groq", "m")
MINUTE = Meter(model_counter("groq", "m"), WindowLimit.of(60, requests=3, tokens=1000))
DAY = Meter(model_counter("groq", "m"), WindowLimit.of(86_400, requests=5))
NOW = 1_700_000_040.0  # a minute's first second


def shared() -> SharedState:
    return SharedState(MemoryStore(), fold_reconcile=False)


def usages(state: SharedState, meters: list[Meter], now: float) -> list:
    snapshot = state.load(meters, [KEY], now)
    return [usage_of(meter, snapshot.counters, now) for meter in meters]


def used(state: SharedState, meter: Meter, now: float) -> dict[str, int]:
    return dict(usages(state, [meter], now)[0].used)


def ask(tokens: int) -> dict[str, int]:
    return {REQUESTS: 1, TOKENS: tokens}


# --- the store's items -------------------------------------------------------------------------------
def test_conditional_adds_are_all_or_nothing() -> None:
    store = MemoryStore()
    a = CounterAdd("rl#a", {REQUESTS: 1, TOKENS: 10}, expires_at=int(NOW) + 60, ceilings={REQUESTS: 2})
    b = CounterAdd("rl#b", {REQUESTS: 1}, expires_at=int(NOW) + 60, ceilings={REQUESTS: 1})
    assert store.add([a, b], NOW)
    assert not store.add([a, b], NOW)  # b is full: neither moves
    assert store.load(["rl#a", "rl#b", "rl#none"], NOW) == {"rl#a": {REQUESTS: 1, TOKENS: 10}, "rl#b": {REQUESTS: 1}}
    assert store.add([a], NOW) and not store.add([a], NOW)  # a alone: up to its ceiling of 2
    unguarded = CounterAdd("rl#a", {TOKENS: -5, REQUESTS: 7}, expires_at=int(NOW) + 60)
    assert store.add([unguarded], NOW)  # no ceiling: reconciliation may pass the limit
    assert store.load(["rl#a"], NOW)["rl#a"] == {REQUESTS: 9, TOKENS: 15}


def test_expired_items_are_invisible_and_do_not_count() -> None:
    store = MemoryStore()
    add = CounterAdd("rl#a", {REQUESTS: 1}, expires_at=int(NOW) + 10, ceilings={REQUESTS: 1})
    assert store.add([add], NOW) and not store.add([add], NOW)
    assert store.load(["rl#a"], NOW + 10) == {}
    renewed = CounterAdd("rl#a", {REQUESTS: 1}, expires_at=int(NOW) + 70, ceilings={REQUESTS: 1})
    assert store.add([renewed], NOW + 10)  # the dead count is not added to
    assert store.load(["rl#a"], NOW + 10) == {"rl#a": {REQUESTS: 1}}
    store.put("cb#groq", {"state": "open"}, int(NOW) + 5, NOW)
    assert store.load(["cb#groq"], NOW + 4) == {"cb#groq": {"state": "open"}}
    assert store.load(["cb#groq"], NOW + 5) == {}


def test_extend_only_lengthens() -> None:
    store = MemoryStore()
    store.extend("cd#x", {"reason": "a"}, NOW + 30, int(NOW) + 90, NOW)
    store.extend("cd#x", {"reason": "shorter"}, NOW + 10, int(NOW) + 70, NOW)
    assert store.load(["cd#x"], NOW)["cd#x"] == {"reason": "a", "until": NOW + 30}
    store.extend("cd#x", {"reason": "longer"}, NOW + 60, int(NOW) + 120, NOW)
    assert store.load(["cd#x"], NOW)["cd#x"]["reason"] == "longer"


def test_loaded_items_cannot_change_the_table() -> None:
    """Loaded items are read-only (the stored ones, not copies): changing one fails, the table stays."""
    store = MemoryStore()
    store.put("hdr#x", {"observed_at": NOW}, int(NOW) + 60, NOW)
    with pytest.raises(TypeError):
        store.load(["hdr#x"], NOW)["hdr#x"]["observed_at"] = 0  # type: ignore[index]
    assert store.load(["hdr#x"], NOW)["hdr#x"] == {"observed_at": NOW}


def test_a_loaded_item_stays_as_it_was_loaded() -> None:
    """A later write stores a new item: one loaded before it is not changed under its holder (a
    snapshot, the breakers and the roll-over's removal read items as loaded)."""
    store = MemoryStore()
    assert store.add([CounterAdd("rl#x", {REQUESTS: 1, "old": 5}, expires_at=int(NOW) + 60)], NOW)
    loaded = store.load(["rl#x"], NOW)["rl#x"]
    assert store.add([CounterAdd("rl#x", {REQUESTS: 2}, expires_at=int(NOW) + 60, removes=("old",))], NOW)
    store.put("hdr#y", {"observed_at": NOW}, int(NOW) + 60, NOW)
    header = store.load(["hdr#y"], NOW)["hdr#y"]
    store.extend("hdr#y", {"observed_at": NOW + 1}, NOW + 30, int(NOW) + 90, NOW)
    assert loaded == {REQUESTS: 1, "old": 5}
    assert header == {"observed_at": NOW}
    assert store.load(["rl#x"], NOW)["rl#x"] == {REQUESTS: 3}


def test_dead_counters_are_purged_now_and_then() -> None:
    store = MemoryStore()
    for n in range(memory.PURGE_EVERY - 1):
        assert store.add([CounterAdd(f"rl#{n}", {REQUESTS: 1}, expires_at=int(NOW) + 1)], NOW)
    assert len(store._items) == memory.PURGE_EVERY - 1
    assert store.add([CounterAdd("rl#last", {REQUESTS: 1}, expires_at=int(NOW) + 100)], NOW + 50)
    assert list(store._items) == ["rl#last"]  # a long-lived container does not grow without bound


# --- reservations through SharedState ---------------------------------------------------------------
def test_reserve_until_full_then_none() -> None:
    state = shared()
    assert all(state.reserve(usages(state, [MINUTE], NOW), ask(100), NOW) for _ in range(3))
    assert state.reserve(usages(state, [MINUTE], NOW), ask(100), NOW) is None
    assert used(state, MINUTE, NOW) == {REQUESTS: 3, TOKENS: 300}
    # right after the boundary the full previous minute still counts (sliding estimate) ...
    assert state.reserve(usages(state, [MINUTE], NOW + 60), ask(100), NOW + 60) is None
    # ... two thirds into the next minute a third of it does: 2 of 3 requests fit
    later = NOW + 100
    assert [state.reserve(usages(state, [MINUTE], later), ask(1), later) is not None for _ in range(3)] == [True, True, False]
    assert state.reserve(usages(state, [MINUTE], NOW + 120), ask(100), NOW + 120) is not None  # wholly new


def test_tokens_limit_and_all_or_nothing() -> None:
    state = shared()
    assert state.reserve(usages(state, [MINUTE, DAY], NOW), ask(900), NOW) is not None
    assert state.reserve(usages(state, [MINUTE, DAY], NOW), ask(200), NOW) is None
    assert used(state, MINUTE, NOW)[REQUESTS] == used(state, DAY, NOW)[REQUESTS] == 1  # the refusal moved neither
    assert state.reserve(usages(state, [MINUTE], NOW), ask(1001), NOW) is None  # above the limit itself


def test_reconcile_moves_counters_by_the_difference() -> None:
    state = shared()
    reservation = state.reserve(usages(state, [MINUTE], NOW), ask(500), NOW)
    assert reservation is not None
    state.reconcile(reservation, ask(1200), NOW)  # actual usage may exceed the limit
    assert used(state, MINUTE, NOW) == {REQUESTS: 1, TOKENS: 1200}
    assert state.reserve(usages(state, [MINUTE], NOW), ask(1), NOW) is None  # but no new reservation then fits


def test_release_gives_everything_back() -> None:
    state = shared()
    reservation = state.reserve(usages(state, [MINUTE, DAY], NOW), ask(500), NOW)
    assert reservation is not None and len(reservation.adds) == 1  # one meter item holds both windows
    state.release(reservation, NOW)
    assert used(state, MINUTE, NOW) == {REQUESTS: 0, TOKENS: 0} and used(state, DAY, NOW)[REQUESTS] == 0


def test_no_meter_means_no_write() -> None:
    state = shared()
    reservation = state.reserve([], ask(10**9), NOW)
    assert reservation is not None and reservation.adds == ()
    state.reconcile(reservation, ask(1), NOW)  # nothing to move


def test_cooldowns_only_extend_and_expire() -> None:
    state = shared()
    state.cool_down(KEY, NOW + 30, "a", NOW)
    state.cool_down(KEY, NOW + 10, "shorter", NOW)
    cooldown = state.load([], [KEY], NOW).models[KEY].cooldown
    assert cooldown is not None and (cooldown.until, cooldown.reason) == (NOW + 30, "a")
    state.cool_down(KEY, NOW + 60, "longer", NOW)
    assert state.load([], [KEY], NOW).models[KEY].cooldown.reason == "longer"  # type: ignore[union-attr]
    assert KEY not in state.load([], [KEY], NOW + 61).models


def test_headers_expire_and_breakers_and_failures_are_returned() -> None:
    state = shared()
    state.record_headers(KEY, RateLimitInfo(remaining_requests=0, reset_requests_s=20, requests_window_s=86_400), NOW)
    headers = state.load([], [KEY], NOW + 5).models[KEY].headers
    assert headers is not None and headers.info.remaining_requests == 0 and headers.observed_at == NOW
    assert headers.info.requests_window_s == 86_400
    assert KEY not in state.load([], [KEY], NOW + 25).models
    state.store.put("cb#groq", {"state": "open"}, int(NOW) + 10, NOW)
    state.store.put("cb#other", {"state": "open"}, int(NOW) + 10, NOW)
    assert state.load([], [KEY], NOW).breakers == {"cb#groq": {"state": "open"}}  # only this request's circuits
    assert state.load([], [KEY], NOW + 11).breakers == {}
    state.mark_failure(FailureMark("groq", NOW, "server_error"), NOW)
    mark = state.load([], [KEY], NOW + 1).failures["groq"]
    assert (mark.provider, mark.at, mark.kind) == ("groq", NOW, "server_error")
    assert state.load([], [KEY], NOW + FAILURE_MEMORY_S + FAILURE_MEMORY_MAX_S + 2).failures == {}
    assert not state.load([], [KEY], NOW).degraded


def test_threads_admit_exactly_the_limit() -> None:
    state = shared()
    meter = Meter(model_counter("groq", "m"), WindowLimit.of(60, requests=37))
    window = [usage_of(meter, {}, NOW)]
    results: list[bool] = []
    lock = threading.Lock()

    def worker() -> None:
        ok = state.reserve(window, {REQUESTS: 1}, NOW) is not None
        with lock:
            results.append(ok)

    threads = [threading.Thread(target=worker) for _ in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(results) == 37
    assert used(state, meter, NOW) == {REQUESTS: 37}


def test_dead_put_items_are_purged_too() -> None:
    """One affinity item per conversation turn is put: unlike headers and failure marks (a few per
    model), their number grows with traffic, so expired ones must go like dead counters."""
    store = MemoryStore()
    for n in range(memory.PURGE_EVERY - 1):
        store.put(f"aff#{n}", {"provider": "p", "model": "m"}, expires_at=10, now=0.0)
    store.put("aff#last", {"provider": "p", "model": "m"}, expires_at=1000, now=100.0)
    assert list(store._items) == ["aff#last"]


def test_a_failure_mark_is_read_for_a_while_after_its_memory_ends_and_never_holds_past_the_cap() -> None:
    """Past its memory's end the mark no longer ranks the provider last, but other containers
    still read it to continue the streak; a long streak holds at most FAILURE_MEMORY_MAX_S."""
    state = shared()
    state.mark_failure(FailureMark("groq", NOW, "overloaded", streak=2), NOW)
    mark = state.load([], [KEY], NOW + 2 * FAILURE_MEMORY_S + 1).failures["groq"]
    assert (mark.streak, mark.until) == (2, NOW + 2 * FAILURE_MEMORY_S)
    assert FailureMark("groq", NOW, "overloaded", streak=5000).until == NOW + FAILURE_MEMORY_MAX_S


def test_two_adds_to_one_item_as_one_write() -> None:
    """`CounterAdd.plus`: what a reservation folding a moved count, and the degraded store's
    deferred usage records, write as one add."""
    first = CounterAdd("rl#u", {"requests": 1, "tokens": 10}, 100, {"requests": 5}, {"last_at": 7.0}, ("old", "x"))
    then = CounterAdd("rl#u", {"requests": -1, "x": 2}, 90, {"tokens": 50}, {"last_at": 3.0, "b": 1.0}, ("gone",))
    both = first.plus(then)
    assert both == CounterAdd("rl#u", {"requests": 0, "tokens": 10, "x": 2}, 100, {"tokens": 50, "requests": 5},
                              {"last_at": 7.0, "b": 1.0}, ("old", "gone"))
    store = MemoryStore()
    assert store.add([both], 0.0)
    assert store.load(["rl#u"], 0.0)["rl#u"] == {"requests": 0, "tokens": 10, "x": 2, "last_at": 7.0, "b": 1.0}


def test_a_loaded_item_copies_and_pickles_as_a_plain_dict() -> None:
    """A read-only item rebuilt by `copy`, `deepcopy` or `pickle` came through the refused
    `__setitem__` and raised; a copy is the caller's to change."""
    import copy
    import pickle

    store = MemoryStore()
    store.put("pk1", {"n": 1, "nested": {"a": 1}}, 10, 0.0)
    item = store.load(["pk1"], 0.0)["pk1"]
    for copied in (copy.copy(item), copy.deepcopy(item), pickle.loads(pickle.dumps(item))):
        assert type(copied) is dict and copied == {"n": 1, "nested": {"a": 1}}
        copied["n"] = 2
    assert store.load(["pk1"], 0.0)["pk1"]["n"] == 1
