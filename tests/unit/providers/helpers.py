"""Shared pieces of the adapter unit tests: synthesized fixtures, canonical requests, stream replay.

Every provider's tests feed the same OpenAI-shaped requests through its adapter and replay its
synthesized payloads (sources in tests/fixtures/providers/README.md), so differences between
providers show up as differences in expectations only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llm_gateway.api.schemas import ChatCompletionChunk, ChatCompletionRequest, Usage
from llm_gateway.providers.base import ChatAdapter, ProviderConfig, ProviderError, StreamState
from llm_gateway.providers.registry import provider_specs
from llm_gateway.providers.sse import iter_sse

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "providers"

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "City name"},
                           "unit": {"type": ["string", "null"], "enum": ["c", "f", None]}},
            "required": ["city"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}
TIME_TOOL = {"type": "function", "function": {"name": "get_time", "parameters": {
    "type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]}}}
TOOL_CALL_ID = "call_0fypS1hVXq2cYhLm8hnk3aZq"
PNG_DATA_URL = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="

_BASE: dict[str, Any] = {"model": "auto"}
REQUESTS: dict[str, dict[str, Any]] = {
    "plain": {"messages": [{"role": "user", "content": "What is the capital of France?"}]},
    "system": {"messages": [{"role": "system", "content": "Answer in one sentence."},
                            {"role": "user", "content": "What is the capital of France?"}],
               "temperature": 0.2, "top_p": 0.9, "max_tokens": 64, "stop": ["\n\n"], "seed": 7},
    "multi_turn": {"messages": [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "And of Italy?"}]},
    "tools": {"messages": [{"role": "user", "content": "Weather in Paris?"}],
              "tools": [WEATHER_TOOL, TIME_TOOL], "tool_choice": "required"},
    "tool_named": {"messages": [{"role": "user", "content": "Weather in Paris?"}],
                   "tools": [WEATHER_TOOL, TIME_TOOL],
                   "tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
    "tool_result": {"messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": TOOL_CALL_ID, "type": "function",
             "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": TOOL_CALL_ID, "content": "{\"temp_c\": 21, \"sky\": \"clear\"}"}],
        "tools": [WEATHER_TOOL]},
    "json_object": {"messages": [{"role": "user", "content": "Give me a JSON object with a key 'city'."}],
                    "response_format": {"type": "json_object"}},
    "json_schema": {"messages": [{"role": "user", "content": "Capital of France as JSON."}],
                    "response_format": {"type": "json_schema", "json_schema": {
                        "name": "capital", "strict": True, "schema": {
                            "type": "object", "properties": {"city": {"type": "string"}},
                            "required": ["city"], "additionalProperties": False}}}},
    "image": {"messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is in these images?"},
        {"type": "image_url", "image_url": {"url": PNG_DATA_URL}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "low"}}]}]},
}


def request(name: str, **overrides: Any) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate({**_BASE, **REQUESTS[name], **overrides})


def adapter(kind: str, base_url: str | None = None) -> ChatAdapter:
    spec = provider_specs()[kind]
    return spec.adapters["chat"](ProviderConfig(name=kind, kind=kind, base_url=base_url or spec.default_base_url,
                                            api_key="test-key"))


def load_json(provider: str, name: str) -> Any:
    return json.loads((FIXTURES / provider / name).read_text())


def error_case(provider: str, case: str) -> tuple[int, dict[str, str], bytes]:
    entry = load_json(provider, "errors.json")[case]
    body = entry["body"]
    raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    return entry["status"], entry["headers"], raw


def parse_error(provider: str, case: str, model: str = "m") -> ProviderError:
    status, headers, body = error_case(provider, case)
    return adapter(provider).parse_error(status, headers, body, model)


@dataclass
class Replayed:
    """A stream folded the way an OpenAI client folds it (tool calls accumulated by index)."""

    chunks: list[ChatCompletionChunk]
    state: StreamState
    content: str = ""
    tool_calls: dict[int, dict[str, str]] = field(default_factory=dict)
    finish_reason: str | None = None
    usage: Usage | None = None
    events_after_done: int = 0


def replay(provider: str, name: str, model: str = "m") -> Replayed:
    """Feed a synthesized `.sse` file through `iter_sse` + the adapter, stopping where the engine stops."""
    ad = adapter(provider)
    lines = (FIXTURES / provider / name).read_text().splitlines()
    state = StreamState(model=model, response_id="chatcmpl-test", created=1)
    out = Replayed(chunks=[], state=state)
    for event in iter_sse(lines):
        if state.done:
            out.events_after_done += 1
            continue
        out.chunks.extend(ad.parse_stream_event(event, state))
    for chunk in out.chunks:
        fold_chunk(out, chunk)
    return out


def fold_chunk(out: Any, chunk: ChatCompletionChunk) -> None:
    """Accumulate one chunk into `out` (content, tool_calls by index, finish_reason, usage)."""
    out.usage = chunk.usage or out.usage
    for choice in chunk.choices:
        out.content += choice.delta.content or ""
        out.finish_reason = choice.finish_reason or out.finish_reason
        for delta in choice.delta.tool_calls or []:
            call = out.tool_calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
            call["id"] = delta.id or call["id"]
            if delta.function:
                call["name"] = delta.function.name or call["name"]
                call["arguments"] += delta.function.arguments or ""
