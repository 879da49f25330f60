"""The two state backends, side by side: the same `SharedState` scenario on the memory store and
on the DynamoDB store (moto, in-process), with the same outcome and the same writes, item by item
(a `StateStore.add` is one UpdateItem per item on DynamoDB, one locked step in memory).

What they share here: a count that moves from one reservation to the next (a caller's request,
counted once on its latest attempt's windows) rides on the next reservation's conditional write
on the item, and the condition checks the sum; a reservation refused gives nothing back; one
released without its call takes the moved count back in the release's own write.
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


class Writes:
    """A store that notes each `add`: per item, `pk if` (conditional) or `pk` (unconditional)."""

    def __init__(self, inner: StateStore) -> None:
        self.inner = inner
        self.log: list[list[str]] = []

    def load(self, pks: Sequence[str], now: float) -> dict[str, Item]:
        return self.inner.load(pks, now)

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
