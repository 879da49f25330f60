# ruff: noqa: F811  (pytest fixtures imported by name, then requested as parameters)
"""Contract tests: each fake driven by its provider's OFFICIAL SDK (OpenAI-family here).

If an SDK cannot parse what a fake sends, the fake is wrong. Gemini and Cohere are in
test_fakes_contract_google_cohere.py.
"""

from __future__ import annotations

import json
import re

import groq
import jsonschema
import openai
import pytest
from mistralai.client import Mistral
from mistralai.client.errors import SDKError

from sandbox.fakes import FakeFleet
from tests.fakes_fixtures import fake_fleet, fakes  # noqa: F401

WEATHER_SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "minLength": 2},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer", "minimum": 1, "maximum": 7},
        "options": {"type": "object", "properties": {"hourly": {"type": "boolean"}}, "required": ["hourly"]},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1},
    },
    "required": ["city", "unit", "days", "options"],
    "additionalProperties": False,
}
TOOLS = [
    {
        "type": "function",
        "function": {"name": "get_weather", "description": "Weather", "parameters": WEATHER_SCHEMA},
    }
]
HI = [{"role": "user", "content": "Hi there, how are you today?"}]
GO_DURATION = re.compile(r"^(\d+h)?(\d+m)?(\d+(\.\d+)?s|\d+ms)$")


def _openai(fakes: FakeFleet) -> openai.OpenAI:
    return openai.OpenAI(base_url=fakes["openai"].base_url, api_key="sk-test", max_retries=0)


def _groq(fakes: FakeFleet) -> groq.Groq:
    return groq.Groq(base_url=fakes["groq"].base_url, api_key="gsk_test", max_retries=0)


def _mistral(fakes: FakeFleet) -> Mistral:
    return Mistral(api_key="test", server_url=fakes["mistral"].base_url)


# --- OpenAI -------------------------------------------------------------------------------------


def test_openai_completion_text_and_usage(fakes: FakeFleet) -> None:
    resp = _openai(fakes).chat.completions.create(model="gpt-4o-mini", messages=HI)
    choice = resp.choices[0]
    assert (
        choice.message.content == "Hello from fake-openai gpt-4o-mini. You said: Hi there, how are you today?"
    )
    assert choice.finish_reason == "stop"
    assert resp.usage is not None
    assert resp.usage.prompt_tokens > 0 and resp.usage.completion_tokens > 0
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens
    assert resp.model == "gpt-4o-mini" and resp.object == "chat.completion"


def test_openai_stream_matches_completion_and_usage_only_on_request(fakes: FakeFleet) -> None:
    client = _openai(fakes)
    full = client.chat.completions.create(model="gpt-4o-mini", messages=HI)
    chunks = list(client.chat.completions.create(
        model="gpt-4o-mini", messages=HI, stream=True, stream_options={"include_usage": True}
    ))  # fmt: skip
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == full.choices[0].message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == full.usage.total_tokens  # type: ignore[union-attr]
    assert len({c.id for c in chunks}) == 1
    plain = list(client.chat.completions.create(model="gpt-4o-mini", messages=HI, stream=True))
    assert all(c.usage is None for c in plain) and all(c.choices for c in plain)


def test_openai_required_tool_call_satisfies_schema(fakes: FakeFleet) -> None:
    resp = _openai(fakes).chat.completions.create(
        model="gpt-4o",
        messages=HI,
        tools=TOOLS,
        tool_choice="required",  # type: ignore[arg-type]
    )
    assert resp.choices[0].finish_reason == "tool_calls"
    call = resp.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "get_weather" and call.id.startswith("call_")  # type: ignore[union-attr]
    jsonschema.validate(json.loads(call.function.arguments), WEATHER_SCHEMA)  # type: ignore[union-attr]


def test_openai_streamed_tool_call_fragments_accumulate(fakes: FakeFleet) -> None:
    stream = _openai(fakes).chat.completions.create(
        model="gpt-4o", messages=HI, tools=TOOLS, stream=True,  # type: ignore[arg-type]
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )  # fmt: skip
    args, names, finish = "", [], None
    for chunk in stream:
        for tc in chunk.choices[0].delta.tool_calls or []:
            names += [tc.function.name] if tc.function and tc.function.name else []
            args += tc.function.arguments or "" if tc.function else ""
        finish = chunk.choices[0].finish_reason or finish
    assert names == ["get_weather"] and finish == "tool_calls"
    jsonschema.validate(json.loads(args), WEATHER_SCHEMA)


def test_openai_auto_tool_choice_and_tool_result(fakes: FakeFleet) -> None:
    client = _openai(fakes)
    plain = client.chat.completions.create(model="gpt-4o", messages=HI, tools=TOOLS)  # type: ignore[arg-type]
    assert plain.choices[0].message.tool_calls is None
    asked = [{"role": "user", "content": "please use get_weather for Paris"}]
    called = client.chat.completions.create(model="gpt-4o", messages=asked, tools=TOOLS)  # type: ignore[arg-type]
    call = called.choices[0].message.tool_calls[0]  # type: ignore[index]
    history = [*asked, called.choices[0].message.model_dump(exclude_none=True),
               {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 21}'}]  # fmt: skip
    answer = client.chat.completions.create(model="gpt-4o", messages=history, tools=TOOLS)  # type: ignore[arg-type]
    assert '{"temp_c": 21}' in (answer.choices[0].message.content or "")


def test_openai_json_schema_and_json_object(fakes: FakeFleet) -> None:
    client = _openai(fakes)
    fmt = {"type": "json_schema", "json_schema": {"name": "w", "schema": WEATHER_SCHEMA, "strict": True}}
    resp = client.chat.completions.create(model="gpt-4o-mini", messages=HI, response_format=fmt)  # type: ignore[arg-type]
    jsonschema.validate(json.loads(resp.choices[0].message.content or ""), WEATHER_SCHEMA)
    resp = client.chat.completions.create(
        model="gpt-4o-mini", messages=HI, response_format={"type": "json_object"}
    )
    assert "answer" in json.loads(resp.choices[0].message.content or "")


def test_openai_errors_map_to_sdk_exceptions(fakes: FakeFleet) -> None:
    client = _openai(fakes)
    with pytest.raises(openai.NotFoundError) as not_found:
        client.chat.completions.create(model="gpt-nope", messages=HI)
    assert not_found.value.code == "model_not_found"
    bad_key = openai.OpenAI(base_url=fakes["openai"].base_url, api_key="invalid-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad_key.chat.completions.create(model="gpt-4o-mini", messages=HI)
    fakes["openai"].add_fault(fault="429", retry_after=7)
    with pytest.raises(openai.RateLimitError) as limited:
        client.chat.completions.create(model="gpt-4o-mini", messages=HI)
    headers = limited.value.response.headers
    assert headers["retry-after"] == "7" and headers["x-ratelimit-remaining-requests"] == "0"
    assert headers["x-ratelimit-reset-requests"] == "7s"
    assert limited.value.code == "rate_limit_exceeded"


def test_openai_rate_limit_headers_via_raw_response(fakes: FakeFleet) -> None:
    client = _openai(fakes)
    first = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=HI)
    second = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=HI)
    h1, h2 = first.headers, second.headers
    assert h1["x-ratelimit-limit-requests"] == "1000" and h1["x-ratelimit-remaining-requests"] == "999"
    assert h2["x-ratelimit-remaining-requests"] == "998"
    assert int(h2["x-ratelimit-remaining-tokens"]) < int(h1["x-ratelimit-remaining-tokens"])
    for name in ("x-ratelimit-reset-requests", "x-ratelimit-reset-tokens"):
        assert GO_DURATION.match(h1[name]), h1[name]
    assert first.parse().choices[0].message.content


def test_openai_models_list_and_retrieve(fakes: FakeFleet) -> None:
    client = _openai(fakes)
    assert [m.id for m in client.models.list()] == fakes["openai"].models
    assert client.models.retrieve("gpt-4o").id == "gpt-4o"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-nope")


# --- Groq ---------------------------------------------------------------------------------------


def test_groq_completion_stream_and_x_groq_usage(fakes: FakeFleet) -> None:
    client = _groq(fakes)
    full = client.chat.completions.create(model="llama-3.1-8b-instant", messages=HI)  # type: ignore[arg-type]
    assert full.choices[0].message.content.startswith("Hello from fake-groq llama-3.1-8b-instant")  # type: ignore[union-attr]
    assert full.usage.total_tokens == full.usage.prompt_tokens + full.usage.completion_tokens  # type: ignore[union-attr]
    assert full.x_groq is not None and full.x_groq.id.startswith("req_")
    chunks = list(client.chat.completions.create(model="llama-3.1-8b-instant", messages=HI, stream=True))  # type: ignore[arg-type]
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == full.choices[0].message.content
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    assert last.x_groq is not None and last.x_groq.usage is not None
    assert last.x_groq.usage.total_tokens == full.usage.total_tokens  # type: ignore[union-attr]


def test_groq_tool_call_whole_in_stream(fakes: FakeFleet) -> None:
    client = _groq(fakes)
    chunks = list(client.chat.completions.create(
        model="llama-3.3-70b-versatile", messages=HI, tools=TOOLS, tool_choice="required", stream=True,  # type: ignore[arg-type]
    ))  # fmt: skip
    calls = [tc for c in chunks for tc in c.choices[0].delta.tool_calls or []]
    assert len(calls) == 1 and calls[0].function.name == "get_weather"  # type: ignore[union-attr]
    jsonschema.validate(json.loads(calls[0].function.arguments), WEATHER_SCHEMA)  # type: ignore[union-attr, arg-type]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_groq_errors_and_rate_limit_headers(fakes: FakeFleet) -> None:
    client = _groq(fakes)
    raw = client.chat.completions.with_raw_response.create(model="llama-3.1-8b-instant", messages=HI)  # type: ignore[arg-type]
    assert raw.headers["x-ratelimit-limit-requests"] == "100000"  # requests per DAY on Groq
    assert raw.headers["x-ratelimit-remaining-requests"] == "99999"
    assert GO_DURATION.match(raw.headers["x-ratelimit-reset-tokens"])
    assert "retry-after" not in raw.headers
    with pytest.raises(groq.NotFoundError):
        client.chat.completions.create(model="llama-nope", messages=HI)  # type: ignore[arg-type]
    fakes["groq"].add_fault(fault="429", retry_after=3, count=1)
    with pytest.raises(groq.RateLimitError) as limited:
        client.chat.completions.create(model="llama-3.1-8b-instant", messages=HI)  # type: ignore[arg-type]
    assert limited.value.response.headers["retry-after"] == "3"
    assert "param" not in limited.value.body  # type: ignore[operator]
    assert [m.id for m in client.models.list().data] == fakes["groq"].models


# --- Mistral ------------------------------------------------------------------------------------


def test_mistral_complete_and_stream_usage_on_final_chunk(fakes: FakeFleet) -> None:
    client = _mistral(fakes)
    full = client.chat.complete(model="mistral-small-latest", messages=HI)  # type: ignore[arg-type]
    text = full.choices[0].message.content
    assert isinstance(text, str) and text.startswith("Hello from fake-mistral mistral-small-latest")
    assert full.usage.total_tokens == full.usage.prompt_tokens + full.usage.completion_tokens  # type: ignore[operator]
    events = list(client.chat.stream(model="mistral-small-latest", messages=HI))  # type: ignore[arg-type]
    assert "".join(e.data.choices[0].delta.content or "" for e in events) == text  # type: ignore[operator, misc]
    assert all(e.data.usage is None for e in events[:-1])
    assert events[-1].data.choices[0].finish_reason == "stop"
    assert events[-1].data.usage is not None and events[-1].data.usage.total_tokens == full.usage.total_tokens


def test_mistral_tool_call_any(fakes: FakeFleet) -> None:
    client = _mistral(fakes)
    resp = client.chat.complete(model="mistral-large-latest", messages=HI, tools=TOOLS, tool_choice="any")  # type: ignore[arg-type]
    assert resp.choices[0].finish_reason == "tool_calls"
    call = resp.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert re.fullmatch(r"[a-zA-Z0-9]{9}", call.id or "")
    jsonschema.validate(json.loads(call.function.arguments), WEATHER_SCHEMA)  # type: ignore[arg-type]
    events = list(
        client.chat.stream(model="mistral-large-latest", messages=HI, tools=TOOLS, tool_choice="any")
    )  # type: ignore[arg-type]
    calls = [tc for e in events for tc in e.data.choices[0].delta.tool_calls or []]  # type: ignore[union-attr]
    assert [c.function.name for c in calls] == ["get_weather"]


def test_mistral_json_mode_errors_and_headers(fakes: FakeFleet) -> None:
    client = _mistral(fakes)
    fmt = {"type": "json_schema", "json_schema": {"name": "w", "schema": WEATHER_SCHEMA}}
    resp = client.chat.complete(model="mistral-small-latest", messages=HI, response_format=fmt)  # type: ignore[arg-type]
    jsonschema.validate(json.loads(resp.choices[0].message.content), WEATHER_SCHEMA)  # type: ignore[arg-type]
    with pytest.raises(SDKError) as bad_model:
        client.chat.complete(model="mistral-nope", messages=HI)  # type: ignore[arg-type]
    assert bad_model.value.status_code == 400 and '"invalid_model"' in bad_model.value.body
    fakes["mistral"].add_fault(fault="429", count=1)
    with pytest.raises(SDKError) as limited:
        client.chat.complete(model="mistral-small-latest", messages=HI)  # type: ignore[arg-type]
    assert limited.value.status_code == 429 and '"rate_limited"' in limited.value.body
    headers = limited.value.raw_response.headers
    assert headers["x-ratelimit-remaining-req-minute"] == "0" and "x-ratelimit-limit-tokens-minute" in headers
    assert [m.id for m in client.models.list().data or []] == fakes["mistral"].models
