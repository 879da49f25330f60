"""Which provider kinds exist. Adding a provider = its module + one line in `PROVIDER_MODULES`.

Each module exposes `SPEC: ProviderSpec`, which declares one adapter per capability the provider
serves (chat, transcription), in the spirit of Portkey's per-endpoint provider configs. Nothing
else in the gateway branches on a provider's name: the factory, routers and planner only ever
see specs, configs and adapters.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache

from llm_gateway.providers.base import ProviderConfig, WireAdapter

PROVIDER_MODULES: tuple[str, ...] = (
    "llm_gateway.providers.groq",
    "llm_gateway.providers.gemini",
    "llm_gateway.providers.cohere",
    "llm_gateway.providers.mistral",
    "llm_gateway.providers.openai",
    "llm_gateway.providers.openai_compatible",
    "llm_gateway.providers.replicate",
)


@dataclass(frozen=True)
class ProviderSpec:
    """A provider kind: how to find its key and endpoint, and its adapter per capability.

    `default_base_url` is in the form the provider's official SDK takes as its base URL, which
    is also what `<KIND>_BASE_URL` and `llm-gateway fakes --json` use.
    """

    kind: str
    default_base_url: str
    key_env: str | None  # None: instances are declared in config (many per kind), not by one key
    adapters: Mapping[str, Callable[[ProviderConfig], WireAdapter]]  # capability → adapter factory

    @property
    def base_url_env(self) -> str:
        return f"{self.kind.upper()}_BASE_URL"

    @property
    def models_env(self) -> str:
        return f"{self.kind.upper()}_MODELS"


@cache
def provider_specs() -> dict[str, ProviderSpec]:
    """Kind → spec, for every registered module that imports (a missing one is a bug, so raise)."""
    specs: dict[str, ProviderSpec] = {}
    for module_name in PROVIDER_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue  # provider not written yet in this checkout
            raise
        spec: ProviderSpec = module.SPEC
        specs[spec.kind] = spec
    return specs
