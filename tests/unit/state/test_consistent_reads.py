"""A strongly consistent read where one is asked for (`StateStore.load(consistent=True)`), and the
request path's state reads ask for one (`SharedState.load`: a plan's and a restamp's windows must
show every reservation already written, tests/unit/routing/test_consistent_plan_reads.py); other
reads stay as the table is set (eventually consistent by default: half the read capacity)."""

from __future__ import annotations

from typing import Any

from llm_gateway.state.dynamodb import DynamoStateStore
from llm_gateway.state.memory import MemoryStore
from llm_gateway.state.metering import REQUESTS, Meter, Period, WindowLimit
from llm_gateway.state.resilient import ResilientStore
from llm_gateway.state.shared import SharedState
from llm_gateway.state.store import ModelKey


class Recording:
    """A DynamoDB client that records each BatchGetItem and answers it empty."""

    def __init__(self) -> None:
        self.asked: list[bool] = []

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        self.asked.extend(table["ConsistentRead"] for table in RequestItems.values())
        return {"Responses": {}}


def test_a_consistent_load_asks_dynamodb_for_a_strongly_consistent_read_and_only_it() -> None:
    client = Recording()
    store = DynamoStateStore(client, "state")
    store.load(["a"], 0.0)
    store.load(["a"], 0.0, consistent=True)
    assert client.asked == [False, True]


def test_the_resilient_store_passes_consistent_on_to_the_table() -> None:
    client = Recording()
    store = ResilientStore(DynamoStateStore(client, "state"), MemoryStore(), on_degraded=lambda op, exc: None,
                           durable=lambda pk: False)
    store.load(["a"], 0.0, consistent=True)
    store.load(["a"], 0.0)
    assert client.asked == [True, False]


def test_the_request_paths_state_load_is_strongly_consistent() -> None:
    client = Recording()
    state = SharedState(DynamoStateStore(client, "state"), fold_reconcile=True)
    meter = Meter("mistral#*", WindowLimit(Period(1), {REQUESTS: 1}))
    state.load([meter], [ModelKey("mistral", "mistral-small-latest")], 1_700_000_000.5)
    assert client.asked == [True]
