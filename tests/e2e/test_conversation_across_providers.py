"""A conversation that crosses providers mid-way, with the official `openai` SDK through a fresh
`make dev` of its own (so the capacity these tests use, and the 429 they inject, cannot move what
the session-wide server's tests see) on the strict fakes: a tool call made by one provider is answered on another, in that
provider's own wire format (Mistral's 9-character tool ids, Gemini's function turns, Cohere's v2
tool results), whether the caller moves it (pinning the next turn elsewhere) or the gateway does
(the provider that made the call answers 429, and the follow-up fails over)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.e2e.conftest import DEV_KEY
from tests.e2e.test_openai_sdk import PINNED, WEATHER_TOOL
from tests.fakes_fixtures import RemoteFake
from tests.gateway_env import running_make_dev


@pytest.fixture(scope="module")
def own_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_make_dev(tmp_path_factory.mktemp("crossing") / "serve.log") as url:
        yield url


@pytest.fixture
def patient_client(own_gateway: str) -> openai.OpenAI:
    """Honours Retry-After, as SDK users' clients do (Mistral's free tier is 1 request/s)."""
    return openai.OpenAI(base_url=f"{own_gateway}/v1", api_key=DEV_KEY, max_retries=4, timeout=30)


# Each provider makes a tool call once and answers another's once.
CROSSINGS = [("openai", "mistral"), ("mistral", "gemini"), ("gemini", "cohere"), ("cohere", "groq"), ("groq", "openai")]


def _tool_call_turn(client: Any, model: str, city: str) -> tuple[Any, list[dict[str, Any]]]:
    messages: list[dict[str, Any]] = [{"role": "user", "content": f"What is the weather in {city}?"}]
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=messages, tools=[WEATHER_TOOL], tool_choice="required")
    message = raw.parse().choices[0].message
    assert message.tool_calls, "the first turn must be a tool call"
    call = message.tool_calls[0]
    assert call.function.name == "get_weather" and json.loads(call.function.arguments)["city"]
    messages += [message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "19 degrees and cloudy"}]
    return raw, messages


@pytest.mark.parametrize(("maker", "answerer"), CROSSINGS, ids=[f"{a}-to-{b}" for a, b in CROSSINGS])
def test_a_tool_call_made_by_one_provider_is_answered_on_another(patient_client: openai.OpenAI, maker: str,
                                                                 answerer: str) -> None:
    first, messages = _tool_call_turn(patient_client, f"{maker}/{PINNED[maker]}", "Lyon")
    assert first.headers["x-gateway-provider"] == maker
    second = patient_client.chat.completions.with_raw_response.create(
        model=f"{answerer}/{PINNED[answerer]}", messages=messages, tools=[WEATHER_TOOL])
    assert second.headers["x-gateway-provider"] == answerer
    reply = second.parse().choices[0]
    assert reply.finish_reason == "stop" and "19 degrees and cloudy" in (reply.message.content or "")
    # and the conversation goes on, on a third turn, wherever `auto` sends it
    messages += [reply.message.model_dump(exclude_none=True), {"role": "user", "content": "And tomorrow?"}]
    third = patient_client.chat.completions.create(model="auto", messages=messages, tools=[WEATHER_TOOL])
    assert third.choices[0].message.content or third.choices[0].message.tool_calls


def test_the_follow_up_fails_over_to_another_provider_when_the_one_that_made_the_call_answers_429(
        patient_client: openai.OpenAI, own_gateway: str) -> None:
    """Affinity sends the follow-up to the model that made the call; that provider now answers
    429 for every model, so the gateway moves the conversation, history and all, to a provider
    with no recent failure, and the caller sees one ordinary answer."""
    first, messages = _tool_call_turn(patient_client, "auto", "Porto")
    maker = first.headers["x-gateway-provider"]
    fakes = httpx.get(f"{own_gateway}/_sandbox/stats", timeout=10).json()["fakes"]
    fake = RemoteFake(maker, fakes[maker]["base_url"], [])
    fake.add_fault(fault="429", retry_after=2)
    # Affinity yields to capacity: when the maker is Mistral, whose free tier allows 1 request a
    # second, the follow-up sent at once would find its window full and go elsewhere without
    # asking it (this test failed about one run in two so). Let that window pass.
    time.sleep(1.3)
    try:
        second = patient_client.chat.completions.with_raw_response.create(
            model="auto", messages=messages, tools=[WEATHER_TOOL])
    finally:
        fake.clear_faults()
    assert fake.stats()["faults_fired"].get("429", 0) >= 1  # the maker was really asked, and refused
    assert second.headers["x-gateway-provider"] != maker
    assert int(second.headers["x-gateway-attempts"]) >= 2
    assert "19 degrees and cloudy" in (second.parse().choices[0].message.content or "")
