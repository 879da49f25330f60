"""`GET /v1/status` shows every provider's breakers, cooldowns and remaining capacity: that is for
operators, not for every client key. Only admin keys (LLM_GATEWAY_ADMIN_KEYS; the dev key in
local mode) may read it, and its answer is cached for a few seconds so polling it cannot turn
into a state-table read storm. Through the chat handler, as Lambda runs it."""

from __future__ import annotations

import json
from types import ModuleType

import pytest

from llm_gateway.providers.registry import provider_specs
from sandbox.apigw import LocalContext, load_handler_module, make_event

CLIENT = "client-" + "c" * 40
ADMIN = "admin-" + "a" * 40
_instances = iter(range(10**6))


def _load(fakes, monkeypatch, **env: str) -> ModuleType:
    specs = provider_specs()
    for name, fake in fakes.providers.items():
        if name in specs:
            monkeypatch.setenv(specs[name].key_env, "sandbox-fake-key")
            monkeypatch.setenv(specs[name].base_url_env, fake.base_url)
    # the e2e session (same xdist worker) leaves local mode, a 0 s status cache and its embedded
    # DynamoDB's table in os.environ; that table lives in moto's in-process backend, which any
    # test's `mock_aws` resets on exit (the status read then met ResourceNotFoundException)
    for ambient in ("LLM_GATEWAY_LOCAL", "LLM_GATEWAY_STATUS_CACHE_S", "LLM_GATEWAY_API_KEYS", "LLM_GATEWAY_ADMIN_KEYS",
                    "LLM_GATEWAY_STATE_TABLE"):
        monkeypatch.delenv(ambient, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return load_handler_module("chat", instance=f"status_{next(_instances)}")


def _get(module: ModuleType, key: str | None, path: str = "/v1/status") -> tuple[int, dict]:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    result = module.lambda_handler(make_event("GET", path, headers, b""), LocalContext(function_name="chat"))
    return int(result["statusCode"]), json.loads(result["body"])


@pytest.fixture
def chat(fakes, monkeypatch) -> ModuleType:
    # the default cache age, set explicitly: another test in the same worker may leave it in os.environ
    return _load(fakes, monkeypatch, LLM_GATEWAY_API_KEYS=CLIENT, LLM_GATEWAY_ADMIN_KEYS=ADMIN,
                 LLM_GATEWAY_STATUS_CACHE_S="5")


def test_only_admin_keys_read_status(chat):
    status, body = _get(chat, ADMIN)
    assert status == 200 and body["providers"]
    status, body = _get(chat, CLIENT)
    assert status == 403 and body["error"]["code"] == "admin_key_required"
    for key in (None, "wrong-" + "w" * 40):
        status, body = _get(chat, key)
        assert status == 401 and body["error"]["code"] == "invalid_api_key"
    assert _get(chat, CLIENT, "/v1/models")[0] == 200  # the client key still works where it belongs
    assert _get(chat, ADMIN, "/v1/models")[0] == 401   # and an admin key is not a client key


def test_the_dev_key_is_admin_in_local_mode(fakes, monkeypatch):
    module = _load(fakes, monkeypatch, LLM_GATEWAY_LOCAL="1")
    assert _get(module, "local-dev-key")[0] == 200


def test_status_is_cached_for_a_few_seconds(chat, monkeypatch):
    calls = []
    real = chat.gateway.status
    monkeypatch.setattr(chat.gateway, "status", lambda: calls.append(1) or real())
    now = [1000.0]
    chat.status_cache.clock = lambda: now[0]
    for _ in range(5):
        assert _get(chat, ADMIN)[0] == 200
    assert len(calls) == 1
    now[0] += chat.status_cache.ttl_s + 0.1
    assert _get(chat, ADMIN)[0] == 200
    assert len(calls) == 2
    assert 1 <= chat.status_cache.ttl_s <= 10


def test_status_shows_the_speech_to_text_models_too(chat):
    """Transcription fails over like chat, on models with their own breakers, cooldowns and audio
    windows (Groq's 7,200 audio seconds an hour), but status listed the chat models alone: Groq's
    and OpenAI's Whisper, Mistral's Voxtral were missing and Replicate (speech only) entirely,
    so an operator could not see why a transcription failed over. It lists what /v1/models lists."""
    status, body = _get(chat, ADMIN)
    assert status == 200
    _, models = _get(chat, CLIENT, "/v1/models")
    listed = {m["id"] for m in models["data"]} - {"auto", "auto:small", "auto:large", "auto:reasoning"}
    shown = {f"{p}/{m}" for p, info in body["providers"].items() for m in info["models"]}
    assert shown == listed
    whisper = body["providers"]["groq"]["models"]["whisper-large-v3-turbo"]
    assert any(w.get("max_audio_seconds") for w in whisper["windows"]), whisper["windows"]
    assert "replicate" in body["providers"] and "openai/whisper" in body["providers"]["replicate"]["models"]
