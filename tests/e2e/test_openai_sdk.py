"""The official `openai` SDK against the local gateway (the same handler Lambda runs) on fakes."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
            "required": ["city", "unit"],
        },
    },
}


def test_models_list_has_auto_aliases_and_pinned_ids(client):
    ids = {model.id for model in client.models.list()}
    assert {"auto", "auto:small", "auto:large", "auto:reasoning"} <= ids
    assert any(i.startswith("groq/") for i in ids)
    assert any(i.startswith("openai/") for i in ids)


def test_chat_auto_answers_with_gateway_headers(client):
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "Say hello"}]
    )
    completion = raw.parse()
    assert completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.total_tokens > 0
    for name in ("x-gateway-provider", "x-gateway-model", "x-gateway-attempts", "x-gateway-cost-usd", "x-request-id"):
        assert raw.headers.get(name), name
    assert int(raw.headers["x-gateway-attempts"]) >= 1


def test_streaming_yields_text_then_ends(client):
    stream = client.chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "Stream please"}], stream=True,
        stream_options={"include_usage": True},
    )
    text, usage, finish = "", None, None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
    assert text
    assert finish == "stop"
    assert usage is not None and usage.completion_tokens > 0


def test_streaming_without_usage_option_sends_no_usage_chunk(client):
    chunks = list(client.chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "hi"}], stream=True
    ))
    assert chunks and all(chunk.usage is None for chunk in chunks)


def test_tool_call_then_follow_up_with_result(client):
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = client.chat.completions.create(
        model="auto", messages=messages, tools=[WEATHER_TOOL], tool_choice="required"
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather"
    args = json.loads(call.function.arguments)
    assert isinstance(args["city"], str) and args["unit"] in {"c", "f"}

    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "18 degrees and sunny"},
    ]
    second = client.chat.completions.create(model="auto", messages=messages, tools=[WEATHER_TOOL])
    assert "18 degrees and sunny" in (second.choices[0].message.content or "")


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "user", "content": "hi"}], "temperature": "hot"}, "temperature"),
        ({"messages": [{"role": "user", "content": "hi"}], "model": "no-such-model"}, "model"),
        ({"messages": [{"role": "wizard", "content": "hi"}]}, "messages[0]"),
        ({"messages": [{"role": "user", "content": "hi"}], "n": 2}, "n"),
    ],
)
def test_bad_requests_are_clean_400s(client, kwargs, param):
    kwargs = {"model": "auto", **kwargs}
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(**kwargs)
    error = info.value.body
    assert info.value.status_code == 400
    assert error["param"].startswith(param)
    assert error["type"] == "invalid_request_error"
    assert error["message"]


def test_wrong_key_is_401(gateway_url):
    bad = openai.OpenAI(base_url=f"{gateway_url}/v1", api_key="not-the-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()


def test_malformed_json_and_unknown_route(gateway_url):
    headers = {"Authorization": "Bearer local-dev-key", "content-type": "application/json"}
    response = httpx.post(f"{gateway_url}/v1/chat/completions", content=b"{not json", headers=headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"
    response = httpx.get(f"{gateway_url}/v1/nothing-here", headers=headers)
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "invalid_request_error"
