"""The built-in catalog validates, and operator overrides merge over it as documented."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from llm_gateway.selection.catalog import BUILTIN_PATH, DAY, MINUTE, load_catalog, merge_overrides
from llm_gateway.state.store import ModelKey, WindowLimit


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
    assert entry.windows() == (WindowLimit(MINUTE, 30, 6000), WindowLimit(DAY, 14400, 500000))
    assert catalog.by_model_id("llama-3.1-8b-instant") == (entry,)
    assert all(e.category == "reasoning" for e in catalog.by_category("reasoning"))
    assert {e.provider for e in catalog.served_by({"groq", "openai"})} == {"groq", "openai"}
    assert catalog.token_factor(entry) == catalog.data.providers["groq"].token_factor


def test_mistral_free_tier_is_per_second_and_per_minute() -> None:
    entry = load_catalog().get(ModelKey("mistral", "mistral-small-latest"))
    assert entry is not None
    assert entry.windows() == (WindowLimit(1, 1, None), WindowLimit(MINUTE, None, 500000))


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
