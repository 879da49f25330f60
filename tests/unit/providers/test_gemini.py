"""Gemini adapter against synthesized generateContent payloads (providers.md §5, §9)."""

from __future__ import annotations

import json

import pytest

from llm_gateway.providers.base import SSEEvent, StreamState
from llm_gateway.providers.gemini import tool_call_id
from tests.unit.providers.helpers import PNG_DATA_URL, adapter, load_json, parse_error, replay, request

P = "gemini"


def body_of(name: str, **overrides: object) -> dict:
    return adapter(P).build_request(request(name, **overrides), "gemini-2.5-flash", stream=False).json


# --- requests ---------------------------------------------------------------------------------------
def test_plain_request_url_auth_and_contents() -> None:
    spec = adapter(P).build_request(request("plain"), "gemini-2.5-flash", stream=False)
    assert spec.method == "POST"
    assert spec.url == "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
    assert spec.headers["x-goog-api-key"] == "test-key"
    assert "Authorization" not in spec.headers
    assert spec.json == {"contents": [{"role": "user", "parts": [{"text": "What is the capital of France?"}]}]}


def test_stream_request_uses_sse_endpoint() -> None:
    spec = adapter(P).build_request(request("plain"), "models/gemini-2.5-flash", stream=True)
    assert spec.url.endswith("/v1beta/models/gemini-2.5-flash:streamGenerateContent")
    assert spec.params == {"alt": "sse"}


def test_system_prompt_and_generation_config() -> None:
    body = body_of("system")
    assert body["systemInstruction"] == {"parts": [{"text": "Answer in one sentence."}]}
    assert [c["role"] for c in body["contents"]] == ["user"]
    assert body["generationConfig"] == {
        "temperature": 0.2, "topP": 0.9, "seed": 7, "maxOutputTokens": 64, "stopSequences": ["\n\n"],
    }


def test_developer_role_is_a_system_instruction_too() -> None:
    body = body_of("plain", messages=[{"role": "developer", "content": "Be terse."},
                                      {"role": "user", "content": "hi"}])
    assert body["systemInstruction"]["parts"] == [{"text": "Be terse."}]


def test_multi_turn_maps_assistant_to_model() -> None:
    body = body_of("multi_turn")
    assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]
    assert body["contents"][1]["parts"] == [{"text": "Paris."}]


def test_consecutive_same_role_turns_are_merged() -> None:
    body = body_of("plain", messages=[{"role": "user", "content": "one"}, {"role": "user", "content": "two"}])
    assert body["contents"] == [{"role": "user", "parts": [{"text": "one"}, {"text": "two"}]}]


def test_tools_are_translated_and_required_means_any() -> None:
    body = body_of("tools")
    decls = body["tools"][0]["functionDeclarations"]
    assert [d["name"] for d in decls] == ["get_weather", "get_time"]
    weather = decls[0]
    assert weather["description"] == "Current weather for a city."
    assert weather["parameters"] == {
        "type": "OBJECT",
        "properties": {"city": {"type": "STRING", "description": "City name"},
                       "unit": {"type": "STRING", "nullable": True, "enum": ["c", "f"]}},
        "required": ["city"],
    }
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}


@pytest.mark.parametrize(("choice", "expected"), [
    ("auto", {"mode": "AUTO"}),
    ("none", {"mode": "NONE"}),
    ({"type": "function", "function": {"name": "get_weather"}}, {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}),
])
def test_tool_choice(choice: object, expected: dict) -> None:
    assert body_of("tools", tool_choice=choice)["toolConfig"]["functionCallingConfig"] == expected


def test_tool_without_parameters_omits_them() -> None:
    tool = {"type": "function", "function": {"name": "now", "parameters": {"type": "object", "properties": {}}}}
    body = body_of("tools", tools=[tool], tool_choice="auto")
    assert body["tools"][0]["functionDeclarations"] == [{"name": "now"}]


def test_tool_result_follow_up_becomes_function_response() -> None:
    body = body_of("tool_result")
    assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]
    assert body["contents"][1]["parts"] == [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}]
    assert body["contents"][2]["parts"] == [
        {"functionResponse": {"name": "get_weather", "response": {"temp_c": 21, "sky": "clear"}}}]
    assert "toolConfig" not in body


def test_parallel_tool_results_share_one_user_turn_and_plain_text_is_wrapped() -> None:
    req = request("tool_result")
    messages = [m.model_dump(exclude_none=True) for m in req.messages]
    messages[1]["tool_calls"].append({"id": "call_2", "type": "function",
                                      "function": {"name": "get_time", "arguments": "{}"}})
    messages.append({"role": "tool", "tool_call_id": "call_2", "content": "12:00"})
    body = body_of("tool_result", messages=messages)
    assert len(body["contents"]) == 3
    assert body["contents"][2]["parts"][1] == {"functionResponse": {"name": "get_time", "response": {"result": "12:00"}}}


def test_json_object_and_json_schema() -> None:
    assert body_of("json_object")["generationConfig"] == {"responseMimeType": "application/json"}
    config = body_of("json_schema")["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseSchema"] == {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}, "required": ["city"]}


def test_images_inline_and_by_uri() -> None:
    parts = body_of("image")["contents"][0]["parts"]
    assert parts[0] == {"text": "What is in these images?"}
    assert parts[1] == {"inlineData": {"mimeType": "image/png", "data": PNG_DATA_URL.split(",", 1)[1]}}
    assert parts[2] == {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/cat.jpg"}}


# --- responses --------------------------------------------------------------------------------------
def test_text_response() -> None:
    completion = adapter(P).parse_response(load_json(P, "chat_text.json"), "gemini-2.5-flash")
    choice = completion.choices[0]
    assert choice.message.content == "Paris is the capital of France."
    assert choice.finish_reason == "stop"
    assert completion.id == "yY3faL3kJ9ejnvgPlPXx0Ac"
    usage = completion.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (14, 31, 45)
    assert usage.completion_tokens_details.reasoning_tokens == 24


def test_tool_call_response_synthesizes_stable_ids() -> None:
    body = load_json(P, "chat_tool_calls.json")
    first = adapter(P).parse_response(body, "gemini-2.5-flash")
    again = adapter(P).parse_response(load_json(P, "chat_tool_calls.json"), "gemini-2.5-flash")
    calls = first.choices[0].message.tool_calls
    assert first.choices[0].finish_reason == "tool_calls"
    assert first.choices[0].message.content is None
    assert [c.function.name for c in calls] == ["get_weather", "get_time"]
    assert json.loads(calls[0].function.arguments) == {"city": "Paris", "unit": "c"}
    assert calls[0].id.startswith("call_") and calls[0].id != calls[1].id
    assert [c.id for c in calls] == [c.id for c in again.choices[0].message.tool_calls]
    assert first.usage.prompt_tokens_details.cached_tokens == 32
    assert first.usage.completion_tokens == 31 + 71


def test_blocked_prompt_is_content_filter() -> None:
    completion = adapter(P).parse_response(load_json(P, "chat_blocked.json"), "gemini-2.5-flash")
    assert completion.choices[0].finish_reason == "content_filter"
    assert completion.choices[0].message.content is None


def test_max_tokens_is_length() -> None:
    completion = adapter(P).parse_response(load_json(P, "chat_max_tokens.json"), "gemini-2.5-flash-lite")
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage.completion_tokens_details is None


@pytest.mark.parametrize(("raw", "calls", "expected"), [
    ("STOP", False, "stop"), ("STOP", True, "tool_calls"), ("MAX_TOKENS", False, "length"),
    ("SAFETY", False, "content_filter"), ("RECITATION", False, "content_filter"), ("SPII", False, "content_filter"),
    ("IMAGE_SAFETY", False, "content_filter"), ("MALFORMED_FUNCTION_CALL", False, "stop"), ("OTHER", False, "stop"),
])
def test_finish_reason_table(raw: str, calls: bool, expected: str) -> None:
    from llm_gateway.providers.gemini import finish_reason

    assert finish_reason(raw, calls) == expected


def test_models_list_drops_prefix_and_non_chat_models() -> None:
    assert adapter(P).parse_models(load_json(P, "models.json")) == ["gemini-2.5-flash", "gemini-2.5-flash-lite"]
    spec = adapter(P).models_request()
    assert spec.url == "https://generativelanguage.googleapis.com/v1beta/models"


# --- streams ----------------------------------------------------------------------------------------
def test_text_stream_ends_on_finish_reason_with_usage() -> None:
    out = replay(P, "stream_text.sse")
    assert out.content == "Paris is the capital of France."
    assert out.finish_reason == "stop"
    assert out.state.done
    assert out.chunks[0].choices[0].delta.role == "assistant"
    assert (out.usage.prompt_tokens, out.usage.completion_tokens) == (14, 26)
    assert sum(1 for c in out.chunks if c.usage) == 1


def test_tool_stream_skips_thoughts_and_emits_whole_calls() -> None:
    out = replay(P, "stream_tools.sse")
    assert out.content == ""
    assert out.finish_reason == "tool_calls"
    assert [c["name"] for c in out.tool_calls.values()] == ["get_weather", "get_time"]
    assert json.loads(out.tool_calls[1]["arguments"]) == {"tz": "Europe/Paris"}
    assert out.tool_calls[0]["id"] == tool_call_id("get_weather", 0, {"city": "Paris"})
    assert out.usage.completion_tokens == 25 + 47


def test_error_object_mid_stream_raises() -> None:
    with pytest.raises(Exception) as info:
        replay(P, "stream_error.sse")
    assert info.value.code == "UNAVAILABLE"
    assert info.value.status == 503


def test_empty_keepalive_chunk_yields_nothing() -> None:
    state = StreamState(model="m", response_id="r", created=1, extra={"started": True})
    assert adapter(P).parse_stream_event(SSEEvent(data='{"candidates": [{"content": {"parts": []}}]}'), state) == []
    assert not state.done


# --- errors and limits ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("case", "status", "code"), [
    ("bad_request", 400, "INVALID_ARGUMENT"),
    ("unauthorized", 400, "API_KEY_INVALID"),
    ("forbidden", 403, "PERMISSION_DENIED"),
    ("model_not_found", 404, "NOT_FOUND"),
    ("rate_limited", 429, "RESOURCE_EXHAUSTED"),
    ("server_error", 500, "INTERNAL"),
    ("unavailable", 503, "UNAVAILABLE"),
    ("context_length", 400, "context_length_exceeded"),
])
def test_error_normalization(case: str, status: int, code: str) -> None:
    error = parse_error(P, case)
    assert (error.status, error.code, error.provider) == (status, code, P)
    assert error.provider_message
    assert "test-key" not in str(error)


def test_429_retry_delay_and_quota() -> None:
    limits = parse_error(P, "rate_limited").rate_limit
    assert limits.retry_after_s == 34
    assert (limits.limit_requests, limits.remaining_requests, limits.requests_window_s) == (10, 0, 60)


def test_429_daily_quota_with_millisecond_delay() -> None:
    limits = parse_error(P, "rate_limited_daily_ms").rate_limit
    assert limits.retry_after_s == pytest.approx(0.9)
    assert (limits.limit_requests, limits.requests_window_s) == (250, 86_400)


def test_429_retry_hint_from_message_when_no_retry_info() -> None:
    assert parse_error(P, "rate_limited_message_only").rate_limit.retry_after_s == pytest.approx(12.5)


def test_non_json_error_body() -> None:
    error = adapter(P).parse_error(502, {}, b"<html>Bad Gateway</html>", "m")
    assert (error.status, error.code, error.rate_limit) == (502, None, None)


def test_no_rate_limit_headers_but_retry_after_is_honoured() -> None:
    assert adapter(P).parse_rate_limits({"content-type": "application/json"}) is None
    assert adapter(P).parse_rate_limits({"Retry-After": "3"}).retry_after_s == 3


def test_a_file_the_request_named_is_the_callers_problem_not_a_rejected_key() -> None:
    """Gemini answers a `fileData` URI its key cannot read with 403 PERMISSION_DENIED, the same
    status as a rejected key: the wording says which, so one caller cannot trip the provider."""
    from llm_gateway.retry.classifier import Action, ErrorClass, classify

    file_error = classify(parse_error(P, "file_forbidden"))
    assert file_error.error_class is ErrorClass.BAD_REQUEST and file_error.action is Action.RETURN
    assert not file_error.counts_for_circuit
    assert classify(parse_error(P, "forbidden")).error_class is ErrorClass.AUTH  # a real key problem stays one
