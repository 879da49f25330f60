"""DynamoStateStore against moto, in-process (mock_aws) and over HTTP (ThreadedMotoServer).

What DESIGN.md promises: 100 concurrent reservations on a window of limit L admit exactly L; two
gateway instances (separate clients) see each other's usage; state survives a restart; expired
items are ignored; cooldowns only extend; one BatchGetItem per load, one write per reserve.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.server import ThreadedMotoServer

from llm_gateway.providers.base import RateLimitInfo
from llm_gateway.state.dynamodb import DynamoStateStore, cooldown_pk, create_table, window_pk
from llm_gateway.state.store import ModelKey, WindowLimit
from sandbox.local_dynamodb import make_moto_atomic

KEY = ModelKey("groq", "llama-3.1-8b-instant")
NOW = 1_700_000_040.0
MINUTE = WindowLimit(60, max_requests=37, max_tokens=None)
DAY = WindowLimit(86_400, max_requests=40, max_tokens=10_000)

ClientFactory = Callable[[], Any]


@pytest.fixture(autouse=True)
def fake_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture(autouse=True)
def atomic_moto() -> None:
    """DynamoDB's conditional writes are atomic per item; moto's are not under threads."""
    make_moto_atomic()


@pytest.fixture(scope="module")
def moto_server() -> Iterator[str]:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(params=["in_process", "server"])
def new_client(request: pytest.FixtureRequest) -> Iterator[ClientFactory]:
    """A factory of independent boto3 clients (one per "gateway instance") on a fresh table."""
    if request.param == "in_process":
        with mock_aws():
            yield lambda: boto3.client("dynamodb", region_name="us-east-1")
    else:
        url = request.getfixturevalue("moto_server")
        yield lambda: boto3.client("dynamodb", region_name="us-east-1", endpoint_url=url)


@pytest.fixture
def table(new_client: ClientFactory) -> str:
    name = f"state-{uuid.uuid4().hex[:8]}"
    create_table(new_client(), name)
    return name


def count_calls(client: Any) -> dict[str, int]:
    counts: dict[str, int] = {}

    def hook(model: Any, **_: Any) -> None:
        counts[model.name] = counts.get(model.name, 0) + 1

    client.meta.events.register("before-call.dynamodb.*", hook)
    return counts


@pytest.mark.parametrize("limits", [[MINUTE], [MINUTE, DAY]], ids=["update_item", "transaction"])
def test_100_concurrent_reservations_admit_exactly_the_limit(
    new_client: ClientFactory, table: str, limits: list[WindowLimit]
) -> None:
    """100 threads, limit 37: exactly 37 admitted and every window counts exactly 37."""
    store = DynamoStateStore(new_client(), table)
    admitted: list[bool] = []
    lock = threading.Lock()
    barrier = threading.Barrier(20)

    def worker(n: int) -> None:
        if n < 20:
            barrier.wait()
        ok = store.reserve(KEY, limits, 10, NOW) is not None
        with lock:
            admitted.append(ok)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(admitted) == 37
    usage = store.load({KEY: limits}, NOW).models[KEY].windows
    assert [w.requests for w in usage] == [37] * len(limits)


def test_two_instances_share_usage_and_state_survives_restart(new_client: ClientFactory, table: str) -> None:
    first, second = DynamoStateStore(new_client(), table), DynamoStateStore(new_client(), table)
    assert first.reserve(KEY, [MINUTE, DAY], 100, NOW) is not None
    assert second.reserve(KEY, [MINUTE, DAY], 50, NOW) is not None
    second.cool_down(KEY, NOW + 30, "429", NOW)
    first.record_headers(KEY, RateLimitInfo(remaining_requests=7, reset_requests_s=20, requests_window_s=86_400), NOW)
    restarted = DynamoStateStore(new_client(), table)  # a new container, same table
    for store in (first, second, restarted):
        state = store.load({KEY: [MINUTE, DAY]}, NOW + 1).models[KEY]
        assert [w.requests for w in state.windows] == [2, 2]
        assert state.windows[1].tokens == 150
        assert state.cooldown is not None and state.cooldown.until == NOW + 30
        assert state.headers is not None and state.headers.info.remaining_requests == 7
        assert state.headers.info.requests_window_s == 86_400


def test_limit_enforced_across_instances(new_client: ClientFactory, table: str) -> None:
    small = WindowLimit(60, max_requests=3, max_tokens=1000)
    a, b = DynamoStateStore(new_client(), table), DynamoStateStore(new_client(), table)
    assert a.reserve(KEY, [small], 600, NOW) is not None
    assert b.reserve(KEY, [small], 600, NOW) is None  # tokens would pass 1000
    assert b.reserve(KEY, [small], 400, NOW) is not None
    assert a.reserve(KEY, [small], 0, NOW) is not None  # third request: fits by count, zero tokens
    assert b.reserve(KEY, [small], 0, NOW) is None  # now 3 requests used


def test_two_windows_move_together_or_not_at_all(new_client: ClientFactory, table: str) -> None:
    store = DynamoStateStore(new_client(), table)
    minute = WindowLimit(60, max_requests=2, max_tokens=None)
    admitted = [store.reserve(KEY, [minute, DAY], 10, NOW + i) is not None for i in range(3)]
    assert admitted == [True, True, False]
    state = store.load({KEY: [minute, DAY]}, NOW).models[KEY]
    assert [w.requests for w in state.windows] == [2, 2]  # the refused attempt moved no window
    assert store.reserve(KEY, [minute, DAY], 10_001, NOW + 60) is None  # over the day's tokens
    assert store.reserve(KEY, [minute, DAY], 9_980, NOW + 60) is not None  # 20 used + 9,980 = 10,000


def test_reconcile_adjusts_tokens(new_client: ClientFactory, table: str) -> None:
    store = DynamoStateStore(new_client(), table)
    reservation = store.reserve(KEY, [MINUTE, DAY], 1000, NOW)
    assert reservation is not None
    store.reconcile(reservation, 12_000, NOW)  # over the day's 10k: real usage may exceed
    state = store.load({KEY: [MINUTE, DAY]}, NOW).models[KEY]
    assert state.windows[1].tokens == 12_000
    assert store.reserve(KEY, [MINUTE, DAY], 1, NOW) is None  # no new reservation on top


def test_expired_items_are_ignored(new_client: ClientFactory, table: str) -> None:
    client = new_client()
    store = DynamoStateStore(client, table)
    start = MINUTE.start(NOW)
    client.put_item(TableName=table, Item={"pk": {"S": window_pk(KEY, MINUTE, start)}, "requests": {"N": "37"},
                                           "tokens": {"N": "0"}, "expires_at": {"N": str(int(NOW) - 1)}})
    client.put_item(TableName=table, Item={"pk": {"S": cooldown_pk(KEY)}, "until": {"N": str(NOW + 999)},
                                           "reason": {"S": "stale"}, "expires_at": {"N": str(int(NOW) - 1)}})
    state = store.load({KEY: [MINUTE]}, NOW).models[KEY]
    assert state.windows[0].requests == 0 and state.cooldown is None


def test_cooldowns_only_extend(new_client: ClientFactory, table: str) -> None:
    store = DynamoStateStore(new_client(), table)
    store.cool_down(KEY, NOW + 60, "long", NOW)
    store.cool_down(KEY, NOW + 5, "short", NOW)
    state = store.load({KEY: []}, NOW).models[KEY]
    assert state.cooldown is not None and (state.cooldown.until, state.cooldown.reason) == (NOW + 60, "long")
    store.cool_down(KEY, NOW + 120, "longer", NOW)
    assert store.load({KEY: []}, NOW).models[KEY].cooldown.reason == "longer"  # type: ignore[union-attr]


def test_breakers_and_call_budget(new_client: ClientFactory, table: str) -> None:
    client = new_client()
    client.put_item(TableName=table, Item={"pk": {"S": "cb#groq"}, "state": {"S": "open"},
                                           "failures": {"N": "3"}, "expires_at": {"N": str(int(NOW) + 60)}})
    store = DynamoStateStore(client, table)
    calls = count_calls(client)
    keys = {ModelKey("p", f"m{i}"): [MINUTE, DAY] for i in range(16)}  # 96 keys (current + previous windows) + breakers
    snapshot = store.load(keys, NOW, breaker_ids=["cb#groq", "cb#none"])
    assert calls == {"BatchGetItem": 1}
    assert snapshot.breakers == {"cb#groq": {"pk": "cb#groq", "state": "open", "failures": 3, "expires_at": int(NOW) + 60}}
    store.reserve(KEY, [MINUTE], 1, NOW)
    store.reserve(KEY, [MINUTE, DAY], 1, NOW)
    assert calls == {"BatchGetItem": 1, "UpdateItem": 1, "TransactWriteItems": 1}
    many = {ModelKey("p", f"m{i}"): [MINUTE, DAY] for i in range(30)}  # 180 keys: two calls
    store.load(many, NOW)
    assert calls["BatchGetItem"] == 3
