"""The built-in catalog validates, and operator overrides merge over it as documented."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from llm_gateway.selection.catalog import (
    BUILTIN_PATH,
    CALENDAR_MONTH,
    DAY,
    MINUTE,
    OVERRIDES_ENV,
    AudioTraits,
    Capabilities,
    Catalog,
    Limits,
    ModelEntry,
    Pricing,
    ProviderInfo,
    default_catalog,
    load_catalog,
    merge_overrides,
)
from llm_gateway.state.metering import AUDIO_SECONDS, REQUESTS, SECOND, TOKENS, Meter, WindowLimit
from llm_gateway.state.store import ModelKey


def test_builtin_catalog_is_complete() -> None:
    catalog = load_catalog()
    assert len(catalog) >= 20
    assert {"groq", "gemini", "cohere", "mistral", "openai"} <= set(catalog.providers())
    raw = json.loads(BUILTIN_PATH.read_text())
    assert any(m["provider"] == "openai_compatible" for m in raw["models"])  # the example exists (disabled)
    for name, info in catalog.data.providers.items():
        assert info.as_of and info.source, name
    assert {e.category for e in catalog.entries} == {"small", "large", "reasoning"}


def test_lookups() -> None:
    catalog = load_catalog()
    key = ModelKey("groq", "llama-3.1-8b-instant")
    entry = catalog.get(key)
    assert entry is not None and entry.is_free
    assert entry.windows() == (WindowLimit(MINUTE, {REQUESTS: 30, TOKENS: 6000}),
                               WindowLimit(DAY, {REQUESTS: 14400, TOKENS: 500000}))
    own = "groq#llama-3.1-8b-instant"
    assert catalog.meters(entry) == (Meter(own, entry.windows()[0]), Meter(own, entry.windows()[1]))  # no org limit
    assert catalog.by_model_id("llama-3.1-8b-instant") == (entry,)
    assert {e.provider for e in catalog.served_by({"groq", "openai"})} == {"groq", "openai"}
    assert catalog.token_factor(entry) == catalog.data.providers["groq"].token_factor


def test_mistral_free_tier_is_per_second_and_per_minute_for_the_whole_organisation() -> None:
    catalog = load_catalog()
    entry = catalog.get(ModelKey("mistral", "mistral-small-latest"))
    assert entry is not None and entry.is_free and entry.windows() == ()  # no per-model limit
    assert catalog.meters(entry) == (
        Meter("mistral#*", WindowLimit(SECOND, {REQUESTS: 1})),
        Meter("mistral#*", WindowLimit(MINUTE, {TOKENS: 500_000})),
        Meter("mistral#*", WindowLimit(CALENDAR_MONTH, {TOKENS: 1_000_000_000})),
    )
    others = [e for e in catalog.served_by({"mistral"}) if e.key != entry.key]
    assert others and all(catalog.meters(e) == catalog.meters(entry) for e in others)  # one shared counter


def test_cohere_trial_key_is_1000_calls_a_month_across_models() -> None:
    catalog = load_catalog()
    entry = catalog.get(ModelKey("cohere", "command-r7b-12-2024"))
    assert entry is not None
    assert catalog.meters(entry) == (
        Meter("cohere#command-r7b-12-2024", WindowLimit(MINUTE, {REQUESTS: 20})),  # its own first
        Meter("cohere#*", WindowLimit(CALENDAR_MONTH, {REQUESTS: 1000})),
    )


def test_provider_limits_follow_the_tier_a_model_is_used_on() -> None:
    providers = {"p": ProviderInfo(as_of="t", source="t", free_tier=Limits(rps=1), paid_limits=Limits(rpm=500))}
    free = ModelEntry(provider="p", model="free", context_window=1000, max_output=100, free_tier=Limits(rpd=10))
    paid = ModelEntry(provider="p", model="paid", context_window=1000, max_output=100,
                      paid_limits=Limits(tpm=1000), price=Pricing(input=1, output=1))
    catalog = Catalog.from_entries([free, paid], providers)
    assert catalog.meters(free) == (Meter("p#free", WindowLimit(DAY, {REQUESTS: 10})),
                                    Meter("p#*", WindowLimit(SECOND, {REQUESTS: 1})))
    assert catalog.meters(paid) == (Meter("p#paid", WindowLimit(MINUTE, {TOKENS: 1000})),
                                    Meter("p#*", WindowLimit(MINUTE, {REQUESTS: 500})))


def test_limits_group_units_of_one_window_into_one_item() -> None:
    limits = Limits(rps=1, rpm=30, tpm=6000, rph=100, rpmonth=1000, tpmonth=10**9, ash=7200, asd=28_800)
    by_window = {w.period.name: dict(w.maxima) for w in limits.windows()}
    assert by_window == {"1": {REQUESTS: 1}, "60": {REQUESTS: 30, TOKENS: 6000}, "3600": {REQUESTS: 100, AUDIO_SECONDS: 7200},
                         "86400": {AUDIO_SECONDS: 28_800}, "month": {REQUESTS: 1000, TOKENS: 10**9}}
    assert Limits().windows() == ()


def test_capabilities_and_what_each_requires() -> None:
    audio = AudioTraits(formats=("wav",), max_upload_bytes=1000)
    whisper = ModelEntry(provider="p", model="whisper", serves=("transcription",), audio=audio, free_tier=Limits(ash=7200))
    assert whisper.context_window is None  # not a chat model: no context window needed
    with pytest.raises(ValidationError, match="needs an audio block"):
        ModelEntry(provider="p", model="whisper", serves=("transcription",), free_tier=Limits(ash=7200))
    with pytest.raises(ValidationError, match="needs context_window and max_output"):
        ModelEntry(provider="p", model="chat", free_tier=Limits(rpm=1))
    chat = ModelEntry(provider="p", model="chat", context_window=10, max_output=5, price=Pricing(request=0.01))
    catalog = Catalog.from_entries([whisper, chat], {"p": ProviderInfo(as_of="t", source="t")})
    assert catalog.for_capability("transcription") == (whisper,) and catalog.for_capability("chat") == (chat,)
    assert Pricing().input is None and Pricing(audio_minute=0.006).audio_minute == 0.006  # every price optional
    both = ModelEntry(provider="p", model="omni", serves=("chat", "transcription"), audio=audio, context_window=10,
                      max_output=5, price=Pricing(input=1, audio_input=2))  # one model, one set of limits, two uses
    assert Catalog.from_entries([both], {"p": ProviderInfo(as_of="t", source="t")}).for_capability("transcription") == (both,)


def test_optional_parameters_are_listed_where_the_providers_document_them() -> None:
    """The README's parameter table, as data: logprobs and logit_bias only on OpenAI's
    non-reasoning models, reasoning_effort on the reasoning models that take low/medium/high,
    parallel_tool_calls=false wherever the provider has the switch (not Gemini, not Cohere)."""
    def having(param: str) -> set[str]:
        return {str(e.key) for e in load_catalog().entries if param in e.capabilities.params}

    assert having("logprobs") == having("logit_bias") == {
        "openai/gpt-4o-mini", "openai/gpt-4.1-nano", "openai/gpt-4.1-mini"}
    assert having("reasoning_effort") == {
        "openai/gpt-5-nano", "openai/gpt-5-mini", "groq/openai/gpt-oss-20b", "groq/openai/gpt-oss-120b"}
    switchable = {str(e.key) for e in load_catalog().entries
                  if e.provider in {"openai", "groq", "mistral"} and e.capabilities.tools}
    assert having("parallel_tool_calls") == switchable
    with pytest.raises(ValidationError):
        Capabilities(params=("logprobs", "telepathy"))  # only parameters the gateway knows how to pass


def test_default_catalog_is_the_builtin_one_without_env_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    """The gateway loads its catalog with the operator's overrides from settings; tools and tests
    that ask for `default_catalog()` get the reviewed built-in figures whatever the environment says."""
    monkeypatch.setenv(OVERRIDES_ENV, json.dumps({"disable": ["groq/llama-3.1-8b-instant"]}))
    default_catalog.cache_clear()
    try:
        assert default_catalog().get(ModelKey("groq", "llama-3.1-8b-instant")) is not None
    finally:
        default_catalog.cache_clear()


def test_inline_override_changes_limits_prices_and_disables() -> None:
    overrides = {
        "providers": {"gemini": {"token_factor": 1.3}},
        "models": [
            {"provider": "gemini", "model": "gemini-2.5-flash", "free_tier": {"rpd": 250}, "price": {"input": 9}},
            {"provider": "groq", "model": "llama-3.3-70b-versatile", "free_tier": None},
        ],
        "disable": ["openai/gpt-4o-mini"],
    }
    catalog = load_catalog(json.dumps(overrides))
    flash = catalog.get(ModelKey("gemini", "gemini-2.5-flash"))
    assert flash is not None and flash.free_tier is not None
    assert flash.free_tier.rpd == 250 and flash.free_tier.rpm == 10  # deep merge keeps the rest
    assert flash.price is not None and flash.price.input == 9 and flash.price.output == 2.50
    assert catalog.token_factor(flash) == 1.3
    versatile = catalog.get(ModelKey("groq", "llama-3.3-70b-versatile"))
    assert versatile is not None and not versatile.is_free
    assert catalog.get(ModelKey("openai", "gpt-4o-mini")) is None


def test_file_override_adds_a_model_and_enables_the_example(tmp_path: Path) -> None:
    path = tmp_path / "over.json"
    path.write_text(json.dumps({
        "providers": {"together": {"as_of": "2026-11-01", "source": "operator"}},
        "models": [
            {"provider": "openai_compatible", "model": "llama3.1:8b", "enabled": True},
            {"provider": "together", "model": "llama-3.3-70b", "category": "large", "context_window": 131072,
             "max_output": 4096, "capabilities": {"tools": True}, "price": {"input": 0.88, "output": 0.88}},
        ],
    }))
    catalog = load_catalog(str(path))
    assert catalog.get(ModelKey("together", "llama-3.3-70b")) is not None
    assert catalog.get(ModelKey("openai_compatible", "llama3.1:8b")) is not None


@pytest.mark.parametrize(
    "bad",
    [
        {"models": [{"provider": "groq", "model": "new-model"}]},  # incomplete new entry
        {"models": [{"provider": "groq", "model": "llama-3.1-8b-instant", "category": "huge"}]},
        {"models": [{"provider": "groq", "model": "llama-3.1-8b-instant", "context_window": 0}]},
        {"models": [{"provider": "nobody", "model": "x", "category": "small", "context_window": 10,
                     "max_output": 5, "capabilities": {}, "price": {"input": 1, "output": 1}}]},
        {"models": [{"provider": "openai", "model": "gpt-4o-mini", "price": None}]},  # neither free nor priced
        {"models": [{"provider": "groq", "model": "whisper-x", "serves": ["transcription"]}]},  # nor this
        {"models": [{"provider": "groq", "model": "llama-3.1-8b-instant", "serves": ["images"]}]},
        {"providers": {"mistral": {"free_tier": {"rps": -1}}}},
    ],
)
def test_invalid_overrides_fail_loudly(bad: dict) -> None:
    with pytest.raises(ValidationError):
        load_catalog(json.dumps(bad))


def test_merge_does_not_mutate_the_base() -> None:
    raw = json.loads(BUILTIN_PATH.read_text())
    before = json.dumps(raw, sort_keys=True)
    merge_overrides(raw, {"models": [{"provider": "groq", "model": "llama-3.1-8b-instant", "free_tier": {"rpm": 1}}]})
    assert json.dumps(raw, sort_keys=True) == before
