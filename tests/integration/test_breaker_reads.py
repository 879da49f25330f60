"""Breakers cost no read of their own on the request path.

The per-request state load already reads every candidate's breaker items in its BatchGetItem,
so a closed circuit (usually: no item at all) must not make Powertools' breaker GetItem it on
each attempt, and while the state store is degraded (DynamoDB down) no breaker read may wait
on it either. DynamoDB calls are counted with botocore's event hooks during N requests.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest

from llm_gateway.api.schemas import ChatCompletionRequest
from llm_gateway.compose import build_chat, build_core
from llm_gateway.config import load_settings
from llm_gateway.providers.registry import provider_specs
from llm_gateway.routing.circuit_breaker import reset_local_counters
from llm_gateway.selection.catalog import default_catalog
from llm_gateway.state.dynamodb import create_table
from sandbox.local_dynamodb import DynamoDBServer, make_moto_atomic
from tests.dynamodb_clients import count_calls, ours_over_http
from tests.integration.test_state_dynamodb import fake_aws  # noqa: F401

MODEL = "llama-3.1-8b-instant"
TABLE = f"state-{uuid.uuid4().hex[:8]}"
N = 8
ANSWER = {"id": "c1", "object": "chat.completion", "created": 1, "model": MODEL,
          "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
          "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}


def run_requests(client: Any) -> None:
    spec = provider_specs()["groq"]
    assert spec.key_env is not None
    env = {spec.key_env: "k", spec.base_url_env: "http://groq.test/openai/v1", spec.models_env: MODEL,
           "LLM_GATEWAY_STATE_TABLE": TABLE}
    http = httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(200, json=ANSWER)))
    core = build_core(load_settings(env), http_client=http, dynamodb_client=client, catalog=default_catalog())
    router = build_chat(core)
    request = ChatCompletionRequest.model_validate(
        {"model": f"groq/{MODEL}", "messages": [{"role": "user", "content": "hi"}]})
    for _ in range(N):
        assert router.complete(request).provider == "groq"


@pytest.fixture(autouse=True)
def _fresh_counters() -> Iterator[None]:
    reset_local_counters()
    yield
    reset_local_counters()


def test_a_closed_circuit_costs_no_get_item() -> None:
    """On moto's DynamoDB app over loopback, not `mock_aws`, whose exit resets moto's backends for
    the whole process (and so the tables of local-mode handlers in the same pytest worker)."""
    make_moto_atomic()
    server = DynamoDBServer()
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        create_table(boto3.client("dynamodb", region_name="us-east-1", endpoint_url=url), TABLE)
        client = ours_over_http(url)  # what a Lambda container uses
        calls = count_calls(client)
        run_requests(client)
    finally:
        server.stop()
    assert calls.get("GetItem", 0) == 0, calls
    assert calls.get("BatchGetItem", 0) >= N  # the state load of each request read them instead


def test_no_breaker_read_waits_on_a_degraded_store() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed once the block ends: connections are refused
    client = ours_over_http(f"http://127.0.0.1:{port}")
    calls = count_calls(client)
    run_requests(client)
    assert calls.get("GetItem", 0) == 0, calls
