"""One item per counter: every window of a meter (second … calendar month) in one item, so a
reservation is one conditional write however many windows the counter has (`items.py`, "meter
items"). Window roll-over keeps what the sliding estimate reads and removes the rest in the same
write; corrections and give-backs land in the window and tenth the reservation was counted in."""

from __future__ import annotations

import calendar
from typing import Any

from llm_gateway.state.items import (
    METER_KEEP_S,
    decode_snapshot,
    meter_pk,
    pks_for,
    split_meter_item,
    windows_of,
)
from llm_gateway.state.memory import MemoryStore
from llm_gateway.state.metering import (
    CALENDAR_MONTH,
    REQUESTS,
    TOKENS,
    USD_MICROS,
    Meter,
    Period,
    WindowLimit,
    model_counter,
    provider_counter,
    slot_of,
)
from llm_gateway.state.shared import SharedState
from llm_gateway.state.store import ModelKey
from tests.unit.state.test_shared import Recording as SharedRecording

KEY = ModelKey("groq", "m")
COUNTER = model_counter("groq", "m")
MINUTE = Meter(COUNTER, WindowLimit.of(60, requests=3, tokens=1000))
DAY = Meter(COUNTER, WindowLimit.of(86_400, requests=100, tokens=100_000))
MONTH = Meter(COUNTER, WindowLimit(CALENDAR_MONTH, {REQUESTS: 5}))
T0 = calendar.timegm((2026, 11, 30, 23, 58, 0))  # two minutes before a month ends (a minute's start)


class Recording(SharedRecording):
    """test_shared's recording store (each `add` is one UpdateItem per item remotely), that also
    shows a counter's item."""

    def item(self, counter: str, now: float) -> dict[str, Any]:
        return dict(self.inner.load([meter_pk(counter)], now).get(meter_pk(counter), {}))


def reserve(state: SharedState, meters: list[Meter], amounts: dict[str, int], now: float) -> Any:
    snapshot = state.load(meters, [KEY], now)
    return state.reserve([snapshot.usage(m, now) for m in meters], amounts, now)


def window_starts_in(item: dict[str, Any], period: Period) -> set[int]:
    return {int(pk.rsplit("#", 1)[1]) for pk in windows_of({meter_pk(COUNTER): item})
            if pk.rsplit("#", 2)[1] == period.name}


def test_the_load_reads_one_item_per_counter() -> None:
    mistral = Meter(provider_counter("mistral"), WindowLimit.of(1, requests=1))
    pks = pks_for([MINUTE, DAY, MONTH, mistral], [], T0 + 0.1)  # in a window's first moments too
    assert pks == [meter_pk(COUNTER), meter_pk(provider_counter("mistral"))]


def test_a_reservation_on_a_counters_windows_is_one_write() -> None:
    store = Recording()
    state = SharedState(store, fold_reconcile=True)
    assert reserve(state, [MINUTE, DAY, MONTH], {REQUESTS: 1, TOKENS: 10}, T0) is not None
    [call] = store.calls
    [add] = call
    assert add.pk == meter_pk(COUNTER)
    assert len(add.ceilings) == 2 + 2 + 1  # every window's ceilings in one condition
    windows = split_meter_item(add.pk, add.amounts)
    assert set(windows) == {MINUTE.pk(T0), DAY.pk(DAY.limit.period.start(T0)), MONTH.pk(CALENDAR_MONTH.start(T0))}


def test_a_model_with_an_organisation_meter_writes_two_items() -> None:
    store = Recording()
    state = SharedState(store, fold_reconcile=True)
    org = Meter(provider_counter("groq"), WindowLimit.of(1, requests=1))
    assert reserve(state, [MINUTE, DAY, org], {REQUESTS: 1, TOKENS: 10}, T0) is not None
    assert [[add.pk for add in call] for call in store.calls] == [[meter_pk(COUNTER), meter_pk(provider_counter("groq"))]]
    assert reserve(state, [MINUTE, DAY, org], {REQUESTS: 1, TOKENS: 10}, T0) is None  # the org's second is used


def test_a_month_and_a_minute_in_one_item_each_refuse_on_their_own() -> None:
    state = SharedState(MemoryStore(), fold_reconcile=False)
    ask = {REQUESTS: 1, TOKENS: 10}
    assert [reserve(state, [MINUTE, MONTH], ask, T0 + i) is not None for i in range(4)] == [True] * 3 + [False]
    # the minute is full (3 a minute); two minutes on, the minute and its carry are over, the month is not
    later = T0 + 60 + 59  # still November (the month ends at T0 + 120)
    assert [reserve(state, [MINUTE, MONTH], ask, later + i * 0.1) is not None for i in range(3)] == [True, True, False]
    assert reserve(state, [MINUTE], ask, later + 1) is not None  # the month refused that one, not the minute
    december = T0 + 120 + 120  # a new month, its minute's carry over too
    assert [reserve(state, [MINUTE, MONTH], ask, december + i * 0.1) is not None for i in range(4)] == [True] * 3 + [False]
    snapshot = state.load([MINUTE, MONTH], [KEY], december + 1)
    assert snapshot.usage(MONTH, december + 1).used == {REQUESTS: 3, TOKENS: 30}


def test_roll_over_carries_the_previous_window_and_removes_older_ones() -> None:
    store = Recording()
    state = SharedState(store, fold_reconcile=False)
    minute = MINUTE.limit.period
    ask = {REQUESTS: 1, TOKENS: 100}
    assert reserve(state, [MINUTE, DAY], ask, T0 + 50) is not None  # in the last tenth of its minute
    assert reserve(state, [MINUTE, DAY], ask, T0 + 59) is not None
    assert reserve(state, [MINUTE, DAY], ask, T0 + 70) is not None  # the next minute: the previous carries
    snapshot = state.load([MINUTE], [KEY], T0 + 70)
    assert snapshot.usage(MINUTE, T0 + 70).carried[REQUESTS] == 2  # both of the last tenth's requests
    assert window_starts_in(store.item(COUNTER, T0 + 70), minute) == {T0, T0 + 60}
    # two minutes on: T0 is no longer read, so the next reservation removes it in its one write
    assert reserve(state, [MINUTE, DAY], ask, T0 + 130) is not None
    assert len(store.calls[-1]) == 1 and store.calls[-1][0].removes
    item = store.item(COUNTER, T0 + 130)
    assert window_starts_in(item, minute) == {T0 + 60, T0 + 120}  # the previous one still carries
    day = DAY.limit.period  # a new day began at T0 + 120: yesterday's window is kept, it carries
    assert window_starts_in(item, day) == {day.start(T0), day.start(T0 + 130)}
    usage = state.load([MINUTE, DAY], [KEY], T0 + 130).usage(DAY, T0 + 130)
    assert usage.used == {REQUESTS: 1, TOKENS: 100} and usage.carried == {REQUESTS: 3, TOKENS: 300}
    # an hour on, everything of the minute the item held is gone with the next write
    assert reserve(state, [MINUTE, DAY], ask, T0 + 3600) is not None
    assert window_starts_in(store.item(COUNTER, T0 + 3600), minute) == {T0 + 3600}


def test_a_window_a_write_left_as_it_was_is_decoded_into_the_same_objects() -> None:
    """A reservation changes the item's current window; the previous minute's, unchanged, comes
    out of the next load as the very objects decoded before (the caches keyed on them keep
    hitting: `metering._carry`), and the current one is decoded afresh."""
    state = SharedState(MemoryStore(), fold_reconcile=False)
    ask = {REQUESTS: 1, TOKENS: 100}
    assert reserve(state, [MINUTE], ask, T0 + 50) is not None
    assert reserve(state, [MINUTE], ask, T0 + 70) is not None
    before = state.load([MINUTE], [KEY], T0 + 70)
    assert reserve(state, [MINUTE], ask, T0 + 75) is not None
    after = state.load([MINUTE], [KEY], T0 + 75)
    previous, current = MINUTE.pk(T0), MINUTE.pk(T0 + 60)
    assert after.windows[previous] is before.windows[previous]
    assert after.counters[previous] is before.counters[previous] == {REQUESTS: 1, TOKENS: 100}
    assert before.counters[current] == {REQUESTS: 1, TOKENS: 100}
    assert after.counters[current] == {REQUESTS: 2, TOKENS: 200}
    assert after.usage(MINUTE, T0 + 75).carried == before.usage(MINUTE, T0 + 70).carried == {REQUESTS: 1, TOKENS: 100}


def test_an_item_stays_bounded_however_long_it_is_used() -> None:
    state = SharedState(MemoryStore(), fold_reconcile=True)
    store = state.store
    meters = [MINUTE, Meter(COUNTER, WindowLimit.of(86_400, requests=10**6)),
              Meter(COUNTER, WindowLimit(CALENDAR_MONTH, {REQUESTS: 10**6}))]
    for i in range(3000):  # two days and more of one request every 61 s, every one reconciled lower
        now = T0 + i * 61.0
        reservation = reserve(state, meters, {REQUESTS: 1, TOKENS: 100}, now)
        assert reservation is not None
        state.reconcile(reservation, {REQUESTS: 1, TOKENS: 40}, now)
    item = store.load([meter_pk(COUNTER)], now)[meter_pk(COUNTER)]  # type: ignore[attr-defined]
    windows = windows_of({meter_pk(COUNTER): item})
    # the minute's current, previous and (in its first second) the one before; the day's two; the month's two
    assert len(windows) <= 3 + 2 + 2, sorted(windows)
    assert len(item) <= 3 * 23 + 2 * 23 + 2 * 3 + 1


def test_a_write_on_one_window_never_shortens_the_items_life() -> None:
    """The item's TTL is set past any window's need on every write: a write that counts only the
    minute (a key whose policy has no monthly budget) leaves the month's count alive."""
    store = MemoryStore()
    state = SharedState(store, fold_reconcile=False)
    assert reserve(state, [MINUTE, MONTH], {REQUESTS: 1}, T0 - 20 * 86_400) is not None
    assert reserve(state, [MINUTE], {REQUESTS: 1}, T0 - 20 * 86_400 + 600) is not None
    assert state.load([MONTH], [KEY], T0).usage(MONTH, T0).used == {REQUESTS: 1}
    assert store._items[meter_pk(COUNTER)][1] >= T0 - 20 * 86_400 + 600 + METER_KEEP_S - 1


def test_a_correction_lands_in_the_reservations_window_and_tenth_after_roll_over() -> None:
    store = Recording()
    state = SharedState(store, fold_reconcile=False)
    at = T0 + 55.0
    reservation = reserve(state, [MINUTE, DAY], {REQUESTS: 1, TOKENS: 500}, at)
    assert reservation is not None
    state.reconcile(reservation, {REQUESTS: 1, TOKENS: 800}, T0 + 65)  # the answer came in the next minute
    windows = windows_of(store.inner.load([meter_pk(COUNTER)], T0 + 65))
    slot = slot_of(MINUTE.limit.period, T0, at)
    assert windows[MINUTE.pk(T0)][TOKENS] == 800 and windows[MINUTE.pk(T0)][f"{TOKENS}@{slot}"] == 800
    assert MINUTE.pk(T0 + 60) not in windows  # nothing lands in the new minute
    day = DAY.pk(DAY.limit.period.start(T0))
    assert windows[day][TOKENS] == 800


def test_a_give_back_to_a_window_nobody_reads_is_not_written() -> None:
    store = Recording()
    state = SharedState(store, fold_reconcile=False)
    reservation = reserve(state, [MINUTE], {REQUESTS: 1, TOKENS: 500}, T0 + 1)
    assert reservation is not None
    state.release(reservation, T0 + 600)  # a call that never started, given back ten minutes on
    assert len(store.calls) == 1  # the minute is no longer read: no write re-creates its attributes
    reservation = reserve(state, [MINUTE, DAY], {REQUESTS: 1, TOKENS: 500}, T0 + 601)
    assert reservation is not None
    state.release(reservation, T0 + 1200)  # the day is still read: one write, the day's window only
    [add] = store.calls[-1]
    assert set(split_meter_item(add.pk, add.amounts)) == {DAY.pk(DAY.limit.period.start(T0 + 601))}


def test_a_folded_correction_rides_on_the_next_reservation_of_the_item() -> None:
    store = Recording()
    state = SharedState(store, fold_reconcile=True)
    first = reserve(state, [MINUTE, DAY], {REQUESTS: 1, TOKENS: 900}, T0 + 1)
    assert first is not None
    state.reconcile(first, {REQUESTS: 1, TOKENS: 100}, T0 + 2)
    assert len(store.calls) == 1  # kept, not written
    # 900 + 500 would pass the minute's 1000; with the correction folded in, 100 + 500 fits
    assert reserve(state, [MINUTE, DAY], {REQUESTS: 1, TOKENS: 500}, T0 + 3) is not None
    assert len(store.calls) == 2 and len(store.calls[1]) == 1
    snapshot = state.load([MINUTE, DAY], [KEY], T0 + 3)
    assert snapshot.usage(MINUTE, T0 + 3).used == {REQUESTS: 2, TOKENS: 600}
    assert snapshot.usage(DAY, T0 + 3).used == {REQUESTS: 2, TOKENS: 600}


def test_a_budget_and_a_minute_of_a_user_share_one_item() -> None:
    user = "user#alice"
    minute = Meter(user, WindowLimit.of(60, requests=10))
    budget = Meter(user, WindowLimit(CALENDAR_MONTH, {USD_MICROS: 1_000}))
    store = Recording()
    state = SharedState(store, fold_reconcile=True)
    reservation = reserve(state, [minute, budget], {REQUESTS: 1, USD_MICROS: 900}, T0)
    assert reservation is not None and [add.pk for add in store.calls[0]] == [meter_pk(user)]
    state.reconcile(reservation, {REQUESTS: 1, USD_MICROS: 30}, T0 + 1)  # money is given back at once
    assert len(store.calls) == 2
    snapshot = decode_snapshot(store.inner.load([meter_pk(user)], T0 + 1), (), T0 + 1)
    assert snapshot.usage(budget, T0 + 1).used == {REQUESTS: 1, USD_MICROS: 30}


def test_degraded_state_counts_one_item_per_counter_at_its_share() -> None:
    """The in-container fallback holds the same items: one per counter, every window's ceiling
    scaled to this container's share (here half), checked in one add."""
    from tests.unit.state.test_resilient import THROTTLED, Switchable, resilient

    primary = Switchable()
    primary.error = THROTTLED
    state = SharedState(resilient(primary), fold_reconcile=False)
    minute = Meter(COUNTER, WindowLimit.of(60, requests=4))
    admitted = [reserve(state, [minute, DAY], {REQUESTS: 1, TOKENS: 10}, T0 + i) is not None for i in range(3)]
    assert admitted == [True, True, False]  # half of 4 a minute
    fallback = state.store.fallback  # type: ignore[attr-defined]
    assert list(fallback._items) == [meter_pk(COUNTER)]
    windows = windows_of(fallback.load([meter_pk(COUNTER)], T0 + 3))
    assert set(windows) == {minute.pk(T0), DAY.pk(DAY.limit.period.start(T0))}
    assert windows[minute.pk(T0)][REQUESTS] == windows[DAY.pk(DAY.limit.period.start(T0))][REQUESTS] == 2
