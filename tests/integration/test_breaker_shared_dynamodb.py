"""Two "containers" (separate clients and breaker objects) share breaker state in one DynamoDB
table (moto), through the gateway's DynamoDB persistence layer on Powertools' breaker, with the
gateway's own client (a Lambda container's) and with boto3's; and that layer writes the very
items Powertools' own DynamoDB layer writes."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
from moto import mock_aws

from llm_gateway.providers.base import ProviderError
from llm_gateway.routing.breaker_store import DynamoDBBreakerPersistence
from llm_gateway.routing.circuit_breaker import (
    BreakerOpen,
    BreakerSettings,
    CircuitBreakers,
    circuit_ids,
    reset_local_counters,
)
from llm_gateway.state.store import ModelKey
from sandbox.local_dynamodb import make_moto_atomic
from tests.dynamodb_clients import ours_in_process

TABLE = "llm-gateway-state"
KEY = ModelKey("groq", "llama")


@pytest.fixture
def atomic_moto_writes():
    """DynamoDB's conditional writes are atomic per item; moto's are not under threads."""
    make_moto_atomic()


_CLIENTS = {"ours": ours_in_process, "boto3": lambda: boto3.client("dynamodb", region_name="us-east-1")}
_client_kind = ["ours"]


@pytest.fixture(params=sorted(_CLIENTS))
def table(atomic_moto_writes, request):
    reset_local_counters()
    _client_kind[0] = request.param
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE, BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        )
        client.update_time_to_live(
            TableName=TABLE, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
        )
        yield
    reset_local_counters()


def container(recovery: int = 1) -> CircuitBreakers:
    client = _CLIENTS[_client_kind[0]]()  # one client per container
    settings = BreakerSettings(failure_threshold=3, recovery_timeout_s=recovery, local_cache_max_age_s=5)
    return CircuitBreakers(DynamoDBBreakerPersistence(TABLE, client), settings)


def state_load(keys: list[ModelKey]) -> dict[str, dict]:
    """What the DynamoDB StateStore's BatchGetItem returns for the breaker ids (raw items)."""
    client = boto3.client("dynamodb", region_name="us-east-1")
    ids = circuit_ids(keys)
    response = client.batch_get_item(RequestItems={TABLE: {"Keys": [{"pk": {"S": i}} for i in ids]}})
    return {item["pk"]["S"]: item for item in response["Responses"][TABLE]}


def fail() -> None:
    raise ProviderError("x", provider="groq", model="llama", status=503)


def open_it(breakers: CircuitBreakers) -> None:
    for _ in range(3):
        with pytest.raises(ProviderError):
            breakers.call(KEY, fail)


def test_one_container_opens_the_other_stops_sending(table) -> None:
    a, b = container(recovery=30), container(recovery=30)
    assert b.call(KEY, lambda: "warm") == "warm"  # b has CLOSED in its local cache now
    open_it(a)
    items = b.current_items([KEY], state_load([KEY]))  # b's next request: one state load
    assert set(b.blocked([KEY], items, time.time())) == {KEY}
    sent = []
    with pytest.raises(BreakerOpen):
        b.call(KEY, lambda: sent.append(1))  # even if the selector had not skipped it
    assert sent == []
    raw = state_load([KEY])["cb#groq#llama"]
    assert raw["state"] == {"S": "OPEN"} and "expires_at" in raw


def test_after_cooldown_exactly_one_probe_in_total(table) -> None:
    # Powertools' probe lease lasts recovery_timeout (whole seconds): it must outlive the probe.
    a, b = container(recovery=2), container(recovery=2)
    open_it(a)
    b.current_items([KEY], state_load([KEY]))
    time.sleep(2.1)
    probes: list[str] = []
    rejected: list[str] = []
    release = threading.Event()
    lock = threading.Lock()

    def probe() -> str:
        with lock:
            probes.append(threading.current_thread().name)
        release.wait(5)
        return "ok"

    def request(breakers: CircuitBreakers) -> str:
        try:
            return breakers.call(KEY, probe)
        except BreakerOpen:
            with lock:
                rejected.append("x")
            return "rejected"

    with ThreadPoolExecutor(max_workers=12) as pool:
        futures = [pool.submit(request, a if i % 2 else b) for i in range(12)]
        deadline = time.monotonic() + 5
        while len(rejected) < 11 and time.monotonic() < deadline:
            time.sleep(0.01)
        release.set()
        results = [f.result() for f in futures]
    assert len(probes) == 1, probes
    assert results.count("ok") == 1 and results.count("rejected") == 11
    # the successful probe closed the circuit for everyone
    items = b.current_items([KEY], state_load([KEY]))
    assert b.blocked([KEY], items, time.time()) == {}
    a.current_items([KEY], state_load([KEY]))  # a's next request loads state (and primes its cache)
    assert a.call(KEY, lambda: "closed") == "closed"


def test_the_layer_writes_what_powertools_dynamodb_layer_writes(table) -> None:
    """Each step of a circuit's life (opened, probe elected, probe refused, closed, reopened)
    through both layers, one circuit each: the items are the same but for their key."""
    from aws_lambda_powertools.utilities.circuit_breaker.persistence.base import (
        CircuitBreakerExistingLockError,
    )
    from aws_lambda_powertools.utilities.circuit_breaker.persistence.dynamodb import (
        CircuitBreakerDynamoDBPersistence,
    )
    from aws_lambda_powertools.utilities.circuit_breaker.persistence.record import CircuitStateRecord
    from aws_lambda_powertools.utilities.circuit_breaker.states import CircuitState

    raw = boto3.client("dynamodb", region_name="us-east-1")
    theirs = CircuitBreakerDynamoDBPersistence(TABLE, key_attr="pk", expiry_attr="expires_at", boto3_client=raw)
    ours = DynamoDBBreakerPersistence(TABLE, _CLIENTS[_client_kind[0]]())
    now = int(time.time())

    def steps(layer, name: str) -> list[object]:
        seen: list[object] = []

        def item() -> dict:
            found = raw.get_item(TableName=TABLE, Key={"pk": {"S": name}}).get("Item", {})
            return {k: v for k, v in found.items() if k != "pk"}

        opened = CircuitStateRecord(name=name, state=CircuitState.OPEN, failure_count=3, opened_at=now,
                                    expiry_timestamp=now + 3600)
        layer._put_record(opened)
        seen.append(item())
        probe = CircuitStateRecord(name=name, state=CircuitState.HALF_OPEN, failure_count=3, opened_at=now,
                                   half_open_owner="me", probe_lease_expiry=now + 30, expiry_timestamp=now + 3600)
        layer._put_record(probe, condition="half_open", expected_opened_at=now)
        seen.append(item())
        with pytest.raises(CircuitBreakerExistingLockError):
            layer._put_record(probe, condition="half_open", expected_opened_at=now)
        layer._update_record(CircuitStateRecord(name=name, state=CircuitState.CLOSED, failure_count=0,
                                                expiry_timestamp=now + 3600))
        seen.append(item())
        layer._update_record(CircuitStateRecord(name=name, state=CircuitState.OPEN, failure_count=3,
                                                opened_at=now + 5, expiry_timestamp=now + 3600))
        seen.append(item())
        record = layer._get_record(name)
        seen.append((record.state, record.failure_count, record.opened_at, record.expiry_timestamp))
        return seen

    assert steps(ours, "cb#ours") == steps(theirs, "cb#theirs")
