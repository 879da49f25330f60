"""Fake LLM providers on loopback that speak each real wire format (the test doubles).

    from sandbox.fakes import start_fakes
    with start_fakes() as fleet:
        openai = fleet.providers["openai"]
        OpenAI(base_url=openai.base_url, api_key="sk-test")

Which fakes exist, with their default models and limits: `registry.FAKES`. The base URL each
official SDK takes and everything the fakes do: README.md. Any API key is accepted except a
missing one or one starting with "invalid".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sandbox.fakes.config import FakesConfigError, load_raw, provider_configs
from sandbox.fakes.engine import FakeProvider
from sandbox.fakes.registry import FAKES, FakeSpec, spec_of

__all__ = ["FAKES", "FakeFleet", "FakeProvider", "FakeSpec", "start_fakes"]


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
    """Start the fakes named in the config (default: every one in FAKES), optionally only
    `providers`."""
    raw = load_raw(config)
    configs = provider_configs(raw)
    missing = [p for p in (providers or []) if p not in configs]
    if missing:
        raise FakesConfigError(f"provider(s) {missing} not in the config; it has {list(configs)}")
    wanted = list(providers or configs)
    started: dict[str, FakeProvider] = {}
    try:
        for name in wanted:
            started[name] = FakeProvider(spec_of(name).wire, configs[name]).start()
    except BaseException:
        FakeFleet(started).stop()
        raise
    return FakeFleet(started)
