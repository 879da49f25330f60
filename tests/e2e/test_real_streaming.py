"""Real streaming, seen from the official `openai` SDK against the local server (the same
`stream_handler` the chat Lambda runs behind the Lambda Web Adapter on AWS).

The fake paces its chunks (`slow_stream`), so a body sent whole and a body sent as produced
look different to the caller: the first content chunk arrives long before the stream ends. A
stream cut after its first chunk ends with an OpenAI-style error event (the SDK raises
`APIError`) and no `[DONE]`; a caller who disconnects stops the provider's stream (the fake
sees its client go and stops sending).
"""

from __future__ import annotations

import json
import time

import httpx
import openai
import pytest

from tests.e2e.conftest import DEV_KEY

pytestmark = pytest.mark.e2e

MODEL = "gpt-4o-mini"
PINNED = f"openai/{MODEL}"
DELAY_MS = 100
# The fake echoes a tool's result (up to 400 characters) two words per chunk: 40 one-letter
# words make its answer about 24 content chunks.
TOOL_RESULT = " ".join("abcdefghijklmnopqrstuvwxyzabcdefghijklmn")


def _messages() -> list[dict[str, object]]:
    call = {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}
    return [
        {"role": "user", "content": "Look it up"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": TOOL_RESULT},
    ]


@pytest.fixture
def openai_fake(fake_fleet):
    fake = fake_fleet.providers["openai"]
    fake.reset()
    yield fake
    fake.reset()


def _wait_for(predicate, timeout_s: float = 5.0) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_the_first_chunk_arrives_long_before_the_stream_ends(client, openai_fake) -> None:
    openai_fake.add_fault(fault="slow_stream", rate=1.0, delay_ms=DELAY_MS, model=MODEL)
    began = time.monotonic()
    stream = client.chat.completions.create(model=PINNED, messages=_messages(), stream=True,
                                            stream_options={"include_usage": True})
    first_content = None
    content_chunks = 0
    text = ""
    usage = None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            if choice.delta.content:
                content_chunks += 1
                text += choice.delta.content
                if first_content is None:
                    first_content = time.monotonic() - began
    total = time.monotonic() - began
    assert content_chunks >= 20, content_chunks
    assert total >= content_chunks * DELAY_MS / 1000 * 0.9  # the pacing really happened
    assert first_content is not None and first_content < total / 4, (first_content, total)
    assert text.count(TOOL_RESULT) == 1  # no text repeated
    assert usage is not None and usage.total_tokens > 0
    assert usage.model_extra and usage.model_extra["cost_usd"] >= 0  # the final cost travels in the usage chunk


def test_a_stream_cut_after_its_first_chunk_ends_with_an_error_event_and_no_done(gateway_url, openai_fake) -> None:
    openai_fake.add_fault(fault="cut_stream", rate=1.0, after_chunks=2, model=MODEL)
    body = {"model": PINNED, "messages": _messages(), "stream": True}
    with httpx.stream("POST", f"{gateway_url}/v1/chat/completions", json=body, timeout=30,
                      headers={"Authorization": f"Bearer {DEV_KEY}"}) as response:
        assert response.status_code == 200
        assert response.headers["x-gateway-provider"] == "openai"
        events = [line.removeprefix("data: ") for line in response.iter_lines() if line.startswith("data: ")]
    assert "[DONE]" not in events
    error = json.loads(events[-1])["error"]
    assert error["code"] == "stream_interrupted"
    texts = [c["choices"][0]["delta"].get("content") or "" for c in map(json.loads, events[:-1]) if c.get("choices")]
    assert 1 <= sum(1 for t in texts if t) <= 2  # what the provider sent before the cut, once


def test_the_sdk_raises_on_the_error_event(client, openai_fake) -> None:
    openai_fake.add_fault(fault="cut_stream", rate=1.0, after_chunks=1, model=MODEL)
    stream = client.chat.completions.create(model=PINNED, messages=_messages(), stream=True)
    received = []
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            received += [c.delta.content for c in chunk.choices if c.delta.content]
    assert received  # the first chunk reached the caller before the failure
    assert "incomplete" in str(info.value.message)


def test_a_failure_before_the_first_chunk_fails_over_unseen(client, fake_fleet, openai_fake) -> None:
    openai_fake.add_fault(fault="cut_stream", rate=1.0, after_chunks=0)
    stream = client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "hello"}], stream=True)
    assert stream.http_response.status_code == 200
    text = "".join(c.delta.content or "" for chunk in stream.parse() for c in chunk.choices)
    assert text.startswith("Hello from fake-")


def test_a_caller_who_disconnects_stops_the_provider_stream(gateway_url, openai_fake) -> None:
    openai_fake.add_fault(fault="slow_stream", rate=1.0, delay_ms=DELAY_MS, model=MODEL)
    body = {"model": PINNED, "messages": _messages(), "stream": True}
    with httpx.stream("POST", f"{gateway_url}/v1/chat/completions", json=body, timeout=30,
                      headers={"Authorization": f"Bearer {DEV_KEY}"}) as response:
        got = []
        for line in response.iter_lines():
            if '"content":"' in line and '"content":""' not in line:
                got.append(line)
            if len(got) >= 3:
                break
    # the client closed its connection after 3 of ~24 paced chunks: the fake sees its client go
    # (a write fails) and stops, long before it would have finished (~2.4 s)
    began = time.monotonic()
    assert _wait_for(lambda: openai_fake.stats()["streams_abandoned"] >= 1, timeout_s=2.0), openai_fake.stats()
    assert time.monotonic() - began < 1.5
