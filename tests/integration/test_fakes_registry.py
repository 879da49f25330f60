"""One registry of fakes: registering a provider is one `FakeSpec`, and config, `start_fakes`,
the default config and `describe()` all follow it — no other list to edit."""

from __future__ import annotations

import httpx
import pytest

from sandbox.fakes import FAKES, FakeSpec, start_fakes
from sandbox.fakes.config import load_raw, provider_configs
from sandbox.fakes.openai_fake import OpenAIWire


class AcmeWire(OpenAIWire):
    """A new OpenAI-compatible provider: its format is OpenAI's under another name and path."""

    name = "acme"
    prefix = "/acme/v1"
    base_path = "/acme/v1"


@pytest.fixture
def acme(monkeypatch: pytest.MonkeyPatch) -> FakeSpec:
    spec = FakeSpec(AcmeWire(), ("acme-small", "acme-large"), limits={"default": {"rpm": 7, "tpm": 7000}})
    monkeypatch.setitem(FAKES, "acme", spec)
    return spec


def test_registering_one_spec_is_all_a_new_fake_needs(acme: FakeSpec) -> None:
    assert list(load_raw(None)["providers"]) == [*FAKES]
    assert provider_configs(load_raw(None))["acme"].models == ["acme-small", "acme-large"]
    with start_fakes(providers=["acme", "openai"]) as fleet:
        fake = fleet["acme"]
        assert fleet.describe()["acme"] == {"base_url": fake.base_url, "models": ["acme-small", "acme-large"]}
        resp = httpx.post(fake.base_url + "/chat/completions", headers={"Authorization": "Bearer k"},
                          json={"model": "acme-large", "messages": [{"role": "user", "content": "hi"}]})  # fmt: skip
        assert resp.status_code == 200 and resp.headers["x-ratelimit-limit-requests"] == "7"
        assert resp.json()["choices"][0]["message"]["content"].startswith("Hello from fake-acme acme-large")


def test_defaults_come_from_the_registry_and_a_config_only_says_what_differs() -> None:
    configs = provider_configs({"providers": {"groq": {"latency_ms": 5}, "gemini": {"models": ["g-1"]}}})
    assert list(configs) == ["groq", "gemini"]
    assert configs["groq"].models == list(FAKES["groq"].models) and configs["groq"].latency_ms == 5
    assert configs["groq"].limits == FAKES["groq"].settings()["limits"]
    assert configs["gemini"].models == ["g-1"]
    everything = provider_configs({"strict": False})  # no `providers:` → every registered fake
    assert list(everything) == list(FAKES) and not any(c.strict for c in everything.values())
    with pytest.raises(ValueError, match=", ".join(FAKES)):
        provider_configs({"providers": {"nope": {}}})


def test_spec_names_are_their_wires_names() -> None:
    assert all(name == spec.wire.name for name, spec in FAKES.items())
