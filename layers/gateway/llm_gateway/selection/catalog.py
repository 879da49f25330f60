"""The model catalog: what each model can do, its free-tier limits and its prices.

The figures live in one data file, `catalog.json`, reviewed like code: every provider block says
where its numbers came from and when. Operators change them without a release through
`LLM_GATEWAY_CATALOG_OVERRIDES`, a path to a JSON file or inline JSON, merged over the built-in
catalog:

    {"providers": {"gemini": {"token_factor": 1.05}},
     "models": [{"provider": "gemini", "model": "gemini-2.5-flash", "free_tier": {"rpd": 250}},
                {"provider": "together", "model": "llama-3.3-70b", "category": "large", ...}],
     "disable": ["groq/llama-3.3-70b-versatile"]}

A model entry in `models` that matches an existing (provider, model) is deep-merged into it (a
`null` value removes a field, e.g. `"free_tier": null` turns a model paid-only); any other entry
must be complete and is added. `"enabled": false` or `disable` hides a model from selection.
The result is validated with pydantic once, at cold start, so a bad override fails loudly there
instead of misrouting traffic later.
"""

# No `from __future__ import annotations` (see api/schemas.py): pydantic would compile every
# field's annotation from its string.

import json
from collections.abc import Collection, Iterable, Mapping
from functools import cache, cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from llm_gateway.state.metering import (
    AUDIO_SECONDS,
    CALENDAR_MONTH,
    DAY,
    HOUR,
    MINUTE,
    REQUESTS,
    SECOND,
    TOKENS,
    Meter,
    Period,
    WindowLimit,
    model_counter,
    provider_counter,
)
from llm_gateway.state.store import ModelKey

OVERRIDES_ENV = "LLM_GATEWAY_CATALOG_OVERRIDES"
BUILTIN_PATH = Path(__file__).with_name("catalog.json")
Category = Literal["small", "large", "reasoning"]
CATEGORIES: tuple[Category, ...] = ("small", "large", "reasoning")
Capability = Literal["chat", "transcription"]
CHAT: Capability = "chat"
TRANSCRIPTION: Capability = "transcription"
ENDPOINTS: dict[Capability, str] = {CHAT: "/v1/chat/completions", TRANSCRIPTION: "/v1/audio/transcriptions"}
# Shorthand of the catalog's limit blocks: field → (unit, window). The names follow the
# providers' own (RPM, TPD, Groq's ASH/ASD for audio seconds per hour/day).
LIMIT_FIELDS: dict[str, tuple[str, Period]] = {
    "rps": (REQUESTS, SECOND), "rpm": (REQUESTS, MINUTE), "rph": (REQUESTS, HOUR), "rpd": (REQUESTS, DAY),
    "rpmonth": (REQUESTS, CALENDAR_MONTH),
    "tpm": (TOKENS, MINUTE), "tph": (TOKENS, HOUR), "tpd": (TOKENS, DAY), "tpmonth": (TOKENS, CALENDAR_MONTH),
    "ash": (AUDIO_SECONDS, HOUR), "asd": (AUDIO_SECONDS, DAY),
}


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


# Request parameters only some models honour. A model lists the ones it does (README "Request
# parameters"); a request that sets one goes only to models that list it.
OptionalParam = Literal["logprobs", "logit_bias", "reasoning_effort", "parallel_tool_calls"]


class Capabilities(_Frozen):
    """Chat traits a request may need."""

    tools: bool = False
    vision: bool = False  # `image_url` parts
    # `input_audio` and `file` parts. Declare one only where the provider reads that input and
    # the model's adapter sends the part in the provider's own format: an adapter that drops it
    # (Cohere) or passes OpenAI's shape to a provider that does not take it (Groq, Mistral) would
    # answer without the caller's audio or file. Today: Gemini (both become `inlineData`).
    audio_input: bool = False
    file_input: bool = False
    json_mode: bool = Field(default=False, alias="json")
    streaming: bool = True
    # Sampling controls (temperature, top_p, presence/frequency penalties) other than their
    # defaults: OpenAI's reasoning models refuse them with a 400, so a request setting them must
    # not be routed there.
    sampling: bool = True
    params: tuple[OptionalParam, ...] = ()

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True)


class Limits(_Frozen):
    """Published limits per window (None = not published, not enforced by us)."""

    rps: int | None = Field(default=None, ge=0)
    rpm: int | None = Field(default=None, ge=0)
    rph: int | None = Field(default=None, ge=0)
    rpd: int | None = Field(default=None, ge=0)
    rpmonth: int | None = Field(default=None, ge=0)
    tpm: int | None = Field(default=None, ge=0)
    tph: int | None = Field(default=None, ge=0)
    tpd: int | None = Field(default=None, ge=0)
    tpmonth: int | None = Field(default=None, ge=0)
    ash: int | None = Field(default=None, ge=0)
    asd: int | None = Field(default=None, ge=0)

    def windows(self) -> tuple[WindowLimit, ...]:
        """One WindowLimit per window length, so every unit of a window shares one item."""
        by_period: dict[Period, dict[str, int]] = {}
        for name, (unit, period) in LIMIT_FIELDS.items():
            value = getattr(self, name)
            if value is not None:
                by_period.setdefault(period, {})[unit] = value
        return tuple(WindowLimit(period, maxima) for period, maxima in by_period.items())


FreeTier = Limits  # the catalog's historical name for the block


Container = Literal["flac", "mp3", "mp4", "ogg", "wav", "webm"]
Timing = Literal["none", "segment", "word"]


class AudioTraits(_Frozen):
    """What a transcription model accepts and returns, so a request goes only where it fits.

    `timing`: the finest timestamps the adapter gets back (segments let the gateway render
    srt, vtt and verbose_json itself; words serve `timestamp_granularities=word`)."""

    formats: tuple[Container, ...]
    max_upload_bytes: int = Field(gt=0)  # the audio sent in the request itself
    max_url_bytes: int | None = Field(default=None, gt=0)  # fetched by the provider from a URL; None: no URL input
    max_duration_s: float | None = Field(default=None, gt=0)
    timing: Timing = "none"
    translate: bool = False  # serves /v1/audio/translations (to English)
    prompt: bool = True  # takes a vocabulary/style prompt
    min_billed_s: float = Field(default=0, ge=0)  # Groq bills clips under 10 s as 10 s
    tokens_per_second: float | None = Field(default=None, gt=0)  # token-metered audio (Gemini: 32)


class Pricing(_Frozen):
    """Prices in USD per unit kind: per 1M tokens (`input`, `output`, `audio_input`, …), per
    audio minute, per request. A model states the ones it is billed in."""

    input: float | None = Field(default=None, ge=0)
    output: float | None = Field(default=None, ge=0)
    cached_input: float | None = Field(default=None, ge=0)
    reasoning_output: float | None = Field(default=None, ge=0)
    audio_input: float | None = Field(default=None, ge=0)  # per 1M audio tokens
    audio_minute: float | None = Field(default=None, ge=0)
    request: float | None = Field(default=None, ge=0)


class ProviderInfo(_Frozen):
    as_of: str
    source: str
    token_factor: float = Field(default=1.0, gt=0.2, lt=5)
    tokenizer: str | None = None
    # Limits of the whole organisation/key, shared by all its free-tier (or paid) models.
    free_tier: Limits | None = None
    paid_limits: Limits | None = None


class ModelEntry(_Frozen):
    provider: str = Field(min_length=1)
    model: str = Field(min_length=1)
    serves: tuple[Capability, ...] = Field(default=(CHAT,), min_length=1)
    category: Category = "small"
    context_window: int | None = Field(default=None, gt=0)
    max_output: int | None = Field(default=None, gt=0)
    capabilities: Capabilities = Capabilities()
    audio: AudioTraits | None = None  # transcription models
    free_tier: Limits | None = None
    paid_limits: Limits | None = None  # known paid-plan limits, enforced when not free
    price: Pricing | None = None
    token_factor: float | None = Field(default=None, gt=0.2, lt=5)
    enabled: bool = True
    notes: str | None = None

    @model_validator(mode="after")
    def _traits(self) -> "ModelEntry":
        if CHAT in self.serves and (self.context_window is None or self.max_output is None):
            raise ValueError(f"chat model {self.provider}/{self.model} needs context_window and max_output")
        if TRANSCRIPTION in self.serves and self.audio is None:
            raise ValueError(f"transcription model {self.provider}/{self.model} needs an audio block")
        return self

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> "ModelEntry":
        """A validated copy. Pydantic's copies the instance dict, and with it the cached
        properties below, so a copy with other limits would keep the original's."""
        data = {**self.model_dump(by_alias=True), **(update or {})}
        return type(self).model_validate(data)

    @cached_property
    def key(self) -> ModelKey:
        return ModelKey(self.provider, self.model)

    @cached_property
    def is_free(self) -> bool:
        return self.free_tier is not None

    @cached_property
    def window(self) -> int:
        """Context window (chat models only; validated present)."""
        assert self.context_window is not None
        return self.context_window

    @cached_property
    def output_cap(self) -> int:
        assert self.max_output is not None
        return self.max_output

    @cached_property
    def _windows(self) -> tuple[WindowLimit, ...]:
        source = self.free_tier if self.free_tier is not None else self.paid_limits
        return source.windows() if source is not None else ()

    def windows(self) -> tuple[WindowLimit, ...]:
        """The model's own limits: the free tier's, or the paid plan's when known."""
        return self._windows


class CatalogData(_Frozen):
    version: str
    about: str | None = None
    providers: dict[str, ProviderInfo]
    models: tuple[ModelEntry, ...]

    @model_validator(mode="after")
    def _consistent(self) -> "CatalogData":
        seen: set[tuple[str, str]] = set()
        for entry in self.models:
            ident = (entry.provider, entry.model)
            if ident in seen:
                raise ValueError(f"duplicate model {entry.provider}/{entry.model}")
            seen.add(ident)
            if entry.provider not in self.providers:
                raise ValueError(f"model {entry.provider}/{entry.model} names an unknown provider")
            if entry.free_tier is None and entry.price is None:
                raise ValueError(f"model {entry.provider}/{entry.model} is neither free nor priced")
        return self


class Catalog:
    """Read-only lookups over the enabled models (built once per container)."""

    def __init__(self, data: CatalogData) -> None:
        self.data = data
        self.entries: tuple[ModelEntry, ...] = tuple(e for e in data.models if e.enabled)
        self._by_key = {e.key: e for e in self.entries}
        self._by_id: dict[str, list[ModelEntry]] = {}
        for entry in self.entries:
            self._by_id.setdefault(entry.model, []).append(entry)
        self._shared: dict[tuple[str, bool], tuple[Meter, ...]] = {}
        self._meters = {entry.key: self._build_meters(entry) for entry in self.entries}

    def _build_meters(self, entry: ModelEntry) -> tuple[Meter, ...]:
        own = tuple(Meter(model_counter(entry.provider, entry.model), limit) for limit in entry.windows())
        return own + self._provider_meters(entry.provider, entry.is_free)

    def _provider_meters(self, provider: str, free: bool) -> tuple[Meter, ...]:
        """The organisation-wide meters, one set per provider and tier: every model of it holds
        the very same objects, so a request's plan reads each shared window once."""
        found = self._shared.get((provider, free))
        if found is None:
            info = self.data.providers[provider]
            shared = info.free_tier if free else info.paid_limits
            found = () if shared is None else tuple(Meter(provider_counter(provider), limit) for limit in shared.windows())
            self._shared[(provider, free)] = found
        return found

    def meters(self, entry: ModelEntry) -> tuple[Meter, ...]:
        """Every counter a call to this model is metered on: its own windows, then the
        provider's organisation-wide ones (Mistral's 1 request/s, Cohere's calls per month)."""
        return self._meters[entry.key]

    def for_capability(self, capability: str) -> tuple[ModelEntry, ...]:
        return tuple(e for e in self.entries if capability in e.serves)

    def served_by(self, providers: Collection[str]) -> tuple[ModelEntry, ...]:
        return tuple(e for e in self.entries if e.provider in providers)

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, key: ModelKey) -> ModelEntry | None:
        return self._by_key.get(key)

    def by_model_id(self, model: str) -> tuple[ModelEntry, ...]:
        return tuple(self._by_id.get(model, ()))

    def keys(self) -> tuple[ModelKey, ...]:
        return tuple(self._by_key)

    def providers(self) -> tuple[str, ...]:
        return tuple(sorted({e.provider for e in self.entries}))

    def token_factor(self, entry: ModelEntry) -> float:
        """Model factor, else provider factor: cl100k counts times this ≈ the provider's count."""
        if entry.token_factor is not None:
            return entry.token_factor
        info = self.data.providers.get(entry.provider)
        return info.token_factor if info is not None else 1.0

    @classmethod
    def from_entries(cls, entries: Iterable[ModelEntry], providers: Mapping[str, ProviderInfo]) -> "Catalog":
        """For tests and benchmarks that build synthetic catalogs."""
        data = CatalogData(version="synthetic", providers=dict(providers), models=tuple(entries))
        return cls(data)


def _deep_merge(base: dict[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for name, value in patch.items():
        if isinstance(value, Mapping) and isinstance(out.get(name), dict):
            out[name] = _deep_merge(out[name], value)
        else:
            out[name] = value
    return out


def merge_overrides(raw: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Apply an operator's overrides to the raw catalog dict (see module docstring)."""
    merged = dict(raw)
    providers = dict(raw.get("providers", {}))
    for name, patch in overrides.get("providers", {}).items():
        providers[name] = _deep_merge(providers.get(name, {}), patch)
    merged["providers"] = providers
    models = [dict(m) for m in raw.get("models", [])]
    index = {(m["provider"], m["model"]): i for i, m in enumerate(models)}
    for patch in overrides.get("models", []):
        ident = (patch.get("provider"), patch.get("model"))
        if ident in index:
            models[index[ident]] = _deep_merge(models[index[ident]], patch)
        else:
            index[ident] = len(models)
            models.append(dict(patch))
    disabled = set(overrides.get("disable", []))
    for model in models:
        if f"{model['provider']}/{model['model']}" in disabled:
            model["enabled"] = False
    merged["models"] = models
    return merged


def read_overrides(value: str | None) -> dict[str, Any]:
    """The env value is inline JSON when it starts with `{`, else a file path."""
    if not value or not value.strip():
        return {}
    text = value if value.lstrip().startswith("{") else Path(value).read_text(encoding="utf-8")
    loaded = json.loads(text)
    if not isinstance(loaded, dict):
        raise ValueError(f"{OVERRIDES_ENV} must hold a JSON object")
    return loaded


def load_catalog(overrides: str | None = None, builtin: Path = BUILTIN_PATH) -> Catalog:
    """Built-in catalog plus overrides (path or inline JSON), validated."""
    raw = json.loads(builtin.read_text(encoding="utf-8"))
    merged = merge_overrides(raw, read_overrides(overrides))
    return Catalog(CatalogData.model_validate(merged))


@cache
def default_catalog() -> Catalog:
    """The built-in catalog without overrides, for tools and tests; the gateway loads its own
    with the operator's overrides from settings."""
    return load_catalog(None)
