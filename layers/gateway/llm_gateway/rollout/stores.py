"""The Powertools Feature Flags stores of the rollout flag: AWS AppConfig, or a local file.

Apart from `flag.py` because importing Powertools' feature_flags package imports boto3 (its
AppConfig store): a container without a rollout never loads it (tests/unit/test_cold_start_imports.py).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aws_lambda_powertools.utilities.feature_flags.base import StoreProvider
from aws_lambda_powertools.utilities.feature_flags.exceptions import ConfigurationStoreError

from llm_gateway.rollout.flag import Rollout


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


def build_rollout(env: Any, *, cache_s: float, on_read: Callable[[float], None] | None = None,
                  appconfig_client: Any = None, clock: Callable[[], float] = time.monotonic) -> Rollout:
    """The rollout a container runs with, from its `RolloutSettings`-like `env` (see config.py):
    AppConfig when application, environment and profile are set; else the local file; else fixed."""
    if env.appconfig is not None:
        from aws_lambda_powertools.utilities.feature_flags import AppConfigStore, FeatureFlags

        application, environment, profile = env.appconfig
        store = AppConfigStore(environment=environment, application=application, name=profile,
                               max_age=max(1, int(cache_s)), boto3_client=appconfig_client)
        return Rollout(FeatureFlags(store=store), fallback=0.0, cache_s=cache_s, clock=clock, on_read=on_read)
    if env.file is not None:
        from aws_lambda_powertools.utilities.feature_flags import FeatureFlags

        return Rollout(FeatureFlags(store=FileStore(env.file)), fallback=env.percent, cache_s=cache_s, clock=clock,
                       on_read=on_read)
    return Rollout(None, fallback=env.percent, cache_s=cache_s, clock=clock, on_read=on_read)
