"""Users across two containers sharing one DynamoDB table (moto, conditional writes serialized per
item as DynamoDB does): a key issued in one container works in the other, a user's window admits
exactly its limit under concurrency from both, a budget stops paid calls at its limit under
concurrency, the key table holds only hashes, and a revocation reaches the other container
within its cache time."""

from __future__ import annotations

import contextlib
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import httpx
import pytest
from moto import mock_aws

from llm_gateway.api.errors import GatewayError
from llm_gateway.gateway import Gateway
from llm_gateway.state.dynamodb import create_table
from sandbox.local_dynamodb import make_moto_atomic
from tests.unit.routing.harness import EPOCH, FakeClock, Fleet, Rig, chat, pinned, rig

TABLE = "llm-gateway-state"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    make_moto_atomic()
    with mock_aws():
        create_table(boto3.client("dynamodb", region_name="us-east-1"), TABLE)
        yield


def container(clock: FakeClock, **kwargs: Any) -> tuple[Rig, Gateway]:
    client = boto3.client("dynamodb", region_name="us-east-1")  # one client per container
    r = rig(clock=clock, dynamodb_client=client, LLM_GATEWAY_STATE_TABLE=TABLE, LLM_GATEWAY_KEY_CACHE_S="2",
            **kwargs)
    return r, Gateway(r.core, r.router, r.router.available)


def long_answer(request: httpx.Request, fleet: Fleet) -> httpx.Response:
    """A paid answer that used nearly all of its 8,192 output tokens: $0.016005 at $1/$2 per 1M."""
    model = json.loads(request.content)["model"]
    return httpx.Response(200, json={
        "id": "c", "object": "chat.completion", "created": int(EPOCH), "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "long"}, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 8000, "total_tokens": 8005}})


def run_concurrently(n: int, gateways: list[Gateway], caller_of: Any, request: Any) -> list[str]:
    outcomes: list[str] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        gateway = gateways[i % len(gateways)]
        try:
            gateway.chat(request, caller_of(gateway), f"r{i}")
            result = "served"
        except GatewayError as error:
            result = str(error.code)
        with lock:
            outcomes.append(result)

    with ThreadPoolExecutor(max_workers=12) as pool:
        list(pool.map(one, range(n)))
    return outcomes


def test_a_users_window_admits_exactly_its_limit_across_two_containers(aws) -> None:
    clock = FakeClock()
    (_, a), (_, b) = container(clock), container(clock)
    made = a.core.tenancy.admin.create({"user": "alice", "rpm": 7})
    other = a.core.tenancy.admin.create({"user": "bob", "rpm": 7})
    callers = {id(g): g.authenticate(f"Bearer {made['key']}") for g in (a, b)}  # b reads the key a wrote
    outcomes = run_concurrently(24, [a, b], lambda g: callers[id(g)], chat())
    assert outcomes.count("served") == 7
    assert set(outcomes) == {"served", "user_rate_limited"}
    assert b.chat(chat(), b.authenticate(f"Bearer {other['key']}"), "r").status == 200  # bob is not alice
    # the table holds the key's hash and metadata, never the key
    scan = boto3.client("dynamodb", region_name="us-east-1").scan(TableName=TABLE)["Items"]
    dumped = json.dumps(scan)
    assert made["key"] not in dumped and made["key"][6:] not in dumped
    assert any(item["pk"]["S"].startswith("key#") for item in scan)


def test_a_budget_stops_paid_calls_at_its_limit_under_concurrency(aws) -> None:
    clock = FakeClock()
    gateways = []
    for _ in range(2):
        r, g = container(clock, providers=("openai",), paid=("openai",))
        r.fleet.set("openai", long_answer)
        gateways.append(g)
    made = gateways[0].core.tenancy.admin.create({"user": "carol", "daily_budget_usd": 0.1})
    callers = {id(g): g.authenticate(f"Bearer {made['key']}") for g in gateways}
    outcomes = run_concurrently(30, gateways, lambda g: callers[id(g)], pinned("openai"))
    served = outcomes.count("served")
    assert set(outcomes) == {"served", "budget_exceeded"}
    assert served * 0.016005 <= 0.1  # never past the budget
    assert served == 6  # and stopped only when the next call's maximum no longer fits
    usage = gateways[1].core.tenancy.usage(user="carol", policy=callers[id(gateways[1])].policy, admin=False,
                                           query={})
    assert usage["today"]["paid_requests"] == 6
    day = next(row for row in usage["limits"] if row["window"] == "day")
    assert day["used"] == pytest.approx(6 * 0.016005, abs=1e-5)


def test_revocation_reaches_the_other_container_within_its_cache_time(aws) -> None:
    clock = FakeClock()
    (_, a), (_, b) = container(clock), container(clock)
    made = a.core.tenancy.admin.create({"user": "dave"})
    b.authenticate(f"Bearer {made['key']}")
    real = b.core.tenancy.directory._clock  # b's key cache runs on a clock the test moves
    now = [real()]
    b.core.tenancy.directory._clock = lambda: now[0]
    a.core.tenancy.admin.revoke(made["id"])
    assert b.authenticate(f"Bearer {made['key']}").user == "dave"  # still cached in b
    now[0] += 2.1
    with pytest.raises(GatewayError) as refused:
        b.authenticate(f"Bearer {made['key']}")
    assert refused.value.status == 401
    with contextlib.suppress(Exception):
        b.core.tenancy.directory._clock = real


def test_a_revocation_landing_while_another_container_updates_the_key_stays(aws) -> None:
    """Two admins on two containers: b revokes the key between a's read of it and a's write of
    its update. a wrote back the record it had read, unrevoked, and the key served again; the
    update is now written only over the item it read (a conditional put), else made again."""
    from llm_gateway.tenancy.admin import KeyAdmin
    from llm_gateway.tenancy.keys import DynamoKeyStore, KeyRecord

    client = boto3.client("dynamodb", region_name="us-east-1")

    class Racing(DynamoKeyStore):
        race: Any = None

        def save(self, record: KeyRecord, **kwargs: Any) -> Any:
            race, self.race = self.race, None
            if race is not None:
                race()
            return super().save(record, **kwargs)

    store = Racing(client, TABLE)
    one, other = KeyAdmin(store), KeyAdmin(DynamoKeyStore(boto3.client("dynamodb", region_name="us-east-1"), TABLE))
    made = one.create({"user": "erin", "rpm": 10})
    store.race = lambda: other.revoke(made["id"])
    one.update(made["id"], {"rpm": 20})
    stored = other.get(made["id"])
    assert stored.revoked and stored.policy.rpm == 20
    _, gateway = container(FakeClock())
    with pytest.raises(GatewayError) as refused:
        gateway.authenticate(f"Bearer {made['key']}")
    assert refused.value.status == 401


def test_a_key_item_without_an_update_time_can_still_be_changed(aws) -> None:
    """Found merging the conditional key writes: a key item with no `updated_at` (written by hand,
    or by a version before it was stored) reads as updated at 0, and the condition `updated_at = 0`
    never held, so every change of that key was a 409 `key_changed`."""
    from llm_gateway.state.items import KEY_INDEX_PK, key_pk
    from llm_gateway.tenancy.admin import KeyAdmin
    from llm_gateway.tenancy.keys import DynamoKeyStore

    client = boto3.client("dynamodb", region_name="us-east-1")
    admin = KeyAdmin(DynamoKeyStore(client, TABLE))
    made = admin.create({"user": "frank", "rpm": 10})
    digest = client.get_item(TableName=TABLE, Key={"pk": {"S": KEY_INDEX_PK}})["Item"][made["id"]]["S"]
    client.update_item(TableName=TABLE, Key={"pk": {"S": key_pk(digest)}}, UpdateExpression="REMOVE updated_at")
    assert admin.update(made["id"], {"rpm": 20})["policy"]["rpm"] == 20
    assert admin.revoke(made["id"])["revoked"]


def test_keys_made_once_the_index_item_is_full_are_kept_listed_and_served(aws) -> None:
    """Every key's id went into the one `keys#index` item, and DynamoDB refuses an item over
    400 KB: after about 4,800 keys ever made, every create answered a 500 (ValidationException).
    Keys made once it is full go to `keys#index#{digit}` items, read with it."""
    from llm_gateway.state.items import KEY_INDEX_PK, KEY_INDEX_SHARD_PKS
    from llm_gateway.tenancy.admin import KeyAdmin
    from llm_gateway.tenancy.keys import DynamoKeyStore

    client = boto3.client("dynamodb", region_name="us-east-1")
    entries = 4_880  # 84 bytes each, as a key's id and digest are: as many as the item takes
    while True:
        try:
            client.put_item(TableName=TABLE, Item={"pk": {"S": KEY_INDEX_PK}, **{
                f"key_{n:016x}": {"S": f"{n:064x}"} for n in range(entries)}})
            break
        except client.exceptions.ClientError:
            entries -= 4
    admin = KeyAdmin(DynamoKeyStore(client, TABLE))
    made = [admin.create({"user": f"user{n}", "rpm": 10}) for n in range(5)]  # 4 more did not fit
    sharded = client.batch_get_item(RequestItems={TABLE: {"Keys": [{"pk": {"S": pk}} for pk in KEY_INDEX_SHARD_PKS]}})
    assert sum(len(item) - 1 for item in sharded["Responses"][TABLE]) >= 2
    assert {k["id"] for k in admin.list()["data"]} == {k["id"] for k in made}  # the filler's entries have no key items
    assert admin.update(made[0]["id"], {"rpm": 20})["policy"]["rpm"] == 20
    assert admin.revoke(made[1]["id"])["revoked"]
    _, gateway = container(FakeClock())
    assert gateway.authenticate(f"Bearer {made[4]['key']}").user == "user4"
