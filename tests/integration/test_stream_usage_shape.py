"""`stream_options.include_usage` gives OpenAI's shape whichever provider answers.

OpenAI sends usage in one extra chunk before `[DONE]` with `"choices": []`; Groq (`x_groq.usage`),
Mistral and Cohere (`message-end`) put it on the chunk that carries `finish_reason`, and Gemini on
its last chunk. Clients written against OpenAI (the SDK's `stream.get_final_completion`, LangChain,
anything that reads `chunk.choices[0]` whenever `chunk.usage` is null) rely on OpenAI's shape, so
the gateway produces it for every provider: usage (with `cost_usd`) only in a separate final
chunk with no choices, and without `include_usage` no usage anywhere.

Through the chat handler as Lambda runs it, on the session's fake providers.
"""

from __future__ import annotations

import json
import time
from types import ModuleType
from typing import Any

import pytest

from sandbox.apigw import LocalContext, make_event, response_headers
from tests.conftest import chat_handler_on_fakes

PINNED = {
    "openai": "gpt-4o-mini",
    "groq": "llama-3.1-8b-instant",
    "gemini": "gemini-2.5-flash",
    "cohere": "command-r7b-12-2024",
    "mistral": "mistral-small-latest",
}
WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
_instances = iter(range(10**6))


@pytest.fixture
def chat(fakes, clean_gateway_env) -> ModuleType:
    monkeypatch = clean_gateway_env  # not the e2e session's environment (its state table, its fakes)
    return chat_handler_on_fakes(fakes, monkeypatch, f"stream_usage_{next(_instances)}")


def stream(module: ModuleType, body: dict[str, Any]) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """The SSE chunks of one streamed request (a pinned free model that is briefly full is retried)."""
    sent = {"content-type": "application/json", "authorization": "Bearer local-dev-key"}
    for _ in range(5):
        result = module.lambda_handler(make_event("POST", "/v1/chat/completions", sent, json.dumps(body).encode()),
                                       LocalContext(function_name="chat"))
        headers = {k.lower(): v for k, v in response_headers(result).items()}
        if result["statusCode"] != 429:
            break
        time.sleep(min(3.0, float(headers.get("retry-after", "1"))) + 0.1)
    assert result["statusCode"] == 200, result["body"]
    events = [line.removeprefix("data: ") for line in result["body"].splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    return headers, [json.loads(event) for event in events[:-1]]


def body_for(provider: str, *, include_usage: bool | None, tools: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {"model": f"{provider}/{PINNED[provider]}", "stream": True,
                            "messages": [{"role": "user", "content": "Weather in Paris?" if tools else "Who are you?"}]}
    if include_usage is not None:
        body["stream_options"] = {"include_usage": include_usage}
    if tools:
        body.update(tools=[WEATHER], tool_choice="required")
    return body


@pytest.mark.parametrize("tools", [False, True], ids=["text", "tool_call"])
@pytest.mark.parametrize("provider", sorted(PINNED))
def test_usage_comes_in_a_separate_final_chunk_without_choices(chat, provider, tools):
    headers, chunks = stream(chat, body_for(provider, include_usage=True, tools=tools))
    *answer, last = chunks
    assert last["choices"] == []
    usage = last["usage"]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["cost_usd"] == pytest.approx(float(headers["x-gateway-cost-usd"]), abs=1e-8)
    assert answer and all("usage" not in chunk for chunk in answer)
    assert all(chunk["choices"] for chunk in answer)
    finishes = [c["choices"][0]["finish_reason"] for c in answer if c["choices"][0].get("finish_reason")]
    assert finishes == ["tool_calls" if tools else "stop"]
    assert {chunk["id"] for chunk in chunks} == {answer[0]["id"]}  # the usage chunk belongs to the stream


@pytest.mark.parametrize("include_usage", [None, False], ids=["no_stream_options", "include_usage_false"])
@pytest.mark.parametrize("provider", sorted(PINNED))
def test_without_include_usage_no_chunk_carries_usage(chat, provider, include_usage):
    _headers, chunks = stream(chat, body_for(provider, include_usage=include_usage))
    assert chunks and all("usage" not in chunk for chunk in chunks)
    assert all(chunk["choices"] for chunk in chunks)  # and no empty usage-only chunk either
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
