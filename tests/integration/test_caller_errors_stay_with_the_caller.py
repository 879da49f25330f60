"""A caller's mistake is answered to that caller and touches nothing shared.

Providers echo request text in their 4xx messages (OpenAI: "Invalid schema for function
'get_daily_report': ..."). Before the fix, words like `daily`, `billing`, `per day` or
`invalid token` in such an echo turned the caller's 400 into "quota exhausted" (a one-hour
cooldown for every caller) or "auth" (a provider breaker count), so one crafted request could
take a model away from everyone. Here a provider answers 400 with such echoes many times; the
same model must keep serving the next ordinary request, and each bad request must come back as
a 400 carrying the provider's reason.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from llm_gateway.api.errors import GatewayError
from llm_gateway.api.schemas import ChatCompletionRequest
from llm_gateway.config import load_settings
from llm_gateway.gateway import build_gateway
from llm_gateway.observability import metrics as m
from llm_gateway.observability.metrics import RecordingMetrics
from llm_gateway.routing.circuit_breaker import reset_local_counters

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "providers" / "openai"
CLIENT_KEY = "client-key-for-caller-error-tests-0123456789"
ECHOES = {
    "get_daily_report": "Invalid schema for function 'get_daily_report': 'minimum' is not permitted.",
    "bill_billing_account": "Invalid schema for function 'bill_billing_account': None is not of type 'object'.",
    "rate_per_day": "Invalid 'tools[0].function.description': 'rate per day' is too long.",
    "check_invalid_token": "Invalid parameter: function 'check_invalid_token' has an invalid token in 'pattern'.",
    "quota_tool": "You exceeded your current quota in 'messages[0].content': this text came from the caller.",
}


def _provider(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    names = [tool["function"]["name"] for tool in body.get("tools") or []]
    for name in names:
        if name in ECHOES:
            error = {"message": ECHOES[name], "type": "invalid_request_error", "param": "tools", "code": None}
            return httpx.Response(400, json={"error": error})
    return httpx.Response(200, content=(FIXTURES / "chat_text.json").read_bytes(),
                          headers={"content-type": "application/json"})


def _request(tool: str | None = None) -> ChatCompletionRequest:
    body: dict = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    if tool:
        body["tools"] = [{"type": "function", "function": {"name": tool, "parameters": {"type": "object"}}}]
    return ChatCompletionRequest.model_validate(body)


@pytest.fixture
def gateway():
    reset_local_counters()
    client = httpx.Client(transport=httpx.MockTransport(_provider))
    settings = load_settings({"OPENAI_API_KEY": "sk-openai-test-key", "LLM_GATEWAY_API_KEYS": CLIENT_KEY})
    gateway = build_gateway(settings, metrics=RecordingMetrics(), http_client=client)
    yield gateway
    client.close()
    reset_local_counters()


@pytest.mark.parametrize("tool", sorted(ECHOES))
def test_an_echoed_word_never_cools_down_or_breaks_the_model(gateway, tool):
    caller = gateway.authenticate(f"Bearer {CLIENT_KEY}")
    for _ in range(5):  # more than the breaker threshold (3)
        with pytest.raises(GatewayError) as info:
            gateway.chat(_request(tool), caller, "req-bad")
        error = info.value
        assert error.status == 400, error.body()
        assert error.body()["error"]["type"] == "invalid_request_error"
        assert ECHOES[tool] in error.body()["error"]["message"]  # the provider's reason reaches the caller
    outcome = gateway.chat(_request(), caller, "req-good")  # the same pinned model still serves
    assert outcome.status == 200
    assert outcome.headers["x-gateway-model"] == "gpt-4o-mini"
    assert gateway.metrics.total(m.RATE_LIMITED) == 0
    assert gateway.metrics.total(m.USER_VISIBLE_ERRORS) == 0
    status = json.dumps(gateway.status())
    assert "quota_exhausted" not in status and "OPEN" not in status.upper().replace("OPENAI", "")
