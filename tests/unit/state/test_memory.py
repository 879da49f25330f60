"""MemoryStore: all-or-nothing reservations, expiry, extend-only cooldowns, thread safety."""

from __future__ import annotations

import threading

from llm_gateway.providers.base import RateLimitInfo
from llm_gateway.state.memory import MemoryStore
from llm_gateway.state.store import ModelKey, WindowLimit

KEY = ModelKey("groq", "m")
MINUTE = WindowLimit(60, max_requests=3, max_tokens=1000)
DAY = WindowLimit(86_400, max_requests=5, max_tokens=None)
NOW = 1_700_000_040.0


def test_reserve_until_full_then_none() -> None:
    store = MemoryStore()
    assert all(store.reserve(KEY, [MINUTE], 100, NOW) for _ in range(3))
    assert store.reserve(KEY, [MINUTE], 100, NOW) is None
    usage = store.load({KEY: [MINUTE]}, NOW).models[KEY].windows[0]
    assert (usage.requests, usage.tokens) == (3, 300)
    assert store.reserve(KEY, [MINUTE], 100, NOW + 60) is not None  # next window


def test_tokens_limit_and_all_or_nothing() -> None:
    store = MemoryStore()
    assert store.reserve(KEY, [MINUTE, DAY], 900, NOW) is not None
    assert store.reserve(KEY, [MINUTE, DAY], 200, NOW) is None
    snap = store.load({KEY: [MINUTE, DAY]}, NOW).models[KEY]
    assert [w.requests for w in snap.windows] == [1, 1]  # the failed attempt moved neither window


def test_reconcile_moves_tokens_by_delta() -> None:
    store = MemoryStore()
    reservation = store.reserve(KEY, [MINUTE], 500, NOW)
    assert reservation is not None
    store.reconcile(reservation, 1200, NOW)  # actual usage may exceed the limit
    usage = store.load({KEY: [MINUTE]}, NOW).models[KEY].windows[0]
    assert usage.tokens == 1200
    assert store.reserve(KEY, [MINUTE], 1, NOW) is None  # but no new reservation then fits


def test_cooldowns_only_extend_and_expire() -> None:
    store = MemoryStore()
    store.cool_down(KEY, NOW + 30, "a", NOW)
    store.cool_down(KEY, NOW + 10, "shorter", NOW)
    state = store.load({KEY: []}, NOW).models[KEY]
    assert state.cooldown is not None and state.cooldown.reason == "a"
    store.cool_down(KEY, NOW + 60, "longer", NOW)
    assert store.load({KEY: []}, NOW).models[KEY].cooldown.reason == "longer"  # type: ignore[union-attr]
    assert store.load({KEY: []}, NOW + 61).models[KEY].cooldown is None


def test_headers_expire_and_breakers_are_returned() -> None:
    store = MemoryStore()
    store.record_headers(KEY, RateLimitInfo(remaining_requests=0, reset_requests_s=20), NOW)
    assert store.load({KEY: []}, NOW + 5).models[KEY].headers is not None
    assert store.load({KEY: []}, NOW + 25).models[KEY].headers is None
    store.put_breaker("cb#groq", {"state": "open"}, expires_at=NOW + 10)
    assert store.load({}, NOW, ["cb#groq", "cb#x"]).breakers == {"cb#groq": {"state": "open"}}
    assert store.load({}, NOW + 11, ["cb#groq"]).breakers == {}


def test_threads_admit_exactly_the_limit() -> None:
    store = MemoryStore()
    limit = WindowLimit(60, max_requests=37)
    results: list[bool] = []
    lock = threading.Lock()

    def worker() -> None:
        ok = store.reserve(KEY, [limit], 1, NOW) is not None
        with lock:
            results.append(ok)

    threads = [threading.Thread(target=worker) for _ in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(results) == 37
