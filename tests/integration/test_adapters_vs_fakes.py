"""Every adapter through the real engine over loopback HTTP to its provider's fake.

The same OpenAI-shaped requests go to all five providers and must come back as equivalent
OpenAI-shaped responses; each injected fault must surface as the right `ProviderError`. This is
where the adapters' wire mapping meets the fakes' wire fidelity (and so, indirectly, the SDKs').
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from llm_gateway.api.schemas import ChatCompletionRequest, Usage
from llm_gateway.providers.base import (
    TRANSPORT_CONNECTION,
    TRANSPORT_MALFORMED,
    TRANSPORT_STREAM_CUT,
    TRANSPORT_TIMEOUT,
    ChatAdapter,
    ProviderConfig,
    ProviderError,
)
from llm_gateway.providers.engine import ProviderEngine, build_http_client
from llm_gateway.providers.registry import provider_specs
from sandbox.fakes import FakeFleet
from tests.fakes_fixtures import fake_fleet, fakes  # noqa: F401
from tests.unit.providers.helpers import WEATHER_TOOL, fold_chunk, request

MODELS = {
    "openai": "gpt-4o-mini",
    "groq": "llama-3.1-8b-instant",
    "gemini": "gemini-2.5-flash",
    "cohere": "command-r7b-12-2024",
    "mistral": "mistral-small-latest",
}
PROVIDERS = list(MODELS)
TIMEOUT_S = 10.0


@pytest.fixture(scope="module")
def engine() -> Iterator[ProviderEngine]:
    client = build_http_client()
    yield ProviderEngine(client)
    client.close()


@pytest.fixture
def fresh_engine() -> Iterator[ProviderEngine]:
    """Fault tests get their own pool: after a malformed/cut response the fakes close the keep-alive
    connection without `Connection: close`, so a pooled client's next request can race the close
    ("Server disconnected without sending a response") and fail for a reason the test is not about."""
    client = build_http_client()
    yield ProviderEngine(client)
    client.close()


def adapter_for(fleet: FakeFleet, provider: str, api_key: str = "test-key") -> ChatAdapter:
    spec = provider_specs()[provider]
    base_url = fleet.providers[provider].base_url
    return spec.adapters["chat"](ProviderConfig(name=provider, kind=provider, base_url=base_url, api_key=api_key))


@dataclass
class Folded:
    content: str = ""
    tool_calls: dict[int, dict[str, str]] = field(default_factory=dict)
    finish_reason: str | None = None
    usage: Usage | None = None
    chunks: int = 0


def stream(engine: ProviderEngine, ad: ChatAdapter, req: ChatCompletionRequest, model: str,
           timeout_s: float = TIMEOUT_S, folded: Folded | None = None) -> Folded:
    """Fold a stream the way an OpenAI client does; `folded` lets a test inspect a partial stream."""
    out = folded if folded is not None else Folded()
    with engine.open_stream(ad, req, model, timeout_s) as provider_stream:
        for chunk in provider_stream:
            out.chunks += 1
            fold_chunk(out, chunk)
    return out


def usage_ok(usage: Usage | None) -> bool:
    return usage is not None and usage.prompt_tokens > 0 and usage.completion_tokens > 0


# --- the happy paths ------------------------------------------------------------------------------------
@pytest.mark.parametrize("provider", PROVIDERS)
def test_plain(provider: str, fakes: FakeFleet, engine: ProviderEngine) -> None:  # noqa: F811
    reply = engine.complete(adapter_for(fakes, provider), request("system"), MODELS[provider], TIMEOUT_S)
    choice = reply.value.choices[0]
    assert choice.message.content
    assert choice.finish_reason in ("stop", "length")
    assert usage_ok(reply.value.usage)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_plain_stream(provider: str, fakes: FakeFleet, engine: ProviderEngine) -> None:  # noqa: F811
    out = stream(engine, adapter_for(fakes, provider), request("multi_turn"), MODELS[provider])
    assert out.content
    assert out.finish_reason == "stop"
    assert usage_ok(out.usage)


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("messages", [
    [{"role": "system", "content": "Say hi."}],
    [{"role": "user", "content": ""}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": []}],
    [{"role": "user", "content": [{"type": "text", "text": ""}]}],
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
     {"role": "user", "content": [{"type": "text", "text": ""}, {"type": "text", "text": "again"}]}],
], ids=["system_only", "empty_user", "system_and_empty_parts", "empty_text_part", "empty_part_beside_text"])
def test_conversations_openai_accepts_without_user_text(provider: str, messages: list[dict[str, object]],
                                                       fakes: FakeFleet, engine: ProviderEngine) -> None:  # noqa: F811
    """OpenAI answers a system-only conversation and an empty user message; so must every
    provider behind `auto` (Gemini answered 400 `contents is not specified`: its adapter sent
    no turn at all, and Gemini refuses empty text parts too)."""
    req = ChatCompletionRequest.model_validate({"model": "auto", "messages": messages})
    reply = engine.complete(adapter_for(fakes, provider), req, MODELS[provider], TIMEOUT_S)
    assert reply.value.choices[0].finish_reason in ("stop", "length")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_tools_required(provider: str, fakes: FakeFleet, engine: ProviderEngine) -> None:  # noqa: F811
    reply = engine.complete(adapter_for(fakes, provider), request("tools"), MODELS[provider], TIMEOUT_S)
    choice = reply.value.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls
    for call in choice.message.tool_calls:
        assert call.id
        assert call.function.name in ("get_weather", "get_time")
        assert isinstance(json.loads(call.function.arguments), dict)
    assert usage_ok(reply.value.usage)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_tools_required_stream(provider: str, fakes: FakeFleet, engine: ProviderEngine) -> None:  # noqa: F811
    out = stream(engine, adapter_for(fakes, provider), request("tool_named"), MODELS[provider])
    assert out.finish_reason == "tool_calls"
    assert [call["name"] for call in out.tool_calls.values()] == ["get_weather"]
    assert all(call["id"] for call in out.tool_calls.values())
    assert json.loads(out.tool_calls[min(out.tool_calls)]["arguments"])["city"]
    assert usage_ok(out.usage)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_tool_result_follow_up(provider: str, fakes: FakeFleet, engine: ProviderEngine) -> None:  # noqa: F811
    ad = adapter_for(fakes, provider)
    first = engine.complete(ad, request("tools"), MODELS[provider], TIMEOUT_S).value.choices[0].message
    call = first.tool_calls[0]
    messages = [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "{\"temp_c\": 21}"},
    ]
    reply = engine.complete(ad, request("tool_result", messages=messages), MODELS[provider], TIMEOUT_S)
    choice = reply.value.choices[0]
    assert choice.message.content
    assert choice.finish_reason == "stop"
    assert not choice.message.tool_calls


# --- what strict fakes reject (as the real providers do) -------------------------------------------------
OPEN_OBJECT_TOOL = {"type": "function", "function": {"name": "run_op", "parameters": {
    "type": "object", "required": ["op", "params"], "properties": {
        "op": {"type": "string"}, "params": {"type": "object", "additionalProperties": True}}}}}
OPENAI_IDS = ["call_0fypS1hVXq2cYhLm8hnk3aZq", "call_Yx2pL0vMdbE9QwZk7RtU4sNc"]
PARALLEL_RESULTS = [
    {"role": "user", "content": "Weather and time in Paris?"},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": OPENAI_IDS[0], "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
        {"id": OPENAI_IDS[1], "type": "function", "function": {"name": "get_time", "arguments": "{\"tz\":\"CET\"}"}}]},
    {"role": "tool", "tool_call_id": OPENAI_IDS[0], "content": "{\"temp_c\": 21}"},
    {"role": "tool", "tool_call_id": OPENAI_IDS[1], "content": "12:00"},
]  # fmt: skip


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("streaming", [False, True])
def test_open_object_argument_is_accepted(provider: str, streaming: bool, fakes: FakeFleet, engine: ProviderEngine) -> None:  # noqa: F811
    """A `dict[str, Any]`-style argument: Gemini refuses an OBJECT without properties at any depth."""
    req = request("plain", tools=[OPEN_OBJECT_TOOL, WEATHER_TOOL], tool_choice="required")
    ad = adapter_for(fakes, provider)
    if streaming:
        assert stream(engine, ad, req, MODELS[provider]).finish_reason == "tool_calls"
    else:
        assert engine.complete(ad, req, MODELS[provider], TIMEOUT_S).value.choices[0].message.tool_calls


@pytest.mark.parametrize("provider", PROVIDERS)
def test_parallel_tool_results_with_openai_ids_and_openai_only_params(
    provider: str, fakes: FakeFleet, engine: ProviderEngine  # noqa: F811
) -> None:
    """OpenAI-style ids (Mistral wants 9 alphanumerics), one result per call (Gemini wants them in one
    turn) and parameters some providers do not know (Mistral: 422 extra_forbidden)."""
    req = request("tools", messages=PARALLEL_RESULTS, tool_choice="auto", user="u1", seed=3, parallel_tool_calls=True)
    ad = adapter_for(fakes, provider)
    choice = engine.complete(ad, req, MODELS[provider], TIMEOUT_S).value.choices[0]
    assert "The tool returned" in (choice.message.content or "")
    assert stream(engine, ad, req, MODELS[provider]).finish_reason == "stop"


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("kind", ["json_object", "json_schema"])
def test_json_output(provider: str, kind: str, fakes: FakeFleet, engine: ProviderEngine) -> None:  # noqa: F811
    reply = engine.complete(adapter_for(fakes, provider), request(kind), MODELS[provider], TIMEOUT_S)
    parsed = json.loads(reply.value.choices[0].message.content)
    assert isinstance(parsed, dict)
    if kind == "json_schema":
        assert isinstance(parsed.get("city"), str)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_list_models(provider: str, fakes: FakeFleet, engine: ProviderEngine) -> None:  # noqa: F811
    assert MODELS[provider] in engine.list_models(adapter_for(fakes, provider))


# --- faults ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("provider", PROVIDERS)
def test_unknown_model(provider: str, fakes: FakeFleet, fresh_engine: ProviderEngine) -> None:  # noqa: F811
    with pytest.raises(ProviderError) as info:
        fresh_engine.complete(adapter_for(fakes, provider), request("plain"), "no-such-model-9", TIMEOUT_S)
    assert info.value.status in (400, 404)
    assert info.value.transport is None


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("streaming", [False, True])
def test_fault_429(provider: str, streaming: bool, fakes: FakeFleet, fresh_engine: ProviderEngine) -> None:  # noqa: F811
    fakes.providers[provider].add_fault(fault="429", retry_after=7)
    error = _call_expecting_error(fresh_engine, adapter_for(fakes, provider), provider, streaming)
    assert error.status == 429
    assert error.transport is None
    if provider in ("openai", "groq", "gemini"):  # Retry-After header / RetryInfo.retryDelay
        assert error.rate_limit is not None
        assert error.retry_after_s == pytest.approx(7, abs=1)
    elif provider == "mistral":  # limit headers, but no retry hint (providers.md §7.5)
        assert error.rate_limit is not None and error.rate_limit.remaining_requests == 0


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("status", [500, 503, 401])
def test_fault_http_status(provider: str, status: int, fakes: FakeFleet, fresh_engine: ProviderEngine) -> None:  # noqa: F811
    fakes.providers[provider].add_fault(fault=str(status))
    error = _call_expecting_error(fresh_engine, adapter_for(fakes, provider), provider, streaming=False)
    assert error.status == status
    assert error.transport is None
    assert error.provider == provider


@pytest.mark.parametrize("provider", PROVIDERS)
def test_invalid_key(provider: str, fakes: FakeFleet, fresh_engine: ProviderEngine) -> None:  # noqa: F811
    with pytest.raises(ProviderError) as info:
        fresh_engine.complete(adapter_for(fakes, provider, api_key="invalid-key"), request("plain"), MODELS[provider], TIMEOUT_S)
    assert info.value.status in (400, 401)  # Gemini: 400 INVALID_ARGUMENT + API_KEY_INVALID
    if info.value.status == 400:
        assert info.value.code == "API_KEY_INVALID"


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("streaming", [False, True])
def test_fault_timeout(provider: str, streaming: bool, fakes: FakeFleet, fresh_engine: ProviderEngine) -> None:  # noqa: F811
    fakes.providers[provider].add_fault(fault="timeout", hang_seconds=1.5)
    error = _call_expecting_error(fresh_engine, adapter_for(fakes, provider), provider, streaming, timeout_s=0.3)
    assert error.transport == TRANSPORT_TIMEOUT


@pytest.mark.parametrize("provider", PROVIDERS)
def test_fault_reset(provider: str, fakes: FakeFleet, fresh_engine: ProviderEngine) -> None:  # noqa: F811
    fakes.providers[provider].add_fault(fault="reset")
    error = _call_expecting_error(fresh_engine, adapter_for(fakes, provider), provider, streaming=False)
    assert error.transport == TRANSPORT_CONNECTION


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("streaming", [False, True])
def test_fault_malformed(provider: str, streaming: bool, fakes: FakeFleet, fresh_engine: ProviderEngine) -> None:  # noqa: F811
    fakes.providers[provider].add_fault(fault="malformed")
    error = _call_expecting_error(fresh_engine, adapter_for(fakes, provider), provider, streaming)
    assert error.transport == TRANSPORT_MALFORMED


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("after_chunks", [0, 1])
def test_fault_cut_stream(provider: str, after_chunks: int, fakes: FakeFleet, fresh_engine: ProviderEngine) -> None:  # noqa: F811
    fakes.providers[provider].add_fault(fault="cut_stream", after_chunks=after_chunks)
    folded = Folded()
    with pytest.raises(ProviderError) as info:
        stream(fresh_engine, adapter_for(fakes, provider), request("plain"), MODELS[provider], folded=folded)
    # the fake drops the connection inside a chunked body: the engine calls that a cut stream
    assert info.value.transport == TRANSPORT_STREAM_CUT
    assert folded.finish_reason is None
    if after_chunks:
        assert folded.content  # the caller saw part of the answer before the cut


def _call_expecting_error(
    engine: ProviderEngine, ad: ChatAdapter, provider: str, streaming: bool, timeout_s: float = TIMEOUT_S
) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        if streaming:
            stream(engine, ad, request("plain"), MODELS[provider], timeout_s=timeout_s)
        else:
            engine.complete(ad, request("plain"), MODELS[provider], timeout_s)
    assert not isinstance(info.value.__cause__, httpx.HTTPStatusError)
    return info.value
