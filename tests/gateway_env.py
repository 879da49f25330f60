"""Which environment variables configure a gateway: one owner, so every test that starts a
process "as a new user's shell" strips the same ones (a provider whose key variable does not end
in `_API_KEY`, such as `REPLICATE_API_TOKEN`, included)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from llm_gateway.providers.registry import provider_specs

PROVIDER_KEY_ENVS = frozenset(spec.key_env for spec in provider_specs().values() if spec.key_env)


def is_gateway_setting(name: str) -> bool:
    return (name.startswith("LLM_GATEWAY_") or name.endswith(("_API_KEY", "_BASE_URL", "_MODELS"))
            or name in PROVIDER_KEY_ENVS)


def without_gateway_settings(env: Mapping[str, str] | None = None, *, drop_aws: bool = False) -> dict[str, str]:
    source = os.environ if env is None else env
    return {k: v for k, v in source.items() if not is_gateway_setting(k) and not (drop_aws and k.startswith("AWS_"))}
