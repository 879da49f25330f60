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
from sandbox.fakes.state import Fault
from sandbox.simulate.inputs import number

DEFAULT_CONFIG = Path(__file__).with_name("default.yaml")


class FakesConfigError(ValueError):
    """A fakes config that cannot work (no such file, not YAML, a value of the wrong kind): the
    message names what, in one line, so the commands can say it before starting anything."""


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
    path = Path(config or DEFAULT_CONFIG)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise FakesConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise FakesConfigError(f"{path}: not text ({exc.reason})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise FakesConfigError(f"{path}: not valid YAML{at}: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(data, dict):
        raise FakesConfigError(f"{config}: expected a mapping at the top level")
    if config is None:
        data.setdefault("providers", {name: spec.settings() for name, spec in FAKES.items()})
    return data


def provider_configs(raw: dict[str, Any]) -> dict[str, ProviderConfig]:
    """One ProviderConfig per provider named under `providers:` (all registered fakes if there is
    no such section); fields a provider does not set take the registry's or the global defaults.
    Startup faults are checked here too, so a config that cannot work fails before any fake
    starts (FakesConfigError)."""
    try:
        return _provider_configs(raw)
    except FakesConfigError:
        raise
    except (ValueError, TypeError, AttributeError) as exc:  # a list where a mapping goes, a bad number
        raise FakesConfigError(str(exc)) from None


def _provider_configs(raw: dict[str, Any]) -> dict[str, ProviderConfig]:
    seed = int(number(raw.get("seed", 1234), "seed", whole=True))
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
        faults = list(conf.get("faults") or [])
        for fault in faults:
            try:
                Fault.from_dict(fault)
            except (ValueError, TypeError, AttributeError) as exc:
                raise ValueError(f"providers.{name}.faults: {exc}") from None
        out[name] = ProviderConfig(
            models=[str(m) for m in conf.get("models") or defaults["models"]],
            limits=parse_model_limits(conf.get("limits", defaults["limits"]), f"providers.{name}.limits"),
            org_limits=parse_dimensions(conf.get("org_limits"), f"providers.{name}.org_limits"),
            latency_ms=_number(conf, "latency_ms", 0.0, name),
            chunk_delay_ms=_number(conf, "chunk_delay_ms", 0.0, name),
            faults=faults,
            seed=int(number(conf.get("seed", seed), f"providers.{name}.seed", whole=True)),
            strict=_flag(conf.get("strict", strict), f"providers.{name}.strict"),
            job_seconds_per_audio_second=_number(conf, "job_seconds_per_audio_second", 0.0, name),
        )
    return out


def _number(conf: dict[str, Any], key: str, default: float, provider: str) -> float:
    """A provider's number setting (finite, not negative), or ValueError naming it."""
    return number(conf.get(key, default), f"providers.{provider}.{key}", at_least=0)


def _flag(value: Any, where: str) -> bool:
    """A YAML boolean; anything else is a config mistake worth failing on, not a truthy guess."""
    if not isinstance(value, bool):
        raise ValueError(f"{where}: expected true or false, got {value!r}")
    return value
