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


def test_with_lambdas_credentials_the_secrets_are_read_without_boto3(monkeypatch) -> None:
    """Lambda's environment (region and credentials): the secrets come through the gateway's own
    Secrets Manager client (httpx), here against moto's server, with Parameters' cache; Powertools'
    boto3 provider is never asked. A rotation is seen once the cached copy expires."""
    import llm_gateway.config as config
    from sandbox.local_secrets import start_local_secrets

    def no_boto3(*_args: object) -> dict[str, str]:
        raise AssertionError("Powertools' boto3 SecretsProvider was used")

    monkeypatch.setattr(config, "fetch_secret_values", no_boto3)
    secrets = start_local_secrets({"OPENAI_API_KEY": "sk-from-the-secret"}, {"LLM_GATEWAY_API_KEYS": OLD})
    try:
        env = {**secrets.env(), "LLM_GATEWAY_SECRET_TTL_S": str(TTL_S), "AWS_REGION": "us-east-1",
               "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}
        gateway = build_gateway(load_settings(env), metrics=RecordingMetrics(),
                                http_client=httpx.Client(transport=httpx.MockTransport(_completion)))
        assert [p.api_key for p in gateway.settings.providers] == ["sk-from-the-secret"]
        gateway.authenticate(f"Bearer {OLD}")
        secrets.put(secrets.client_secret, {"LLM_GATEWAY_API_KEYS": NEW})
        gateway.authenticate(f"Bearer {OLD}")  # within the TTL: the cached copy
        time.sleep(TTL_S + 0.1)
        gateway.authenticate(f"Bearer {NEW}")
        with pytest.raises(Unauthorized):
            gateway.authenticate(f"Bearer {OLD}")
    finally:
        secrets.stop()


def test_the_health_check_checks_the_provider_key_in_force_not_the_one_it_started_with(secrets) -> None:
    """Found in the rollout audit: the health function built its provider clients once per
    container, so after a rotation it went on checking the old key (a bad new key went unseen
    until the container was recycled)."""
    from llm_gateway.providers.engine import ProviderEngine
    from llm_gateway.routing.health import health_dependencies, run_active_checks

    seen: list[str] = []

    def models(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        return httpx.Response(200, json={"object": "list", "data": [{"id": "gpt-4o-mini", "object": "model"}]})

    secrets.put_secret_value(SecretId="providers", SecretString=json.dumps({"OPENAI_API_KEY": "sk-before-rotation"}))
    settings = load_settings({"LLM_GATEWAY_PROVIDER_SECRET": "providers", "LLM_GATEWAY_SECRET_TTL_S": str(TTL_S),
                              "AWS_DEFAULT_REGION": "us-east-1"})
    adapters, _engine, store = health_dependencies(settings=settings)  # once per container, as the function does
    engine = ProviderEngine(httpx.Client(transport=httpx.MockTransport(models)))
    assert run_active_checks(adapters(), engine, store)["providers"]["openai"]["available"]
    secrets.put_secret_value(SecretId="providers", SecretString=json.dumps({"OPENAI_API_KEY": "sk-after-rotation"}))
    time.sleep(TTL_S + 0.1)
    run_active_checks(adapters(), engine, store)
    assert seen == ["Bearer sk-before-rotation", "Bearer sk-after-rotation"]
