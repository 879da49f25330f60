"""The simulated providers' streams in time, read through the real gateway (adapters, engine, router).

A live stream's first content must come at the provider's first token and its end at the answer's
total latency, whatever the wire format: the gateway times a live stream's attempt to its first
chunk and learns that apart from whole answers (`AdaptiveTimeouts`), so a simulator that sent a
stream whole at the end (as it did) taught it whole answers' times as first chunks; one that sent
everything with the first content event (as a first try did: most wires' first event held the
whole answer) ended long answers at their first token.
"""

from __future__ import annotations

from typing import Any

import pytest

from llm_gateway.api.schemas import ChatCompletionRequest
from llm_gateway.compose import build_chat, build_core
from llm_gateway.config import load_settings
from llm_gateway.observability.metrics import RecordingMetrics
from llm_gateway.providers.base import TRANSPORT_TIMEOUT, ProviderError
from llm_gateway.retry.handler import chat_deadline
from llm_gateway.routing.chat import ChatRouter
from llm_gateway.selection.catalog import default_catalog
from llm_gateway.state.memory import MemoryStore
from sandbox.simulate.clock import VirtualClock, powertools_on
from sandbox.simulate.engine import PROVIDERS, SimClient
from sandbox.simulate.providers import SimulatedProviders
from sandbox.simulate.scenario import Latency, parse_scenario

OUTPUT = 2_000  # tokens: an answer that takes seconds past its first token at every provider
CALM = {"jitter": 0.0, "error_rate": 0.0}
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
                                           "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                          "required": ["city"]}}}]


def _gateway() -> tuple[ChatRouter, VirtualClock, SimulatedProviders]:
    """One container of the simulation's gateway over the simulated providers, without jitter or
    background errors. Outside the clock's loop a simulated provider's wait just moves time on."""
    catalog = default_catalog()
    clock = VirtualClock(1_700_000_000.0, lambda: 0.5)
    fleet = SimulatedProviders(catalog, parse_scenario({"default": CALM}, []), clock, 1)
    settings = load_settings({f"{p.upper()}_API_KEY": f"sim-{p}-key-0123456789abcdef" for p in PROVIDERS})
    core = build_core(settings, http_client=SimClient(fleet.handle), store=MemoryStore(), clocks=clock.clocks(),
                      catalog=catalog, metrics=RecordingMetrics())
    return build_chat(core), clock, fleet


def _model(provider: str) -> str:
    """A chat model of the provider that takes tools, a free one if it has one."""
    models = [e for e in default_catalog().entries if e.provider == provider and e.capabilities.tools and e.audio is None]
    return min(models, key=lambda e: not e.is_free).model


def _request(provider: str, *, tools: bool) -> ChatCompletionRequest:
    body: dict[str, Any] = {
        "model": f"{provider}/{_model(provider)}", "stream": True, "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": f"Write at length. [sim in=50 out={OUTPUT}]"}]}
    if tools:  # the simulated model calls a tool only when it must (or is asked for one by name)
        body["tools"], body["tool_choice"] = TOOLS, "required"
    return ChatCompletionRequest.model_validate(body)


def _timed_stream(provider: str, *, tools: bool) -> tuple[float, float, Latency]:
    """(when the first content arrived, when the stream ended), from the request's start, and the
    provider's latency settings; with `tools`, the answer is a tool call."""
    chat, clock, fleet = _gateway()
    with powertools_on(clock):
        start = clock.now
        deadline = chat.runner.retry.deadline(chat_deadline(25.0, 300.0, live=True, stream=True))
        routed = chat.stream(_request(provider, tools=tools), deadline, buffered=False)
        first: float | None = None
        called = False
        for chunk in routed.chunks:
            if first is None and any(c.delta.content or c.delta.tool_calls for c in chunk.choices):
                first = clock.now - start
            called = called or any(c.delta.tool_calls for c in chunk.choices)
        end = clock.now - start
    assert called == tools
    assert routed.provider == provider and len(routed.attempts) == 1, routed.attempts
    assert first is not None, "no content arrived"
    return first, end, fleet.scenario.latency_of(provider)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_stream_s_first_content_comes_at_the_first_token_and_its_end_at_the_total_latency(provider: str) -> None:
    """The old simulator sent every event at the end: the first content came at the total latency."""
    first, end, latency = _timed_stream(provider, tools=False)
    assert first == pytest.approx(latency.first_token_s)
    assert end == pytest.approx(latency.first_token_s + OUTPUT * latency.per_token_s)
    assert end - first > 2.0  # the rest really waited: seconds of writing after the first token


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_stream_of_tool_calls_ends_at_the_total_latency(provider: str) -> None:
    """Tool calls start at the first token as text does, but at Gemini, which sends them in one
    event with the finish reason: that stream ends with its first content, so it is sent whole at
    the end, as an answer not streamed is. No stream of any wire ends before its total latency."""
    first, end, latency = _timed_stream(provider, tools=True)
    total = latency.first_token_s + OUTPUT * latency.per_token_s
    assert end == pytest.approx(total)
    assert first == pytest.approx(total if provider == "gemini" else latency.first_token_s)


def test_a_stream_that_outlasts_its_time_starts_at_its_first_token_and_is_cut_when_the_time_is_up() -> None:
    """A stream sent live may take the stream deadline; one that would take longer still starts
    at its first token (it is not a provider slow to start, and is not failed over) and is cut
    by a read timeout when the time the gateway gave it is up, as a socket read past its
    deadline is. (The old simulator answered it with a timeout before any chunk.)"""
    chat, clock, fleet = _gateway()
    latency = fleet.scenario.latency_of("openai")
    output = int(400 / latency.per_token_s)  # 400 s of writing: past the 300 s stream deadline
    request = ChatCompletionRequest.model_validate({
        "model": f"openai/{_model('openai')}", "stream": True,
        "messages": [{"role": "user", "content": f"Write at length. [sim in=50 out={output}]"}]})
    with powertools_on(clock):
        deadline = chat.runner.retry.deadline(chat_deadline(25.0, 300.0, live=True, stream=True))
        routed = chat.stream(request, deadline, buffered=False)
        assert clock.now == pytest.approx(latency.first_token_s)
        with pytest.raises(ProviderError) as cut:
            list(routed.chunks)
    assert cut.value.transport == TRANSPORT_TIMEOUT
    assert 250 < clock.now <= 300  # the stream's time: not the 400 s it needed
    assert [(c.provider, c.outcome) for c in fleet.calls] == [("openai", "timeout")]
