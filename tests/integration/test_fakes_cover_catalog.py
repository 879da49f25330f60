"""Local dev routes to any catalog model of a configured provider, so the fakes must know them all."""

from __future__ import annotations

from llm_gateway.providers.registry import provider_specs
from llm_gateway.selection.catalog import default_catalog


def test_every_catalog_model_of_a_faked_provider_is_served_by_its_fake(fake_fleet):
    catalog = default_catalog()
    for name, fake in fake_fleet.providers.items():
        assert name in provider_specs()
        wanted = {entry.model for entry in catalog.entries if entry.provider == name}
        assert wanted, name
        assert wanted <= set(fake.models), (name, sorted(wanted - set(fake.models)))
