"""A configuration that cannot work stops the cold start with one line naming the variable.

Before, `load_settings` accepted misspelt model ids, unknown override keys and `disable` entries
naming nothing; the gateway started and every request then failed (an empty reply with a
traceback under `make dev`). Each case here is something an operator plausibly types.
"""

from __future__ import annotations

import json

import pytest

from llm_gateway.config import ConfigError, load_settings

KEYS = {"GROQ_API_KEY": "gk-test", "GEMINI_API_KEY": "gm-test"}
VLLM_ENTRY = {"provider": "vllm", "model": "llama3.1:8b", "category": "small", "context_window": 131072,
              "max_output": 8192, "capabilities": {"tools": True, "vision": False, "json": True, "streaming": True},
              "price": {"input": 0, "output": 0}}
VLLM_PROVIDER = {"vllm": {"as_of": "2026-11-25", "source": "operator"}}


def _overrides(value: object) -> dict[str, str]:
    return {**KEYS, "LLM_GATEWAY_CATALOG_OVERRIDES": value if isinstance(value, str) else json.dumps(value)}


def _endpoint(**fields: object) -> str:
    return json.dumps([{"name": "vllm", "base_url": "http://127.0.0.1:9/v1", "api_key": "vk-test",
                        "models": ["llama3.1:8b"], **fields}])


BAD = {
    "deadline not a number": ({"LLM_GATEWAY_DEADLINE_S": "abc"}, ["LLM_GATEWAY_DEADLINE_S", "'abc'"]),
    "deadline zero": ({"LLM_GATEWAY_DEADLINE_S": "0"}, ["LLM_GATEWAY_DEADLINE_S", "greater than 0"]),
    "attempt timeout negative": ({"LLM_GATEWAY_ATTEMPT_TIMEOUT_S": "-1"}, ["LLM_GATEWAY_ATTEMPT_TIMEOUT_S"]),
    "attempts not a number": ({"LLM_GATEWAY_MAX_ATTEMPTS": "three"}, ["LLM_GATEWAY_MAX_ATTEMPTS", "'three'"]),
    "attempts zero": ({"LLM_GATEWAY_MAX_ATTEMPTS": "0"}, ["LLM_GATEWAY_MAX_ATTEMPTS", "at least 1"]),
    "attempts fractional": ({"LLM_GATEWAY_MAX_ATTEMPTS": "2.5"}, ["LLM_GATEWAY_MAX_ATTEMPTS", "whole number"]),
    "body size not a number": ({"LLM_GATEWAY_MAX_BODY_BYTES": "4MB"}, ["LLM_GATEWAY_MAX_BODY_BYTES"]),
    "overrides malformed JSON": (_overrides('{"models": [}'), ["LLM_GATEWAY_CATALOG_OVERRIDES", "not valid JSON"]),
    "overrides file missing": (_overrides("/nonexistent/overrides.json"),
                               ["LLM_GATEWAY_CATALOG_OVERRIDES", "/nonexistent/overrides.json"]),
    "overrides not an object": (_overrides("[1, 2]"), ["LLM_GATEWAY_CATALOG_OVERRIDES"]),
    "overrides unknown top-level key": (_overrides({"model": []}), ["'model'", "providers, models, disable"]),
    "overrides models not a list": (_overrides({"models": {"provider": "groq"}}), ["models", "list"]),
    "overrides unknown model key": (
        _overrides({"models": [{"provider": "groq", "model": "llama-3.1-8b-instant", "free_teir": {"rpm": 1}}]}),
        ["free_teir", "groq/llama-3.1-8b-instant"]),
    "overrides unknown nested key": (
        _overrides({"models": [{"provider": "groq", "model": "llama-3.1-8b-instant", "free_tier": {"rpmm": 1}}]}),
        ["rpmm", "groq/llama-3.1-8b-instant"]),
    "overrides bad value": (
        _overrides({"models": [{"provider": "groq", "model": "llama-3.1-8b-instant", "free_tier": {"rpm": -5}}]}),
        ["free_tier.rpm", "groq/llama-3.1-8b-instant"]),
    "overrides misspelt model id": (
        _overrides({"models": [{"provider": "groq", "model": "llama-3.1-8b-instnt", "free_tier": {"rpm": 60}}]}),
        ["groq/llama-3.1-8b-instnt", "matches no catalog model", "groq/llama-3.1-8b-instant"]),
    "overrides model id without provider": (
        _overrides({"models": [{"model": "llama-3.1-8b-instant", "free_tier": {"rpm": 60}}]}),
        ["models[0]", "provider"]),
    "overrides new model of an unknown provider": (
        _overrides({"models": [VLLM_ENTRY]}), ["vllm", "providers"]),
    "disable names an unknown model": (
        _overrides({"disable": ["openai/gpt-5-mni"]}), ["openai/gpt-5-mni", "disable", "openai/gpt-5-mini"]),
    "disable without a provider": (_overrides({"disable": ["gpt-5-mini"]}), ["'gpt-5-mini'", "provider/model"]),
    "provider models list misspelt": (
        {**KEYS, "GROQ_MODELS": "llama-3.1-8b-instant,llama-3.3-70b-versatil"},
        ["GROQ_MODELS", "llama-3.3-70b-versatil", "llama-3.3-70b-versatile"]),
    "provider models list only disabled models": (
        {**_overrides({"disable": ["groq/llama-3.1-8b-instant"]}), "GROQ_MODELS": "llama-3.1-8b-instant"},
        ["GROQ_MODELS", "no model"]),
    "compatible endpoints not a list": ({"LLM_GATEWAY_OPENAI_COMPATIBLE": '{"name": "vllm"}'},
                                        ["LLM_GATEWAY_OPENAI_COMPATIBLE", "list"]),
    "compatible endpoints malformed JSON": ({"LLM_GATEWAY_OPENAI_COMPATIBLE": "[{"},
                                            ["LLM_GATEWAY_OPENAI_COMPATIBLE", "not valid JSON"]),
    "compatible endpoint without base_url": (
        {"LLM_GATEWAY_OPENAI_COMPATIBLE": json.dumps([{"name": "vllm", "api_key": "k", "models": ["m"]}])},
        ["LLM_GATEWAY_OPENAI_COMPATIBLE", "base_url"]),
    "compatible endpoint unknown key": (
        {"LLM_GATEWAY_OPENAI_COMPATIBLE": _endpoint(model="x")}, ["LLM_GATEWAY_OPENAI_COMPATIBLE", "'model'"]),
    "compatible endpoint named like a built-in provider": (
        {"LLM_GATEWAY_OPENAI_COMPATIBLE": _endpoint(name="groq")}, ["LLM_GATEWAY_OPENAI_COMPATIBLE", "groq"]),
    "compatible endpoint model without a catalog entry": (
        {"LLM_GATEWAY_OPENAI_COMPATIBLE": _endpoint()},
        ["LLM_GATEWAY_OPENAI_COMPATIBLE", "vllm/llama3.1:8b", "LLM_GATEWAY_CATALOG_OVERRIDES"]),
}


@pytest.mark.parametrize("case", list(BAD))
def test_invalid_configuration_fails_at_load_with_one_line_naming_it(case):
    _refused_in_one_line_naming(*BAD[case])


GOOD = {
    "no configuration at all": {},
    "README's overrides example": _overrides(
        {"models": [{"provider": "groq", "model": "llama-3.1-8b-instant", "free_tier": {"rpm": 60}}],
         "disable": ["openai/gpt-5-mini"]}),
    "a patch removing a field": _overrides(
        {"models": [{"provider": "gemini", "model": "gemini-2.5-flash", "free_tier": None}]}),
    "a provider factor": _overrides({"providers": {"gemini": {"token_factor": 1.05}}}),
    "an overrides file": None,  # filled in by the test: a path instead of inline JSON
    "narrowed provider": {**KEYS, "GROQ_MODELS": " llama-3.1-8b-instant , qwen/qwen3-32b "},
    "declared endpoint with its catalog entry": {
        "LLM_GATEWAY_OPENAI_COMPATIBLE": _endpoint(),
        "LLM_GATEWAY_CATALOG_OVERRIDES": json.dumps({"providers": VLLM_PROVIDER, "models": [VLLM_ENTRY]})},
    "endpoint without a key is simply absent": {
        "LLM_GATEWAY_OPENAI_COMPATIBLE": json.dumps([{"name": "other", "base_url": "http://127.0.0.1:9/v1",
                                                      "api_key_env": "UNSET_KEY", "models": ["m"]}])},
}


@pytest.mark.parametrize("case", list(GOOD))
def test_valid_configuration_loads(case, tmp_path):
    env = GOOD[case]
    if env is None:
        path = tmp_path / "overrides.json"
        path.write_text(json.dumps({"models": [{"provider": "groq", "model": "qwen/qwen3-32b", "free_tier": {"rpd": 500}}]}))
        env = _overrides(str(path))
    load_settings(env)


def test_a_lambda_init_stops_on_invalid_configuration(monkeypatch):
    """The chat handler module builds its gateway at import (cold start): a bad setting stops it there."""
    from sandbox.apigw import load_handler_module

    monkeypatch.setenv("LLM_GATEWAY_CATALOG_OVERRIDES", json.dumps({"disable": ["groq/no-such-model"]}))
    with pytest.raises(ConfigError, match="groq/no-such-model"):
        load_handler_module("chat", "config-check")


def test_the_catalog_load_settings_validated_is_the_one_the_gateway_routes_on(monkeypatch) -> None:
    """Read and validated once per cold start: the composition root takes the settings' catalog."""
    import llm_gateway.compose as compose
    from llm_gateway.config import load_settings

    settings = load_settings({"OPENAI_API_KEY": "k"})
    assert settings.catalog is not None

    def second_load(*_args: object) -> None:
        raise AssertionError("the catalog was loaded a second time")

    monkeypatch.setattr(compose, "load_catalog", second_load)
    assert compose.build_core(settings).catalog is settings.catalog


# Settings that loaded and then failed every request (a base URL without its scheme answered 503
# "connection" to every call), or failed the start far from the variable (an unknown log level
# was Python's "Unknown level: 'LOUD'" from inside Powertools; a baseline model outside the
# catalog was a ConfigError only once the chat handler was built, a traceback under `invoke`).
BAD_AT_LOAD = {
    "provider base URL without a scheme": ({**KEYS, "GROQ_BASE_URL": "api.groq.com"}, ["GROQ_BASE_URL", "api.groq.com"]),
    "provider base URL not http": ({**KEYS, "GROQ_BASE_URL": "ftp://api.groq.com"}, ["GROQ_BASE_URL", "http"]),
    "endpoint base URL without a scheme": (
        {"LLM_GATEWAY_OPENAI_COMPATIBLE": _endpoint(base_url="127.0.0.1:8000/v1")},
        ["LLM_GATEWAY_OPENAI_COMPATIBLE", "base_url", "127.0.0.1:8000/v1"]),
    "DynamoDB endpoint without a scheme": ({"LLM_GATEWAY_DYNAMODB_ENDPOINT": "localhost:8000"},
                                           ["LLM_GATEWAY_DYNAMODB_ENDPOINT", "localhost:8000"]),
    "S3 endpoint not a URL": ({"LLM_GATEWAY_S3_ENDPOINT": "not a url"}, ["LLM_GATEWAY_S3_ENDPOINT"]),
    "base URL with a credential and no scheme": ({**KEYS, "GROQ_BASE_URL": "user:sk-in-url-secret@api.groq.com/v1?key=q-secret"},
                                                  ["GROQ_BASE_URL", "api.groq.com/v1"]),
    "base URL with a password holding a ?": ({**KEYS, "GROQ_BASE_URL": "key:abc?secret-part@api.groq.com/v1"},
                                             ["GROQ_BASE_URL", "api.groq.com"]),
    "state table not a table name": ({"LLM_GATEWAY_STATE_TABLE": "llm gateway state"},
                                     ["LLM_GATEWAY_STATE_TABLE", "llm gateway state"]),
    "log level unknown": ({"POWERTOOLS_LOG_LEVEL": "LOUD"}, ["POWERTOOLS_LOG_LEVEL", "LOUD"]),
    "baseline model not in the catalog": ({"LLM_GATEWAY_BASELINE_MODEL": "openai/gpt-4o-minii"},
                                          ["LLM_GATEWAY_BASELINE_MODEL", "openai/gpt-4o-minii"]),
    # a yes/no that is neither read as "off" (local mode, and its dev key, silently not on)
    "local mode neither yes nor no": ({"LLM_GATEWAY_LOCAL": "maybe"}, ["LLM_GATEWAY_LOCAL", "maybe"]),
    "trace switch neither yes nor no": ({"POWERTOOLS_TRACE_DISABLED": "ture"}, ["POWERTOOLS_TRACE_DISABLED", "ture"]),
    # sizes a typo made huge: a billion attempts, a body no Lambda receives, a key never re-read
    "attempts beyond reason": ({"LLM_GATEWAY_MAX_ATTEMPTS": "1e9"}, ["LLM_GATEWAY_MAX_ATTEMPTS", "at most 10"]),
    "body above Lambda's payload": ({"LLM_GATEWAY_MAX_BODY_BYTES": "1e30"}, ["LLM_GATEWAY_MAX_BODY_BYTES", "at most"]),
    "secrets never re-read": ({"LLM_GATEWAY_SECRET_TTL_S": "86400"}, ["LLM_GATEWAY_SECRET_TTL_S", "at most 3600"]),
}


@pytest.mark.parametrize("case", list(BAD_AT_LOAD))
def test_a_setting_that_fails_every_request_or_the_handler_stops_the_load_naming_it(case):
    _refused_in_one_line_naming(*BAD_AT_LOAD[case])


def _refused_in_one_line_naming(env: dict[str, str], needles: list[str]) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(env)
    message = str(caught.value)
    assert "\n" not in message, message
    assert "secret" not in message, message  # a credential written into a URL is not repeated
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"


@pytest.mark.parametrize("env", [
    {**KEYS, "GROQ_BASE_URL": "http://127.0.0.1:9"}, {**KEYS, "GROQ_BASE_URL": "https://proxy.example.com/groq/"},
    {"LLM_GATEWAY_DYNAMODB_ENDPOINT": "http://127.0.0.1:8000"}, {"POWERTOOLS_LOG_LEVEL": "debug"},
    {"POWERTOOLS_LOG_LEVEL": "WARNING"}, {"LLM_GATEWAY_STATE_TABLE": "llm-gateway_state.v2"},
    {"LLM_GATEWAY_BASELINE_MODEL": "openai/gpt-4o-mini"}, {"LLM_GATEWAY_LOCAL": "0"}, {"LLM_GATEWAY_LOCAL": "No"},
    {"LLM_GATEWAY_LOCAL": " TRUE "}, {"POWERTOOLS_TRACE_DISABLED": "false"}, {"LLM_GATEWAY_LOCAL": ""},
    {"LLM_GATEWAY_MAX_ATTEMPTS": "10"}, {"LLM_GATEWAY_MAX_BODY_BYTES": str(6 * 1024 * 1024)},
    # the words Powertools itself reads a yes/no with (review: `off` had stopped the load)
    *({"POWERTOOLS_TRACE_DISABLED": word} for word in ("on", "off", "y", "n", "t", "f", "TRUE", "0")),
    {"POWERTOOLS_LOG_LEVEL": "fatal"}, {"POWERTOOLS_LOG_LEVEL": "NOTSET"}, {"POWERTOOLS_LOG_LEVEL": "warn"},
    {"LLM_GATEWAY_SECRET_TTL_S": "3600"},
])
def test_well_formed_urls_levels_tables_and_baselines_load(env):
    load_settings(env)


def test_key_allow_lists_are_checked_against_the_catalog_the_gateway_routes_on() -> None:
    """A model the operator added with LLM_GATEWAY_CATALOG_OVERRIDES may be named in a key's
    allow-list through the built gateway's admin API (the composition root passes its catalog;
    the built-in one, the admin's default, does not hold the model)."""
    import llm_gateway.compose as compose

    overrides = json.dumps({"providers": VLLM_PROVIDER, "models": [VLLM_ENTRY]})
    admin = compose.build_core(load_settings({**KEYS, "LLM_GATEWAY_CATALOG_OVERRIDES": overrides})).tenancy.admin
    assert admin.create({"user": "alice", "models": ["vllm/*"]})["policy"]["models"] == ["vllm/*"]
