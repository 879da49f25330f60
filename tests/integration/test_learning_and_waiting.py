"""The core's promises to a new user, over HTTP against the fakes (issue: one failover core).

- Learn from failures at once: with four of five providers failing in different ways (429, 500,
  503, a hang) and one healthy, a burst of 200 requests at 16 concurrent sees no user-visible
  error with the default three attempts.
- Wait briefly instead of refusing: two back-to-back requests pinned to a model whose provider
  allows one request per second both succeed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from llm_gateway.api.errors import GatewayError
from llm_gateway.api.schemas import ChatCompletionRequest
from llm_gateway.compose import build_chat, build_core
from llm_gateway.config import load_settings
from llm_gateway.observability import metrics as m
from llm_gateway.observability.metrics import RecordingMetrics
from llm_gateway.providers.engine import build_http_client
from llm_gateway.retry.handler import RetrySettings
from llm_gateway.selection.catalog import Catalog, Limits, default_catalog
from llm_gateway.state.memory import MemoryStore
from tests.integration.test_failover_matrix import fleet_env

ALL = ("groq", "gemini", "cohere", "mistral", "openai")
HEALTHY = "cohere"
FAULTS = {
    "groq": {"fault": "429", "retry_after": 30},
    "gemini": {"fault": "500"},
    "mistral": {"fault": "503"},
    "openai": {"fault": "timeout", "hang_seconds": 30.0},
}


def every_model_free_and_roomy(fleet) -> Catalog:
    """All the fakes' catalog models as free small models with limits the test never reaches,
    so ranking alone (not capacity) decides who is tried."""
    base = default_catalog()
    roomy = Limits(rpm=1_000_000, tpm=10**10)
    entries = []
    for provider in ALL:  # two models each: every candidate's state fits one read
        served = [e for e in base.for_capability("chat")
                  if e.provider == provider and e.model in fleet.providers[provider].models][:2]
        entries += [e.model_copy(update={"free_tier": roomy, "category": "small"}) for e in served]
    providers = {name: info.model_copy(update={"free_tier": None}) for name, info in base.data.providers.items()}
    return Catalog.from_entries(entries, providers)


@pytest.fixture
def routers(remote_fleet) -> Iterator:
    """Build chat routers on the out-of-process fakes through the composition root."""
    clients = []

    def build(providers, *, catalog=None, metrics=None, **env):
        client = build_http_client()
        clients.append(client)
        settings = load_settings({**fleet_env(remote_fleet, providers), **env})
        core = build_core(settings, metrics=metrics or RecordingMetrics(), http_client=client, store=MemoryStore(),
                          catalog=catalog, retry=RetrySettings())  # defaults: 3 attempts, 25 s deadline
        return build_chat(core)

    yield build
    for client in clients:
        client.close()


def test_four_of_five_failing_burst_of_200_sees_no_error(remote_fleet, routers) -> None:
    metrics = RecordingMetrics()
    router = routers(ALL, catalog=every_model_free_and_roomy(remote_fleet), metrics=metrics)
    for name, fault in FAULTS.items():
        remote_fleet.providers[name].add_fault(**fault)
    request = ChatCompletionRequest.model_validate({"model": "auto", "messages": [{"role": "user", "content": "hi"}]})

    def one(_: int) -> object:
        try:
            return router.complete(request).provider
        except GatewayError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(one, range(200)))
    errors = [r for r in results if isinstance(r, Exception)]
    assert errors == [], f"{len(errors)} of 200 failed, first: {errors[:1]!r}"
    assert set(results) == {HEALTHY}
    for name in FAULTS:  # every fault really fired: the test exercised all four kinds of failure
        assert sum(remote_fleet.providers[name].stats()["faults_fired"].values()) >= 1, name
    # learning at once: failed attempts stay far below the requests (without it, most first tries fail)
    assert metrics.total(m.PROVIDER_ERRORS) < 60


def test_pinned_one_request_per_second_back_to_back_both_succeed(routers) -> None:
    """Mistral's free tier allows 1 request/s for the whole organisation (the built-in catalog)."""
    metrics = RecordingMetrics()
    router = routers(("mistral",), metrics=metrics, LLM_GATEWAY_MAX_WAIT_S="2")
    request = ChatCompletionRequest.model_validate(
        {"model": "mistral/mistral-small-latest", "messages": [{"role": "user", "content": "hi"}]})
    first = router.complete(request)
    started = time.monotonic()
    second = router.complete(request)
    waited = time.monotonic() - started
    assert first.provider == second.provider == "mistral"
    # it waited for the provider's window, once (a count, not a time: a loaded machine stretches
    # the wait's own length), and within the 2 s most it may wait
    assert metrics.total(m.CAPACITY_WAITS) == 1
    assert 0.0 < waited < 2.0 + 1.0
