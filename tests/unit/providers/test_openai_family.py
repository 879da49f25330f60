"""OpenAI and Groq (the same adapter, two dialects) against synthesized payloads (providers.md §3, §4)."""

from __future__ import annotations

import json

import pytest

from llm_gateway.providers.base import ProviderError, SSEEvent, StreamState
from llm_gateway.retry.classifier import ErrorClass, classify
from tests.unit.providers.helpers import (
    PNG_DATA_URL,
    TOOL_CALL_ID,
    adapter,
    load_json,
    parse_error,
    replay,
    request,
)

URLS = {"openai": "https://api.openai.com/v1/chat/completions",
        "groq": "https://api.groq.com/openai/v1/chat/completions"}
both = pytest.mark.parametrize("p", ["openai", "groq"])


def body_of(p: str, name: str, stream: bool = False, **overrides: object) -> dict:
    return adapter(p).build_request(request(name, **overrides), "model-x", stream=stream).json


# --- requests ---------------------------------------------------------------------------------------
@both
def test_plain_request(p: str) -> None:
    spec = adapter(p).build_request(request("plain"), "model-x", stream=False)
    assert spec.url == URLS[p]
    assert spec.headers["Authorization"] == "Bearer test-key"
    assert spec.json == {"model": "model-x", "messages": [{"role": "user", "content": "What is the capital of France?"}]}


def test_stream_usage_request_differs_by_dialect() -> None:
    assert body_of("openai", "plain", stream=True)["stream_options"] == {"include_usage": True}
    assert "stream_options" not in body_of("groq", "plain", stream=True)


@both
def test_system_prompt_and_params(p: str) -> None:
    body = body_of(p, "system")
    assert body["messages"][0] == {"role": "system", "content": "Answer in one sentence."}
    assert body["max_completion_tokens"] == 64
    assert (body["temperature"], body["top_p"], body["seed"], body["stop"]) == (0.2, 0.9, 7, ["\n\n"])


@both
def test_parameters_some_models_honour_are_passed_on(p: str) -> None:
    """Selection sends these only to models whose catalog entry lists them; the adapter passes them."""
    body = body_of(p, "plain", logprobs=True, top_logprobs=2, logit_bias={"42": -100}, reasoning_effort="low")
    assert (body["logprobs"], body["top_logprobs"], body["logit_bias"], body["reasoning_effort"]) == (
        True, 2, {"42": -100}, "low")
    assert not {"logprobs", "top_logprobs", "logit_bias", "reasoning_effort"} & set(body_of(p, "plain"))


@both
def test_multi_turn(p: str) -> None:
    assert [m["role"] for m in body_of(p, "multi_turn")["messages"]] == ["system", "user", "assistant", "user"]


@both
def test_tools_and_tool_choice(p: str) -> None:
    body = body_of(p, "tools")
    assert body["tool_choice"] == "required"
    assert body["tools"][0]["function"]["strict"] is True
    assert body_of(p, "tool_named")["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}


@both
def test_tool_result_follow_up_keeps_ids(p: str) -> None:
    messages = body_of(p, "tool_result")["messages"]
    assert messages[1]["tool_calls"][0]["id"] == TOOL_CALL_ID
    assert messages[2] == {"role": "tool", "tool_call_id": TOOL_CALL_ID, "content": "{\"temp_c\": 21, \"sky\": \"clear\"}"}


@both
def test_json_output(p: str) -> None:
    assert body_of(p, "json_object")["response_format"] == {"type": "json_object"}
    schema = body_of(p, "json_schema")["response_format"]["json_schema"]
    assert schema["name"] == "capital" and schema["schema"]["required"] == ["city"]


@both
def test_images(p: str) -> None:
    content = body_of(p, "image")["messages"][0]["content"]
    assert content[1] == {"type": "image_url", "image_url": {"url": PNG_DATA_URL}}


# --- responses --------------------------------------------------------------------------------------
@both
def test_text_response(p: str) -> None:
    completion = adapter(p).parse_response(load_json(p, "chat_text.json"), "model-x")
    assert completion.choices[0].message.content == "Paris is the capital of France."
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens


@both
def test_tool_call_response(p: str) -> None:
    completion = adapter(p).parse_response(load_json(p, "chat_tool_calls.json"), "model-x")
    call = completion.choices[0].message.tool_calls[0]
    assert completion.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments)["city"] == "Paris"


def test_openai_cached_tokens() -> None:
    usage = adapter("openai").parse_response(load_json("openai", "chat_tool_calls.json"), "m").usage
    assert usage.prompt_tokens_details.cached_tokens == 64


@both
def test_models_list(p: str) -> None:
    ids = adapter(p).parse_models(load_json(p, "models.json"))
    assert ids[0] in ("gpt-4o-mini", "llama-3.1-8b-instant")


# --- streams ----------------------------------------------------------------------------------------
@both
def test_text_stream(p: str) -> None:
    out = replay(p, "stream_text.sse")
    assert out.content == "Paris is the capital."
    assert out.finish_reason == "stop" and out.state.done
    assert out.usage is not None and out.usage.completion_tokens == 5


def test_openai_fragmented_parallel_tool_calls() -> None:
    out = replay("openai", "stream_tools.sse")
    assert out.finish_reason == "tool_calls"
    assert json.loads(out.tool_calls[0]["arguments"]) == {"city": "Paris"}
    assert out.tool_calls[1]["name"] == "get_time"
    assert out.usage.total_tokens == 137


def test_groq_tool_stream_usage_from_x_groq() -> None:
    out = replay("groq", "stream_tools.sse")
    assert out.tool_calls[0]["id"] == "call_r8wd"
    assert out.finish_reason == "tool_calls"
    assert out.usage.completion_tokens == 439


@both
def test_error_event_mid_stream_raises(p: str) -> None:
    state = StreamState(model="m", response_id="r", created=1)
    event = SSEEvent(data='{"error": {"message": "overloaded", "type": "server_error", "code": "overloaded"}}')
    with pytest.raises(ProviderError) as info:
        adapter(p).parse_stream_event(event, state)
    assert info.value.code == "overloaded"


@pytest.mark.parametrize("where", ["error", "x_groq"])
@pytest.mark.parametrize("code", ["tool_use_failed", "json_validate_failed", "some_new_code"])
def test_a_request_s_own_error_reported_mid_stream_is_the_caller_s_not_the_provider_s(where: str, code: str) -> None:
    """An answer sent whole is read as a stream, so a 400 the caller's request causes (Groq: the
    model failed to call the caller's tools, or to produce the caller's JSON schema) can arrive
    inside the stream, with no HTTP status. Classified as a server error, it opened breakers and
    ranked the provider last for every caller; OpenAI's `type` says whose error it is."""
    error = {"message": "Failed to call a function.", "type": "invalid_request_error", "code": code}
    payload = {"error": error} if where == "error" else {
        "id": "r", "object": "chat.completion.chunk", "choices": [], "x_groq": {"error": error}}
    state = StreamState(model="m", response_id="r", created=1)
    with pytest.raises(ProviderError) as info:
        adapter("groq").parse_stream_event(SSEEvent(data=json.dumps(payload)), state)
    assert classify(info.value).error_class is ErrorClass.BAD_REQUEST
    assert not classify(info.value).counts_for_circuit


# --- errors and limits ---------------------------------------------------------------------------------
@both
@pytest.mark.parametrize(("case", "status", "codes"), [
    ("bad_request", 400, {"invalid_value", "tool_use_failed"}),
    ("unauthorized", 401, {"invalid_api_key"}),
    ("model_not_found", 404, {"model_not_found"}),
    ("rate_limited", 429, {"rate_limit_exceeded"}),
    ("server_error", 500, {"server_error", "internal_server_error"}),
    ("unavailable", 503, {"server_error", "service_unavailable"}),
    ("context_length", 400, {"context_length_exceeded"}),
])
def test_error_normalization(p: str, case: str, status: int, codes: set[str]) -> None:
    error = parse_error(p, case)
    assert error.status == status
    assert error.code in codes
    assert error.provider_message


def test_openai_429_headers() -> None:
    limits = parse_error("openai", "rate_limited").rate_limit
    assert limits.retry_after_s == 19
    assert (limits.limit_requests, limits.remaining_requests) == (500, 499)
    assert limits.reset_requests_s == pytest.approx(0.12)
    assert (limits.remaining_tokens, limits.reset_tokens_s) == (0, pytest.approx(18.642))
    assert limits.requests_window_s == 60
    assert limits.cooldown_s() == pytest.approx(19)


def test_groq_429_headers_count_requests_per_day() -> None:
    limits = parse_error("groq", "rate_limited").rate_limit
    assert limits.requests_window_s == 86_400
    assert limits.reset_requests_s == pytest.approx(179.56)
    assert (limits.limit_tokens, limits.remaining_tokens) == (6000, 0)
    assert limits.retry_after_s == 6


@both
def test_no_headers_no_limits(p: str) -> None:
    assert adapter(p).parse_rate_limits({"content-type": "application/json"}) is None


def test_groq_error_inside_a_chunk_fails_the_stream():
    groq = adapter("groq")
    state = StreamState(model="llama-3.1-8b-instant", response_id="x", created=1)
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [],
             "x_groq": {"id": "req_1", "error": {"message": "model overloaded", "type": "server_error", "code": "overloaded"}}}
    with pytest.raises(ProviderError) as info:
        groq.parse_stream_event(SSEEvent(data=json.dumps(chunk)), state)
    assert info.value.code == "overloaded"


def test_openai_compatible_drop_params_from_json_options() -> None:
    """A list of names, or one name as a string: never split into its letters."""
    from llm_gateway.providers.openai_compatible import dialect_from_options

    assert dialect_from_options({"drop_params": ["user", "seed"]}).drop_params == {"user", "seed"}
    assert dialect_from_options({"drop_params": "user"}).drop_params == {"user"}
    assert dialect_from_options({}).drop_params == frozenset()


@pytest.mark.parametrize("usage", [
    {"prompt_tokens": 19, "completion_tokens": 8, "total_tokens": 27},
    {"prompt_tokens": 19, "completion_tokens": 8, "prompt_tokens_details": {"cached_tokens": 3},
     "completion_tokens_details": {"reasoning_tokens": 5}},
    {"prompt_tokens": None, "completion_tokens_details": {"reasoning_tokens": 0}, "prompt_tokens_details": {}},
])
def test_usage_in_a_completion_is_what_usage_of_makes(usage: dict[str, object]) -> None:
    from llm_gateway.api.schemas import Usage
    from llm_gateway.providers.openai import OpenAIAdapter

    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")  # type: ignore[attr-defined]
    reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens")  # type: ignore[attr-defined]
    expected = Usage.of(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0),  # type: ignore[call-overload]
                        cached=cached, reasoning=reasoning)
    adapter = OpenAIAdapter.__new__(OpenAIAdapter)
    completion = adapter.parse_response({"id": "x", "model": "m", "choices": [], "usage": usage}, "m")
    assert completion.usage == expected
    assert completion.usage.model_dump(exclude_none=True) == expected.model_dump(exclude_none=True)
    assert adapter.parse_usage(usage) == expected
