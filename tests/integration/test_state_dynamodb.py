"""DynamoStateStore against moto, in-process (mock_aws) and over HTTP (ThreadedMotoServer), through
the gateway's own DynamoDB client (httpx, `state/aws_client.py`) and through boto3's.

What DESIGN.md promises: 100 concurrent reservations on a window of limit L admit exactly L; two
gateway instances (separate clients) see each other's usage; state survives a restart; expired
items are ignored; cooldowns only extend; one BatchGetItem per load (per 100 items), one write
per meter item of a reservation (one item holds every window of a counter), and no write of its
own for a reconciliation (it rides on the next reservation).
The store is driven through `SharedState`, as the runner drives it.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import httpx
import pytest
from moto import mock_aws
from moto.server import ThreadedMotoServer

from llm_gateway.providers.base import RateLimitInfo
from llm_gateway.state.dynamodb import DynamoStateStore, create_table
from llm_gateway.state.items import (
    AFFINITY_TTL_S,
    FailureMark,
    affinity_pk,
    cooldown_pk,
    meter_pk,
    window_ref,
    windows_of,
)
from llm_gateway.state.metering import (
    CALENDAR_MONTH,
    REQUESTS,
    TOKENS,
    Meter,
    WindowLimit,
    WindowUsage,
    model_counter,
    provider_counter,
    usage_of,
)
from llm_gateway.state.shared import SharedState
from llm_gateway.state.store import CounterAdd, ModelKey
from sandbox.fold_windows_cli import fold_legacy_windows
from sandbox.local_dynamodb import make_moto_atomic
from tests.dynamodb_clients import count_calls, ours_in_process, ours_over_http

KEY = ModelKey("groq", "llama-3.1-8b-instant")
COUNTER = model_counter(KEY.provider, KEY.model)
NOW = 1_700_000_040.0
MINUTE = Meter(COUNTER, WindowLimit.of(60, requests=37))
DAY = Meter(COUNTER, WindowLimit.of(86_400, requests=40, tokens=10_000))

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


@pytest.fixture(params=["ours_in_process", "ours_server", "boto3_in_process", "boto3_server"])
def new_client(request: pytest.FixtureRequest) -> Iterator[ClientFactory]:
    """A factory of independent clients (one per "gateway instance") on a fresh table: the
    gateway's own (what a Lambda container uses) or boto3's (the fallback without env credentials)."""
    if request.param.endswith("in_process"):
        with mock_aws():
            yield ours_in_process if request.param.startswith("ours") else \
                (lambda: boto3.client("dynamodb", region_name="us-east-1"))
    else:
        url = request.getfixturevalue("moto_server")
        yield (lambda: ours_over_http(url)) if request.param.startswith("ours") else \
            (lambda: boto3.client("dynamodb", region_name="us-east-1", endpoint_url=url))


@pytest.fixture
def table(new_client: ClientFactory, request: pytest.FixtureRequest) -> str:
    name = f"state-{uuid.uuid4().hex[:8]}"
    if "in_process" in request.node.callspec.params.get("new_client", ""):
        create_table(boto3.client("dynamodb", region_name="us-east-1"), name)
    else:
        create_table(boto3.client("dynamodb", region_name="us-east-1", endpoint_url=request.getfixturevalue("moto_server")),
                     name)
    return name


def shared(client: Any, table: str, *, fold: bool = True) -> SharedState:
    """A container's state over the table (remote: corrections fold into the next reservation)."""
    return SharedState(DynamoStateStore(client, table), fold_reconcile=fold)


def windows(state: SharedState, meters: list[Meter], now: float = NOW) -> list[WindowUsage]:
    counters = state.load(meters, [KEY], now).counters
    return [usage_of(meter, counters, now) for meter in meters]


def used(state: SharedState, meters: list[Meter], now: float = NOW) -> list[dict[str, int]]:
    return [dict(u.used) for u in windows(state, meters, now)]


def ask(tokens: int) -> dict[str, int]:
    return {REQUESTS: 1, TOKENS: tokens}


@pytest.mark.parametrize("meters", [[MINUTE], [MINUTE, DAY]], ids=["update_item", "transaction"])
def test_100_concurrent_reservations_admit_exactly_the_limit(
    new_client: ClientFactory, table: str, meters: list[Meter]
) -> None:
    """100 threads, limit 37: exactly 37 admitted and every window counts exactly 37. The threads
    share one client and queue for its 20 pooled connections; on a busy machine the moto server
    answers them slowly, and waits past the production client's 1 s pool and read timeouts were
    refused as unreachable (13 admitted in one clean-clone CI run), which is not what this tests:
    its own client waits as long as the server takes."""
    client = new_client()
    if hasattr(client, "http"):  # ours (boto3's pool blocks without a timeout)
        client.http.timeout = httpx.Timeout(30.0)
    state = shared(client, table)
    admitted: list[bool] = []
    lock = threading.Lock()
    barrier = threading.Barrier(20)

    def worker(n: int) -> None:
        if n < 20:
            barrier.wait()
        ok = state.reserve(windows(state, meters), ask(10), NOW) is not None
        with lock:
            admitted.append(ok)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(admitted) == 37
    assert [u[REQUESTS] for u in used(state, meters)] == [37] * len(meters)
    assert [u[TOKENS] for u in used(state, meters)] == [370] * len(meters)


def test_two_instances_share_usage_and_state_survives_restart(new_client: ClientFactory, table: str) -> None:
    first, second = shared(new_client(), table), shared(new_client(), table)
    assert first.reserve(windows(first, [MINUTE, DAY]), ask(100), NOW) is not None
    assert second.reserve(windows(second, [MINUTE, DAY]), ask(50), NOW) is not None
    second.cool_down(KEY, NOW + 30, "429", NOW)
    first.record_headers(KEY, RateLimitInfo(remaining_requests=7, reset_requests_s=20, requests_window_s=86_400), NOW)
    first.mark_failure(FailureMark("groq", NOW, "server_error"), NOW)
    restarted = shared(new_client(), table)  # a new container, same table
    for state in (first, second, restarted):
        assert used(state, [MINUTE, DAY], NOW + 1) == [{REQUESTS: 2, TOKENS: 150}] * 2
        snapshot = state.load([MINUTE, DAY], [KEY], NOW + 1)
        model = snapshot.models[KEY]
        assert model.cooldown is not None and model.cooldown.until == NOW + 30
        assert model.headers is not None and model.headers.info.remaining_requests == 7
        assert model.headers.info.requests_window_s == 86_400 and model.headers.observed_at == NOW
        assert snapshot.failures["groq"].kind == "server_error" and not snapshot.degraded


def test_limit_enforced_across_instances(new_client: ClientFactory, table: str) -> None:
    small = Meter(COUNTER, WindowLimit.of(60, requests=3, tokens=1000))
    a, b = shared(new_client(), table), shared(new_client(), table)
    assert a.reserve(windows(a, [small]), ask(600), NOW) is not None
    assert b.reserve(windows(b, [small]), ask(600), NOW) is None  # tokens would pass 1000
    assert b.reserve(windows(b, [small]), ask(400), NOW) is not None
    assert a.reserve(windows(a, [small]), ask(0), NOW) is not None  # third request: fits by count, zero tokens
    assert b.reserve(windows(b, [small]), ask(0), NOW) is None  # now 3 requests used


def test_the_previous_windows_carry_is_enforced_by_the_write(new_client: ClientFactory, table: str) -> None:
    """The condition includes the sliding estimate: a full minute leaves no burst at the boundary."""
    small = Meter(COUNTER, WindowLimit.of(60, requests=3))
    state = shared(new_client(), table)
    assert all(state.reserve(windows(state, [small]), ask(0), NOW) for _ in range(3))
    later = NOW + 60
    assert state.reserve(windows(state, [small], later), ask(0), later) is None
    later = NOW + 100  # a third of the previous minute still counts: 2 of 3 fit
    assert [state.reserve(windows(state, [small], later), ask(0), later) is not None for _ in range(3)] == [True, True, False]


def test_two_windows_move_together_or_not_at_all(new_client: ClientFactory, table: str) -> None:
    state = shared(new_client(), table)
    minute = Meter(COUNTER, WindowLimit.of(60, requests=2))
    admitted = [state.reserve(windows(state, [minute, DAY], NOW + i), ask(10), NOW + i) is not None for i in range(3)]
    assert admitted == [True, True, False]
    assert [u[REQUESTS] for u in used(state, [minute, DAY])] == [2, 2]  # the refused attempt moved no window
    nxt = NOW + 120  # the minute and its carry are over; the day is not
    assert state.reserve(windows(state, [minute, DAY], nxt), ask(10_001), nxt) is None  # over the day's tokens
    assert state.reserve(windows(state, [minute, DAY], nxt), ask(9_980), nxt) is not None  # 20 used + 9,980 = 10,000


def test_a_store_level_transaction_is_all_or_nothing(new_client: ClientFactory, table: str) -> None:
    store = DynamoStateStore(new_client(), table)
    a = CounterAdd("rl#a", {REQUESTS: 1}, int(NOW) + 60, {REQUESTS: 5})
    full = CounterAdd("rl#b", {REQUESTS: 1}, int(NOW) + 60, {REQUESTS: 1})
    assert store.add([a, full], NOW)
    assert not store.add([a, full], NOW)
    assert store.load(["rl#a", "rl#b"], NOW) == {"rl#a": {REQUESTS: 1, "expires_at": int(NOW) + 60},
                                                 "rl#b": {REQUESTS: 1, "expires_at": int(NOW) + 60}}


def test_reconcile_adjusts_tokens(new_client: ClientFactory, table: str) -> None:
    state = shared(new_client(), table, fold=False)
    reservation = state.reserve(windows(state, [MINUTE, DAY]), ask(1000), NOW)
    assert reservation is not None
    state.reconcile(reservation, ask(12_000), NOW)  # over the day's 10k: real usage may exceed
    assert used(state, [DAY]) == [{REQUESTS: 1, TOKENS: 12_000}]
    assert state.reserve(windows(state, [MINUTE, DAY]), ask(1), NOW) is None  # no new reservation on top
    never_called = shared(new_client(), table, fold=False)
    held = never_called.reserve(windows(never_called, [MINUTE]), ask(5), NOW)
    assert held is not None
    never_called.release(held, NOW)  # gives back the request and the tokens
    assert used(state, [MINUTE]) == [{REQUESTS: 1, TOKENS: 12_000}]


def test_a_folded_reconcile_costs_no_call_and_lands_with_the_next_reservation(
    new_client: ClientFactory, table: str
) -> None:
    client = new_client()
    state = shared(client, table)
    calls = count_calls(client)
    first = state.reserve(windows(state, [MINUTE, DAY]), ask(1000), NOW)
    assert first is not None
    state.reconcile(first, ask(100), NOW)
    assert calls == {"BatchGetItem": 1, "UpdateItem": 1}  # one item, both windows; the reconcile made no call
    second = state.reserve(windows(state, [MINUTE, DAY]), ask(1000), NOW)
    assert second is not None
    assert calls == {"BatchGetItem": 2, "UpdateItem": 2}
    other = shared(new_client(), table)  # another container sees the true total
    assert used(other, [MINUTE, DAY]) == [{REQUESTS: 2, TOKENS: 1100}] * 2


def test_expired_items_are_ignored(new_client: ClientFactory, table: str) -> None:
    client = new_client()
    state = shared(client, table)
    start = MINUTE.limit.period.start(NOW)
    window = window_ref(MINUTE, start)
    counts = {name: {"N": str(n)} for name, n in window.attrs({REQUESTS: 37, TOKENS: 0}).items()}
    client.put_item(TableName=table, Item={"pk": {"S": window.item}, **counts, "expires_at": {"N": str(int(NOW) - 1)}})
    client.put_item(TableName=table, Item={"pk": {"S": cooldown_pk(KEY)}, "until": {"N": str(NOW + 999)},
                                           "reason": {"S": "stale"}, "expires_at": {"N": str(int(NOW) - 1)}})
    snapshot = state.load([MINUTE], [KEY], NOW)
    assert snapshot.counters == {} and KEY not in snapshot.models
    assert usage_of(MINUTE, snapshot.counters, NOW).remaining(REQUESTS) == 37


def test_cooldowns_only_extend(new_client: ClientFactory, table: str) -> None:
    state = shared(new_client(), table)
    state.cool_down(KEY, NOW + 60, "long", NOW)
    state.cool_down(KEY, NOW + 5, "short", NOW)
    cooldown = state.load([], [KEY], NOW).models[KEY].cooldown
    assert cooldown is not None and (cooldown.until, cooldown.reason) == (NOW + 60, "long")
    state.cool_down(KEY, NOW + 120, "longer", NOW)
    assert state.load([], [KEY], NOW).models[KEY].cooldown.reason == "longer"  # type: ignore[union-attr]


def test_breakers_and_call_budget(new_client: ClientFactory, table: str) -> None:
    client = new_client()
    client.put_item(TableName=table, Item={"pk": {"S": "cb#p"}, "state": {"S": "open"},
                                           "failures": {"N": "3"}, "expires_at": {"N": str(int(NOW) + 60)}})
    state = shared(client, table)
    calls = count_calls(client)

    def meters_of(n: int) -> tuple[list[Meter], list[ModelKey]]:
        keys = [ModelKey("p", f"m{i}") for i in range(n)]
        meters = [Meter(model_counter(k.provider, k.model), lim.limit) for k in keys for lim in (MINUTE, DAY)]
        return meters, keys

    # 12 models x (1 meter item for both windows + header + cooldown + model breaker) + provider
    # breaker + failure = 50 items
    snapshot = state.load(*meters_of(12), NOW)
    assert calls == {"BatchGetItem": 1}
    assert snapshot.breakers == {"cb#p": {"state": "open", "failures": 3, "expires_at": int(NOW) + 60}}
    state.reserve(windows(state, [MINUTE]), ask(1), NOW)
    state.reserve(windows(state, [MINUTE, DAY]), ask(1), NOW)
    # one conditional write per meter item, whatever its windows (no transaction: see test_state_under_stress.py)
    assert calls == {"BatchGetItem": 3, "UpdateItem": 2}
    state.load(*meters_of(50), NOW)  # 202 items: three calls of at most 100 keys
    assert calls["BatchGetItem"] == 6


def test_a_conversation_affinity_rides_in_the_same_batch_get_and_expires(new_client: ClientFactory, table: str) -> None:
    """The model that served a conversation's turn is one small item, written once after the
    answer and read in the request's one BatchGetItem with everything else, for 15 minutes."""
    client = new_client()
    state = shared(client, table)
    calls = count_calls(client)
    pk = affinity_pk("ab" * 32)
    state.remember_affinity(pk, KEY, NOW)
    assert calls == {"PutItem": 1}
    snapshot = state.load([MINUTE, DAY], [KEY], NOW + 60, extra_pks=(pk,))
    assert snapshot.affinities == {pk: KEY}
    assert calls == {"PutItem": 1, "BatchGetItem": 1}
    assert state.load([MINUTE], [KEY], NOW + AFFINITY_TTL_S + 1, extra_pks=(pk,)).affinities == {}
    assert shared(new_client(), table).load([MINUTE], [KEY], NOW + 60, extra_pks=(pk,)).affinities == {pk: KEY}


def test_health_verdicts_round_trip_and_expire(new_client: ClientFactory, table: str) -> None:
    """`health#` items as the scheduled check writes them and every container reads them
    (`items.health_item` / `decode_health`), through either client; a week-old one is gone."""
    import time as clock

    from llm_gateway.routing.health import DynamoHealthStore
    from llm_gateway.state.items import HEALTH_TTL_S, HealthRecord

    store = DynamoHealthStore(new_client(), table)
    bad = HealthRecord("groq", False, "models list answered 401 (auth)", "f1", clock.time(), "auth")
    good = HealthRecord("mistral", True, "models list ok (3 models)", "f2", clock.time())
    old = HealthRecord("cohere", False, "x", "f3", clock.time() - HEALTH_TTL_S - 1, "auth")
    for record in (bad, good, old):
        store.put(record)
    assert DynamoHealthStore(new_client(), table).get_many(["groq", "mistral", "cohere", "gemini"]) == {
        "groq": bad, "mistral": good}
    assert store.get_many([]) == {}


def test_a_reservation_is_one_update_item_per_counter(new_client: ClientFactory, table: str) -> None:
    """A model's own windows (a minute, a day, a calendar month) are one item: one conditional
    UpdateItem checks them all. A provider-wide meter (Mistral's organisation) is another item."""
    client = new_client()
    state = shared(client, table)
    month = Meter(COUNTER, WindowLimit(CALENDAR_MONTH, {REQUESTS: 1000}))
    org = Meter(provider_counter("groq"), WindowLimit.of(1, requests=1))
    calls = count_calls(client)
    assert state.reserve(windows(state, [MINUTE, DAY, month]), ask(10), NOW) is not None
    assert calls == {"BatchGetItem": 1, "UpdateItem": 1}
    assert state.reserve(windows(state, [MINUTE, DAY, month, org]), ask(10), NOW) is not None
    assert calls == {"BatchGetItem": 2, "UpdateItem": 3}
    assert state.reserve(windows(state, [MINUTE, DAY, month, org]), ask(10), NOW) is None  # the org's second
    assert used(state, [MINUTE, DAY, month]) == [{REQUESTS: 2, TOKENS: 20}] * 3  # the refusal moved nothing


def _window_starts(client: Any, table: str, period_name: str) -> set[int]:
    raw = client.get_item(TableName=table, Key={"pk": {"S": meter_pk(COUNTER)}}, ConsistentRead=True)["Item"]
    item = {name: value.get("N", value.get("S")) for name, value in raw.items()}
    return {int(pk.rsplit("#", 1)[1]) for pk in windows_of({meter_pk(COUNTER): item})
            if pk.rsplit("#", 2)[1] == period_name}


def test_roll_over_removes_windows_nobody_reads_in_the_same_write(new_client: ClientFactory, table: str) -> None:
    client = new_client()
    state = shared(client, table)
    calls = count_calls(client)
    for at in (NOW + 1, NOW + 61):
        assert state.reserve(windows(state, [MINUTE, DAY], at), ask(10), at) is not None
    assert _window_starts(client, table, "60") == {int(NOW), int(NOW) + 60}
    later = NOW + 130  # the minute at NOW is no longer read (nor by a clock CLOCK_SKEW_S behind): removed
    assert state.reserve(windows(state, [MINUTE, DAY], later), ask(10), later) is not None
    assert calls["UpdateItem"] == 3
    assert _window_starts(client, table, "60") == {int(NOW) + 60, int(NOW) + 120}
    assert used(state, [DAY], later) == [{REQUESTS: 3, TOKENS: 30}]


def test_a_write_on_some_windows_never_shortens_the_items_life(new_client: ClientFactory, table: str) -> None:
    """A key whose policy has no monthly budget writes the user's minute only: the month's count,
    in the same item, must outlive that write's own windows."""
    state = shared(new_client(), table)
    month = Meter(COUNTER, WindowLimit(CALENDAR_MONTH, {REQUESTS: 1000}))
    assert state.reserve(windows(state, [MINUTE, month]), ask(10), NOW) is not None
    assert state.reserve(windows(state, [MINUTE], NOW + 600), ask(10), NOW + 600) is not None
    five_days_on = NOW + 5 * 86_400  # still the same month
    assert used(state, [month], five_days_on) == [{REQUESTS: 1, TOKENS: 10}]


@pytest.mark.parametrize("new_client", ["boto3_in_process", "boto3_server"], indirect=True)  # an operator's run
def test_windows_counted_in_the_old_layout_are_folded_into_the_counters_items(
    new_client: ClientFactory, table: str
) -> None:
    """After a deploy, what old containers counted in one item per window (`rl#{counter}#{period}#
    {start}`) is folded into the counters' items: the day and the month go on from their count
    instead of from zero. Windows no load reads any more are left to their TTL; a second run
    counts nothing twice."""
    client = new_client()
    state = shared(client, table)
    month = Meter(COUNTER, WindowLimit(CALENDAR_MONTH, {REQUESTS: 1000}))
    day_start, month_start = DAY.limit.period.start(NOW), CALENDAR_MONTH.start(NOW)
    old = {DAY.pk(day_start): {REQUESTS: 7, TOKENS: 700, f"{REQUESTS}@9": 7, f"{TOKENS}@9": 700, "last_at": NOW - 5},
           month.pk(month_start): {REQUESTS: 30, TOKENS: 3000},
           MINUTE.pk(int(NOW) - 600): {REQUESTS: 5}}  # a minute no load reads any more
    for pk, counts in old.items():
        client.put_item(TableName=table, Item={"pk": {"S": pk}, "expires_at": {"N": str(int(NOW) + 86_400 * 40)},
                                               **{name: {"N": repr(n)} for name, n in counts.items()}})
    assert state.reserve(windows(state, [MINUTE, DAY, month]), ask(10), NOW) is not None  # a new container
    assert fold_legacy_windows(client, table, NOW) == 2
    assert fold_legacy_windows(client, table, NOW) == 0
    assert used(state, [MINUTE, DAY, month]) == [{REQUESTS: 1, TOKENS: 10}, {REQUESTS: 8, TOKENS: 710},
                                                 {REQUESTS: 31, TOKENS: 3010}]
    assert state.load([DAY], [KEY], NOW).stamps[DAY.pk(day_start)] == NOW  # the later stamp is kept
