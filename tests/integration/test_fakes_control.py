# ruff: noqa: F811  (pytest fixtures imported by name, then requested as parameters)
"""The fakes' control surface: stats, fault rate/count/model semantics, /_sandbox HTTP API,
configured rate limits and latency, startup time."""

from __future__ import annotations

import time

import httpx
import pytest

from sandbox.fakes import FAKES, FakeFleet, start_fakes
from tests.fakes_fixtures import fake_fleet, fakes  # noqa: F401
from tests.integration.test_fakes_faults import send


def test_stats_count_by_status_model_and_fault(fakes: FakeFleet) -> None:
    fake = fakes["openai"]
    assert send(fake).status_code == 200
    assert send(fake, model="gpt-4o").status_code == 200
    assert send(fake, model="gpt-nope").status_code == 404
    fake.add_fault(fault="500", count=1)
    assert send(fake).status_code == 500
    assert httpx.get(fake.base_url + "/models", headers={"Authorization": "Bearer k"}).status_code == 200
    stats = fake.stats()
    assert stats == {
        "received": 5, "served": 3, "rejected": 2,
        "by_status": {"200": 3, "404": 1, "500": 1},
        "by_model": {"gpt-4o-mini": {"received": 2, "served": 1, "rejected": 1},
                     "gpt-4o": {"received": 1, "served": 1, "rejected": 0},
                     "gpt-nope": {"received": 1, "served": 0, "rejected": 1}},
        "faults_fired": {"500": 1}, "streams_abandoned": 0,
    }  # fmt: skip
    assert httpx.get(fake.root_url + "/_sandbox/stats").json() == stats
    assert httpx.post(fake.root_url + "/_sandbox/reset").status_code == 200
    assert fake.stats()["received"] == 0 and fake.stats()["by_model"] == {}


def test_count_limits_firing_and_is_visible(fakes: FakeFleet) -> None:
    fake = fakes["cohere"]
    fake.add_fault(fault="503", count=2)
    assert [send(fake).status_code for _ in range(3)] == [503, 503, 200]
    assert fake.faults()[0]["fired"] == 2


def test_rate_is_seeded_and_reproducible(fakes: FakeFleet) -> None:
    fake = fakes["groq"]

    def pattern() -> list[int]:
        fake.reset()
        fake.add_fault(fault="500", rate=0.5)
        return [send(fake).status_code for _ in range(16)]

    first, second = pattern(), pattern()
    assert first == second
    assert 0 < first.count(500) < 16
    fake.reset()
    fake.add_fault(fault="500", rate=0.0)
    assert {send(fake).status_code for _ in range(5)} == {200}


def test_fault_scoped_to_model_and_several_faults(fakes: FakeFleet) -> None:
    fake = fakes["mistral"]
    fake.add_fault(fault="429", model="mistral-large-latest")
    fake.add_fault(fault="503", model="ministral-8b-latest", count=1)
    assert send(fake, model="mistral-small-latest").status_code == 200
    assert send(fake, model="mistral-large-latest").status_code == 429
    assert send(fake, model="ministral-8b-latest").status_code == 503
    assert send(fake, model="ministral-8b-latest").status_code == 200
    assert fake.stats()["faults_fired"] == {"429": 1, "503": 1}


def test_sandbox_fault_http_api(fakes: FakeFleet) -> None:
    root = fakes["gemini"].root_url
    added = httpx.post(root + "/_sandbox/faults", json={"fault": "503", "count": 1, "rate": 1.0})
    assert added.status_code == 200 and added.json()["added"][0]["fault"] == "503"
    httpx.post(root + "/_sandbox/faults", json={"fault": "timeout", "hang_seconds": 0.1, "model": "x"})
    listed = httpx.get(root + "/_sandbox/faults").json()["faults"]
    assert [f["fault"] for f in listed] == ["503", "timeout"] and listed[1]["hang_seconds"] == 0.1
    assert httpx.post(root + "/_sandbox/faults", json={"fault": "teapot"}).status_code == 400
    assert httpx.post(root + "/_sandbox/faults", json={"fault": "500", "rate": 2}).status_code == 400
    assert send(fakes["gemini"]).status_code == 503
    assert httpx.delete(root + "/_sandbox/faults").json() == {"faults": []}
    assert httpx.get(root + "/_sandbox/faults").json() == {"faults": []}
    assert send(fakes["gemini"]).status_code == 200


def test_configured_limits_produce_real_429s() -> None:
    config = {"providers": {
        "openai": {"limits": {"default": {"rpm": 2}, "gpt-4o": {"rpm": 100, "tpm": 20}}},
        "gemini": {"limits": {"default": {"rpm": 1}}},
        "groq": {"limits": {"default": {"rpm": 100, "rpd": 1}}},
    }}  # fmt: skip
    with start_fakes(config) as fleet:
        openai = fleet["openai"]
        first = send(openai)
        assert first.headers["x-ratelimit-limit-requests"] == "2"
        assert first.headers["x-ratelimit-remaining-requests"] == "1"
        assert send(openai).headers["x-ratelimit-remaining-requests"] == "0"
        limited = send(openai)
        assert limited.status_code == 429 and limited.json()["error"]["type"] == "requests"
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert send(openai, model="gpt-4o").status_code == 200  # prompt fits; prompt+completion now > 20
        tokens = send(openai, model="gpt-4o")
        assert tokens.status_code == 429 and tokens.json()["error"]["type"] == "tokens"
        assert send(fleet["gemini"]).status_code == 200
        quota = send(fleet["gemini"])
        assert quota.status_code == 429 and quota.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
        assert send(fleet["groq"]).headers["x-ratelimit-limit-requests"] == "1"  # per day
        day = send(fleet["groq"])
        assert day.status_code == 429 and "requests per day (RPD)" in day.json()["error"]["message"]
        openai.reset()
        assert send(openai).status_code == 200


def test_latency_and_chunk_delay_from_config() -> None:
    config = {"providers": {"openai": {"latency_ms": 150, "chunk_delay_ms": 20}}}
    with start_fakes(config) as fleet:
        started = time.monotonic()
        assert send(fleet["openai"]).status_code == 200
        assert time.monotonic() - started >= 0.15


def test_startup_is_fast_and_describe_lists_sdk_base_urls() -> None:
    started = time.monotonic()
    fleet = start_fakes()
    try:
        assert time.monotonic() - started < 1.0
        described = fleet.describe()
        assert list(described) == list(FAKES)
        assert described["openai"]["base_url"].endswith("/v1")
        for name in ("groq", "gemini", "cohere", "mistral"):
            assert described[name]["base_url"] == fleet[name].root_url
        assert all(info["models"] for info in described.values())
    finally:
        started = time.monotonic()
        fleet.stop()
        assert time.monotonic() - started < 1.0


def test_startup_faults_and_unknown_config() -> None:
    config = {"providers": {"cohere": {"models": ["c1"], "faults": [{"fault": "500", "count": 1}]}}}
    with start_fakes(config) as fleet:
        assert list(fleet.providers) == ["cohere"] and fleet["cohere"].models == ["c1"]
        assert send(fleet["cohere"]).status_code == 500
        assert send(fleet["cohere"]).status_code == 200
    with pytest.raises(ValueError):
        start_fakes({"providers": {"nope": {}}})
    with pytest.raises(ValueError):
        start_fakes(config, providers=["openai"])


def test_gemini_accepts_key_query_and_snake_case_body(fakes: FakeFleet) -> None:
    fake = fakes["gemini"]
    body = {
        "system_instruction": {"parts": [{"text": "be terse"}]},
        "contents": [{"role": "user", "parts": [{"text": "use lookup please"}]}],
        "tools": [{"function_declarations": [{"name": "lookup", "parameters": {"type": "OBJECT",
                   "properties": {"q": {"type": "STRING"}}, "required": ["q"]}}]}],
        "tool_config": {"function_calling_config": {"mode": "ANY", "allowed_function_names": ["lookup"]}},
    }  # fmt: skip
    url = fake.root_url + "/v1beta/models/gemini-2.5-flash:generateContent?key=abc"
    resp = httpx.post(url, json=body, timeout=5)
    assert resp.status_code == 200
    part = resp.json()["candidates"][0]["content"]["parts"][0]
    assert part["functionCall"]["name"] == "lookup" and isinstance(part["functionCall"]["args"]["q"], str)
    listed = httpx.get(fake.root_url + "/v1beta/models?key=abc", timeout=5).json()["models"]
    assert listed[0]["name"] == f"models/{fake.models[0]}"


def test_max_tokens_truncates_with_each_providers_finish_reason(fakes: FakeFleet) -> None:
    base = {"messages": [{"role": "user", "content": "Hi there, how are you today?"}], "max_tokens": 3}
    auth = {"Authorization": "Bearer k"}
    openai = httpx.post(
        fakes["openai"].base_url + "/chat/completions", json={**base, "model": "gpt-4o"}, headers=auth
    )
    assert openai.json()["choices"][0]["finish_reason"] == "length"
    assert openai.json()["usage"]["completion_tokens"] == 3
    cohere = httpx.post(
        fakes["cohere"].root_url + "/v2/chat", json={**base, "model": "command-a-03-2025"}, headers=auth
    )
    assert cohere.json()["finish_reason"] == "MAX_TOKENS"
    body = {"contents": [{"parts": [{"text": "hello"}]}], "generationConfig": {"maxOutputTokens": 2}}
    url = fakes["gemini"].root_url + "/v1beta/models/gemini-2.5-flash:generateContent"
    gemini = httpx.post(url, json=body, headers={"x-goog-api-key": "k"})
    assert gemini.json()["candidates"][0]["finishReason"] == "MAX_TOKENS"
