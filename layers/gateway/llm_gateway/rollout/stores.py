"""The Powertools Feature Flags stores of the rollout flag: AWS AppConfig, or a local file.

Apart from `flag.py`: a container without a rollout never loads Feature Flags. With Lambda's
credentials in the environment, AppConfig is read through `AppConfigDataStore` (the gateway's
own signed httpx client, `state/aws_client.py`) rather than Powertools' `AppConfigStore`, whose
module imports boto3: the chat function's first request would otherwise import boto3 and build
an AppConfigData client (about 0.7 G instructions) only to read one small document.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from llm_gateway.lazy_packages import defer_package_init

defer_package_init("aws_lambda_powertools.utilities.feature_flags")  # its __init__ imports the boto3 store

from aws_lambda_powertools.utilities.feature_flags.base import StoreProvider  # noqa: E402
from aws_lambda_powertools.utilities.feature_flags.exceptions import ConfigurationStoreError  # noqa: E402

from llm_gateway.rollout.flag import Rollout  # noqa: E402


class FileStore(StoreProvider):
    """Feature flags from a local JSON file (the same document AppConfig holds)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    @property
    def get_raw_configuration(self) -> dict[str, Any]:
        try:
            loaded = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigurationStoreError(f"cannot read the rollout file {self.path}: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ConfigurationStoreError(f"the rollout file {self.path} does not hold a JSON object")
        return loaded

    def get_configuration(self) -> dict[str, Any]:
        return self.get_raw_configuration


class AppConfigDataStore(StoreProvider):
    """The flag document from AppConfig through a Powertools Parameters provider (`get(name,
    transform="json", max_age=...)`), as Powertools' `AppConfigStore` reads it (without envelope)."""

    def __init__(self, provider: Any, profile: str, max_age: int) -> None:
        self.provider = provider
        self.profile = profile
        self.max_age = max_age

    @property
    def get_raw_configuration(self) -> dict[str, Any]:
        try:
            value = self.provider.get(self.profile, transform="json", max_age=self.max_age)
        except Exception as exc:
            raise ConfigurationStoreError(f"cannot read the rollout flag from AppConfig: {exc}") from exc
        if not isinstance(value, dict):
            raise ConfigurationStoreError("the AppConfig rollout profile does not hold a JSON object")
        return value

    def get_configuration(self) -> dict[str, Any]:
        return self.get_raw_configuration


def build_rollout(env: Any, *, cache_s: float, on_read: Callable[[float], None] | None = None,
                  appconfig_client: Any = None, aws: Any = None,
                  clock: Callable[[], float] = time.monotonic) -> Rollout:
    """The rollout a container runs with, from its `RolloutSettings`-like `env` (see config.py):
    AppConfig when application, environment and profile are set (over httpx with `aws`, the
    settings' `AwsAccess`, unless a boto3 `appconfig_client` is given); else the local file;
    else fixed."""
    from aws_lambda_powertools.utilities.feature_flags.feature_flags import FeatureFlags

    if env.appconfig is not None:
        application, environment, profile = env.appconfig
        store: StoreProvider
        if aws is not None and appconfig_client is None:
            from llm_gateway.state.aws_client import appconfig_provider

            store = AppConfigDataStore(appconfig_provider(aws, application, environment, env.endpoint),
                                       profile, max(1, int(cache_s)))
        else:
            from aws_lambda_powertools.utilities.feature_flags.appconfig import AppConfigStore

            store = AppConfigStore(environment=environment, application=application, name=profile,
                                   max_age=max(1, int(cache_s)), boto3_client=appconfig_client)
        return Rollout(FeatureFlags(store=store), fallback=0.0, cache_s=cache_s, clock=clock, on_read=on_read)
    if env.file is not None:
        return Rollout(FeatureFlags(store=FileStore(env.file)), fallback=env.percent, cache_s=cache_s, clock=clock,
                       on_read=on_read)
    return Rollout(None, fallback=env.percent, cache_s=cache_s, clock=clock, on_read=on_read)
