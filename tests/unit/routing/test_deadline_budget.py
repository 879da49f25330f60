"""The request's budget comes from the Lambda's remaining time, and a timeout the request deadline
caused is not held against the provider.

The whole core runs on an `httpx.MockTransport` and a frozen monotonic clock, so nothing here
depends on how fast the machine is: the assertions are about which deadline was used and what
was counted, never about elapsed time.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from llm_gateway.api.errors import GatewayError
from llm_gateway.api.schemas import ChatCompletionRequest
from llm_gateway.compose import Clocks, Core, build_chat, build_core
from llm_gateway.config import load_settings
from llm_gateway.gateway import Caller, Gateway
from llm_gateway.observability import metrics as m
from llm_gateway.observability.metrics import RecordingMetrics
from llm_gateway.providers.base import TRANSPORT_TIMEOUT, ProviderError
from llm_gateway.providers.registry import provider_specs
from llm_gateway.retry.classifier import ErrorClass, classify
from llm_gateway.retry.handler import LAMBDA_MARGIN_S, Deadline, request_budget
from llm_gateway.routing.breaker_store import MemoryBreakerPersistence
from llm_gateway.routing.circuit_breaker import BreakerSettings, CircuitBreakers, reset_local_counters
from llm_gateway.selection.catalog import Catalog, default_catalog

MODEL = "llama-3.1-8b-instant"
ATTEMPT_TIMEOUT_S = 20.0


def _gateway(handler: Callable[[httpx.Request], httpx.Response], failure_threshold: int = 1,
             provider: str = "groq", model: str = MODEL,
             catalog: Catalog | None = None) -> tuple[Gateway, Core, RecordingMetrics]:
    spec = provider_specs()[provider]
    assert spec.key_env is not None
    env = {spec.key_env: "test-key", spec.base_url_env: f"http://{provider}.test/v1", spec.models_env: model,
           "LLM_GATEWAY_ATTEMPT_TIMEOUT_S": str(ATTEMPT_TIMEOUT_S), "LLM_GATEWAY_DEADLINE_S": "25",
           "LLM_GATEWAY_MAX_WAIT_S": "0"}
    metrics = RecordingMetrics()
    frozen = 1000.0
    breakers = CircuitBreakers(MemoryBreakerPersistence(), BreakerSettings(failure_threshold=failure_threshold), metrics=metrics)
    core = build_core(load_settings(env), metrics=metrics, http_client=httpx.Client(transport=httpx.MockTransport(handler)),
                      clocks=Clocks(monotonic=lambda: frozen, sleep=lambda _s: None, rand=lambda: 0.5),
                      catalog=catalog or default_catalog(), breakers=breakers)
    chat = build_chat(core)
    return Gateway(core, chat, chat.available), core, metrics


def deadlines_given(gateway: Gateway, method: str) -> list[float]:
    """What is left of the deadline each call of `gateway.router.<method>` is given (filled as the
    calls come)."""
    seen: list[float] = []
    routed = getattr(gateway.router, method)

    def spy(request: ChatCompletionRequest, deadline: Deadline | None = None, **kwargs: object) -> object:
        assert deadline is not None
        seen.append(deadline.remaining())
        return routed(request, deadline, **kwargs)

    setattr(gateway.router, method, spy)
    return seen


def _request() -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {"model": f"groq/{MODEL}", "messages": [{"role": "user", "content": "hi"}]})


@pytest.fixture(autouse=True)
def _fresh_breaker_counters():
    reset_local_counters()
    yield
    reset_local_counters()


def test_request_budget_is_the_lambdas_remaining_time_less_a_margin_capped_by_the_setting() -> None:
    assert request_budget(25.0, None) == 25.0  # not in Lambda (CLI, tests): the setting alone
    assert request_budget(25.0, 100.0) == 25.0
    assert request_budget(25.0, 10.0) == pytest.approx(10.0 - LAMBDA_MARGIN_S)
    assert request_budget(25.0, LAMBDA_MARGIN_S / 2) == 0.0


def test_gateway_chat_plans_within_the_remaining_lambda_time() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(500)

    gateway, _core, _ = _gateway(handler)
    seen = deadlines_given(gateway, "complete")
    with pytest.raises(GatewayError):
        gateway.chat(_request(), Caller(), "r1", remaining_s=8.0)
    assert seen == [pytest.approx(8.0 - LAMBDA_MARGIN_S)]
    # too little Lambda time left for any attempt: the provider is never called
    with pytest.raises(GatewayError) as late:
        gateway.chat(_request(), Caller(), "r2", remaining_s=LAMBDA_MARGIN_S + 0.1)
    assert late.value.status in (503, 504)
    assert len(calls) == 1  # only the first request's attempt (its 500 is not retried on one model)


def _timeouts(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("trickling", request=request)


def test_a_timeout_cut_short_by_the_request_deadline_counts_against_nothing() -> None:
    gateway, core, metrics = _gateway(_timeouts)
    with pytest.raises(GatewayError):  # 5 s left: the attempt gets 5 s, not its own 20 s
        gateway.chat(_request(), Caller(), "r1", remaining_s=5.0 + LAMBDA_MARGIN_S)
    assert metrics.total(m.BREAKER_TRANSITIONS) == 0  # threshold 1: one counted timeout would open it
    assert not core.failures.recent("groq", core.runner._wall())
    assert metrics.total(m.PROVIDER_ERRORS, error_class=str(ErrorClass.TIMEOUT)) >= 1  # still seen


def test_a_timeout_with_the_providers_own_budget_still_counts() -> None:
    """The control: the same timeout with the attempt's full budget does open the breaker."""
    gateway, core, metrics = _gateway(_timeouts)
    with pytest.raises(GatewayError):
        gateway.chat(_request(), Caller(), "r1", remaining_s=None)
    assert metrics.total(m.BREAKER_TRANSITIONS) >= 1
    assert core.failures.recent("groq", core.runner._wall())


def test_the_classifier_never_counts_a_request_caused_timeout() -> None:
    error = ProviderError("cut", provider="groq", model=MODEL, transport=TRANSPORT_TIMEOUT)
    assert classify(error).counts_for_circuit
    error.request_caused = True
    decision = classify(error)
    assert decision.error_class is ErrorClass.TIMEOUT and not decision.counts_for_circuit
