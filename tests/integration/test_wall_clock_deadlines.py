"""Deadlines are wall-clock: a provider that trickles bytes cannot stretch an attempt or a request.

httpx's timeouts are per read, so a body sent a byte at a time never trips them. These tests use
the fakes' `trickle` fault (each byte `byte_delay_s` apart, far below any read timeout) against
fakes in their own process, so the timings measure the gateway, not a GIL shared with the fakes.
Margins are generous; each bound is far below what the per-read timeouts alone would allow
(the bodies trickled here take several seconds to send whole).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from llm_gateway.api.errors import GatewayError
from llm_gateway.providers.base import TRANSPORT_TIMEOUT, ProviderError
from llm_gateway.providers.engine import ProviderEngine, build_http_client
from llm_gateway.retry.backoff import BackoffPolicy
from llm_gateway.retry.handler import RetrySettings
from tests.conftest import chat_handler_on_fakes
from tests.fakes_fixtures import RemoteFleet
from tests.integration.test_adapters_vs_fakes import MODELS, adapter_for
from tests.integration.test_failover_matrix import PROVIDERS, build_router, run_many
from tests.unit.providers.helpers import request

MARGIN_S = 0.25  # scheduling on a shared 2-CPU runner; a per-read timeout would overshoot by seconds
BYTE_DELAY_S = 0.01  # ~100 bytes/s: a completion takes several seconds, an SSE event one or two


@pytest.fixture
def engine() -> Iterator[ProviderEngine]:
    client = build_http_client()
    yield ProviderEngine(client)
    client.close()


def test_a_trickled_answer_is_cut_at_the_attempt_budget(remote_fleet: RemoteFleet, engine: ProviderEngine) -> None:
    remote_fleet.providers["groq"].add_fault(fault="trickle", byte_delay_s=BYTE_DELAY_S)
    started = time.monotonic()
    with pytest.raises(ProviderError) as cut:
        engine.complete(adapter_for(remote_fleet, "groq"), request("system"), MODELS["groq"], 1.0)  # type: ignore[arg-type]
    elapsed = time.monotonic() - started
    assert cut.value.transport == TRANSPORT_TIMEOUT
    assert 0.9 <= elapsed <= 1.0 + MARGIN_S, elapsed


def test_a_trickled_stream_is_cut_at_its_budget(remote_fleet: RemoteFleet, engine: ProviderEngine) -> None:
    remote_fleet.providers["groq"].add_fault(fault="trickle", byte_delay_s=BYTE_DELAY_S)
    started = time.monotonic()
    adapter = adapter_for(remote_fleet, "groq")  # type: ignore[arg-type]
    with pytest.raises(ProviderError) as cut, engine.open_stream(adapter, request("system"), MODELS["groq"], 1.0) as s:
        for _ in s:  # opening and reading share the one budget
            pass
    elapsed = time.monotonic() - started
    assert cut.value.transport == TRANSPORT_TIMEOUT
    assert elapsed <= 1.0 + MARGIN_S, elapsed


DEADLINE_S = 2.0
RETRY = RetrySettings(max_attempts=3, deadline_s=DEADLINE_S, attempt_timeout_s=1.5, safety_margin_s=0.05,
                      min_attempt_s=0.1, backoff=BackoffPolicy(base_s=0.01, cap_s=0.05))


@pytest.mark.parametrize("stream", [False, True], ids=["json", "buffered-stream"])
def test_no_request_outlives_its_deadline_when_every_provider_trickles(remote_fleet: RemoteFleet,
                                                                      stream: bool) -> None:
    for name in PROVIDERS:
        remote_fleet.providers[name].add_fault(fault="trickle", byte_delay_s=BYTE_DELAY_S)
    router, close = build_router(remote_fleet, retry=RETRY)  # type: ignore[arg-type]
    try:
        results = run_many(router, 6, stream=stream)
    finally:
        close()
    for result in results:
        assert isinstance(result, GatewayError), result  # nothing can finish inside 2 s
        assert result.elapsed <= DEADLINE_S + MARGIN_S, result.elapsed  # type: ignore[attr-defined]


def test_an_unbuffered_stream_that_trickles_is_cut_at_its_deadline(remote_fleet: RemoteFleet) -> None:
    """The first event arrives in time, so the stream is served; the rest is cut at the request's
    deadline (a live stream outlives its attempt's timeout, never its request's) while the caller
    drains it."""
    for name in PROVIDERS:
        remote_fleet.providers[name].add_fault(fault="trickle", byte_delay_s=0.002)
    router, close = build_router(remote_fleet, retry=RETRY)  # type: ignore[arg-type]
    started = time.monotonic()
    try:
        routed = router.stream(request("system").model_copy(update={"stream": True, "model": "auto:small"}),
                               buffered=False)
        with pytest.raises(ProviderError) as cut:
            for _ in routed.chunks:
                pass
    finally:
        close()
    elapsed = time.monotonic() - started
    assert cut.value.transport == TRANSPORT_TIMEOUT
    assert elapsed <= RETRY.deadline_s + MARGIN_S, elapsed


def test_the_handler_gives_a_request_only_what_the_lambda_has_left(fakes, clean_gateway_env) -> None:  # type: ignore[no-untyped-def]
    """An invocation with less time left than the margin starts no attempt: the answer is an
    error in OpenAI's shape, not a provider call Lambda would kill halfway."""
    import json

    from llm_gateway.retry.handler import LAMBDA_MARGIN_S
    from sandbox.apigw import LocalContext, make_event

    module = chat_handler_on_fakes(fakes, clean_gateway_env, "lambda_budget")
    body = json.dumps({"model": "auto", "messages": [{"role": "user", "content": "hi"}]}).encode()
    headers = {"authorization": "Bearer local-dev-key", "content-type": "application/json"}
    event = make_event("POST", "/v1/chat/completions", headers, body)
    short = LocalContext(function_name="chat", timeout_ms=int(LAMBDA_MARGIN_S * 1000) + 100)
    result = module.lambda_handler(event, short)
    assert int(result["statusCode"]) in (503, 504), result
    assert "error" in json.loads(result["body"])
    assert sum(int(fake.stats()["received"]) for fake in fakes.providers.values()) == 0
    ok = module.lambda_handler(event, LocalContext(function_name="chat"))  # the same request with 29 s
    assert int(ok["statusCode"]) == 200, ok
