"""Builds the configured adapters from settings: a provider without a key is simply absent.

Keys reach `Settings` from the environment locally and from the provider secret in AWS
(`config.load_settings`); any number of OpenAI-compatible endpoints are declared as data.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from llm_gateway.providers.base import ProviderConfig
from llm_gateway.providers.registry import provider_spec


def build_adapters(providers: Iterable[ProviderConfig], capability: str) -> dict[str, Any]:
    """Provider name → its adapter for `capability`, for every configured provider serving it."""
    out: dict[str, Any] = {}
    for config in providers:
        spec = provider_spec(config.kind)
        make = spec.adapters.get(capability) if spec is not None else None
        if make is not None:
            out[config.name] = make(config)
    return out
