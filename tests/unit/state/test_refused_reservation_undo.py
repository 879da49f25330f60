"""Found in review: a reservation on two items whose second item refused it, and whose give-back
on the first item then failed, was reported as a plain refusal, so the container kept the
correction it had folded into that first write and applied it again with its next reservation:
the window under-counted (held -2,800 tokens for 1,100 used) and could admit past its ceiling.
A refusal whose undo failed is now an error (the resilient store degrades on it), and a
reservation that ended in an error keeps no correction it may have delivered: an over-count at
worst, capacity left unused, never a limit passed. On a scripted client and the memory store."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from botocore.exceptions import ClientError

from llm_gateway.state.dynamodb import DynamoStateStore
from llm_gateway.state.items import is_usage_pk
from llm_gateway.state.memory import MemoryStore
from llm_gateway.state.metering import REQUESTS, TOKENS, Meter, WindowLimit
from llm_gateway.state.resilient import ResilientStore
from llm_gateway.state.shared import SharedState
from llm_gateway.state.store import CounterAdd


def _error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, "UpdateItem")


class Scripted:
    """update_item answers from a script: None = applied, else the error raised."""

    def __init__(self, script: list[ClientError | None]) -> None:
        self.script = script
        self.calls: list[dict[str, Any]] = []

    def update_item(self, **request: Any) -> dict[str, Any]:
        self.calls.append(request)
        outcome = self.script.pop(0)
        if outcome is not None:
            raise outcome
        return {}


def test_a_refusal_whose_undo_failed_is_an_error_not_a_refusal() -> None:
    client = Scripted([None, _error("ConditionalCheckFailedException"), _error("ThrottlingException")])
    store = DynamoStateStore(client, "t")
    adds = [CounterAdd("rl#a", {"tokens": 1}, 10, {"tokens": 5}), CounterAdd("rl#b", {"tokens": 1}, 10, {"tokens": 5})]
    with pytest.raises(ClientError):
        store.add(adds, 0.0)
    assert len(client.calls) == 3  # written, refused, undo tried
    clean = Scripted([None, _error("ConditionalCheckFailedException"), None])
    assert DynamoStateStore(clean, "t").add(adds, 0.0) is False  # undone: a plain refusal


class Failing(MemoryStore):
    """A store whose next `add` is applied and then answers with `error`: the container cannot
    know whether it was applied."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error
        self.fail_next = False

    def add(self, adds: Sequence[CounterAdd], now: float) -> bool:
        if self.fail_next:
            self.fail_next = False
            super().add(adds, now)
            raise self.error
        return super().add(adds, now)


def test_a_reservation_that_ended_in_an_error_keeps_no_correction() -> None:
    store = Failing(ConnectionError("no answer"))
    state = SharedState(store, fold_reconcile=True)
    meter = Meter("groq#m", WindowLimit.of(60, requests=100, tokens=10_000))
    now = 1_000_000.0

    def reserve(tokens: int) -> Any:
        snapshot = state.load([meter], [], now)
        return state.reserve([snapshot.usage(meter, now)], {REQUESTS: 1, TOKENS: tokens}, now)

    first = reserve(5000)
    state.reconcile(first, {REQUESTS: 1, TOKENS: 1000}, now)  # 4,000 over: held for the next write
    store.fail_next = True
    with pytest.raises(ConnectionError):
        reserve(100)  # carried the -4,000 correction, and may have been applied
    assert reserve(100) is not None
    used = state.load([meter], [], now).usage(meter, now).used[TOKENS]
    assert used == 1000 + 100 + 100  # what was truly used: the correction delivered once (-2,800 before)


class Refusing(MemoryStore):
    """An in-container fallback whose windows are full (its share of the limits used up)."""

    def add(self, adds: Sequence[CounterAdd], now: float) -> bool:
        return False


def test_a_write_that_failed_over_to_a_refusing_fallback_keeps_no_correction() -> None:
    """Found in the last read: in production the state store is resilient, so a primary write that
    errs after DynamoDB applied it is retried on the in-container fallback, and when that refuses
    (its share of the limits used up), the container saw a plain refusal and kept the -1,500 correction it had
    folded into the applied write: delivered again once the table was back, the window held 1,500
    tokens less than were used. A refusal that came with the store turning degraded keeps none."""
    primary = Failing(_error("ThrottlingException"))
    state = SharedState(ResilientStore(primary, Refusing(), on_degraded=lambda _op, _exc: None,
                                       durable=is_usage_pk, fraction=0.5, retry_after_s=5.0), fold_reconcile=True)
    meter = Meter("groq#m", WindowLimit.of(60, requests=100, tokens=10_000))
    now = 1_000_020.0

    def reserve(tokens: int, at: float) -> Any:
        return state.reserve([state.load([meter], [], at).usage(meter, at)], {REQUESTS: 1, TOKENS: tokens}, at)

    first = reserve(2000, now)
    state.reconcile(first, {REQUESTS: 1, TOKENS: 500}, now)  # 1,500 over: held for the next write
    primary.fail_next = True
    assert reserve(5400, now) is None  # applied on the table, then refused by the fallback
    assert reserve(100, now + 6) is not None  # the table is back
    total = state.load([meter], [], now + 6).usage(meter, now + 6).used[TOKENS]
    assert total == 500 + 5400 + 100  # the correction delivered once (4,500 before)
