"""The HTTP server the Lambda Web Adapter talks to on AWS (`llm_gateway/api/lwa.py`), in front of
the real chat handler on the fake providers, sent requests the way LWA sends them: the API
Gateway request context and the Lambda context as JSON headers. LWA itself (a Rust binary in a
layer) is not run here; what it forwards and expects is taken from its source (see the module)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from types import ModuleType

import httpx
import pytest

from llm_gateway.api.lwa import READY_PATH, LwaServer
from tests.conftest import chat_handler_on_fakes

_instances = iter(range(10**6))
TOOL_RESULT = " ".join("abcdefghijklmnopqrstuvwxyzabcdefghijklmn")


@pytest.fixture
def chat(fakes, clean_gateway_env) -> ModuleType:
    return chat_handler_on_fakes(fakes, clean_gateway_env, f"lwa_{next(_instances)}")


@pytest.fixture
def lwa_url(chat) -> Iterator[str]:
    server = LwaServer(0, chat.stream_handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _lwa_headers(request_id: str, seconds_left: float) -> dict[str, str]:
    return {
        "authorization": "Bearer local-dev-key",
        "x-amzn-request-context": json.dumps({"requestId": request_id, "stage": "prod", "path": "/prod/v1/chat/completions",
                                              "identity": {"sourceIp": "203.0.113.9"}}),
        "x-amzn-lambda-context": json.dumps({"request_id": "lambda-1", "deadline": int((time.time() + seconds_left) * 1000),
                                             "invoked_function_arn": "arn:aws:lambda:us-east-1:1:function:chat:live",
                                             "env_config": {"function_name": "chat", "memory": 512, "version": "7"}}),
    }


def _tool_messages() -> list[dict[str, object]]:
    call = {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}
    return [{"role": "user", "content": "Look it up"}, {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_1", "content": TOOL_RESULT}]


def test_the_readiness_path_answers_without_the_app(lwa_url) -> None:
    assert httpx.get(lwa_url + READY_PATH).status_code == 200


def test_a_json_route_answers_as_the_buffered_handler_does(lwa_url) -> None:
    response = httpx.get(f"{lwa_url}/v1/models", headers=_lwa_headers("apigw-req-1", 300))
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "apigw-req-1"  # API Gateway's id, from LWA's header
    assert any(card["id"] == "auto" for card in response.json()["data"])
    unauthorized = httpx.get(f"{lwa_url}/v1/models", headers={**_lwa_headers("apigw-req-2", 300), "authorization": ""})
    assert unauthorized.status_code == 401 and unauthorized.json()["error"]["type"] == "invalid_request_error"


def test_a_stream_leaves_the_server_chunk_by_chunk(lwa_url, fakes) -> None:
    fake = fakes.providers["openai"]
    fake.add_fault(fault="slow_stream", rate=1.0, delay_ms=100, model="gpt-4o-mini")
    body = {"model": "openai/gpt-4o-mini", "stream": True, "messages": _tool_messages()}
    began = time.monotonic()
    arrivals: list[float] = []
    with httpx.stream("POST", f"{lwa_url}/v1/chat/completions", json=body, timeout=30,
                      headers=_lwa_headers("apigw-req-3", 300)) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-request-id"] == "apigw-req-3"
        lines = []
        for line in response.iter_lines():
            if line.startswith("data: "):
                arrivals.append(time.monotonic() - began)
                lines.append(line)
    assert lines[-1] == "data: [DONE]"
    assert arrivals[0] < arrivals[-1] / 4, (arrivals[0], arrivals[-1])


def test_the_lambda_deadline_from_lwa_bounds_the_request(lwa_url, fakes) -> None:
    """Three seconds left in the invocation (LWA's `deadline`) cut the stream's budget to about one."""
    fakes.providers["openai"].add_fault(fault="slow_stream", rate=1.0, delay_ms=300, model="gpt-4o-mini")
    body = {"model": "openai/gpt-4o-mini", "stream": True, "messages": _tool_messages()}
    began = time.monotonic()
    with httpx.stream("POST", f"{lwa_url}/v1/chat/completions", json=body, timeout=30,
                      headers=_lwa_headers("apigw-req-4", 3.0)) as response:
        events = [line.removeprefix("data: ") for line in response.iter_lines() if line.startswith("data: ")]
    assert time.monotonic() - began < 3.0
    assert "[DONE]" not in events
    assert json.loads(events[-1])["error"]["code"] == "stream_deadline"


def test_a_head_request_leaves_the_connection_usable_for_the_next_invocation(lwa_url) -> None:
    """The chat function's catch-all route takes every method, HEAD included. The server wrote the
    handler's JSON body after a HEAD response's headers; a client that reads no body after HEAD
    (as HTTP says, and as LWA's pooled connection to this server does) then read those bytes as
    the next response's status line: one caller's HEAD broke the next invocation of the container."""
    import http.client

    host, port = lwa_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("HEAD", "/v1/models", headers=_lwa_headers("apigw-head-1", 300))
        head = connection.getresponse()
        head.read()
        assert head.status == 404  # GET routes only: HEAD is an unknown route, as before
        connection.request("GET", "/v1/models", headers=_lwa_headers("apigw-head-2", 300))
        after = connection.getresponse()
        assert after.status == 200 and after.getheader("x-request-id") == "apigw-head-2"
        assert any(card["id"] == "auto" for card in json.loads(after.read())["data"])
    finally:
        connection.close()
