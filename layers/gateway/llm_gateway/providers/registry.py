"""Which provider kinds exist. Adding a provider = its module + one line in `PROVIDERS`.

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

# kind → (its module, the variable holding its key; None: declared in config, many per kind).
# Settings find the configured providers here, so a container imports the modules of those only
# (the other six cost a chat cold start about 10 M instructions); a test checks every line
# against its module's `SPEC`.
PROVIDERS: dict[str, tuple[str, str | None]] = {
    "groq": ("llm_gateway.providers.groq", "GROQ_API_KEY"),
    "gemini": ("llm_gateway.providers.gemini", "GEMINI_API_KEY"),
    "cohere": ("llm_gateway.providers.cohere", "COHERE_API_KEY"),
    "mistral": ("llm_gateway.providers.mistral", "MISTRAL_API_KEY"),
    "openai": ("llm_gateway.providers.openai", "OPENAI_API_KEY"),
    "openai_compatible": ("llm_gateway.providers.openai_compatible", None),
    "replicate": ("llm_gateway.providers.replicate", "REPLICATE_API_TOKEN"),
}


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
def provider_spec(kind: str) -> ProviderSpec | None:
    """One kind's spec, importing its module alone; None for a kind not registered (or whose
    module is not written yet in this checkout). A module that fails to import is a bug: raised."""
    entry = PROVIDERS.get(kind)
    if entry is None:
        return None
    module_name = entry[0]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return None
        raise
    spec: ProviderSpec = module.SPEC
    return spec


@cache
def provider_specs() -> dict[str, ProviderSpec]:
    """Kind → spec for every registered kind (imports every provider module: tools and tests)."""
    return {kind: spec for kind in PROVIDERS if (spec := provider_spec(kind)) is not None}


def key_variables() -> frozenset[str]:
    """The variables that hold a built-in provider's key, without importing any provider."""
    return frozenset(key_env for _, key_env in PROVIDERS.values() if key_env)
