"""Cohere v2 adapter against synthesized /v2/chat payloads and event streams (providers.md §6, §9)."""

from __future__ import annotations

import json

import pytest

from llm_gateway.providers.base import ProviderError, SSEEvent, StreamState
from tests.unit.providers.helpers import (
    PNG_DATA_URL,
    TOOL_CALL_ID,
    adapter,
    load_json,
    parse_error,
    replay,
    request,
)

P = "cohere"


def body_of(name: str, **overrides: object) -> dict:
    return adapter(P).build_request(request(name, **overrides), "command-r7b-12-2024", stream=False).json


# --- requests ---------------------------------------------------------------------------------------
def test_plain_request() -> None:
    spec = adapter(P).build_request(request("plain"), "command-r7b-12-2024", stream=False)
    assert spec.url == "https://api.cohere.com/v2/chat"
    assert spec.headers["Authorization"] == "Bearer test-key"
    assert spec.json == {"model": "command-r7b-12-2024",
                         "messages": [{"role": "user", "content": "What is the capital of France?"}]}


def test_stream_flag() -> None:
    spec = adapter(P).build_request(request("plain"), "command-r7b-12-2024", stream=True)
    assert spec.json["stream"] is True
    assert spec.headers["Accept"] == "text/event-stream"


def test_system_prompt_and_sampling() -> None:
    body = body_of("system")
    assert body["messages"][0] == {"role": "system", "content": "Answer in one sentence."}
    assert {k: body[k] for k in ("temperature", "p", "max_tokens", "stop_sequences", "seed")} == {
        "temperature": 0.2, "p": 0.9, "max_tokens": 64, "stop_sequences": ["\n\n"], "seed": 7}
    assert "top_p" not in body


def test_multi_turn() -> None:
    assert [m["role"] for m in body_of("multi_turn")["messages"]] == ["system", "user", "assistant", "user"]
    assert body_of("multi_turn")["messages"][2] == {"role": "assistant", "content": "Paris."}


def test_tools_and_required_choice() -> None:
    body = body_of("tools")
    assert body["tool_choice"] == "REQUIRED"
    assert [t["function"]["name"] for t in body["tools"]] == ["get_weather", "get_time"]
    assert body["tools"][0]["function"]["parameters"]["required"] == ["city"]
    assert body["strict_tools"] is True
    assert "strict" not in body["tools"][0]["function"]


def test_named_tool_choice_sends_only_that_tool() -> None:
    body = body_of("tool_named")
    assert [t["function"]["name"] for t in body["tools"]] == ["get_weather"]
    assert body["tool_choice"] == "REQUIRED"


@pytest.mark.parametrize(("choice", "expected"), [("auto", None), ("none", "NONE")])
def test_auto_omits_and_none_sends_none(choice: str, expected: str | None) -> None:
    assert body_of("tools", tool_choice=choice).get("tool_choice") == expected


def test_tool_result_follow_up() -> None:
    messages = body_of("tool_result")["messages"]
    assert messages[1] == {"role": "assistant", "tool_calls": [
        {"id": TOOL_CALL_ID, "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]}
    assert messages[2] == {"role": "tool", "tool_call_id": TOOL_CALL_ID, "content": "{\"temp_c\": 21, \"sky\": \"clear\"}"}


def test_assistant_text_next_to_tool_calls_becomes_tool_plan() -> None:
    req = request("tool_result")
    messages = [m.model_dump(exclude_none=True) for m in req.messages]
    messages[1]["content"] = "I will look it up."
    assert body_of("tool_result", messages=messages)["messages"][1]["tool_plan"] == "I will look it up."


def test_json_formats() -> None:
    assert body_of("json_object")["response_format"] == {"type": "json_object"}
    fmt = body_of("json_schema")["response_format"]
    assert fmt["type"] == "json_object"
    assert fmt["json_schema"]["properties"] == {"city": {"type": "string"}}


def test_images() -> None:
    content = body_of("image")["messages"][0]["content"]
    assert content[0] == {"type": "text", "text": "What is in these images?"}
    assert content[1] == {"type": "image_url", "image_url": {"url": PNG_DATA_URL}}
    assert content[2] == {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "low"}}


# --- responses --------------------------------------------------------------------------------------
def test_text_response_uses_tokens_usage() -> None:
    completion = adapter(P).parse_response(load_json(P, "chat_text.json"), "command-r7b-12-2024")
    assert completion.choices[0].message.content == "Paris is the capital of France."
    assert completion.choices[0].finish_reason == "stop"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (503, 8)


def test_tool_call_response() -> None:
    completion = adapter(P).parse_response(load_json(P, "chat_tool_calls.json"), "command-r7b-12-2024")
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "I will look up the weather in Paris."
    call = choice.message.tool_calls[0]
    assert (call.id, call.function.name) == ("get_weather_j3f0adww9pmr", "get_weather")
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    assert completion.usage.prompt_tokens_details.cached_tokens == 512


def test_billed_units_fallback_and_max_tokens() -> None:
    completion = adapter(P).parse_response(load_json(P, "chat_billed_only.json"), "m")
    assert completion.choices[0].finish_reason == "length"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (9, 2)


def test_error_finish_reason_raises() -> None:
    with pytest.raises(ProviderError) as info:
        adapter(P).parse_response(load_json(P, "chat_error_finish.json"), "m")
    assert info.value.code == "error"


def test_models_list() -> None:
    assert adapter(P).parse_models(load_json(P, "models.json")) == ["command-r7b-12-2024", "command-a-03-2025"]
    spec = adapter(P).models_request()
    assert spec.url == "https://api.cohere.com/v1/models"
    assert spec.params["endpoint"] == "chat"


# --- streams ----------------------------------------------------------------------------------------
def test_text_stream() -> None:
    out = replay(P, "stream_text.sse")
    assert out.content == "Paris is the capital."
    assert out.finish_reason == "stop"
    assert out.state.done and out.events_after_done == 1  # the trailing [DONE] is never needed
    assert out.chunks[0].choices[0].delta.role == "assistant"
    assert out.chunks[0].id == "29f14a5a-11de-4cae-9800-25e4747408ea"
    assert (out.usage.prompt_tokens, out.usage.completion_tokens) == (503, 5)


def test_tool_stream() -> None:
    out = replay(P, "stream_tools.sse")
    assert out.finish_reason == "tool_calls"
    assert out.content == "I will look up the weather."
    assert out.tool_calls[0]["id"] == "get_weather_nsz5zm3w56q3"
    assert json.loads(out.tool_calls[0]["arguments"]) == {"city": "Paris"}
    assert out.tool_calls[1]["name"] == "get_time"
    assert json.loads(out.tool_calls[1]["arguments"]) == {"tz": "Europe/Paris"}
    assert out.usage.completion_tokens == 74


def test_stream_message_end_error_raises() -> None:
    with pytest.raises(ProviderError) as info:
        replay(P, "stream_error.sse")
    assert info.value.code == "error"
    assert info.value.provider_message == "internal error while generating"


def test_done_sentinel_alone_ends_the_stream() -> None:
    state = StreamState(model="m", response_id="r", created=1)
    assert adapter(P).parse_stream_event(SSEEvent(data="[DONE]"), state) == []
    assert state.done


# --- errors and limits ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("case", "status", "code"), [
    ("bad_request", 400, "bad_request"),
    ("unauthorized", 401, "unauthorized"),
    ("model_not_found", 404, "not_found"),
    ("rate_limited", 429, "too_many_requests"),
    ("server_error", 500, "internal_server_error"),
    ("unavailable", 503, "service_unavailable"),
    ("context_length", 400, "context_length_exceeded"),
])
def test_error_normalization(case: str, status: int, code: str) -> None:
    error = parse_error(P, case)
    assert (error.status, error.code) == (status, code)
    assert error.provider_message


def test_trial_key_headers() -> None:
    limits = parse_error(P, "rate_limited").rate_limit
    assert (limits.limit_requests, limits.remaining_requests) == (40, 0)
    assert adapter(P).parse_rate_limits({"content-type": "application/json"}) is None
