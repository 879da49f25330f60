"""A provider's 200 whose JSON is not the shape its API documents (a proxy's `[]` or `null`, a
string, a field of the wrong type, nesting deeper than Python's parser takes) has failed, like
a body that is not JSON at all: the caller gets an OpenAI-format error listing the attempt (and
another model, when one can serve), never the handler's last-resort 500.

Over loopback HTTP: the Gemini and Mistral adapters, pinned, pointed at a server that answers
every request with one such body, buffered and as a stream's event.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from llm_gateway.routing.circuit_breaker import reset_local_counters
from sandbox.apigw import LocalContext, load_handler_module, make_event
from tests.conftest import chat_handler_on_fakes
from tests.loopback import QuietHandler, serving

DEV_KEY = "local-dev-key"
_instances = iter(range(10**6))
WRONG_SHAPES = [b"[]", b"null", b'"ok"', b'{"choices": [1]}', b'{"candidates": [1]}',
                b'{"candidates": [{"content": 1}]}', b'{"choices": [{"message": {"content": "x"}, "finish_reason": '
                b'"stop"}], "usage": 5}', b"[" * 100_000 + b"]" * 100_000]


class _WrongShape(QuietHandler):
    protocol_version = "HTTP/1.1"
    body = b"[]"

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)) or b"{}")
        streaming = bool(request.get("stream")) or "alt=sse" in self.path
        data = b"data: " + type(self).body + b"\n\n" if streaming else type(self).body
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream" if streaming else "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def wrong_shape() -> Iterator[str]:
    with serving(_WrongShape) as url:
        yield url


@pytest.fixture
def chat(fakes, clean_gateway_env, wrong_shape) -> ModuleType:
    monkeypatch = clean_gateway_env
    chat_handler_on_fakes(fakes, monkeypatch, f"wrong_shape_fakes_{next(_instances)}")  # sets every fake's env
    monkeypatch.setenv("GEMINI_BASE_URL", wrong_shape)
    monkeypatch.setenv("MISTRAL_BASE_URL", wrong_shape)
    return load_handler_module("chat", instance=f"wrong_shape_{next(_instances)}")


def _call(module: ModuleType, body: dict[str, Any]) -> tuple[int, str]:
    headers = {"authorization": f"Bearer {DEV_KEY}", "content-type": "application/json"}
    result = module.lambda_handler(make_event("POST", "/v1/chat/completions", headers, json.dumps(body).encode()),
                                   LocalContext(function_name="chat"))
    return int(result["statusCode"]), result.get("body") or ""


@pytest.mark.parametrize("shape", WRONG_SHAPES, ids=[shape[:24].decode() for shape in WRONG_SHAPES])
@pytest.mark.parametrize("model", ["gemini/gemini-2.5-flash", "mistral/mistral-small-latest"])
def test_a_200_of_the_wrong_shape_is_a_failed_attempt_not_a_500(chat, model, shape):
    _WrongShape.body = shape
    for stream in (False, True):
        reset_local_counters()  # the stream reaches the adapter, not an open circuit
        status, text = _call(chat, {"model": model, "stream": stream,
                                    "messages": [{"role": "user", "content": "hi"}]})
        context = (model, stream, shape[:60], text[:300])
        assert status != 500, context
        assert "internal_error" not in text, context
        if status == 200:  # a stream whose event failed after the first chunk: an error event, no [DONE]
            assert stream and "stream_interrupted" in text, context
            continue
        error = json.loads(text)["error"]
        assert status in (502, 503) and error["code"] == "all_providers_failed", context
        assert error["attempts"], context
        assert {attempt["provider"] for attempt in error["attempts"]} == {model.split("/")[0]}, context
