"""Fake LLM providers on loopback that speak each real wire format (the test doubles).

    from sandbox.fakes import start_fakes
    with start_fakes() as fleet:
        openai = fleet.providers["openai"]
        OpenAI(base_url=openai.base_url, api_key="sk-test")

Base URLs (the form each official SDK takes):
    openai   OpenAI(base_url="http://127.0.0.1:P/v1")
    groq     Groq(base_url="http://127.0.0.1:P")              (SDK appends /openai/v1/...)
    gemini   genai.Client(api_key=..., http_options={"base_url": "http://127.0.0.1:P"})
    cohere   cohere.ClientV2(base_url="http://127.0.0.1:P")
    mistral  Mistral(server_url="http://127.0.0.1:P")
Any API key is accepted except a missing one or one starting with "invalid".
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from sandbox.fakes.config import PROVIDER_NAMES, load_raw, provider_configs
from sandbox.fakes.engine import FakeProvider
from sandbox.fakes.wire import Wire

WIRE_MODULES = {
    "openai": "sandbox.fakes.openai_fake",
    "groq": "sandbox.fakes.groq_fake",
    "gemini": "sandbox.fakes.gemini_fake",
    "cohere": "sandbox.fakes.cohere_fake",
    "mistral": "sandbox.fakes.mistral_fake",
}

__all__ = ["PROVIDER_NAMES", "FakeFleet", "FakeProvider", "load_wire", "start_fakes"]


def load_wire(name: str) -> Wire:
    return importlib.import_module(WIRE_MODULES[name]).WIRE


class FakeFleet:
    """The running fakes: `.providers[name]` → FakeProvider; a context manager that stops them."""

    def __init__(self, providers: dict[str, FakeProvider]) -> None:
        self.providers = providers

    def __getitem__(self, name: str) -> FakeProvider:
        return self.providers[name]

    def describe(self) -> dict[str, Any]:
        return {
            name: {"base_url": p.base_url, "models": list(p.models)} for name, p in self.providers.items()
        }

    def reset(self) -> None:
        for provider in self.providers.values():
            provider.reset()

    def stop(self) -> None:
        for provider in self.providers.values():
            provider.stop()

    def __enter__(self) -> FakeFleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_fakes(
    config: str | Path | dict[str, Any] | None = None, providers: list[str] | None = None
) -> FakeFleet:
    """Start the fakes named in the config (default: all five), optionally only `providers`."""
    configs = provider_configs(load_raw(config), lambda name: load_wire(name).default_models)
    missing = [p for p in (providers or []) if p not in configs]
    if missing:
        raise ValueError(f"provider(s) {missing} not in the config; it has {list(configs)}")
    wanted = list(providers or configs)
    started: dict[str, FakeProvider] = {}
    try:
        for name in wanted:
            started[name] = FakeProvider(load_wire(name), configs[name]).start()
    except BaseException:
        FakeFleet(started).stop()
        raise
    return FakeFleet(started)
