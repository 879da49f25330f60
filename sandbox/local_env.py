"""The local stand-ins for what AWS provides: fake providers when no keys are set, and an
embedded DynamoDB (moto server) for state, announced loudly so nobody mistakes them for real."""

from __future__ import annotations

import os
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field

from llm_gateway.config import DEFAULT_DEV_KEY
from llm_gateway.providers.registry import provider_specs

FAKE_PROVIDER_KEY = "sandbox-fake-key"


@dataclass
class LocalEnvironment:
    notes: list[str] = field(default_factory=list)
    stops: list[Callable[[], None]] = field(default_factory=list)

    def stop(self) -> None:
        for stop in reversed(self.stops):
            stop()


def has_provider_keys(env: MutableMapping[str, str]) -> bool:
    keys = [spec.key_env for spec in provider_specs().values() if spec.key_env]
    return any(env.get(k) for k in keys) or bool(env.get("LLM_GATEWAY_OPENAI_COMPATIBLE"))


def prepare_local_env(env: MutableMapping[str, str] | None = None, *, state: str = "dynamodb") -> LocalEnvironment:
    """Fill `env` (default: os.environ) so that `load_settings()` builds a working local gateway."""
    env = os.environ if env is None else env
    local = LocalEnvironment()
    env["LLM_GATEWAY_LOCAL"] = "1"
    env.setdefault("POWERTOOLS_SERVICE_NAME", "llm-gateway")
    env.setdefault("POWERTOOLS_METRICS_NAMESPACE", "LlmGateway")
    if not has_provider_keys(env):
        _start_fakes(env, local)
    if state == "dynamodb" and not env.get("LLM_GATEWAY_STATE_TABLE"):
        _start_dynamodb(env, local)
    local.notes.append(f"API key for this gateway: {env.get('LLM_GATEWAY_DEV_KEY') or DEFAULT_DEV_KEY}")
    return local


def _start_fakes(env: MutableMapping[str, str], local: LocalEnvironment) -> None:
    from sandbox.fakes import start_fakes

    fleet = start_fakes()
    specs = provider_specs()
    for name, fake in fleet.providers.items():
        spec = specs.get(name)
        if spec is None or spec.key_env is None:
            continue
        env[spec.key_env] = FAKE_PROVIDER_KEY
        env[spec.base_url_env] = fake.base_url
    local.stops.append(fleet.stop)
    local.notes.append(
        "No provider keys set: serving from the sandbox's FAKE providers ("
        + ", ".join(f"{n} at {p.base_url}" for n, p in fleet.providers.items())
        + "). Set e.g. GROQ_API_KEY to use real ones."
    )


def _start_dynamodb(env: MutableMapping[str, str], local: LocalEnvironment) -> None:
    try:
        from sandbox.local_dynamodb import start_local_dynamodb
    except ImportError:
        local.notes.append("State: in memory (embedded DynamoDB not available in this checkout).")
        return
    for name, value in (("AWS_ACCESS_KEY_ID", "local"), ("AWS_SECRET_ACCESS_KEY", "local"), ("AWS_DEFAULT_REGION", "us-east-1")):
        env.setdefault(name, value)
    dynamo = start_local_dynamodb()
    env["LLM_GATEWAY_STATE_TABLE"] = dynamo.table_name
    env["LLM_GATEWAY_DYNAMODB_ENDPOINT"] = dynamo.endpoint_url
    local.stops.append(dynamo.stop)
    local.notes.append(f"State: embedded DynamoDB (moto server) at {dynamo.endpoint_url}, table {dynamo.table_name}.")
