"""Configuration of the fake providers: the embedded `default.yaml`, or a file/dict replacing it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sandbox.fakes.limits import DEFAULT_LIMITS, parse_dimensions, parse_model_limits

DEFAULT_CONFIG = Path(__file__).with_name("default.yaml")
PROVIDER_NAMES = ("openai", "groq", "gemini", "cohere", "mistral")


@dataclass
class ProviderConfig:
    models: list[str]
    limits: dict[str, dict[str, int]] = field(default_factory=lambda: {"default": dict(DEFAULT_LIMITS)})
    org_limits: dict[str, int] = field(default_factory=dict)  # the whole provider (organisation)
    latency_ms: float = 0.0
    chunk_delay_ms: float = 0.0
    faults: list[dict[str, Any]] = field(default_factory=list)
    seed: int = 1234
    strict: bool = True  # reject what the real provider rejects (Wire.check_strict)


def load_raw(config: str | Path | dict[str, Any] | None) -> dict[str, Any]:
    """The config as a dict: None → embedded default; str/Path → that YAML file; dict → itself."""
    if config is None:
        config = DEFAULT_CONFIG
    if isinstance(config, dict):
        return config
    data = yaml.safe_load(Path(config).read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{config}: expected a mapping at the top level")
    return data


def provider_configs(
    raw: dict[str, Any], default_models: Callable[[str], list[str]]
) -> dict[str, ProviderConfig]:
    """One ProviderConfig per provider named under `providers:` (missing fields take defaults)."""
    seed = int(raw.get("seed", 1234))
    strict = _flag(raw.get("strict", True), "strict")
    providers = raw.get("providers")
    if not isinstance(providers, dict):
        raise ValueError("config needs a `providers:` mapping")
    out: dict[str, ProviderConfig] = {}
    for name, conf in providers.items():
        if name not in PROVIDER_NAMES:
            raise ValueError(f"unknown provider {name!r}; expected one of {', '.join(PROVIDER_NAMES)}")
        conf = conf or {}
        out[name] = ProviderConfig(
            models=[str(m) for m in conf.get("models") or default_models(name)],
            limits=parse_model_limits(conf.get("limits"), f"providers.{name}.limits"),
            org_limits=parse_dimensions(conf.get("org_limits"), f"providers.{name}.org_limits"),
            latency_ms=float(conf.get("latency_ms", 0)),
            chunk_delay_ms=float(conf.get("chunk_delay_ms", 0)),
            faults=list(conf.get("faults") or []),
            seed=int(conf.get("seed", seed)),
            strict=_flag(conf.get("strict", strict), f"providers.{name}.strict"),
        )
    return out


def _flag(value: Any, where: str) -> bool:
    """A YAML boolean; anything else is a config mistake worth failing on, not a truthy guess."""
    if not isinstance(value, bool):
        raise ValueError(f"{where}: expected true or false, got {value!r}")
    return value
