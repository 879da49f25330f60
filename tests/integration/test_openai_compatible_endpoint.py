"""An operator-declared OpenAI-compatible endpoint (here: the OpenAI fake standing in for a local
vLLM) is routable by config alone: the endpoint in LLM_GATEWAY_OPENAI_COMPATIBLE, its model in
the catalog overrides."""

from __future__ import annotations

import json

from llm_gateway.api.schemas import ChatCompletionRequest
from llm_gateway.config import load_settings
from llm_gateway.gateway import build_gateway
from llm_gateway.observability.metrics import RecordingMetrics

CLIENT_KEY = "test-client-key-" + "0" * 20  # client keys must be at least 32 characters


def test_declared_endpoint_serves_pinned_and_auto_requests(fakes):
    endpoint = {"name": "vllm", "base_url": fakes.providers["openai"].base_url, "api_key": "local-vllm-key",
                "models": ["gpt-4.1-nano"]}
    overrides = {
        "providers": {"vllm": {"as_of": "2026-11-25", "source": "operator"}},
        "models": [{"provider": "vllm", "model": "gpt-4.1-nano", "category": "small", "context_window": 32768,
                    "max_output": 4096, "capabilities": {"tools": True, "vision": False, "json": True, "streaming": True},
                    "free_tier": {"rpm": 100}}],
    }
    settings = load_settings({
        "LLM_GATEWAY_API_KEYS": CLIENT_KEY, "LLM_GATEWAY_OPENAI_COMPATIBLE": json.dumps([endpoint]),
        "LLM_GATEWAY_CATALOG_OVERRIDES": json.dumps(overrides),
    })
    gateway = build_gateway(settings, metrics=RecordingMetrics())
    assert "vllm/gpt-4.1-nano" in {card.id for card in gateway.list_models().data}
    caller = gateway.authenticate(f"Bearer {CLIENT_KEY}")
    for model in ("vllm/gpt-4.1-nano", "auto"):
        request = ChatCompletionRequest.model_validate({"model": model, "messages": [{"role": "user", "content": "hi"}]})
        outcome = gateway.chat(request, caller, "r")
        assert outcome.headers["x-gateway-provider"] == "vllm"
        assert outcome.json_body["choices"][0]["message"]["content"]
    assert fakes.providers["openai"].stats()["served"] == 2
