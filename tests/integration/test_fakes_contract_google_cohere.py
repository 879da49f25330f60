# ruff: noqa: F811  (pytest fixtures imported by name, then requested as parameters)
"""Contract tests: the Gemini fake through google-genai and the Cohere fake through cohere.ClientV2."""

from __future__ import annotations

import json

import cohere
import jsonschema
import pytest
from cohere.core.request_options import RequestOptions
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from sandbox.fakes import FakeFleet
from tests.fakes_fixtures import fake_fleet, fakes  # noqa: F401
from tests.integration.test_fakes_contract import WEATHER_SCHEMA

NO_RETRY: RequestOptions = {"max_retries": 0}
HI = "Hi there, how are you today?"


def _gemini(fakes: FakeFleet, api_key: str = "test-key") -> genai.Client:
    options = {"base_url": fakes["gemini"].base_url, "api_version": "v1beta"}
    return genai.Client(api_key=api_key, http_options=options)  # type: ignore[arg-type]


def _cohere(fakes: FakeFleet, api_key: str = "test-key") -> cohere.ClientV2:
    return cohere.ClientV2(api_key=api_key, base_url=fakes["cohere"].base_url, max_retries=0)


def _weather_tool() -> types.Tool:
    decl = types.FunctionDeclaration(
        name="get_weather", description="Weather", parameters_json_schema=WEATHER_SCHEMA
    )
    return types.Tool(function_declarations=[decl])


# --- Gemini -------------------------------------------------------------------------------------


def test_gemini_generate_and_stream(fakes: FakeFleet) -> None:
    client = _gemini(fakes)
    full = client.models.generate_content(model="gemini-2.5-flash", contents=HI)
    assert full.text == f"Hello from fake-gemini gemini-2.5-flash. You said: {HI}"
    assert full.candidates[0].finish_reason == types.FinishReason.STOP  # type: ignore[index]
    usage = full.usage_metadata
    assert usage is not None and usage.prompt_token_count and usage.candidates_token_count
    assert usage.total_token_count == usage.prompt_token_count + usage.candidates_token_count
    chunks = list(client.models.generate_content_stream(model="gemini-2.5-flash", contents=HI))
    assert len(chunks) > 1
    assert "".join(c.text or "" for c in chunks) == full.text
    assert chunks[-1].usage_metadata.total_token_count == usage.total_token_count  # type: ignore[union-attr]
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP  # type: ignore[index]
    assert chunks[0].candidates[0].finish_reason is None  # type: ignore[index]


def test_gemini_default_api_version_also_served(fakes: FakeFleet) -> None:
    client = genai.Client(api_key="k", http_options={"base_url": fakes["gemini"].base_url})
    assert client.models.generate_content(model="gemini-2.5-flash", contents="x").text


def test_gemini_function_call_any_and_function_response(fakes: FakeFleet) -> None:
    client = _gemini(fakes)
    calling = types.ToolConfig(
        function_calling_config=types.FunctionCallingConfig(mode=types.FunctionCallingConfigMode.ANY)
    )
    config = types.GenerateContentConfig(tools=[_weather_tool()], tool_config=calling)
    resp = client.models.generate_content(model="gemini-2.5-pro", contents=HI, config=config)
    calls = resp.function_calls or []
    assert [c.name for c in calls] == ["get_weather"]
    jsonschema.validate(calls[0].args, WEATHER_SCHEMA)
    streamed = list(client.models.generate_content_stream(model="gemini-2.5-pro", contents=HI, config=config))
    assert [c.name for s in streamed for c in s.function_calls or []] == ["get_weather"]
    history = [
        types.Content(role="user", parts=[types.Part(text=HI)]),
        resp.candidates[0].content,  # type: ignore[index]
        types.Content(
            role="user",
            parts=[types.Part.from_function_response(name="get_weather", response={"temp_c": 21})],
        ),
    ]
    answer = client.models.generate_content(
        model="gemini-2.5-pro", contents=history, config=types.GenerateContentConfig(tools=[_weather_tool()])
    )
    assert answer.function_calls is None and '"temp_c": 21' in (answer.text or "")


def test_gemini_openapi_schema_parameters_and_auto_mode(fakes: FakeFleet) -> None:
    params = types.Schema(
        type=types.Type.OBJECT,
        properties={
            "city": types.Schema(type=types.Type.STRING),
            "days": types.Schema(type=types.Type.INTEGER),
        },
        required=["city"],
    )
    tool = types.Tool(function_declarations=[types.FunctionDeclaration(name="lookup", parameters=params)])
    client = _gemini(fakes)
    resp = client.models.generate_content(
        model="gemini-2.5-flash",
        contents="please lookup Paris",
        config=types.GenerateContentConfig(tools=[tool]),
    )
    args = resp.function_calls[0].args  # type: ignore[index]
    assert isinstance(args["city"], str) and isinstance(args["days"], int)  # type: ignore[index]
    plain = client.models.generate_content(
        model="gemini-2.5-flash", contents=HI, config=types.GenerateContentConfig(tools=[tool])
    )
    assert plain.function_calls is None and plain.text


def test_gemini_json_output_with_schema(fakes: FakeFleet) -> None:
    config = types.GenerateContentConfig(
        response_mime_type="application/json", response_json_schema=WEATHER_SCHEMA
    )
    client = _gemini(fakes)  # keep a reference: genai.Client closes its HTTP client when collected
    resp = client.models.generate_content(model="gemini-2.5-flash", contents=HI, config=config)
    jsonschema.validate(json.loads(resp.text or ""), WEATHER_SCHEMA)
    bare = types.GenerateContentConfig(response_mime_type="application/json")
    resp = client.models.generate_content(model="gemini-2.5-flash", contents=HI, config=bare)
    assert "answer" in json.loads(resp.text or "")


def test_gemini_errors(fakes: FakeFleet) -> None:
    client = _gemini(fakes)
    with pytest.raises(genai_errors.ClientError) as missing:
        client.models.generate_content(model="gemini-nope", contents=HI)
    assert missing.value.code == 404 and missing.value.status == "NOT_FOUND"
    bad_client = _gemini(fakes, api_key="invalid-key")
    with pytest.raises(genai_errors.ClientError) as bad_key:
        bad_client.models.generate_content(model="gemini-2.5-flash", contents=HI)
    assert (
        bad_key.value.code == 400
        and bad_key.value.details["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    )
    fakes["gemini"].add_fault(fault="429", retry_after=34)
    with pytest.raises(genai_errors.ClientError) as limited:
        client.models.generate_content(model="gemini-2.5-flash", contents=HI)
    assert limited.value.code == 429 and limited.value.status == "RESOURCE_EXHAUSTED"
    details = {d["@type"].rsplit(".", 1)[-1]: d for d in limited.value.details["error"]["details"]}
    assert details["RetryInfo"]["retryDelay"] == "34s"
    assert details["QuotaFailure"]["violations"][0]["quotaDimensions"]["model"] == "gemini-2.5-flash"
    fakes["gemini"].clear_faults()
    assert [m.name for m in client.models.list()] == [f"models/{m}" for m in fakes["gemini"].models]


# --- Cohere -------------------------------------------------------------------------------------


def test_cohere_chat_and_stream(fakes: FakeFleet) -> None:
    client = _cohere(fakes)
    messages = [{"role": "user", "content": HI}]
    full = client.chat(model="command-a-03-2025", messages=messages)  # type: ignore[arg-type]
    text = full.message.content[0].text  # type: ignore[index, union-attr]
    assert text == f"Hello from fake-cohere command-a-03-2025. You said: {HI}"
    assert full.finish_reason == "COMPLETE"
    assert full.usage.billed_units.output_tokens == full.usage.tokens.output_tokens > 0  # type: ignore[union-attr]
    events = list(client.chat_stream(model="command-a-03-2025", messages=messages))  # type: ignore[arg-type]
    kinds = [e.type for e in events]
    assert (
        kinds[0] == "message-start"
        and kinds[1] == "content-start"
        and kinds[-2:] == ["content-end", "message-end"]
    )
    streamed = "".join(e.delta.message.content.text for e in events if e.type == "content-delta")  # type: ignore[union-attr]
    assert streamed == text
    end = events[-1]
    assert end.delta.finish_reason == "COMPLETE"  # type: ignore[union-attr]
    assert end.delta.usage.billed_units.input_tokens == full.usage.billed_units.input_tokens  # type: ignore[union-attr]


def test_cohere_tool_call_required_and_stream(fakes: FakeFleet) -> None:
    client = _cohere(fakes)
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER_SCHEMA}}]
    messages = [{"role": "user", "content": HI}]
    resp = client.chat(model="command-r-08-2024", messages=messages, tools=tools, tool_choice="REQUIRED")  # type: ignore[arg-type]
    assert resp.finish_reason == "TOOL_CALL" and resp.message.tool_plan
    call = resp.message.tool_calls[0]  # type: ignore[index]
    assert call.id.startswith("get_weather_")  # type: ignore[union-attr]
    jsonschema.validate(json.loads(call.function.arguments), WEATHER_SCHEMA)  # type: ignore[union-attr, arg-type]
    events = list(
        client.chat_stream(model="command-r-08-2024", messages=messages, tools=tools, tool_choice="REQUIRED")
    )  # type: ignore[arg-type]
    kinds = [e.type for e in events]
    assert {"tool-plan-delta", "tool-call-start", "tool-call-delta", "tool-call-end"} <= set(kinds)
    args = "".join(
        e.delta.message.tool_calls.function.arguments for e in events if e.type == "tool-call-delta"
    )  # type: ignore[union-attr]
    jsonschema.validate(json.loads(args), WEATHER_SCHEMA)
    assert events[-1].delta.finish_reason == "TOOL_CALL"  # type: ignore[union-attr]
    history = [*messages, {"role": "assistant", "tool_plan": resp.message.tool_plan,
                           "tool_calls": [call.dict()]},  # type: ignore[union-attr]
               {"role": "tool", "tool_call_id": call.id, "content": [{"type": "text", "text": "sunny, 21C"}]}]  # fmt: skip
    answer = client.chat(model="command-r-08-2024", messages=history, tools=tools)  # type: ignore[arg-type]
    assert "sunny, 21C" in answer.message.content[0].text  # type: ignore[index, union-attr]


def test_cohere_json_response_format(fakes: FakeFleet) -> None:
    fmt = {"type": "json_object", "json_schema": WEATHER_SCHEMA}
    client = _cohere(fakes)
    resp = client.chat(
        model="command-a-03-2025", messages=[{"role": "user", "content": HI}], response_format=fmt
    )  # type: ignore[arg-type]
    jsonschema.validate(json.loads(resp.message.content[0].text), WEATHER_SCHEMA)  # type: ignore[index, union-attr]


def test_cohere_errors(fakes: FakeFleet) -> None:
    client = _cohere(fakes)
    messages = [{"role": "user", "content": HI}]
    with pytest.raises(cohere.NotFoundError) as missing:
        client.chat(model="command-nope", messages=messages, request_options=NO_RETRY)  # type: ignore[arg-type]
    assert set(missing.value.body) == {"id", "message"}  # type: ignore[arg-type]
    with pytest.raises(cohere.UnauthorizedError):
        _cohere(fakes, "invalid").chat(model="command-a-03-2025", messages=messages)  # type: ignore[arg-type]
    fakes["cohere"].add_fault(fault="429", count=1)
    with pytest.raises(cohere.TooManyRequestsError) as limited:
        client.chat(model="command-a-03-2025", messages=messages, request_options=NO_RETRY)  # type: ignore[arg-type]
    assert "limit" in limited.value.body["message"]  # type: ignore[index]
    assert not any(h.startswith("x-ratelimit") for h in limited.value.headers or {})
    assert [m.name for m in client.models.list().models or []] == fakes["cohere"].models
