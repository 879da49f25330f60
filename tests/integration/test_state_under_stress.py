"""Reservations under load: every request of a model writes the same day-window item, so a design
that needs a TransactWriteItems per reservation fails under load with transaction conflicts
while capacity is left. DynamoDB cancels a transaction when another write touches one of its
items at the same time; moto (serialized by `make_moto_atomic`) never does, so `ConflictingClient`
adds exactly that rule on top of moto, with a few milliseconds of latency per write so that
concurrent requests overlap the way they do against the real service.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from llm_gateway.state.aws_client import AwsError, DynamoDBClient
from llm_gateway.state.dynamodb import create_table
from llm_gateway.state.metering import REQUESTS, Meter, WindowLimit
from sandbox.local_dynamodb import DynamoDBServer, make_moto_atomic
from tests.dynamodb_clients import ours_over_http
from tests.integration.test_state_dynamodb import COUNTER, NOW, ask, fake_aws, shared, used, windows  # noqa: F401

LATENCY_S = 0.005
THREADS = 16
REQUESTS_EACH = 4


class ConflictingClient:
    """A DynamoDB client on moto with DynamoDB's transaction conflicts: a TransactWriteItems whose
    item another write is changing at that moment is cancelled (TransactionConflict), and a
    single-item write meeting a transaction in flight gets TransactionConflictException."""

    def __init__(self, inner: Any, table: str) -> None:
        self._inner = inner
        self.table = table  # a fresh one per test
        self._lock = threading.Lock()
        self._in_transaction: Counter[str] = Counter()
        self._in_write: Counter[str] = Counter()
        self.conflicts = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _conflict(self, code: str, operation: str, reasons: list[dict[str, str]] | None = None) -> Exception:
        self.conflicts += 1
        if isinstance(self._inner, DynamoDBClient):  # what the gateway's own client raises
            return AwsError(code, "conflict", 400)
        response: dict[str, Any] = {"Error": {"Code": code, "Message": "conflict"}}
        if reasons is not None:
            response["CancellationReasons"] = reasons
        return ClientError(response, operation)  # type: ignore[arg-type]

    def transact_write_items(self, **kwargs: Any) -> Any:
        pks = [next(iter(v.values()))["Key"]["pk"]["S"] for v in kwargs["TransactItems"]]
        with self._lock:
            if any(self._in_transaction[pk] or self._in_write[pk] for pk in pks):
                raise self._conflict("TransactionCanceledException", "TransactWriteItems",
                                     [{"Code": "TransactionConflict"} for _ in pks])
            self._in_transaction.update(pks)
        try:
            time.sleep(LATENCY_S)
            return self._inner.transact_write_items(**kwargs)
        finally:
            with self._lock:
                self._in_transaction.subtract(pks)

    def update_item(self, **kwargs: Any) -> Any:
        pk = kwargs["Key"]["pk"]["S"]
        with self._lock:
            if self._in_transaction[pk]:
                raise self._conflict("TransactionConflictException", "UpdateItem")
            self._in_write[pk] += 1
        try:
            time.sleep(LATENCY_S)
            return self._inner.update_item(**kwargs)
        finally:
            with self._lock:
                self._in_write[pk] -= 1


@pytest.fixture(scope="module")
def dynamodb_url() -> Iterator[str]:
    """moto's DynamoDB app on loopback, not `mock_aws`: leaving `mock_aws` resets moto's backends
    for the whole process, which would wipe the tables of local-mode handlers other tests run
    in the same pytest worker."""
    make_moto_atomic()
    server = DynamoDBServer()
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(params=["ours", "boto3"])
def client(dynamodb_url: str, request: pytest.FixtureRequest) -> ConflictingClient:
    """The gateway's own client (a Lambda container's) or boto3's, with DynamoDB's conflicts."""
    raw = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=dynamodb_url,
                       config=Config(max_pool_connections=THREADS * 2))
    wrapped = ConflictingClient(ours_over_http(dynamodb_url) if request.param == "ours" else raw,
                                f"state-{uuid.uuid4().hex[:8]}")
    create_table(raw, wrapped.table)
    return wrapped


def _race(client: ConflictingClient, meters: list[Meter]) -> tuple[int, list[BaseException]]:
    """THREADS containers (own SharedState each, one table) reserve REQUESTS_EACH times at once."""
    start = threading.Barrier(THREADS)

    def container(_: int) -> tuple[int, list[BaseException]]:
        state = shared(client, client.table)
        start.wait()
        admitted, errors = 0, []
        for _ in range(REQUESTS_EACH):
            try:
                admitted += state.reserve(windows(state, meters), ask(10), NOW) is not None
            except Exception as exc:  # what the request would see: a failed reservation
                errors.append(exc)
        return admitted, errors

    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(container, range(THREADS)))
    return sum(a for a, _ in results), [e for _, errors in results for e in errors]


def test_concurrent_reservations_on_a_shared_day_window_never_fail_while_capacity_is_left(
    client: ConflictingClient,
) -> None:
    meters = [Meter(COUNTER, WindowLimit.of(60, requests=1000)), Meter(COUNTER, WindowLimit.of(86_400, requests=1000))]
    admitted, errors = _race(client, meters)
    assert errors == []
    assert admitted == THREADS * REQUESTS_EACH
    assert [u[REQUESTS] for u in used(shared(client, client.table), meters)] == [admitted, admitted]


def test_under_the_same_contention_the_limits_still_hold_exactly(client: ConflictingClient) -> None:
    """The day window admits 25 of 64; the minute window (room for all) is given back every
    refused ask, so both count exactly what was admitted."""
    meters = [Meter(COUNTER, WindowLimit.of(60, requests=1000)), Meter(COUNTER, WindowLimit.of(86_400, requests=25))]
    admitted, errors = _race(client, meters)
    assert errors == []
    assert admitted == 25
    assert [u[REQUESTS] for u in used(shared(client, client.table), meters)] == [25, 25]
