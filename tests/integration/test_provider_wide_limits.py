"""Organisation-wide and calendar-month limits against fakes that enforce them, over HTTP.

Cohere's trial key has a number of calls a month for the whole organisation, whatever model is
called. The gateway counts them on one provider counter and stops at the limit: the fake never
has to refuse anything, and the caller past the limit gets the gateway's own 429.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from llm_gateway.api.errors import AllProvidersFailed
from llm_gateway.api.schemas import ChatCompletionRequest
from llm_gateway.compose import build_chat, build_core
from llm_gateway.config import load_settings
from llm_gateway.observability.metrics import RecordingMetrics
from llm_gateway.providers.engine import build_http_client
from llm_gateway.state.memory import MemoryStore
from sandbox.fakes import FakeFleet
from tests.integration.test_failover_matrix import fleet_env

MONTHLY = 3


@pytest.fixture
def cohere(fakes: FakeFleet) -> Iterator[FakeFleet]:
    fakes.providers["cohere"].set_limits(org_limits={"rpmonth": MONTHLY})  # the fake enforces it too
    yield fakes
    fakes.providers["cohere"].reset()


def test_a_monthly_organisation_limit_holds_across_models(cohere: FakeFleet) -> None:
    overrides = {"providers": {"cohere": {"free_tier": {"rpmonth": MONTHLY}}}}
    env = {**fleet_env(cohere, ("cohere",)), "LLM_GATEWAY_CATALOG_OVERRIDES": json.dumps(overrides),
           "LLM_GATEWAY_MAX_WAIT_S": "0"}
    client = build_http_client()
    router = build_chat(build_core(load_settings(env), metrics=RecordingMetrics(), http_client=client,
                                   store=MemoryStore()))
    models = sorted(key.model for key in router.available())
    assert len(models) >= 2  # the limit is the organisation's, so it must hold across models
    served, refused = [], []
    try:
        for i in range(MONTHLY + 3):
            request = ChatCompletionRequest.model_validate(
                {"model": f"cohere/{models[i % len(models)]}", "messages": [{"role": "user", "content": "hi"}]})
            try:
                served.append(router.complete(request).model)
            except AllProvidersFailed as refusal:
                refused.append(refusal)
    finally:
        client.close()
    assert len(served) == MONTHLY and len(set(served)) >= 2
    assert len(refused) == 3 and all(r.status == 429 for r in refused)
    fake = cohere.providers["cohere"]
    assert 429 not in fake.stats()["by_status"] and "429" not in fake.stats()["by_status"]  # never had to refuse
    assert fake.limits()["usage"]["org"]["rpmonth"]["used"] == MONTHLY  # and counted exactly what we did
