"""Shared fixtures: no test reaches beyond loopback, no real key leaks in, fakes and a local gateway."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from tests.gateway_env import is_gateway_setting

pytest_plugins = ["tests.fakes_fixtures"]

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _is_loopback(address: object) -> bool:
    if not isinstance(address, tuple) or not address:
        return True  # AF_UNIX paths and the like
    host = str(address[0])
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _guarded_connect(self: socket.socket, address: object) -> None:
    if not _is_loopback(address):
        raise ConnectionRefusedError(f"tests may only reach loopback, not {address!r}")
    _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: object) -> int:
    if not _is_loopback(address):
        raise ConnectionRefusedError(f"tests may only reach loopback, not {address!r}")
    return _real_connect_ex(self, address)


@pytest.fixture(autouse=True, scope="session")
def _loopback_only() -> Iterator[None]:
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
    yield
    socket.socket.connect = _real_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _real_connect_ex  # type: ignore[method-assign]


@pytest.fixture(autouse=True, scope="session")
def _no_real_credentials() -> Iterator[None]:
    """Real provider keys or AWS credentials in the developer's shell must never reach a test."""
    saved = {k: v for k, v in os.environ.items() if is_gateway_setting(k) or k.startswith("AWS_")}
    for key in saved:
        del os.environ[key]
    os.environ.update({
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
        "POWERTOOLS_METRICS_NAMESPACE": "LlmGateway", "POWERTOOLS_SERVICE_NAME": "llm-gateway",
        "TIKTOKEN_CACHE_DIR": os.environ.get("TIKTOKEN_CACHE_DIR", "/nonexistent-tiktoken-cache"),
    })
    yield
    os.environ.update(saved)


@pytest.fixture
def clean_gateway_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No gateway setting from elsewhere in the process: the e2e session keeps its local server's
    environment (state table, dev keys, fakes) in os.environ for as long as the session runs, and
    a test that loads a handler module of its own must not inherit it."""
    for name in list(os.environ):
        if is_gateway_setting(name):
            monkeypatch.delenv(name)
    return monkeypatch


def chat_handler_on_fakes(fakes: Any, monkeypatch: pytest.MonkeyPatch, instance: str) -> ModuleType:
    """A fresh copy of the chat Lambda module (one "container") in local mode, its providers the
    in-process fakes. Pass the `clean_gateway_env` monkeypatch so no other test's settings leak in."""
    from llm_gateway.providers.registry import provider_specs
    from sandbox.apigw import load_handler_module

    specs = provider_specs()
    for name, fake in fakes.providers.items():
        if name in specs:
            monkeypatch.setenv(specs[name].key_env, "sandbox-fake-key")
            monkeypatch.setenv(specs[name].base_url_env, fake.base_url)
    monkeypatch.setenv("LLM_GATEWAY_LOCAL", "1")
    return load_handler_module("chat", instance=instance)
