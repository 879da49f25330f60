"""Settings, read once per container at cold start and passed in (never a mutable global).

Provider keys come from the environment locally and from one Secrets Manager secret in AWS
(a JSON object of the same names, fetched through Powertools Parameters with its cache).
Every variable is listed in README.md's configuration table; keep the two in step.

Loading also validates: a setting that cannot work (a number that is not one, a malformed or
misspelt catalog override, a model list naming nothing) raises `ConfigError` with one line
naming the variable, so a Lambda's init or `make dev` stops at once instead of failing every
request later.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from llm_gateway.config_check import COMPATIBLE_ENV, ConfigError, check_catalog
from llm_gateway.providers.base import ProviderConfig
from llm_gateway.providers.registry import provider_specs

DEFAULT_DEV_KEY = "local-dev-key"
ENDPOINT_FIELDS = ("name", "base_url", "api_key", "api_key_env", "models", "options")
__all__ = ["ConfigError", "Settings", "load_settings"]


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

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every value that must never reach a log line, an error or a response."""
        values = [p.api_key for p in self.providers] + list(self.api_keys)
        return tuple(sorted({v for v in values if v and len(v) >= 4}, key=len, reverse=True))


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    """A positive number of seconds (or the default when unset)."""
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from exc
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be greater than 0, got {raw!r}")
    return value


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    """A whole number of at least 1 (or the default when unset)."""
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from exc
    if not value.is_integer():
        raise ConfigError(f"{name} must be a whole number, got {raw!r}")
    if value < 1:
        raise ConfigError(f"{name} must be at least 1, got {raw!r}")
    return int(value)


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
    """`LLM_GATEWAY_OPENAI_COMPATIBLE`: a JSON list of {name, base_url, api_key | api_key_env, models, options}.

    An endpoint whose key is not set is absent, as a built-in provider without its key is."""
    raw = env.get(COMPATIBLE_ENV, "").strip()
    if not raw:
        return []
    try:
        entries = json.loads(raw)
    except ValueError as exc:
        raise ConfigError(f"{COMPATIBLE_ENV} is not valid JSON: {exc}") from exc
    if not isinstance(entries, list):
        raise ConfigError(f"{COMPATIBLE_ENV} must be a JSON list of endpoints, got {type(entries).__name__}")
    configs = []
    for index, entry in enumerate(entries):
        _check_endpoint(index, entry)
        key = entry.get("api_key") or env.get(str(entry.get("api_key_env", "")), "")
        if not key:
            continue
        configs.append(
            ProviderConfig(
                name=str(entry["name"]), kind="openai_compatible", base_url=str(entry["base_url"]),
                api_key=str(key), models=tuple(entry.get("models", ())), options=dict(entry.get("options", {})),
            )
        )
    return configs


def _check_endpoint(index: int, entry: object) -> None:
    where = f"{COMPATIBLE_ENV}[{index}]"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} must be an object with {', '.join(ENDPOINT_FIELDS)}")
    unknown = sorted(set(entry) - set(ENDPOINT_FIELDS))
    if unknown:
        raise ConfigError(f"{where} has unknown key(s) {', '.join(map(repr, unknown))}; known: {', '.join(ENDPOINT_FIELDS)}")
    for required in ("name", "base_url"):
        if not isinstance(entry.get(required), str) or not entry[required].strip():
            raise ConfigError(f"{where} needs a {required!r} (a non-empty string)")
    if entry["name"] in provider_specs():
        raise ConfigError(f"{where} is named {entry['name']!r}, a built-in provider; choose another name")
    models = entry.get("models", [])
    if not isinstance(models, list) or not all(isinstance(m, str) and m for m in models):
        raise ConfigError(f"{where}.models must be a list of model ids")
    if not isinstance(entry.get("options", {}), dict):
        raise ConfigError(f"{where}.options must be an object")


def _client_keys(env: Mapping[str, str], local_mode: bool) -> frozenset[str]:
    keys = {k.strip() for k in env.get("LLM_GATEWAY_API_KEYS", "").split(",") if k.strip()}
    if local_mode:
        keys.add(env.get("LLM_GATEWAY_DEV_KEY", "").strip() or DEFAULT_DEV_KEY)
    return frozenset(keys)


def fetch_secret_values(secret_name: str) -> dict[str, str]:
    """The provider-key secret as a flat mapping (Powertools caches it for 5 minutes)."""
    from aws_lambda_powertools.utilities import parameters

    value = parameters.get_secret(secret_name, transform="json")
    return {str(k): str(v) for k, v in (value or {}).items() if v is not None}


def load_settings(env: Mapping[str, str] | None = None, secret_values: Mapping[str, str] | None = None) -> Settings:
    """Build settings from the environment, with the provider secret's values underneath it."""
    env = dict(os.environ if env is None else env)
    if secret_values is None and env.get("LLM_GATEWAY_PROVIDER_SECRET"):
        secret_values = fetch_secret_values(env["LLM_GATEWAY_PROVIDER_SECRET"])
    merged = {**(secret_values or {}), **{k: v for k, v in env.items() if v != ""}}
    local_mode = merged.get("LLM_GATEWAY_LOCAL", "") in {"1", "true", "yes"}
    settings = Settings(
        providers=tuple(_providers(merged)),
        api_keys=_client_keys(merged, local_mode),
        deadline_s=_float(merged, "LLM_GATEWAY_DEADLINE_S", 25.0),
        max_attempts=_int(merged, "LLM_GATEWAY_MAX_ATTEMPTS", 3),
        attempt_timeout_s=_float(merged, "LLM_GATEWAY_ATTEMPT_TIMEOUT_S", 20.0),
        state_table=merged.get("LLM_GATEWAY_STATE_TABLE") or None,
        dynamodb_endpoint=merged.get("LLM_GATEWAY_DYNAMODB_ENDPOINT") or None,
        catalog_overrides=merged.get("LLM_GATEWAY_CATALOG_OVERRIDES") or None,
        max_body_bytes=_int(merged, "LLM_GATEWAY_MAX_BODY_BYTES", 4 * 1024 * 1024),
        local_mode=local_mode,
    )
    check_catalog(settings.catalog_overrides, settings.providers)
    return settings
