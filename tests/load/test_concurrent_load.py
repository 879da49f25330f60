"""Load: many concurrent requests through four gateway "containers" sharing one DynamoDB table.

What a demanding user checks: nothing fails, every answer comes from a free tier while free
capacity exists, load spreads across providers, and no model ever receives more requests than
its catalog limit allows in any window, even though four containers admit requests at once.
"""

from __future__ import annotations

import math
import queue
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from llm_gateway.api.schemas import ChatCompletionRequest
from llm_gateway.config import load_settings
from llm_gateway.gateway import Gateway, build_gateway
from llm_gateway.observability.metrics import (
    FREE_TIER_REQUESTS,
    PAID_REQUESTS,
    USER_VISIBLE_ERRORS,
    RecordingMetrics,
)
from llm_gateway.providers.registry import provider_specs
from llm_gateway.selection.catalog import default_catalog
from llm_gateway.state.store import ModelKey
from sandbox.fakes import config as fake_config
from sandbox.fakes import start_fakes
from sandbox.local_dynamodb import start_local_dynamodb

CLIENT_KEY = "test-client-key-" + "0" * 20  # client keys must be at least 32 characters

pytestmark = pytest.mark.load

CONTAINERS = 4
REQUESTS = 160
FAKE_LATENCY_MS = 15


@pytest.fixture(scope="module")
def fleet():
    raw = fake_config.load_raw(None)
    for provider in raw["providers"].values():
        provider["latency_ms"] = FAKE_LATENCY_MS
    with start_fakes(raw) as fleet:
        yield fleet


@pytest.fixture(scope="module")
def containers(fleet):
    dynamo = start_local_dynamodb(table_name="load-test-state")
    env = {"LLM_GATEWAY_API_KEYS": CLIENT_KEY, "LLM_GATEWAY_STATE_TABLE": dynamo.table_name,
           "LLM_GATEWAY_DYNAMODB_ENDPOINT": dynamo.endpoint_url}
    for name, fake in fleet.providers.items():
        env[provider_specs()[name].key_env] = "load-test-key"
        env[provider_specs()[name].base_url_env] = fake.base_url
    metrics = RecordingMetrics()
    gateways = [build_gateway(load_settings(env), metrics=metrics) for _ in range(CONTAINERS)]
    yield gateways, metrics
    dynamo.stop()


def _served_by_model(fleet) -> Counter:
    served: Counter = Counter()
    for name, fake in fleet.providers.items():
        for model, counts in fake.stats()["by_model"].items():
            served[(name, model)] += counts["served"]
    return served


def test_concurrent_requests_stay_free_spread_out_and_within_every_limit(fleet, containers):
    gateways, metrics = containers
    idle: queue.Queue[Gateway] = queue.Queue()
    for gateway in gateways:
        idle.put(gateway)
    caller = gateways[0].authenticate(f"Bearer {CLIENT_KEY}")

    def one(i: int) -> int:
        gateway = idle.get()  # a container serves one request at a time, as Lambda does
        try:
            request = ChatCompletionRequest.model_validate(
                {"model": "auto", "messages": [{"role": "user", "content": f"request {i}: say hi"}]}
            )
            return gateway.chat(request, caller, f"load-{i}").status
        finally:
            idle.put(gateway)

    started = time.time()
    with ThreadPoolExecutor(max_workers=CONTAINERS * 2) as pool:
        statuses = list(pool.map(one, range(REQUESTS)))
    finished = time.time()

    assert statuses == [200] * REQUESTS
    assert metrics.total(USER_VISIBLE_ERRORS) == 0
    assert metrics.total(FREE_TIER_REQUESTS) == REQUESTS
    assert metrics.total(PAID_REQUESTS) == 0

    served = _served_by_model(fleet)
    assert sum(served.values()) == REQUESTS
    assert len({provider for provider, _ in served}) >= 4, served  # spread, not one tier drained

    catalog = default_catalog()
    by_counter: Counter = Counter()
    for (provider, model), count in served.items():
        entry = catalog.get(ModelKey(provider, model))
        assert entry is not None and entry.is_free
        for meter in catalog.meters(entry):  # the model's own windows and its provider's shared ones
            by_counter[(meter.counter, meter.limit)] += count
    for (counter, limit), count in by_counter.items():
        most = limit.max_of("requests")
        if most is None or limit.period.seconds == 0:
            continue
        seconds = limit.period.seconds
        spanned = math.floor(finished / seconds) - math.floor(started / seconds) + 1
        assert count <= most * spanned, (counter, limit, count)
