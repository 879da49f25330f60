# ruff: noqa: F811  (pytest fixtures imported by name, then requested as parameters)
"""Provider-wide and calendar-month limits over HTTP: each provider's own 429 and headers, set from
the config or the control API (`POST /_sandbox/limits`, `FakeProvider.set_limits`)."""

from __future__ import annotations

import time

import cohere
import httpx
import pytest

from llm_gateway.providers.base import ProviderConfig
from llm_gateway.providers.registry import provider_specs
from sandbox.fakes import FakeFleet, start_fakes
from tests.fakes_fixtures import fake_fleet, fakes  # noqa: F401
from tests.integration.test_fakes_faults import send


def test_mistral_free_tier_one_request_per_second_for_the_whole_organisation() -> None:
    config = {"providers": {"mistral": {"org_limits": {"rps": 1}}}}
    with start_fakes(config) as fleet:
        mistral = fleet["mistral"]
        assert send(mistral, model="mistral-small-latest").status_code == 200
        limited = send(mistral, model="mistral-large-latest")  # another model: the same budget
        assert limited.status_code == 429
        assert limited.json() == {"object": "error", "message": "Rate limit exceeded", "type": "rate_limited",
                                  "param": None, "code": "1300", "raw_status_code": 429}  # fmt: skip
        assert "retry-after" not in limited.headers and "x-ratelimit-limit-req-minute" in limited.headers
        time.sleep(1.05)
        assert send(mistral, model="mistral-large-latest").status_code == 200


def test_mistral_monthly_tokens_in_its_headers_and_read_by_the_adapter() -> None:
    config = {"providers": {"mistral": {"org_limits": {"tpmonth": 1_000_000_000}}}}
    with start_fakes(config) as fleet:
        resp = send(fleet["mistral"])
        headers = resp.headers
        assert headers["x-ratelimit-limit-tokens-month"] == "1000000000"
        used = int(headers["x-ratelimit-tokens-query-cost"])
        assert int(headers["x-ratelimit-remaining-tokens-month"]) == 1_000_000_000 - used
        spec = provider_specs()["mistral"]
        adapter = spec.adapters["chat"](ProviderConfig(name="mistral", kind="mistral", base_url="x", api_key="k"))
        info = adapter.parse_rate_limits({**headers, "x-ratelimit-remaining-tokens-month": "0"})
        assert info is not None and (info.limit_tokens, info.remaining_tokens) == (1_000_000_000, 0)


def test_cohere_trial_key_calendar_month_limit_with_trial_headers() -> None:
    config = {"providers": {"cohere": {"limits": {"default": {"rpm": 20}}, "org_limits": {"rpmonth": 2}}}}
    with start_fakes(config) as fleet:
        fake = fleet["cohere"]
        first = send(fake)
        assert first.headers["x-endpoint-monthly-call-limit"] == "2"
        assert (first.headers["x-trial-endpoint-call-limit"], first.headers["x-trial-endpoint-call-remaining"]) == (
            "20", "19")  # fmt: skip
        assert send(fake, model="command-r-08-2024").status_code == 200
        client = cohere.ClientV2(base_url=fake.root_url, api_key="trial-key")
        with pytest.raises(cohere.errors.TooManyRequestsError) as limited:
            client.chat(model="command-a-03-2025", messages=[{"role": "user", "content": "hi"}])
        body = limited.value.body
        assert body["message"].startswith("You are using a Trial key, which is limited to 2 API calls / month.")
        assert limited.value.headers["x-endpoint-monthly-call-limit"] == "2"
        assert "retry-after" not in limited.value.headers
    with start_fakes({"providers": {"cohere": {}}}) as fleet:  # a production key: no limit headers
        assert not [h for h in send(fleet["cohere"]).headers if "limit" in h]


def test_openai_and_groq_organisation_limits_bind_their_headers() -> None:
    config = {"providers": {"openai": {"org_limits": {"rpm": 2}}, "groq": {"org_limits": {"rpd": 1}}}}
    with start_fakes(config) as fleet:
        openai = fleet["openai"]
        assert send(openai, model="gpt-4o").headers["x-ratelimit-remaining-requests"] == "1"
        assert send(openai, model="gpt-4o-mini").headers["x-ratelimit-limit-requests"] == "2"
        limited = send(openai, model="gpt-4.1-nano")
        assert limited.status_code == 429 and limited.json()["error"]["type"] == "requests"
        assert "requests per min (RPM): Limit 2, Used 2, Requested 1" in limited.json()["error"]["message"]
        assert 55 <= int(limited.headers["retry-after"]) <= 60
        assert limited.headers["x-ratelimit-remaining-requests"] == "0"
        groq = fleet["groq"]
        assert send(groq).headers["x-ratelimit-limit-requests"] == "1"  # requests per day
        day = send(groq, model="llama-3.3-70b-versatile")
        assert day.status_code == 429 and "requests per day (RPD)" in day.json()["error"]["message"]


def test_gemini_project_wide_quota_names_no_model() -> None:
    with start_fakes({"providers": {"gemini": {"org_limits": {"rps": 1}}}}) as fleet:
        gemini = fleet["gemini"]
        assert send(gemini, model="gemini-2.5-flash").status_code == 200
        limited = send(gemini, model="gemini-2.5-pro")
        assert limited.status_code == 429 and limited.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
        quota, _help, retry = limited.json()["error"]["details"]
        assert quota["violations"][0]["quotaId"] == "GenerateRequestsPerSecondPerProject-FreeTier"
        assert quota["violations"][0]["quotaDimensions"] == {"location": "global"}
        assert retry["retryDelay"] == "1s"


def test_limits_control_api_sets_shows_and_reset_restores(fakes: FakeFleet) -> None:
    fake = fakes["mistral"]
    root = fake.root_url + "/_sandbox/limits"
    assert httpx.get(root).json()["org_limits"] == {}
    set_ = httpx.post(root, json={"org_limits": {"rps": 1}, "limits": {"default": {"rpm": 5}}})
    assert set_.status_code == 200 and set_.json()["limits"] == {"default": {"rpm": 5}}
    assert send(fake).status_code == 200
    assert send(fake).status_code == 429
    usage = httpx.get(root).json()["usage"]
    assert usage["org"]["rps"]["used"] == 1 and usage["models"][fake.models[0]]["rpm"]["remaining"] == 4
    assert httpx.post(root, json={"org_limits": {"rpss": 1}}).status_code == 400
    assert httpx.post(root, json=[1]).status_code == 400
    assert httpx.post(fake.root_url + "/_sandbox/reset").status_code == 200
    assert fake.limits()["org_limits"] == {} and fake.limits()["limits"]["default"]["rpm"] == 1000
    assert fake.set_limits(org_limits={"rpmonth": 1})["org_limits"] == {"rpmonth": 1}
    assert [send(fake).status_code for _ in range(2)] == [200, 429]
    fake.reset()
    assert send(fake).status_code == 200


def test_config_rejects_unknown_limit_keys() -> None:
    with pytest.raises(ValueError, match="rpmm"):
        start_fakes({"providers": {"openai": {"org_limits": {"rpmm": 1}}}})
    with pytest.raises(ValueError, match="tmp"):
        start_fakes({"providers": {"openai": {"limits": {"default": {"tmp": 1}}}}})
