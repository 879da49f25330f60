"""The rollout percentage: a Powertools Feature Flags value, read from AWS AppConfig or a local file.

One flag, `rollout_percent`, a non-boolean feature flag (`"boolean_type": false`) whose default is
the percentage of users the gateway routes (0 to 100); the rest are served the baseline way. The
same document works in both stores:

    {"rollout_percent": {"default": 25, "boolean_type": false}}

- AWS: `AppConfigStore` (application, environment, profile from the template), read through
  AppConfig's data API and cached `cache_s` per container.
- Local (`make dev`, tests): `stores.FileStore`, the same JSON in a file `llm-gateway rollout set N`
  rewrites; every container re-reads it at most every `cache_s`, so a change applies without a
  restart.

A store that cannot be read keeps the last good value; before any good value the container uses
`fallback` (0 for AppConfig: the old system is the safe side). A value that is not a number from
0 to 100 counts as unreadable.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

FLAG_NAME = "rollout_percent"
LOG = logging.getLogger("llm_gateway.rollout")


def flag_document(percent: float) -> dict[str, Any]:
    """The feature-flags document that sets the rollout to `percent`."""
    value = check_percent(percent)
    return {FLAG_NAME: {"default": int(value) if float(value).is_integer() else value, "boolean_type": False}}


def check_percent(value: Any) -> float:
    """`value` as a percentage from 0 to 100 (ValueError otherwise)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"the rollout percentage must be a number from 0 to 100, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or not 0 <= number <= 100:
        raise ValueError(f"the rollout percentage must be a number from 0 to 100, got {value!r}")
    return number


def percent_in(document: Any) -> float:
    """The percentage a feature-flags document sets (ValueError when it sets none or a bad one)."""
    try:
        return check_percent(document[FLAG_NAME]["default"])
    except (KeyError, TypeError) as exc:
        raise ValueError(f"no {FLAG_NAME} flag with a default in the document") from exc


def write_file(path: str | os.PathLike[str], percent: float) -> None:
    """Set the local rollout (atomically: a reader never sees half a file)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    partial.write_text(json.dumps(flag_document(percent)) + "\n", encoding="utf-8")
    try:
        partial.replace(target)
    except OSError:  # the target is a folder, say: leave no partial file beside it
        partial.unlink(missing_ok=True)
        raise


class Rollout:
    """The current percentage, cached `cache_s` per container. `flags` is a Powertools
    `FeatureFlags` (or anything with its `get_raw_configuration`-backed `evaluate`); None means a
    fixed percentage (`fallback`), which is how a stack without a rollout runs (100)."""

    def __init__(self, flags: Any = None, *, fallback: float = 100.0, cache_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic,
                 on_read: Callable[[float], None] | None = None) -> None:
        self.flags = flags
        self.fallback = check_percent(fallback)
        self.cache_s = cache_s
        self._clock = clock
        self._on_read = on_read
        self._value: float | None = None
        self._until = -math.inf
        self._lock = threading.Lock()

    @property
    def managed(self) -> bool:
        """Whether a store decides the percentage (else it is fixed)."""
        return self.flags is not None

    def percent(self) -> float:
        if self.flags is None:
            return self.fallback
        now = self._clock()
        if now < self._until and self._value is not None:
            return self._value
        with self._lock:
            if now < self._until and self._value is not None:
                return self._value
            value = self._read()
            self._until = now + self.cache_s
            self._value = value
        if self._on_read is not None:
            self._on_read(value)
        return value

    def _read(self) -> float:
        try:
            raw = self.flags.evaluate(name=FLAG_NAME, context={}, default=None)
            return check_percent(raw)
        except Exception as exc:  # an unreachable store or a bad value: keep what we had
            kept = self._value if self._value is not None else self.fallback
            LOG.warning("rollout flag unreadable, keeping %s%%: %s", kept, exc)
            return kept


class LocalRollout:
    """The local file as operators change it (`llm-gateway rollout` on `make dev`, the rollback
    handler under `llm-gateway invoke`): the same `status`/`set` as `AppConfigRollout`."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def status(self) -> dict[str, Any]:
        try:
            percent: float | None = percent_in(json.loads(self.path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            percent = None
        return {"percent": percent, "file": str(self.path), "deploying": None}

    def set(self, percent: float, *, description: str = "") -> dict[str, Any]:
        write_file(self.path, percent)
        return {"percent": check_percent(percent), "file": str(self.path)}
