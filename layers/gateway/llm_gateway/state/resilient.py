"""Degraded mode: keep serving on in-container state when the shared store fails.

The gateway never fails a request only because DynamoDB is throttled or unreachable. When the
primary store is throttled or cannot be reached (throttling error codes, connection errors,
timeouts, unprocessed keys), this wrapper answers from a per-container `MemoryStore` whose
ceilings are scaled down to this container's share, `fraction` (the composition root passes
1 / `LLM_GATEWAY_MAX_CONTAINERS`), because other containers keep spending the same provider quota
where we cannot see it: together they never admit more than the limit. Any other error (a validation error is a bug, not an
outage) is raised. Each fall-back logs a warning and calls `on_degraded(operation, error)` so the
caller can publish a metric without this module depending on the metrics code.

After a failure the primary is left alone for `retry_after_s` (no point paying a timeout on every
request); then the next call tries it again. Items that are put or extended (cooldowns, header
snapshots, failure marks) are always written to the local store too, so a container that degrades
still remembers the 429s it has seen. A reservation made locally and reconciled after the primary
came back moves the primary's counter by the estimate error of that one request: bounded, and
accepted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TypeVar

from llm_gateway.state.aws_client import RETRY_CODES, error_code, is_aws_failure
from llm_gateway.state.memory import MemoryStore
from llm_gateway.state.metering import share_of
from llm_gateway.state.store import CounterAdd, Item, StateStore, StateUnavailable

LOG = logging.getLogger("llm_gateway.state")
T = TypeVar("T")
_OUTAGE_CODES = RETRY_CODES | {"TransactionConflictException"}


def is_outage(exc: BaseException) -> bool:
    """Throttling, any server error (a 5xx, whatever its code or body) and transport failures
    degrade; anything else (a 4xx: a validation error is a bug) is raised."""
    code = error_code(exc)
    if code is not None:
        return code in _OUTAGE_CODES or _status(exc) >= 500
    return isinstance(exc, StateUnavailable) or is_aws_failure(exc)


def _status(exc: BaseException) -> int:
    """The HTTP status of an `AwsError` or a botocore `ClientError` (0 when not given)."""
    response = getattr(exc, "response", None)
    meta = response.get("ResponseMetadata") if isinstance(response, dict) else None
    status = meta.get("HTTPStatusCode") if isinstance(meta, dict) else None
    return status if isinstance(status, int) else 0


class ResilientStore:
    """A `StateStore` that prefers `primary` and falls back to conservative local state."""

    def __init__(
        self,
        primary: StateStore,
        fallback: MemoryStore,
        *,
        on_degraded: Callable[[str, BaseException], None],
        fraction: float = 0.5,
        retry_after_s: float = 30.0,
    ) -> None:
        self.primary = primary
        self.fallback = fallback
        self.fraction = fraction
        self.retry_after_s = retry_after_s
        self.on_degraded = on_degraded
        self._skip_primary_until = float("-inf")

    def degraded(self, now: float) -> bool:
        return now < self._skip_primary_until

    def _try(self, operation: str, now: float, call: Callable[[], T]) -> tuple[bool, T | None]:
        """(True, result) from the primary, or (False, None) after recording an outage."""
        if self.degraded(now):
            return False, None
        try:
            return True, call()
        except Exception as exc:
            if not is_outage(exc):
                raise
            self._skip_primary_until = now + self.retry_after_s
            LOG.warning(
                "state store degraded: %s failed (%s); serving on in-container state at %.0f%% of limits for %.0fs",
                operation, type(exc).__name__, self.fraction * 100, self.retry_after_s,
            )
            self.on_degraded(operation, exc)
            return False, None

    def load(self, pks: Sequence[str], now: float) -> dict[str, Item]:
        ok, items = self._try("load", now, lambda: self.primary.load(pks, now))
        if ok and items is not None:
            return items
        return self.fallback.load(pks, now)

    def add(self, adds: Sequence[CounterAdd], now: float) -> bool:
        ok, done = self._try("add", now, lambda: self.primary.add(adds, now))
        if ok:
            return bool(done)
        scaled = [
            replace(add, ceilings={u: share_of(c, self.fraction) for u, c in add.ceilings.items()})
            for add in adds
        ]
        return self.fallback.add(scaled, now)

    def put(self, pk: str, item: Item, expires_at: int, now: float) -> None:
        self.fallback.put(pk, item, expires_at, now)
        self._try("put", now, lambda: self.primary.put(pk, item, expires_at, now))

    def extend(self, pk: str, item: Item, until: float, expires_at: int, now: float) -> None:
        self.fallback.extend(pk, item, until, expires_at, now)
        self._try("extend", now, lambda: self.primary.extend(pk, item, until, expires_at, now))
