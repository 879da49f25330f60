"""Settings, read once per container at cold start and passed in (never a mutable global).

Provider keys come from the environment locally and from one Secrets Manager secret in AWS
(a JSON object of the same names). The secret is re-read on a short TTL while containers are
warm (`keys.KeySource`), so `Settings` holds what the environment said and the secret's values
as of cold start.
Every variable is listed in README.md's configuration table; keep the two in step.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from llm_gateway.providers.base import ProviderConfig
from llm_gateway.providers.registry import provider_specs

DEFAULT_DEV_KEY = "local-dev-key"


@dataclass(frozen=True)
class Settings:
    providers: tuple[ProviderConfig, ...] = ()
    api_keys: frozenset[str] = field(default=frozenset(), repr=False)
    deadline_s: float = 25.0
    max_attempts: int = 3
    attempt_timeout_s: float = 20.0
    state_table: str | None = None
    dynamodb_endpoint: str | None = None
    catalog_overrides: str | None = None
    max_body_bytes: int = 4 * 1024 * 1024
    local_mode: bool = False
    max_wait_s: float = 2.0
    provider_secret: str | None = None
    secret_ttl_s: int = 120
    environment: Mapping[str, str] = field(default_factory=dict, repr=False)  # what the settings came from

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every value that must never reach a log line, an error or a response."""
        values = [p.api_key for p in self.providers] + list(self.api_keys)
        return tuple(sorted({v for v in values if v and len(v) >= 4}, key=len, reverse=True))


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a number, got {raw!r}") from exc


def _providers(env: Mapping[str, str]) -> list[ProviderConfig]:
    """One config per provider kind whose key is set, plus every declared OpenAI-compatible endpoint."""
    configs: list[ProviderConfig] = []
    for kind, spec in provider_specs().items():
        key = env.get(spec.key_env, "").strip() if spec.key_env else ""
        if not key:
            continue
        base_url = env.get(spec.base_url_env, "").strip() or spec.default_base_url
        # No list = every catalog model of this provider; `<KIND>_MODELS` narrows it.
        models = tuple(m.strip() for m in env.get(spec.models_env, "").split(",") if m.strip())
        configs.append(ProviderConfig(name=kind, kind=kind, base_url=base_url, api_key=key, models=models))
    configs.extend(_compatible_endpoints(env))
    return configs


def _compatible_endpoints(env: Mapping[str, str]) -> list[ProviderConfig]:
    """`LLM_GATEWAY_OPENAI_COMPATIBLE`: a JSON list of {name, base_url, api_key | api_key_env, models, options}."""
    raw = env.get("LLM_GATEWAY_OPENAI_COMPATIBLE", "").strip()
    if not raw:
        return []
    try:
        entries: list[dict[str, Any]] = json.loads(raw)
    except ValueError as exc:
        raise ValueError("LLM_GATEWAY_OPENAI_COMPATIBLE must be a JSON list") from exc
    configs = []
    for entry in entries:
        key = entry.get("api_key") or env.get(str(entry.get("api_key_env", "")), "")
        if not key or not entry.get("name") or not entry.get("base_url"):
            continue
        configs.append(
            ProviderConfig(
                name=str(entry["name"]), kind="openai_compatible", base_url=str(entry["base_url"]),
                api_key=str(key), models=tuple(entry.get("models", ())), options=dict(entry.get("options", {})),
            )
        )
    return configs


def _client_keys(env: Mapping[str, str], local_mode: bool) -> frozenset[str]:
    keys = {k.strip() for k in env.get("LLM_GATEWAY_API_KEYS", "").split(",") if k.strip()}
    if local_mode:
        keys.add(env.get("LLM_GATEWAY_DEV_KEY", "").strip() or DEFAULT_DEV_KEY)
    return frozenset(keys)


def fetch_secret_values(secret_name: str, max_age_s: int = 120) -> dict[str, str]:
    """The provider-key secret as a flat mapping; Powertools caches it for `max_age_s`."""
    from aws_lambda_powertools.utilities import parameters

    value = parameters.get_secret(secret_name, transform="json", max_age=max_age_s)
    return {str(k): str(v) for k, v in (value or {}).items() if v is not None}


def provider_configs(env: Mapping[str, str], secret_values: Mapping[str, str]) -> tuple[ProviderConfig, ...]:
    """Provider configs from the secret's values with the environment over them."""
    return tuple(_providers(_merged(env, secret_values)))


def client_keys(env: Mapping[str, str], secret_values: Mapping[str, str]) -> frozenset[str]:
    merged = _merged(env, secret_values)
    return _client_keys(merged, merged.get("LLM_GATEWAY_LOCAL", "") in {"1", "true", "yes"})


def _merged(env: Mapping[str, str], secret_values: Mapping[str, str]) -> dict[str, str]:
    return {**secret_values, **{k: v for k, v in env.items() if v != ""}}


def load_settings(env: Mapping[str, str] | None = None, secret_values: Mapping[str, str] | None = None) -> Settings:
    """Build settings from the environment, with the provider secret's values underneath it."""
    env = dict(os.environ if env is None else env)
    secret_name = env.get("LLM_GATEWAY_PROVIDER_SECRET") or None
    ttl = int(_float(env, "LLM_GATEWAY_SECRET_TTL_S", 120))
    if secret_values is None and secret_name:
        secret_values = fetch_secret_values(secret_name, ttl)
    merged = _merged(env, secret_values or {})
    local_mode = merged.get("LLM_GATEWAY_LOCAL", "") in {"1", "true", "yes"}
    return Settings(
        providers=tuple(_providers(merged)),
        api_keys=_client_keys(merged, local_mode),
        deadline_s=_float(merged, "LLM_GATEWAY_DEADLINE_S", 25.0),
        max_attempts=max(1, int(_float(merged, "LLM_GATEWAY_MAX_ATTEMPTS", 3))),
        attempt_timeout_s=_float(merged, "LLM_GATEWAY_ATTEMPT_TIMEOUT_S", 20.0),
        state_table=merged.get("LLM_GATEWAY_STATE_TABLE") or None,
        dynamodb_endpoint=merged.get("LLM_GATEWAY_DYNAMODB_ENDPOINT") or None,
        catalog_overrides=merged.get("LLM_GATEWAY_CATALOG_OVERRIDES") or None,
        max_body_bytes=int(_float(merged, "LLM_GATEWAY_MAX_BODY_BYTES", 4 * 1024 * 1024)),
        local_mode=local_mode,
        max_wait_s=_float(merged, "LLM_GATEWAY_MAX_WAIT_S", 2.0),
        provider_secret=secret_name,
        secret_ttl_s=ttl,
        environment=env,
    )
