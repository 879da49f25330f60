"""The two state backends, side by side: the same `SharedState` scenario on the memory store and
on the DynamoDB store (moto, in-process), with the same outcome and the same writes, item by item
(a `StateStore.add` is one UpdateItem per item on DynamoDB, one locked step in memory).

What they share here: a count that moves from one reservation to the next (a caller's request,
counted once on its latest attempt's windows) rides on the next reservation's conditional write
on the item, and the condition checks the sum; a reservation refused gives nothing back; one
released without its call takes the moved count back in the release's own write. A reservation
stamped again (its write answered late: `SharedState.restamp`) moves its whole count to the
tenth, the window and the stamp of its new moment in one write per item, checked only where it
raises a window, and is released as the reservation it replaced would have been.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import boto3
import pytest
from moto import mock_aws

from llm_gateway.state.dynamodb import DynamoStateStore, create_table
from llm_gateway.state.items import meter_pk, windows_of
from llm_gateway.state.memory import MemoryStore
from llm_gateway.state.metering import (
    CALENDAR_DAY,
    CALLER_SCOPE,
    REQUESTS,
    USD_MICROS,
    Meter,
    WindowLimit,
    WindowUsage,
    model_counter,
    provider_counter,
)
from llm_gateway.state.shared import Reservation, SharedState
from llm_gateway.state.store import CounterAdd, Item, StateStore

NOW = 1_700_000_040.0
USER = "user#alice"
CALLER = (Meter(USER, WindowLimit.of(60, requests=1), CALLER_SCOPE),  # a key at its last request
          Meter(USER, WindowLimit(CALENDAR_DAY, {REQUESTS: 1}), CALLER_SCOPE))  # of the minute and the day
GROQ = Meter(model_counter("groq", "a"), WindowLimit.of(60, requests=10))
OPENAI = Meter(model_counter("openai", "b"), WindowLimit.of(60, requests=1))
BUDGET = Meter(USER, WindowLimit(CALENDAR_DAY, {USD_MICROS: 1000}), CALLER_SCOPE)
ONE = {REQUESTS: 1}
MISTRAL = Meter(provider_counter("mistral"), WindowLimit.of(1, requests=1))  # the organisation's 1 request/s


class Writes:
    """A store that notes each `add`: per item, `pk if` (conditional) or `pk` (unconditional)."""

    def __init__(self, inner: StateStore) -> None:
        self.inner = inner
        self.log: list[list[str]] = []

    def load(self, pks: Sequence[str], now: float, *, consistent: bool = False) -> dict[str, Item]:
        return self.inner.load(pks, now, consistent=consistent)

    def add(self, adds: Sequence[CounterAdd], now: float) -> bool:
        self.log.append(sorted(add.pk + (" if" if add.ceilings else "") for add in adds))
        return self.inner.add(adds, now)

    def put(self, pk: str, item: Item, expires_at: int, now: float) -> None:
        self.inner.put(pk, item, expires_at, now)

    def extend(self, pk: str, item: Item, until: float, expires_at: int, now: float) -> None:
        self.inner.extend(pk, item, until, expires_at, now)


@pytest.fixture(params=["memory", "dynamodb"])
def store(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Writes]:
    if request.param == "memory":
        yield Writes(MemoryStore())
        return
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table(client, "state")
        yield Writes(DynamoStateStore(client, "state"))


def usages(state: SharedState, meters: Sequence[Meter]) -> list[WindowUsage]:
    snapshot = state.load(meters, (), NOW)
    return [snapshot.usage(meter, NOW) for meter in meters]


def on_caller(reservation: Reservation) -> Reservation:
    """The request as the caller's windows count it (what `Outcomes.attempt_made` keeps)."""
    return Reservation((), ONE, tuple(h for h in reservation.windows if h.window.item == meter_pk(USER)))


def requests(store: Writes, meter: Meter) -> int:
    windows = windows_of(store.load([meter_pk(meter.counter)], NOW))
    assert all(n >= 0 for window in windows.values() for name, n in window.items() if name != "last_at"), windows
    return int(windows.get(meter.pk(meter.limit.period.start(NOW)), {}).get(REQUESTS, 0))


def counted(store: Writes) -> list[int]:
    return [requests(store, meter) for meter in (*CALLER, GROQ, OPENAI)]


@pytest.mark.parametrize("fold", [True, False], ids=["remote", "local"])
def test_a_request_moves_to_the_next_attempt_in_its_own_conditional_write(store: Writes, fold: bool) -> None:
    state = SharedState(store, fold_reconcile=fold)
    first = state.reserve(usages(state, (GROQ, *CALLER)), ONE, NOW)
    assert first is not None and counted(store) == [1, 1, 1, 0]
    # at its last request of the minute and the day, the request moves on: one write per item
    second = state.reserve(usages(state, (OPENAI, *CALLER)), ONE, NOW, on_caller(first))
    assert second is not None and counted(store) == [1, 1, 1, 1]
    assert store.log[-1] == [meter_pk(OPENAI.counter) + " if", meter_pk(USER) + " if"]
    # released without its call: the first attempt counts the request again, in the release's writes
    state.release(second, NOW)
    assert counted(store) == [1, 1, 1, 0]
    assert store.log[-1] == [meter_pk(OPENAI.counter), meter_pk(USER)]
    # refused (another request took OpenAI's one): nothing moved
    assert state.reserve(usages(state, (OPENAI,)), ONE, NOW) is not None
    assert state.reserve(usages(state, (OPENAI, *CALLER)), ONE, NOW, on_caller(first)) is None
    assert counted(store) == [1, 1, 1, 1]


def test_a_move_to_an_attempt_not_on_the_callers_item_is_all_or_nothing_with_it(store: Writes) -> None:
    """A key with a budget only: its window is on paid models, so a failover from a paid model to
    a free one reserves nothing on the caller's item, and the request goes back from the budget's
    window in an unconditional write of the same all-or-nothing `add`."""
    state = SharedState(store, fold_reconcile=True)
    paid = state.reserve(usages(state, (GROQ, BUDGET)), {REQUESTS: 1, USD_MICROS: 500}, NOW)
    assert paid is not None
    assert state.reserve(usages(state, (OPENAI,)), ONE, NOW) is not None  # OpenAI's one request taken
    assert state.reserve(usages(state, (OPENAI,)), ONE, NOW, on_caller(paid)) is None
    assert store.log[-1] == [meter_pk(OPENAI.counter) + " if", meter_pk(USER)]  # one add, both items
    assert requests(store, BUDGET) == 1  # refused: the caller's count stayed
    free = state.reserve(usages(state, (GROQ,)), ONE, NOW, on_caller(paid))
    assert free is not None and requests(store, BUDGET) == 0 and requests(store, GROQ) == 2


def usages_at(state: SharedState, meters: Sequence[Meter], at: float) -> list[WindowUsage]:
    snapshot = state.load(meters, (), at)
    return [snapshot.usage(meter, at) for meter in meters]


def second(store: Writes, start: float) -> dict[str, float]:
    """Mistral's 1-second window starting at `start`, as the store holds it (long names)."""
    windows = windows_of(store.load([meter_pk(MISTRAL.counter)], start))
    return windows.get(MISTRAL.pk(int(start)), {})


def test_a_restamp_in_the_same_second_moves_the_tenth_and_the_stamp_without_a_condition(store: Writes) -> None:
    """Reserved at .15 s (on the caller's windows too, taking the previous attempt's count over),
    restamped at .65 s: one write per item, neither conditional (no window grows: the second's
    request moves from its second tenth to its seventh); the stamp is the new moment. Released
    afterwards, the previous attempt counts the caller's request again, as releasing the first
    reservation would have had it."""
    state = SharedState(store, fold_reconcile=True)
    previous = state.reserve(usages(state, (GROQ, *CALLER)), ONE, NOW)
    assert previous is not None
    first = state.reserve(usages_at(state, (MISTRAL, *CALLER), NOW + 0.15), ONE, NOW + 0.15, on_caller(previous))
    assert first is not None and second(store, NOW)[f"{REQUESTS}@1"] == 1
    again = state.restamp(first, usages_at(state, (MISTRAL, *CALLER), NOW + 0.65), NOW + 0.65)
    assert again is not None and again.moved == first.moved
    assert store.log[-1] == [meter_pk(MISTRAL.counter), meter_pk(USER)]
    window = second(store, NOW)
    assert (window[REQUESTS], window[f"{REQUESTS}@1"], window[f"{REQUESTS}@6"]) == (1, 0, 1), window
    assert window["last_at"] == pytest.approx(NOW + 0.65)
    assert counted(store)[:3] == [1, 1, 1]
    state.release(again, NOW + 0.7)
    assert second(store, NOW)[REQUESTS] == 0 and counted(store)[:3] == [1, 1, 1]


def test_a_restamp_into_the_next_second_is_checked_there_without_its_own_carry(store: Writes) -> None:
    """Reserved at .95 s, restamped at 1.25 s: the next second takes it (its own count, carried
    from the second before, does not hold it back: it goes back in the same write), the second it
    left keeps a stamp at its end; when another container took the next second first, the
    restamp is refused and the reservation stands as it was."""
    state = SharedState(store, fold_reconcile=True)
    first = state.reserve(usages_at(state, (MISTRAL,), NOW + 0.95), ONE, NOW + 0.95)
    assert first is not None
    again = state.restamp(first, usages_at(state, (MISTRAL,), NOW + 1.25), NOW + 1.25)
    assert again is not None
    assert store.log[-1] == [meter_pk(MISTRAL.counter) + " if"]
    left, moved_to = second(store, NOW), second(store, NOW + 1)
    assert (left[REQUESTS], left[f"{REQUESTS}@9"], left["last_at"]) == (0, 0, NOW + 1), left
    assert (moved_to[REQUESTS], moved_to[f"{REQUESTS}@2"]) == (1, 1), moved_to
    assert moved_to["last_at"] == pytest.approx(NOW + 1.25)

    other = SharedState(store, fold_reconcile=True)  # another container, which read the item at 4.3 s,
    seen = usages_at(other, (MISTRAL,), NOW + 4.3)  # before a write stamped at 3.95 s landed
    late = state.reserve(usages_at(state, (MISTRAL,), NOW + 3.95), ONE, NOW + 3.95)
    assert late is not None
    assert other.reserve(seen, ONE, NOW + 4.3) is not None  # takes the next second
    assert state.restamp(late, usages_at(state, (MISTRAL,), NOW + 4.4), NOW + 4.4) is None
    assert second(store, NOW + 3)[REQUESTS] == 1 and second(store, NOW + 4)[REQUESTS] == 1
    state.release(late, NOW + 4.45, late=True)  # what the runner does then: given back, stamped at the end
    left = second(store, NOW + 3)
    assert (left[REQUESTS], left[f"{REQUESTS}@9"], left["last_at"]) == (0, 0, NOW + 4), left
    assert second(store, NOW + 4)[REQUESTS] == 1


def test_a_late_writes_older_stamp_over_a_later_one_is_repaired_when_it_moves_on(store: Writes) -> None:
    """Remotely the last writer's stamp stays: a write stamped at .2 s that lands after one
    stamped at .5 s leaves .2 s on DynamoDB (the later one's call would be carried too short a
    time); its restamp into the next second leaves the second it left stamped at its end."""
    two = Meter(provider_counter("mistral"), WindowLimit.of(1, requests=2))
    state, other = SharedState(store, fold_reconcile=True), SharedState(store, fold_reconcile=True)
    seen = usages_at(state, (two,), NOW + 0.2)
    assert other.reserve(usages_at(other, (two,), NOW + 0.5), ONE, NOW + 0.5) is not None
    late = state.reserve(seen, ONE, NOW + 0.2)
    assert late is not None
    stamped = float(windows_of(store.load([meter_pk(two.counter)], NOW))[two.pk(int(NOW))]["last_at"])
    assert stamped in (NOW + 0.2, NOW + 0.5)  # DynamoDB: the last writer's; memory: the latest
    assert state.restamp(late, usages_at(state, (two,), NOW + 1.3), NOW + 1.3) is not None
    left = windows_of(store.load([meter_pk(two.counter)], NOW))[two.pk(int(NOW))]
    assert (left[REQUESTS], left["last_at"]) == (1, NOW + 1), left
