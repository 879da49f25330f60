"""The whole gateway (settings → build_gateway → router → adapters → fakes) when things go wrong
around it: state store unreachable, and provider errors that carry a key."""

from __future__ import annotations

import io
import json
import socket

import pytest

from llm_gateway.api.errors import GatewayError
from llm_gateway.api.schemas import ChatCompletionRequest
from llm_gateway.config import load_settings
from llm_gateway.gateway import build_gateway
from llm_gateway.observability.metrics import STATE_DEGRADED, USER_VISIBLE_ERRORS, RecordingMetrics
from llm_gateway.providers.registry import provider_specs

SECRET = "sk-test-secret-" + "k" * 24
CLIENT_KEY = "client-key-for-tests-" + "0" * 16


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _settings(fakes, providers: list[str], **extra: str):
    env = {"LLM_GATEWAY_API_KEYS": CLIENT_KEY, "LLM_GATEWAY_DEADLINE_S": "10", **extra}
    for name in providers:
        spec = provider_specs()[name]
        env[spec.key_env] = SECRET
        env[spec.base_url_env] = fakes.providers[name].base_url
    return load_settings(env)


def _request(model: str = "auto") -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate({"model": model, "messages": [{"role": "user", "content": "hi"}]})


def test_unreachable_dynamodb_degrades_to_local_state_and_keeps_serving(fakes):
    metrics = RecordingMetrics()
    settings = _settings(
        fakes, ["groq", "gemini"], LLM_GATEWAY_STATE_TABLE="llm-gateway-state",
        LLM_GATEWAY_DYNAMODB_ENDPOINT=f"http://127.0.0.1:{_closed_port()}",
    )
    gateway = build_gateway(settings, metrics=metrics)
    caller = gateway.authenticate(f"Bearer {CLIENT_KEY}")
    for _ in range(3):
        outcome = gateway.chat(_request(), caller, "req-1")
        assert outcome.status == 200
        assert outcome.json_body["choices"][0]["message"]["content"]
    assert metrics.total(STATE_DEGRADED) >= 1
    assert metrics.total(USER_VISIBLE_ERRORS) == 0


def test_no_key_reaches_a_response_or_a_log_line(fakes, capsys):
    metrics = RecordingMetrics()
    gateway = build_gateway(_settings(fakes, ["openai"]), metrics=metrics)
    stream = io.StringIO()
    for handler in gateway.logger.handlers:
        handler.stream = stream  # type: ignore[attr-defined]
    fakes.providers["openai"].add_fault(fault="401")
    caller = gateway.authenticate(f"Bearer {CLIENT_KEY}")
    with pytest.raises(GatewayError) as info:
        gateway.chat(_request("openai/gpt-4o-mini"), caller, "req-2")
    error = info.value
    rendered = json.dumps(error.body()) + json.dumps(error.headers)
    gateway.logger.info("provider failed", extra={"error": repr(error.__cause__), "key": SECRET})
    gateway.logger.info(f"raw secret {SECRET} in a message")
    logs = stream.getvalue() + capsys.readouterr().out
    assert error.status in (401, 502, 503)
    assert error.body()["error"]["attempts"][0]["provider"] == "openai"
    assert SECRET not in rendered
    assert SECRET not in logs
    assert "[REDACTED]" in logs
