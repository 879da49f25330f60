"""Configuration of the fake providers: the embedded `default.yaml`, or a file/dict replacing it.

Which fakes exist and their default models and limits come from the registry (`registry.py`);
a config only says what differs. Without a `providers:` section every registered fake starts
with its defaults; with one, only the providers it names start.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sandbox.fakes.limits import DEFAULT_LIMITS, parse_dimensions, parse_model_limits
from sandbox.fakes.registry import FAKES, spec_of

DEFAULT_CONFIG = Path(__file__).with_name("default.yaml")


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
    job_seconds_per_audio_second: float = 0.0  # how long a job (a Replicate prediction) runs per audio second


def load_raw(config: str | Path | dict[str, Any] | None) -> dict[str, Any]:
    """The config as a dict: None → the embedded default, with every registered fake's settings
    spelled out under `providers:` (to be edited); str/Path → that YAML file; dict → itself."""
    if isinstance(config, dict):
        return config
    data = yaml.safe_load(Path(config or DEFAULT_CONFIG).read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{config}: expected a mapping at the top level")
    if config is None:
        data.setdefault("providers", {name: spec.settings() for name, spec in FAKES.items()})
    return data


def provider_configs(raw: dict[str, Any]) -> dict[str, ProviderConfig]:
    """One ProviderConfig per provider named under `providers:` (all registered fakes if there is
    no such section); fields a provider does not set take the registry's or the global defaults."""
    seed = int(raw.get("seed", 1234))
    strict = _flag(raw.get("strict", True), "strict")
    providers = raw.get("providers", dict.fromkeys(FAKES))
    if not isinstance(providers, dict):
        raise ValueError("`providers:` must map provider names to their settings")
    out: dict[str, ProviderConfig] = {}
    for name, conf in providers.items():
        if name not in FAKES:
            raise ValueError(f"unknown provider {name!r}; expected one of {', '.join(FAKES)}")
        conf = conf or {}
        defaults = spec_of(name).settings()
        out[name] = ProviderConfig(
            models=[str(m) for m in conf.get("models") or defaults["models"]],
            limits=parse_model_limits(conf.get("limits", defaults["limits"]), f"providers.{name}.limits"),
            org_limits=parse_dimensions(conf.get("org_limits"), f"providers.{name}.org_limits"),
            latency_ms=float(conf.get("latency_ms", 0)),
            chunk_delay_ms=float(conf.get("chunk_delay_ms", 0)),
            faults=list(conf.get("faults") or []),
            seed=int(conf.get("seed", seed)),
            strict=_flag(conf.get("strict", strict), f"providers.{name}.strict"),
            job_seconds_per_audio_second=float(conf.get("job_seconds_per_audio_second", 0.0)),
        )
    return out


def _flag(value: Any, where: str) -> bool:
    """A YAML boolean; anything else is a config mistake worth failing on, not a truthy guess."""
    if not isinstance(value, bool):
        raise ValueError(f"{where}: expected true or false, got {value!r}")
    return value
