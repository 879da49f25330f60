"""A provider that reports no usage in its stream: the cost is estimated from our own token
counts and marked as estimated, never silently zero."""

from __future__ import annotations

import json

import httpx
import pytest

from llm_gateway.api.schemas import ChatCompletionRequest
from llm_gateway.config import load_settings
from llm_gateway.gateway import build_gateway
from llm_gateway.observability.metrics import RecordingMetrics

CLIENT_KEY = "test-client-key-" + "0" * 20  # client keys must be at least 32 characters


def _stream_without_usage(_request: httpx.Request) -> httpx.Response:
    chunks = [
        {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini",
         "choices": [{"index": 0, "delta": {"role": "assistant", "content": "one two three four"}, "finish_reason": None}]},
        {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini",
         "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
    ]
    body = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
    return httpx.Response(200, content=body.encode(), headers={"content-type": "text/event-stream"})


def test_stream_without_usage_is_priced_from_an_estimate_and_says_so():
    client = httpx.Client(transport=httpx.MockTransport(_stream_without_usage))
    settings = load_settings({"OPENAI_API_KEY": "k-openai", "LLM_GATEWAY_API_KEYS": CLIENT_KEY})
    gateway = build_gateway(settings, metrics=RecordingMetrics(), http_client=client)
    request = ChatCompletionRequest.model_validate(
        {"model": "openai/gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "count to four"}]}
    )
    outcome = gateway.chat(request, gateway.authenticate(f"Bearer {CLIENT_KEY}"), "r")
    assert outcome.headers["x-gateway-cost-estimated"] == "true"
    assert float(outcome.headers["x-gateway-cost-usd"]) > 0
    assert "one two three four" in outcome.sse_body


def test_include_usage_still_gets_a_usage_chunk_with_the_estimate_marked_as_such():
    """OpenAI always sends the usage chunk when asked; so does the gateway, saying it estimated."""
    client = httpx.Client(transport=httpx.MockTransport(_stream_without_usage))
    settings = load_settings({"OPENAI_API_KEY": "k-openai", "LLM_GATEWAY_API_KEYS": CLIENT_KEY})
    gateway = build_gateway(settings, metrics=RecordingMetrics(), http_client=client)
    request = ChatCompletionRequest.model_validate(
        {"model": "openai/gpt-4o-mini", "stream": True, "stream_options": {"include_usage": True},
         "messages": [{"role": "user", "content": "count to four"}]}
    )
    outcome = gateway.chat(request, gateway.authenticate(f"Bearer {CLIENT_KEY}"), "r")
    assert outcome.sse_body is not None
    events = [line[6:] for line in outcome.sse_body.splitlines() if line.startswith("data: ")]
    last = json.loads(events[-2])
    assert events[-1] == "[DONE]" and last["choices"] == []
    assert last["usage"]["completion_tokens"] > 0 and last["usage"]["cost_estimated"] is True
    assert last["usage"]["cost_usd"] == pytest.approx(float(outcome.headers["x-gateway-cost-usd"]), abs=1e-8)


def _completion_without_usage(_request: httpx.Request) -> httpx.Response:
    body = {"id": "c1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "one two three four"},
                         "finish_reason": "stop"}]}
    return httpx.Response(200, json=body)


@pytest.mark.parametrize(("transport", "stream", "live"), [
    (_stream_without_usage, True, False),  # a stream, sent whole
    (_completion_without_usage, False, False),  # an answer asked whole
    (_stream_without_usage, False, True),  # an answer sent whole, read as a stream (a streaming invocation)
])
def test_an_estimated_cost_puts_its_estimated_tokens_in_the_ledger(transport, stream, live, monkeypatch):
    """The ledger counts the tokens the estimated cost was priced on, not 0: `/v1/usage` would
    otherwise show a paid request with a cost and no tokens in or out."""
    client = httpx.Client(transport=httpx.MockTransport(transport))
    settings = load_settings({"OPENAI_API_KEY": "k-openai", "LLM_GATEWAY_API_KEYS": CLIENT_KEY})
    gateway = build_gateway(settings, metrics=RecordingMetrics(), http_client=client)
    recorded = []
    monkeypatch.setattr(gateway.core.tenancy, "record", recorded.append)
    request = ChatCompletionRequest.model_validate(
        {"model": "openai/gpt-4o-mini", "stream": stream, "messages": [{"role": "user", "content": "count to four"}]}
    )
    outcome = gateway.chat(request, gateway.authenticate(f"Bearer {CLIENT_KEY}"), "r", live=live)
    assert outcome.headers["x-gateway-cost-estimated"] == "true"
    assert len(recorded) == 1 and recorded[0].cost_usd > 0
    assert recorded[0].tokens_in > 0 and recorded[0].tokens_out > 0


def test_an_answer_without_usage_counts_its_attempt_and_settles_its_reservation(monkeypatch):
    """A whole answer whose provider reported no usage is an attempt like any other: the header
    says 1 (not 0), the provider's ok attempt is counted (the failing-provider alarm divides by
    it), and the reservation is reconciled with the estimate rather than left at its maximum."""
    client = httpx.Client(transport=httpx.MockTransport(_completion_without_usage))
    settings = load_settings({"OPENAI_API_KEY": "k-openai", "LLM_GATEWAY_API_KEYS": CLIENT_KEY})
    metrics = RecordingMetrics()
    gateway = build_gateway(settings, metrics=metrics, http_client=client)
    reconciled = []
    original = gateway.core.state.reconcile

    def spy(reservation, actual, now):  # type: ignore[no-untyped-def]
        reconciled.append(dict(actual))
        return original(reservation, actual, now)

    monkeypatch.setattr(gateway.core.state, "reconcile", spy)
    request = ChatCompletionRequest.model_validate(
        {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "count to four"}]}
    )
    outcome = gateway.chat(request, gateway.authenticate(f"Bearer {CLIENT_KEY}"), "r")
    assert outcome.headers["x-gateway-attempts"] == "1"
    assert metrics.total("ProviderAttempts", provider="openai", outcome="ok") == 1
    assert len(reconciled) == 1 and reconciled[0]["requests"] == 1 and reconciled[0]["tokens"] > 0
