"""A provider whose answer cannot even be decoded (a `Content-Encoding: gzip` body that is not
gzip, as a broken proxy or CDN in front of it sends) has failed, like one that sends malformed
JSON: the caller gets an OpenAI-format error listing the attempt, never the handler's
last-resort 500, and the failure counts against that provider.

httpx raises `DecodingError` for such a body, which is a `RequestError` but not a
`TransportError`: the engine must translate it too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from llm_gateway.observability import metrics as m
from llm_gateway.observability.metrics import RecordingMetrics
from sandbox.apigw import LocalContext, load_handler_module, make_event
from tests.conftest import chat_handler_on_fakes
from tests.loopback import QuietHandler, serving

DEV_KEY = "local-dev-key"
_instances = iter(range(10**6))


class _NotGzip(QuietHandler):
    """Answers every request 200 with a body that says it is gzip and is not."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)) or b"{}")
        body = b"this was never gzip"
        stream = "text/event-stream" if request.get("stream") else "application/json"
        self.send_response(200)
        self.send_header("Content-Type", stream)
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def not_gzip() -> Iterator[str]:
    with serving(_NotGzip) as url:
        yield url + "/v1"


@pytest.fixture
def chat(fakes, clean_gateway_env, not_gzip) -> ModuleType:
    monkeypatch = clean_gateway_env
    chat_handler_on_fakes(fakes, monkeypatch, f"undecodable_fakes_{next(_instances)}")  # sets every fake's env
    monkeypatch.setenv("OPENAI_BASE_URL", not_gzip)  # then OpenAI's answers are undecodable
    module = load_handler_module("chat", instance=f"undecodable_{next(_instances)}")
    module.gateway.metrics = RecordingMetrics()
    return module


def _call(module: ModuleType, body: dict[str, Any]) -> tuple[int, dict[str, Any], str]:
    headers = {"authorization": f"Bearer {DEV_KEY}", "content-type": "application/json"}
    result = module.lambda_handler(make_event("POST", "/v1/chat/completions", headers, json.dumps(body).encode()),
                                   LocalContext(function_name="chat"))
    text = result.get("body") or ""
    return int(result["statusCode"]), (json.loads(text) if text.startswith("{") else {}), text


@pytest.mark.parametrize("stream", [False, True])
def test_an_undecodable_answer_is_a_failed_attempt_not_a_500(chat, stream):
    status, body, text = _call(chat, {"model": "openai/gpt-4o-mini", "stream": stream,
                                      "messages": [{"role": "user", "content": "hi"}]})
    assert status != 500, text
    assert status in (502, 503), text
    error = body["error"]
    assert error["code"] != "internal_error"
    assert {"message", "type", "param", "code"} <= set(error)
    # the provider's failure, as malformed JSON is: retried, and counted against openai
    assert error["attempts"] and all(attempt["provider"] == "openai" and attempt["error_class"] == "server_error"
                                     for attempt in error["attempts"])
    assert "this was never gzip" not in text
    assert chat.gateway.metrics.total(m.USER_VISIBLE_ERRORS) == 1  # the provider's failure, not a bug's 500
