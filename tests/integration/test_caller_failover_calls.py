"""DynamoDB calls on the critical path of a caller with request limits whose request fails over
(moto, the production store stack, every call logged in order with the provider calls).

The contract (issue 8): per attempt, before its provider call, one state read (per request: the
plan's BatchGetItem) and the reservation's conditional writes, one UpdateItem per counter item
the attempt counts on (the model's and the caller's), nothing unconditional. A request counts
once in the caller's request windows however many attempts it made, and the move of that count
from one attempt to the next rides on the next attempt's own conditional write on the caller's
item (`SharedState.reserve`'s `moved`): it used to cost one more unconditional UpdateItem before
the next attempt, and one more after the last attempt of a request that failed everywhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest
from moto import mock_aws

from llm_gateway.api.errors import GatewayError
from llm_gateway.routing.circuit_breaker import reset_local_counters
from llm_gateway.selection.catalog import Limits
from llm_gateway.state.dynamodb import create_table
from llm_gateway.state.items import meter_pk, windows_of
from llm_gateway.tenancy.limits import UserLimits, user_counter
from llm_gateway.tenancy.policy import Policy
from tests.unit.routing.harness import HOSTS, MODELS, Behaviour, Fleet, Rig, answer, chat, pinned, rig, status

TABLE = "llm-gateway-state"
CALLER = meter_pk(user_counter("alice"))


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    reset_local_counters()  # a fresh container: no failure streak of an earlier test trips a circuit
    with mock_aws():
        create_table(boto3.client("dynamodb", region_name="us-east-1"), TABLE)
        yield
    reset_local_counters()


def logged_rig(log: list[str], **options: Any) -> Rig:
    """A router on the table whose every DynamoDB call is appended to `log` as it is made:
    `read` (a BatchGetItem of the state; the health view's read of `health#` items is left out:
    once a container-minute, not per request), `write {pk} if` (a conditional UpdateItem),
    `write {pk}` (an unconditional one), `put {pk}`."""
    client = boto3.client("dynamodb", region_name="us-east-1")

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name == "BatchGetItem":
            keys = [k["pk"]["S"] for table in params["RequestItems"].values() for k in table["Keys"]]
            if not all(k.startswith("health#") for k in keys):
                log.append("read")
        elif model.name == "UpdateItem":
            log.append(f"write {params['Key']['pk']['S']}" + (" if" if "ConditionExpression" in params else ""))
        elif model.name == "PutItem":
            log.append(f"put {params['Item']['pk']['S']}")
        else:
            log.append(model.name)

    client.meta.events.register("before-parameter-build.dynamodb.*", record)
    return rig(dynamodb_client=client, LLM_GATEWAY_STATE_TABLE=TABLE, **options)


def provider(log: list[str], behaviour: Behaviour) -> Behaviour:
    """`behaviour`, with its call logged as `call {provider}`."""

    def logged(request: httpx.Request, fleet: Fleet) -> httpx.Response:
        log.append(f"call {HOSTS[request.url.host]}")
        return behaviour(request, fleet)

    return logged


def before_each_call(log: list[str]) -> list[list[str]]:
    """The calls made before each provider call (since the one before it), and after the last."""
    segments: list[list[str]] = [[]]
    for entry in log:
        if entry.startswith("call "):
            segments.append([])
        else:
            segments[-1].append(entry)
    return segments


def model_item(name: str) -> str:
    return meter_pk(f"{name}#{MODELS[name]}")


def limits(r: Rig) -> UserLimits:
    return UserLimits(Policy(rpm=5, rpd=50), user_counter("alice"), wall=r.clock.wall())


def test_a_failover_costs_one_read_and_the_attempts_conditional_writes_only(aws: None) -> None:
    log: list[str] = []
    r = logged_rig(log)
    r.fleet.set("groq", provider(log, status(500)))
    r.fleet.set("openai", provider(log, answer()))
    served = r.router.complete(chat(), limits=limits(r))
    assert served.provider == "openai" and [a.provider for a in served.attempts] == ["groq", "openai"]
    first, second, after = before_each_call(log)
    # one read per request; per attempt one conditional write per counter item, sorted by pk
    assert first == ["read", f"write {model_item('groq')} if", f"write {CALLER} if"]
    # the failure's mark for other containers (once per provider's streak), then the next
    # attempt's reservation: the caller's item once, conditional (no give-back of its own)
    assert second == ["put fail#groq", f"write {model_item('openai')} if", f"write {CALLER} if"]
    assert not [call for call in after if call.startswith("write rl#")]
    assert requests_counted(r) == 1


def test_a_request_that_failed_everywhere_moves_its_count_inside_each_reservation_and_counts_once(aws: None) -> None:
    log: list[str] = []
    r = logged_rig(log)
    for name in ("groq", "openai", "mistral"):
        r.fleet.set(name, provider(log, status(500)))
    with pytest.raises(GatewayError):
        r.router.complete(chat(), limits=limits(r))
    segments = before_each_call(log)
    assert len(segments) == 4  # three attempts
    for segment in segments[1:-1]:  # before the second and the third attempt: conditional writes only
        writes = [call for call in segment if call.startswith("write rl#")]
        assert all(call.endswith(" if") for call in writes) and writes.count(f"write {CALLER} if") == 1, segment
    assert not [call for call in segments[-1] if call.startswith("write rl#")]  # nothing before the error
    assert requests_counted(r) == 1


def test_a_request_whose_next_attempt_found_no_capacity_counts_once_with_no_write_after_it(aws: None) -> None:
    """Another container takes OpenAI's one request of the minute while Groq fails this request:
    OpenAI's reservation is refused and the request ends with its Groq attempt counted. It used
    to give that count back first and write it again after the refusal: two unconditional
    UpdateItems for nothing, the second one before the caller's error."""
    log: list[str] = []
    tight = {"openai": Limits(rpm=1)}
    r = logged_rig(log, providers=("groq", "openai"), limits=tight)
    other = rig(dynamodb_client=boto3.client("dynamodb", region_name="us-east-1"), LLM_GATEWAY_STATE_TABLE=TABLE,
                providers=("openai",), limits=tight, clock=r.clock)

    def meanwhile(request: httpx.Request, fleet: Fleet) -> httpx.Response:
        assert other.router.complete(pinned("openai")).provider == "openai"
        return status(500)(request, fleet)

    r.fleet.set("groq", provider(log, meanwhile))
    with pytest.raises(GatewayError):
        r.router.complete(chat(), limits=limits(r))
    first, after = before_each_call(log)
    assert first == ["read", f"write {model_item('groq')} if", f"write {CALLER} if"]
    assert after == ["put fail#groq", f"write {model_item('openai')} if"]  # refused: nothing else
    assert requests_counted(r) == 1


def requests_counted(r: Rig) -> int:
    """The caller's requests in its minute window, as another container would read them."""
    now = r.clock.wall()
    windows = windows_of(r.store.load([CALLER], now))
    minute = [w for key, w in windows.items() if "#60#" in key]
    assert len(minute) == 1 and all(w.get("requests", 0) >= 0 for w in windows.values()), windows
    return int(minute[0].get("requests", 0))
