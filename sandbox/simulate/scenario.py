"""How the simulated providers behave: latency, background errors, and the day's incidents.

From the workload file's `providers:` and `scenario:` sections:

    providers:
      default: {first_token_s: 0.5, per_token_s: 0.008, jitter: 0.3, error_rate: 0.001}
      groq: {first_token_s: 0.25, per_token_s: 0.0015}
    scenario:
      - {type: outage, provider: gemini, at_h: 10, hours: 1}            # every call: 503 (or mode: timeout | refused)
      - {type: rate_limit_storm, provider: groq, at_h: 14, hours: 0.5, share: 0.8, retry_after_s: 20}
      - {type: slow, provider: mistral, at_h: 16, hours: 2, factor: 10}  # latency x factor
      - {type: key_revoked, provider: cohere, at_h: 18}                  # 401 from then on (hours: to restore)

Transcription latency is `first_token_s + audio seconds x audio_factor` (default 0.02: a minute
of audio in 1.2 s).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sandbox.simulate.inputs import number

EVENT_TYPES = ("outage", "rate_limit_storm", "slow", "key_revoked")
OUTAGE_MODES = ("503", "500", "timeout", "refused")


@dataclass(frozen=True)
class Latency:
    first_token_s: float = 0.5
    per_token_s: float = 0.008
    audio_factor: float = 0.02
    jitter: float = 0.3  # log-normal sigma
    error_rate: float = 0.001  # background 500s


# Assumptions, not measurements: time to first token and per output token, by provider.
DEFAULT_LATENCY: dict[str, Latency] = {
    "groq": Latency(0.25, 0.0015, 0.005),
    "gemini": Latency(0.6, 0.004, 0.02),
    "cohere": Latency(0.5, 0.010),
    "mistral": Latency(0.45, 0.008, 0.015),
    "openai": Latency(0.5, 0.012, 0.03),
}


@dataclass(frozen=True)
class Event:
    type: str
    provider: str
    start_s: float
    end_s: float
    share: float = 1.0
    factor: float = 1.0
    mode: str = "503"
    retry_after_s: float = 20.0

    def active(self, now: float) -> bool:
        return self.start_s <= now < self.end_s

    def describe(self) -> str:
        span = f"{self.start_s / 3600:g}h-{self.end_s / 3600:g}h" if self.end_s < 1e12 else f"from {self.start_s / 3600:g}h"
        extra = {"outage": f" ({self.mode})", "rate_limit_storm": f" ({self.share:.0%} of calls get 429)",
                 "slow": f" (latency x {self.factor:g})", "key_revoked": " (401)"}[self.type]
        return f"{self.type} of {self.provider} {span}{extra}"


@dataclass(frozen=True)
class Scenario:
    latency: Mapping[str, Latency] = field(default_factory=dict)
    events: tuple[Event, ...] = ()

    def latency_of(self, provider: str) -> Latency:
        return self.latency.get(provider) or DEFAULT_LATENCY.get(provider) or Latency()

    def active(self, provider: str, now: float) -> list[Event]:
        return [e for e in self.events if e.provider == provider and e.active(now)]


_LATENCY_KEYS = {"first_token_s", "per_token_s", "audio_factor", "jitter", "error_rate"}
_EVENT_KEYS = {"type", "provider", "at_h", "hours", "share", "factor", "mode", "retry_after_s"}


def parse_scenario(providers: Any, events: Any) -> Scenario:
    providers = providers or {}
    if not isinstance(providers, Mapping):
        raise ValueError("providers: expected a mapping of provider (or `default`) to latency settings")
    for name, own in providers.items():
        if own is not None and not isinstance(own, Mapping):
            raise ValueError(f"providers.{name}: expected a mapping of {', '.join(sorted(_LATENCY_KEYS))}")
    default = dict(providers.get("default") or {})
    latency: dict[str, Latency] = {}
    for name in {*DEFAULT_LATENCY, *providers} - {"default"}:
        own = providers.get(name) or {}
        merged = {**vars(DEFAULT_LATENCY.get(name, Latency())), **default, **own}
        unknown = set(default) | set(own)
        unknown -= _LATENCY_KEYS
        if unknown:
            raise ValueError(f"providers.{name}: unknown keys {sorted(unknown)}; expected some of {sorted(_LATENCY_KEYS)}")
        latency[name] = Latency(**{k: number(v, f"providers.{name}.{k}", at_least=0,
                                             at_most=1 if k == "error_rate" else None) for k, v in merged.items()})
    if events is not None and not isinstance(events, list):
        raise ValueError(f"scenario: expected a list of events ({', '.join(EVENT_TYPES)}), got {events!r}")
    parsed: list[Event] = []
    for i, raw in enumerate(events or []):
        where = f"scenario[{i}]"
        if not isinstance(raw, Mapping):
            raise ValueError(f"{where}: expected a mapping")
        unknown = set(raw) - _EVENT_KEYS
        if unknown:
            raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
        kind = str(raw.get("type"))
        if kind not in EVENT_TYPES:
            raise ValueError(f"{where}.type: expected one of {', '.join(EVENT_TYPES)}, got {kind!r}")
        if not isinstance(raw.get("provider"), str) or not raw["provider"]:
            raise ValueError(f"{where}.provider: expected a provider name, got {raw.get('provider')!r}")
        mode = str(raw.get("mode", "503"))
        if mode not in OUTAGE_MODES:
            raise ValueError(f"{where}.mode: expected one of {', '.join(OUTAGE_MODES)}")
        start = number(raw.get("at_h", 0), f"{where}.at_h", at_least=0) * 3600
        hours = raw.get("hours")
        end = start + number(hours, f"{where}.hours", above=0) * 3600 if hours is not None else 1e13
        parsed.append(Event(kind, raw["provider"], start, end, share=number(raw.get("share", 1.0), f"{where}.share",
                                                                             at_least=0, at_most=1),
                            factor=number(raw.get("factor", 1.0), f"{where}.factor", above=0), mode=mode,
                            retry_after_s=number(raw.get("retry_after_s", 20.0), f"{where}.retry_after_s", at_least=0)))
    return Scenario(latency, tuple(parsed))
