"""Keys re-read from the secrets on a TTL (`keys.KeySource`): what a failed or bad re-read does."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from llm_gateway.config import load_settings
from llm_gateway.keys import KeySource

GOOD = "client-key-in-force-" + "g" * 24


def _source(values: list[Mapping[str, str] | Exception], moment: list[float]) -> KeySource:
    settings = load_settings({"LLM_GATEWAY_CLIENT_KEY_SECRET": "clients", "LLM_GATEWAY_SECRET_TTL_S": "1"},
                             client_secret_values={"LLM_GATEWAY_API_KEYS": GOOD})

    def fetch(_name: str, _ttl: int) -> Mapping[str, str]:
        value = values.pop(0) if len(values) > 1 else values[0]
        if isinstance(value, Exception):
            raise value
        return value

    return KeySource(settings, fetch, on_new_secrets=lambda _secrets: None, clock=lambda: moment[0])


def test_a_failed_or_bad_re_read_keeps_the_keys_and_says_so_without_the_value(caplog: pytest.LogCaptureFixture) -> None:
    """A rotation that breaks (a key too short to be one) or a secret that cannot be read keeps
    the keys in force; before, neither was logged anywhere, though the code said the caller logged
    it. The bad value itself never reaches the log."""
    moment = [0.0]
    bad = "too-short-" + "s" * 5
    source = _source([{"LLM_GATEWAY_API_KEYS": GOOD}, {"LLM_GATEWAY_API_KEYS": bad}, OSError("throttled")], moment)
    assert source.current().clients == frozenset({GOOD})
    with caplog.at_level("WARNING", logger="llm_gateway.keys"):
        moment[0] += 2
        assert source.current().clients == frozenset({GOOD})  # the bad rotation
        moment[0] += 2
        assert source.current().clients == frozenset({GOOD})  # the failed read
    messages = [r.getMessage() for r in caplog.records]
    assert any("not a valid key configuration" in m for m in messages), messages
    assert any("re-read failed (OSError)" in m for m in messages), messages
    assert bad not in caplog.text
