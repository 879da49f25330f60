"""A local gateway (`llm-gateway serve` in-process) on the session's fake providers."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from llm_gateway.providers.registry import provider_specs
from sandbox.local_env import FAKE_PROVIDER_KEY, prepare_local_env
from sandbox.local_server import start_server

DEV_KEY = "local-dev-key"


@pytest.fixture(scope="session")
def gateway_url(fake_fleet) -> Iterator[str]:
    specs = provider_specs()
    env_before = dict(os.environ)
    for name, fake in fake_fleet.providers.items():
        if name in specs:
            os.environ[specs[name].key_env] = FAKE_PROVIDER_KEY
            os.environ[specs[name].base_url_env] = fake.base_url
    # status is cached 5 s by default; these tests read it right after causing the state it shows
    os.environ["LLM_GATEWAY_STATUS_CACHE_S"] = "0"
    local = prepare_local_env(os.environ, state=os.environ.get("E2E_STATE", "dynamodb"))
    server, _thread = start_server(0, containers=2)
    yield server.url
    server.shutdown()
    local.stop()
    os.environ.clear()
    os.environ.update(env_before)


@pytest.fixture
def client(gateway_url: str):
    from openai import OpenAI

    return OpenAI(base_url=f"{gateway_url}/v1", api_key=DEV_KEY, max_retries=0, timeout=30)


@pytest.fixture
def patient_client(gateway_url: str):
    """A client that honours Retry-After, as SDK users' clients do: pinned free models such as
    Mistral's (1 request per second) answer 429 with Retry-After when called back to back."""
    from openai import OpenAI

    return OpenAI(base_url=f"{gateway_url}/v1", api_key=DEV_KEY, max_retries=4, timeout=30)
