"""Every chat answer is JSON that any client can parse, whatever number a provider wrote.

Python's `json` reads a provider's `NaN`, `Infinity` and `-Infinity` (OpenAI-compatible servers
have written `"logprob": -Infinity` for a token of probability 0) and writes them back as those
bare tokens, which JSON does not have: `JSON.parse` (the Node SDK, a browser) throws on such a
body. Stream chunks are written by pydantic, which writes a non-finite number as `null`; a whole
answer is written the same way. Handler as Lambda runs it, provider on `httpx.MockTransport`.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from sandbox.apigw import LocalContext, make_event
from tests.conftest import chat_handler_on_fakes

MODEL = "groq/llama-3.1-8b-instant"
_LOGPROBS = '{"content": [{"token": "hi", "logprob": -Infinity, "bytes": null, "top_logprobs": []}]}'


def _provider(request: httpx.Request) -> httpx.Response:
    if json.loads(request.content).get("stream"):
        chunk = ('{"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "llama-3.1-8b-instant", '
                 '"choices": [{"index": 0, "delta": {"role": "assistant", "content": "hi"}, "finish_reason": "stop", '
                 f'"logprobs": {_LOGPROBS}}}], "x_score": NaN, '
                 '"usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}')
        return httpx.Response(200, headers={"content-type": "text/event-stream"},
                              content=f"data: {chunk}\n\ndata: [DONE]\n\n".encode())
    body = ('{"id": "c1", "object": "chat.completion", "created": 1, "model": "llama-3.1-8b-instant", '
            '"choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop", '
            f'"logprobs": {_LOGPROBS}}}], "usage": {{"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}, '
            '"x_score": NaN}')
    return httpx.Response(200, headers={"content-type": "application/json"}, content=body.encode())


@pytest.fixture
def chat(fakes, clean_gateway_env, monkeypatch):
    module = chat_handler_on_fakes(fakes, clean_gateway_env, "answers_are_json")
    monkeypatch.setattr(module.gateway.core.engine, "_client", httpx.Client(transport=httpx.MockTransport(_provider)))
    return module


def _answer(chat: Any, request: dict[str, Any], live: bool) -> tuple[int, str]:
    """(status, body) of `request` through the chat function: its streaming invocation (`live`,
    as production serves chat) or the buffered one."""
    event = make_event("POST", "/v1/chat/completions", {"authorization": "Bearer local-dev-key"},
                       json.dumps(request).encode())
    if live:
        response = chat.stream_handler(event, LocalContext(function_name="chat"))
        return response.status, b"".join(response.body).decode()
    result = chat.lambda_handler(event, LocalContext(function_name="chat"))
    return result["statusCode"], result["body"]


def _strict(text: str) -> Any:
    def refuse(name: str) -> None:
        raise AssertionError(f"{name} is not JSON: {text[:300]}")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize("live", [False, True], ids=["buffered", "streaming invocation"])
def test_a_providers_non_finite_number_is_null_in_the_answer(chat, live):
    status, text = _answer(chat, {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}, live)
    assert status == 200, text
    answer = _strict(text)
    assert answer["choices"][0]["message"]["content"] == "hi"
    assert answer["choices"][0]["logprobs"]["content"][0]["logprob"] is None


@pytest.mark.parametrize("live", [False, True], ids=["buffered", "streaming invocation"])
def test_a_providers_non_finite_number_is_null_in_every_stream_event(chat, live):
    """As it already was in stream chunks: the whole answer above now agrees with them."""
    status, text = _answer(chat, {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": True,
                                  "stream_options": {"include_usage": True}}, live)
    assert status == 200, text
    events = [block.removeprefix("data: ") for block in text.split("\n\n") if block.strip()]
    assert events[-1] == "[DONE]"
    chunks = [_strict(event) for event in events[:-1]]
    assert chunks[0]["choices"][0]["logprobs"]["content"][0]["logprob"] is None
    assert chunks[-1]["usage"]["prompt_tokens"] == 3
