"""Builds the configured adapters from settings: a provider without a key is simply absent.

Keys reach `Settings` from the environment locally and from the provider secret in AWS
(`config.load_settings`); any number of OpenAI-compatible endpoints are declared as data.
"""

from __future__ import annotations

from llm_gateway.config import Settings
from llm_gateway.providers.base import ChatAdapter
from llm_gateway.providers.registry import provider_specs


def build_adapters(settings: Settings) -> dict[str, ChatAdapter]:
    specs = provider_specs()
    return {p.name: specs[p.kind].make_adapter(p) for p in settings.providers if p.kind in specs}
