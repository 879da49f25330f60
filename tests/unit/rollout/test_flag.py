"""The rollout flag: Powertools Feature Flags over a local file or AppConfig, cached briefly."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.feature_flags import FeatureFlags
from botocore.response import StreamingBody
from botocore.stub import Stubber

from llm_gateway.config import ConfigError, RolloutSettings, load_settings
from llm_gateway.rollout.flag import Rollout, flag_document, percent_in, write_file
from llm_gateway.rollout.stores import AppConfigDataStore, FileStore, build_rollout


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_file_store_reads_what_set_writes_and_a_change_shows_after_the_cache(tmp_path: Path) -> None:
    path = tmp_path / "rollout.json"
    write_file(path, 5)
    clock, reads = Clock(), []
    rollout = Rollout(FeatureFlags(store=FileStore(path)), fallback=100, cache_s=5, clock=clock,
                      on_read=reads.append)
    assert rollout.percent() == 5
    write_file(path, 25)
    clock.now = 4.9
    assert rollout.percent() == 5  # cached
    clock.now = 5.1
    assert rollout.percent() == 25
    assert reads == [5, 25]


def test_an_unreadable_or_bad_value_keeps_the_last_good_one(tmp_path: Path) -> None:
    path = tmp_path / "rollout.json"
    write_file(path, 25)
    clock = Clock()
    rollout = Rollout(FeatureFlags(store=FileStore(path)), fallback=100, cache_s=1, clock=clock)
    assert rollout.percent() == 25
    for bad in ("not json", json.dumps({"rollout_percent": {"default": 250, "boolean_type": False}}),
                json.dumps({"rollout_percent": {"default": "10", "boolean_type": False}})):
        path.write_text(bad)
        clock.now += 2
        assert rollout.percent() == 25
    path.unlink()
    clock.now += 2
    assert rollout.percent() == 25


def test_before_any_good_value_the_fallback_serves(tmp_path: Path) -> None:
    rollout = Rollout(FeatureFlags(store=FileStore(tmp_path / "missing.json")), fallback=0, cache_s=1)
    assert rollout.percent() == 0


def test_the_document_round_trips_and_refuses_nonsense() -> None:
    assert percent_in(flag_document(25)) == 25
    assert flag_document(12.5) == {"rollout_percent": {"default": 12.5, "boolean_type": False}}
    for bad in (-1, 101, float("nan"), True, "5"):
        with pytest.raises(ValueError):
            flag_document(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        percent_in({"other": {"default": 5}})


def _appconfig_answer(stubber: Stubber, document: dict[str, Any], token: str) -> None:
    body = json.dumps(document).encode()
    stubber.add_response("get_latest_configuration", {
        "NextPollConfigurationToken": token, "NextPollIntervalInSeconds": 15, "ContentType": "application/json",
        "Configuration": StreamingBody(io.BytesIO(body), len(body)),
    })


def test_appconfig_is_read_through_powertools_with_the_template_identifiers() -> None:
    """The chat function's path: AppConfigStore → appconfigdata StartConfigurationSession and
    GetLatestConfiguration, with the application, environment and profile the template passes."""
    client = boto3.client("appconfigdata", region_name="us-east-1")
    stubber = Stubber(client)
    stubber.add_response("start_configuration_session", {"InitialConfigurationToken": "t0"},
                         {"ApplicationIdentifier": "app1", "EnvironmentIdentifier": "env1",
                          "ConfigurationProfileIdentifier": "prof1"})
    _appconfig_answer(stubber, flag_document(5), "t1")
    settings = RolloutSettings(baseline_model="openai/gpt-4o-mini", appconfig=("app1", "env1", "prof1"))
    with stubber:
        rollout = build_rollout(settings, cache_s=5, appconfig_client=client)
        assert rollout.percent() == 5
        assert rollout.fallback == 0  # AppConfig unreadable at a cold start: the old system serves


def test_rollout_settings_are_validated_at_load() -> None:
    base = {"OPENAI_API_KEY": "sk-test-0123456789"}
    assert not load_settings(base).rollout.enabled
    settings = load_settings({**base, "LLM_GATEWAY_BASELINE_MODEL": "openai/gpt-4o-mini",
                              "LLM_GATEWAY_ROLLOUT_FILE": "/tmp/r.json", "LLM_GATEWAY_ROLLOUT_CACHE_S": "2"})
    assert settings.rollout == RolloutSettings("openai/gpt-4o-mini", None, "/tmp/r.json", 100.0, 2.0)
    with pytest.raises(ConfigError, match="BASELINE_MODEL"):
        load_settings({**base, "LLM_GATEWAY_ROLLOUT_FILE": "/tmp/r.json"})
    with pytest.raises(ConfigError, match="provider/model"):
        load_settings({**base, "LLM_GATEWAY_BASELINE_MODEL": "gpt-4o-mini"})
    with pytest.raises(ConfigError, match="missing LLM_GATEWAY_ROLLOUT_APPCONFIG_PROFILE"):
        load_settings({**base, "LLM_GATEWAY_BASELINE_MODEL": "openai/gpt-4o-mini",
                       "LLM_GATEWAY_ROLLOUT_APPCONFIG_APPLICATION": "a",
                       "LLM_GATEWAY_ROLLOUT_APPCONFIG_ENVIRONMENT": "e"})
    with pytest.raises(ConfigError, match="0 to 100"):
        load_settings({**base, "LLM_GATEWAY_BASELINE_MODEL": "openai/gpt-4o-mini", "LLM_GATEWAY_ROLLOUT_PERCENT": "120"})


def test_with_lambdas_credentials_appconfig_is_read_over_httpx_as_powertools_reads_it() -> None:
    """StartConfigurationSession once, then GetLatestConfiguration with each token it was handed;
    an empty answer means "unchanged" and keeps the last document. Signed for `appconfig`."""
    import httpx

    from llm_gateway.config import AwsAccess
    from llm_gateway.state import aws_client

    seen: list[httpx.Request] = []
    documents = [json.dumps(flag_document(5)).encode(), b"", json.dumps(flag_document(40)).encode()]

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/configurationsessions":
            assert json.loads(request.content) == {"ApplicationIdentifier": "app1", "EnvironmentIdentifier": "env1",
                                                   "ConfigurationProfileIdentifier": "prof1"}
            return httpx.Response(201, json={"InitialConfigurationToken": "t0"})
        token = request.url.params["configuration_token"]
        return httpx.Response(200, content=documents.pop(0), headers={
            "next-poll-configuration-token": f"t{int(token[1:]) + 1}", "next-poll-interval-in-seconds": "60",
            "content-type": "application/json"})

    provider = aws_client.appconfig_provider(AwsAccess("us-east-1", "AKID", "secret", None), "app1", "env1")
    provider.appconfig.http = httpx.Client(transport=httpx.MockTransport(answer))
    store = AppConfigDataStore(provider, "prof1", max_age=1)
    assert store.get_configuration() == flag_document(5)
    provider.clear_cache()
    assert store.get_configuration() == flag_document(5)  # empty answer: unchanged
    provider.clear_cache()
    assert store.get_configuration() == flag_document(40)
    assert [r.url.params.get("configuration_token") for r in seen] == [None, "t0", "t1", "t2"]
    assert "/us-east-1/appconfig/aws4_request" in seen[1].headers["authorization"]
    assert str(seen[1].url).startswith("https://appconfigdata.us-east-1.amazonaws.com/configuration?")


def test_the_rollout_uses_the_httpx_store_when_the_settings_have_aws_access() -> None:
    from llm_gateway.config import AwsAccess

    settings = RolloutSettings(baseline_model="openai/gpt-4o-mini", appconfig=("app1", "env1", "prof1"))
    rollout = build_rollout(settings, cache_s=5, aws=AwsAccess("us-east-1", "AKID", "secret", None))
    assert isinstance(rollout.flags.store, AppConfigDataStore)
    assert rollout.fallback == 0
