"""A provider that reports no usage in its stream: the cost is estimated from our own token
counts and marked as estimated, never silently zero."""

from __future__ import annotations

import json

import httpx

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
