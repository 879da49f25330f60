"""The registry's table is what each provider module declares: settings read kinds and key
variables from the table (without importing the modules), adapters come from the modules."""

from __future__ import annotations

import importlib

from llm_gateway.providers.registry import PROVIDERS, key_variables, provider_spec, provider_specs


def test_each_line_is_its_modules_spec() -> None:
    for kind, (module_name, key_env) in PROVIDERS.items():
        spec = importlib.import_module(module_name).SPEC
        assert (spec.kind, spec.key_env) == (kind, key_env), module_name
        assert provider_spec(kind) is spec
    assert list(provider_specs()) == list(PROVIDERS)
    assert key_variables() == {spec.key_env for spec in provider_specs().values() if spec.key_env}


def test_an_unknown_kind_has_no_spec() -> None:
    assert provider_spec("no-such-provider") is None
