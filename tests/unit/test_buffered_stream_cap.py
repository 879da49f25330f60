"""A buffered SSE body never outgrows Lambda's 6 MB response payload: past the cap the stream ends
with an OpenAI-style error event saying the answer was too long, never a Lambda 413/500.

Lambda counts the response as the JSON it serializes, so the cap applies to the body as a JSON
string (quotes and non-ASCII escaped), which is what the test measures too.
"""

from __future__ import annotations

import json

import httpx

from llm_gateway.api.schemas import ChatCompletionRequest
from llm_gateway.gateway import MAX_BUFFERED_SSE_BYTES, Caller
from tests.unit.routing.test_deadline_budget import MODEL, _gateway

LAMBDA_PAYLOAD_LIMIT = 6 * 1024 * 1024


def _sse(pieces: int, piece: str) -> bytes:
    def event(delta: dict[str, object], finish: str | None = None, usage: dict[str, int] | None = None) -> str:
        chunk: dict[str, object] = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": MODEL,
                                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        if usage:
            chunk["x_groq"] = {"usage": usage}
        return f"data: {json.dumps(chunk)}\n\n"

    body = event({"role": "assistant", "content": ""})
    body += "".join(event({"content": piece}) for _ in range(pieces))
    body += event({}, "stop", {"prompt_tokens": 3, "completion_tokens": 9, "total_tokens": 12})
    return (body + "data: [DONE]\n\n").encode()


def _stream_request() -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {"model": f"groq/{MODEL}", "stream": True, "messages": [{"role": "user", "content": "write a lot"}]})


def _events(body: str) -> list[str]:
    return [block.removeprefix("data: ") for block in body.split("\n\n") if block]


def test_a_buffered_stream_past_the_cap_ends_with_a_too_long_error_event() -> None:
    piece = 'é"' * 20_000  # escapes as JSON: 8 bytes per pair, so the cap must count escaped bytes
    body = _sse(60, piece)
    gateway, _core, _metrics = _gateway(
        lambda request: httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body))
    outcome = gateway.chat(_stream_request(), Caller(), "r1")
    assert outcome.status == 200 and outcome.sse_body is not None
    payload = json.dumps({"statusCode": 200, "headers": outcome.headers, "body": outcome.sse_body})
    assert len(payload) <= MAX_BUFFERED_SSE_BYTES + 64 * 1024 < LAMBDA_PAYLOAD_LIMIT
    events = _events(outcome.sse_body)
    assert events[-1] == "[DONE]"
    error = json.loads(events[-2])["error"]
    assert error["code"] == "response_too_long"
    assert "too long" in error["message"]
    assert sum(1 for e in events if '"chat.completion.chunk"' in e) > 1  # what fits is kept


def test_a_stream_under_the_cap_is_untouched() -> None:
    body = _sse(5, "hello ")
    gateway, _core, _metrics = _gateway(
        lambda request: httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body))
    outcome = gateway.chat(_stream_request(), Caller(), "r1")
    assert outcome.sse_body is not None
    assert "response_too_long" not in outcome.sse_body
    assert _events(outcome.sse_body)[-1] == "[DONE]"
