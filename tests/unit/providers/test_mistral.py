"""Mistral adapter (OpenAI dialect + overrides) against synthesized payloads (providers.md §7, §9)."""

from __future__ import annotations

import json
import re

import pytest

from llm_gateway.providers.base import ProviderError
from llm_gateway.providers.mistral import mistral_tool_call_id
from tests.unit.providers.helpers import (
    PNG_DATA_URL,
    TOOL_CALL_ID,
    adapter,
    load_json,
    parse_error,
    replay,
    request,
)

P = "mistral"


def body_of(name: str, stream: bool = False, **overrides: object) -> dict:
    return adapter(P).build_request(request(name, **overrides), "mistral-small-latest", stream=stream).json


# --- requests ---------------------------------------------------------------------------------------
def test_plain_request() -> None:
    spec = adapter(P).build_request(request("plain"), "mistral-small-latest", stream=False)
    assert spec.url == "https://api.mistral.ai/v1/chat/completions"
    assert spec.headers["Authorization"] == "Bearer test-key"
    assert spec.json == {"model": "mistral-small-latest",
                         "messages": [{"role": "user", "content": "What is the capital of France?"}]}


def test_stream_request_has_no_stream_options() -> None:
    body = body_of("plain", stream=True)
    assert body["stream"] is True
    assert "stream_options" not in body


def test_system_and_renamed_params() -> None:
    body = body_of("system", user="u-1")
    assert body["messages"][0] == {"role": "system", "content": "Answer in one sentence."}
    assert body["random_seed"] == 7 and "seed" not in body
    assert body["max_tokens"] == 64 and "max_completion_tokens" not in body
    assert "user" not in body
    assert (body["temperature"], body["top_p"], body["stop"]) == (0.2, 0.9, ["\n\n"])


def test_multi_turn_drops_message_names() -> None:
    messages = [{"role": "user", "content": "hi", "name": "alice"}]
    assert body_of("plain", messages=messages)["messages"] == [{"role": "user", "content": "hi"}]
    assert [m["role"] for m in body_of("multi_turn")["messages"]] == ["system", "user", "assistant", "user"]


def test_tools_required_becomes_any() -> None:
    body = body_of("tools")
    assert body["tool_choice"] == "any"
    assert [t["function"]["name"] for t in body["tools"]] == ["get_weather", "get_time"]
    named = body_of("tool_named")["tool_choice"]
    assert named == {"type": "function", "function": {"name": "get_weather"}}


def test_tool_result_ids_are_remapped_consistently() -> None:
    messages = body_of("tool_result")["messages"]
    new_id = messages[1]["tool_calls"][0]["id"]
    assert re.fullmatch(r"[a-zA-Z0-9]{9}", new_id)
    assert messages[2]["tool_call_id"] == new_id
    assert new_id == mistral_tool_call_id(TOOL_CALL_ID)


def test_valid_ids_are_kept() -> None:
    assert mistral_tool_call_id("yfBEybNYi") == "yfBEybNYi"
    assert mistral_tool_call_id("call_a") != mistral_tool_call_id("call_b")


def test_json_formats() -> None:
    assert body_of("json_object")["response_format"] == {"type": "json_object"}
    fmt = body_of("json_schema")["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["schema"]["required"] == ["city"]


def test_images_pass_through() -> None:
    content = body_of("image")["messages"][0]["content"]
    assert content[1] == {"type": "image_url", "image_url": {"url": PNG_DATA_URL}}


# --- responses --------------------------------------------------------------------------------------
def test_text_response() -> None:
    completion = adapter(P).parse_response(load_json(P, "chat_text.json"), "mistral-small-latest")
    assert completion.choices[0].message.content == "Paris is the capital of France."
    assert completion.choices[0].finish_reason == "stop"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (10, 8)


def test_tool_call_response_keeps_mistral_ids() -> None:
    completion = adapter(P).parse_response(load_json(P, "chat_tool_calls.json"), "mistral-small-latest")
    calls = completion.choices[0].message.tool_calls
    assert completion.choices[0].finish_reason == "tool_calls"
    assert [c.id for c in calls] == ["yfBEybNYi", "Qx7eLm2kW"]
    assert json.loads(calls[1].function.arguments) == {"tz": "Europe/Paris"}  # sent as an object


def test_reasoning_chunks_and_model_length() -> None:
    completion = adapter(P).parse_response(load_json(P, "chat_reasoning.json"), "magistral-small-latest")
    assert completion.choices[0].message.content == "Paris."
    assert completion.choices[0].finish_reason == "length"


def test_error_finish_reason_raises() -> None:
    with pytest.raises(ProviderError):
        adapter(P).parse_response(load_json(P, "chat_error_finish.json"), "m")


def test_models_list() -> None:
    assert adapter(P).parse_models(load_json(P, "models.json")) == ["mistral-small-latest", "open-mistral-nemo"]
    assert adapter(P).models_request().url == "https://api.mistral.ai/v1/models"


# --- streams ----------------------------------------------------------------------------------------
def test_text_stream_usage_on_final_chunk() -> None:
    out = replay(P, "stream_text.sse")
    assert out.content == "Paris is the capital."
    assert out.finish_reason == "stop" and out.state.done
    assert (out.usage.prompt_tokens, out.usage.completion_tokens) == (10, 5)


def test_tool_stream_reindexes_whole_calls() -> None:
    out = replay(P, "stream_tools.sse")
    assert out.finish_reason == "tool_calls"
    assert sorted(out.tool_calls) == [0, 1]
    assert out.tool_calls[0]["id"] == "yfBEybNYi"
    assert json.loads(out.tool_calls[1]["arguments"]) == {"tz": "Europe/Paris"}
    assert out.usage.total_tokens == 161


def test_stream_error_finish_raises() -> None:
    with pytest.raises(ProviderError):
        replay(P, "stream_error.sse")


# --- errors and limits ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("case", "status", "code"), [
    ("bad_request", 400, "invalid_function_call"),
    ("validation", 422, "invalid_request_error"),
    ("unauthorized", 401, "unauthorized"),
    ("model_not_found", 400, "invalid_model"),
    ("rate_limited", 429, "rate_limited"),
    ("rate_limited_old", 429, "rate_limited"),
    ("server_error", 500, "internal_server_error"),
    ("unavailable", 503, "service_tier_capacity_exceeded"),
    ("gateway_detail", 502, None),
    ("context_length", 400, "context_length_exceeded"),
])
def test_error_normalization(case: str, status: int, code: str | None) -> None:
    error = parse_error(P, case)
    assert (error.status, error.code) == (status, code)
    assert error.provider_message


def test_validation_detail_is_kept_as_text() -> None:
    assert "extra_forbidden" in parse_error(P, "validation").provider_message


def test_rate_limit_headers() -> None:
    limits = parse_error(P, "rate_limited").rate_limit
    assert (limits.limit_requests, limits.remaining_requests, limits.requests_window_s) == (60, 0, 60)
    assert (limits.limit_tokens, limits.remaining_tokens, limits.tokens_window_s) == (500_000, 499_911, 60)
    assert parse_error(P, "rate_limited_old").rate_limit.retry_after_s == 2


def test_exhausted_monthly_budget_wins() -> None:
    limits = adapter(P).parse_rate_limits({
        "x-ratelimit-limit-tokens-minute": "500000", "x-ratelimit-remaining-tokens-minute": "400000",
        "x-ratelimit-limit-tokens-month": "1000000000", "x-ratelimit-remaining-tokens-month": "0"})
    assert (limits.limit_tokens, limits.remaining_tokens, limits.tokens_window_s) == (1_000_000_000, 0, 30 * 86_400)
    assert adapter(P).parse_rate_limits({}) is None
