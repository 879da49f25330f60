"""Deadlines with slow fakes, and 429 cooldowns shared by two routers (two "containers")."""

from __future__ import annotations

import time

import pytest

from llm_gateway.api.errors import AllProvidersFailed
from llm_gateway.api.schemas import ChatCompletionRequest
from llm_gateway.state.memory import MemoryStore
from llm_gateway.state.shared import SharedState
from llm_gateway.state.store import ModelKey
from sandbox.fakes import FakeFleet
from tests.integration.test_failover_matrix import PROVIDERS, RETRY, build_router, run_many

GROQ = ModelKey("groq", "llama-3.1-8b-instant")


@pytest.fixture
def fleet(fakes: FakeFleet):
    from llm_gateway.routing.circuit_breaker import reset_local_counters

    reset_local_counters()
    yield fakes
    for name in PROVIDERS:
        fakes.providers[name].clear_faults()
    reset_local_counters()


def pinned() -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {"model": f"{GROQ.provider}/{GROQ.model}", "messages": [{"role": "user", "content": "hi"}]})


def test_slow_fakes_never_hold_a_request_past_its_deadline(remote_fleet) -> None:
    for name in PROVIDERS:  # every provider slow on most requests, longer than any attempt timeout
        remote_fleet.providers[name].add_fault(fault="timeout", rate=0.7, hang_seconds=3.0)
    router, close = build_router(remote_fleet)
    try:
        started = time.monotonic()
        results = run_many(router, 24, stream=False)
    finally:
        close()
    for result in results:
        if isinstance(result, Exception):
            assert isinstance(result, AllProvidersFailed)
            assert result.elapsed <= RETRY.deadline_s + 0.2  # type: ignore[attr-defined]
    assert time.monotonic() - started < 24 * RETRY.deadline_s  # and the pool was not serialized
    assert any(isinstance(r, str) for r in results)  # the fast ones still got through


@pytest.fixture(params=["memory", "dynamodb"])
def shared_store(request):
    """One table both containers use: in memory, or DynamoDB (moto, in-process)."""
    if request.param == "memory":
        yield MemoryStore()
        return
    import boto3
    from moto import mock_aws

    from llm_gateway.state.dynamodb import DynamoStateStore, create_table

    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table(client, "state")
        yield DynamoStateStore(boto3.client("dynamodb", region_name="us-east-1"), "state")


def test_429_cools_the_model_for_every_container_until_reset(fleet: FakeFleet, shared_store) -> None:
    store = shared_store
    first, close_a = build_router(fleet, store=store)
    second, close_b = build_router(fleet, store=store)  # another container: own breakers, same table
    groq = fleet.providers["groq"]
    try:
        groq.add_fault(fault="429", retry_after=2, model=GROQ.model)
        with pytest.raises(AllProvidersFailed) as limited:
            first.complete(pinned())
        assert limited.value.status == 429
        groq.clear_faults()
        received = groq.stats()["received"]
        # the other container does not send it anything before the reset time
        for _ in range(10):
            with pytest.raises(AllProvidersFailed) as skipped:
                second.complete(pinned())
            assert skipped.value.status == 429 and int(skipped.value.headers["Retry-After"]) >= 1
        assert groq.stats()["received"] == received
        # a shorter cooldown written later (a stale container) does not shorten it
        now = time.time()
        SharedState(store, fold_reconcile=False).cool_down(GROQ, now + 0.1, "stale shorter hint", now)
        with pytest.raises(AllProvidersFailed):
            second.complete(pinned())
        assert groq.stats()["received"] == received
        time.sleep(2.1)
        assert second.complete(pinned()).provider == "groq"  # after the reset it is used again
        # a later, longer cooldown extends: 429 with 4 s, then nothing for 4 s
        groq.add_fault(fault="429", retry_after=4, model=GROQ.model, count=1)
        with pytest.raises(AllProvidersFailed):
            second.complete(pinned())
        cooling = SharedState(store, fold_reconcile=False).load([], [GROQ], time.time()).models[GROQ].cooldown
        assert cooling is not None and cooling.until >= time.time() + 3.5
    finally:
        close_a()
        close_b()
