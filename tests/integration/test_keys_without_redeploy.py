"""Keys picked up without a redeploy: the secrets are re-read on a short TTL in warm containers.

Against moto's Secrets Manager (in-process), through Powertools Parameters as in Lambda: a stack
deployed before its secrets were filled serves once they are, and a rotated client key works
(and the old one stops) within `LLM_GATEWAY_SECRET_TTL_S`, with no new container.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import boto3
import httpx
import pytest
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws

from llm_gateway.api.errors import Unauthorized
from llm_gateway.config import load_settings
from llm_gateway.gateway import build_gateway
from llm_gateway.observability.metrics import RecordingMetrics

OLD, NEW = "client-key-old-" + "o" * 24, "client-key-new-" + "n" * 24
TTL_S = 1


@pytest.fixture
def secrets(monkeypatch) -> Iterator[object]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        parameters.clear_caches()
        client = boto3.client("secretsmanager", region_name="us-east-1")
        client.create_secret(Name="providers", SecretString="{}")  # deployed before anyone filled it
        client.create_secret(Name="clients", SecretString=json.dumps({"LLM_GATEWAY_API_KEYS": OLD}))
        yield client
        parameters.clear_caches()


def _completion(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    })


def test_secrets_filled_or_rotated_after_the_deploy_work_without_one(secrets) -> None:
    env = {"LLM_GATEWAY_PROVIDER_SECRET": "providers", "LLM_GATEWAY_CLIENT_KEY_SECRET": "clients",
           "LLM_GATEWAY_SECRET_TTL_S": str(TTL_S), "AWS_DEFAULT_REGION": "us-east-1"}
    gateway = build_gateway(load_settings(env), metrics=RecordingMetrics(),
                            http_client=httpx.Client(transport=httpx.MockTransport(_completion)))
    assert gateway.router.available() == frozenset()  # no provider key yet
    gateway.authenticate(f"Bearer {OLD}")

    secrets.put_secret_value(SecretId="providers", SecretString=json.dumps({"OPENAI_API_KEY": "sk-filled-later"}))
    secrets.put_secret_value(SecretId="clients", SecretString=json.dumps({"LLM_GATEWAY_API_KEYS": NEW}))
    time.sleep(TTL_S + 0.1)  # the warm container's cached copy expires

    assert any(key.provider == "openai" for key in gateway.router.available())
    gateway.authenticate(f"Bearer {NEW}")
    with pytest.raises(Unauthorized):
        gateway.authenticate(f"Bearer {OLD}")
    # the new provider key is redacted from logs like the ones known at cold start
    formatter = gateway.logger.handlers[0].formatter
    assert "sk-filled-later" not in formatter.format(gateway.logger._logger.makeRecord(
        "t", 20, __file__, 1, "key sk-filled-later", (), None))
