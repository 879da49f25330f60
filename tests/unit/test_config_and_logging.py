from __future__ import annotations

import io
import json
import logging

import pytest

from llm_gateway.api.errors import Unauthorized
from llm_gateway.config import DEFAULT_DEV_KEY, load_settings
from llm_gateway.gateway import Gateway
from llm_gateway.observability.logging import REDACTED, build_logger
from llm_gateway.observability.metrics import RecordingMetrics
from llm_gateway.providers.factory import build_adapters


def test_providers_come_from_keys_and_base_urls():
    settings = load_settings({
        "GROQ_API_KEY": "gk-test-123", "GROQ_BASE_URL": "http://127.0.0.1:9/", "OPENAI_API_KEY": "",
    })
    assert [p.name for p in settings.providers] == ["groq"]
    assert settings.providers[0].base_url == "http://127.0.0.1:9/"
    assert "gk-test-123" in settings.secrets
    assert "gk-test-123" not in repr(settings)


def test_secret_values_sit_under_env():
    settings = load_settings({"OPENAI_API_KEY": "from-env"}, secret_values={"OPENAI_API_KEY": "from-secret", "GROQ_API_KEY": "g-secret"})
    keys = {p.name: p.api_key for p in settings.providers}
    assert keys == {"groq": "g-secret", "openai": "from-env"}


def test_openai_compatible_endpoints_are_declared_as_data():
    # Each model of an endpoint needs its catalog entry (config validation rejects one that has none).
    m1 = {"provider": "together", "model": "m1", "category": "small", "context_window": 8192, "max_output": 1024,
          "capabilities": {}, "free_tier": {"rpm": 10}}
    settings = load_settings({
        "TOGETHER_KEY": "tk-1234",
        "LLM_GATEWAY_OPENAI_COMPATIBLE": json.dumps([
            {"name": "together", "base_url": "http://127.0.0.1:1/v1", "api_key_env": "TOGETHER_KEY", "models": ["m1"]},
            {"name": "nokey", "base_url": "http://x/v1", "models": ["m"]},
        ]),
        "LLM_GATEWAY_CATALOG_OVERRIDES": json.dumps(
            {"providers": {"together": {"as_of": "2026-11-25", "source": "test"}}, "models": [m1]}),
    })
    assert [(p.name, p.kind, p.models) for p in settings.providers] == [("together", "openai_compatible", ("m1",))]
    assert "together" in build_adapters(settings)


def test_bad_numbers_fail_loudly():
    with pytest.raises(ValueError, match="LLM_GATEWAY_DEADLINE_S"):
        load_settings({"LLM_GATEWAY_DEADLINE_S": "soon"})


def test_local_mode_accepts_dev_key_and_nothing_else():
    settings = load_settings({"LLM_GATEWAY_LOCAL": "1"})
    gateway = Gateway(settings, {}, router=None, metrics=RecordingMetrics(), logger=logging.getLogger("t"))  # type: ignore[arg-type]
    assert gateway.authenticate(f"Bearer {DEFAULT_DEV_KEY}").key_id
    for header in (None, "", "Bearer", "Basic abc", "Bearer wrong"):
        with pytest.raises(Unauthorized):
            gateway.authenticate(header)


def test_no_client_keys_means_no_access_outside_local_mode():
    settings = load_settings({})
    gateway = Gateway(settings, {}, router=None, metrics=RecordingMetrics(), logger=logging.getLogger("t"))  # type: ignore[arg-type]
    with pytest.raises(Unauthorized):
        gateway.authenticate(f"Bearer {DEFAULT_DEV_KEY}")


def test_logger_redacts_every_configured_secret_everywhere():
    secret = "sk-test-" + "x" * 24
    logger = build_logger([secret, "client-key-1"], service="test-redaction")
    stream = io.StringIO()
    for handler in logger.handlers:
        handler.stream = stream  # type: ignore[attr-defined]
    logger.info(f"calling with {secret}", extra={"auth": f"Bearer {secret}", "client": "client-key-1"})
    try:
        raise RuntimeError(f"provider said: bad key {secret}")
    except RuntimeError:
        logger.exception("boom")
    output = stream.getvalue()
    assert secret not in output and "client-key-1" not in output
    assert output.count(REDACTED) >= 4


def test_provider_keys_from_secrets_manager(monkeypatch):
    import boto3
    from moto import mock_aws

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        boto3.client("secretsmanager", region_name="us-east-1").create_secret(
            Name="llm-gateway/providers", SecretString=json.dumps({"GROQ_API_KEY": "gk-from-secret", "LLM_GATEWAY_API_KEYS": "c1,c2"})
        )
        settings = load_settings({"LLM_GATEWAY_PROVIDER_SECRET": "llm-gateway/providers"})
    assert [(p.name, p.api_key) for p in settings.providers] == [("groq", "gk-from-secret")]
    assert settings.api_keys == frozenset({"c1", "c2"})


def test_a_second_logger_of_the_same_service_still_redacts_its_own_keys():
    first = build_logger(["first-secret-key"], service="test-two-loggers")
    second = build_logger(["second-secret-key"], service="test-two-loggers")
    stream = io.StringIO()
    for handler in second.handlers:
        handler.stream = stream  # type: ignore[attr-defined]
    second.info("second-secret-key and first-secret-key")
    first.info("first-secret-key")
    assert "secret-key" not in stream.getvalue()
    assert stream.getvalue().count(REDACTED) == 3
