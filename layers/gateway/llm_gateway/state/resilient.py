"""Degraded mode: keep serving on in-container state when the shared store fails.

The gateway never fails a request only because DynamoDB is throttled or unreachable. When the
primary store raises (ClientError such as ProvisionedThroughputExceeded, EndpointConnectionError,
timeouts, unprocessed keys), this wrapper answers from a per-container `MemoryStore` whose limits
are scaled down by `fraction` (default 50 %), because other containers keep spending the same
provider quota where we cannot see it. Snapshots served that way carry `degraded=True`; each
fall-back emits a warning log line and calls `on_degraded(operation, error)` so the caller can
publish a metric without this module depending on the metrics code.

After a failure the primary is left alone for `retry_after_s` (no point paying a timeout on every
request); then the next call tries it again. Cooldowns and header snapshots are always written to
the local store too, so a container that degrades still remembers the 429s it has seen.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from llm_gateway.providers.base import RateLimitInfo
from llm_gateway.state.memory import MemoryStore
from llm_gateway.state.rate_limits import scale_limits
from llm_gateway.state.store import (
    ModelKey,
    Reservation,
    StateSnapshot,
    StateStore,
    StateUnavailable,
    WindowLimit,
)

LOG = logging.getLogger("llm_gateway.state")
FAILURES: tuple[type[BaseException], ...] = (ClientError, BotoCoreError, StateUnavailable, OSError)
MAX_LOCAL_RESERVATIONS = 4096
T = TypeVar("T")


class ResilientStore:
    """A `StateStore` that prefers `primary` and falls back to conservative local state."""

    def __init__(
        self,
        primary: StateStore,
        fallback: MemoryStore | None = None,
        *,
        fraction: float = 0.5,
        retry_after_s: float = 30.0,
        on_degraded: Callable[[str, BaseException], None] | None = None,
    ) -> None:
        self.primary = primary
        self.fallback = fallback or MemoryStore()
        self.fraction = fraction
        self.retry_after_s = retry_after_s
        self.on_degraded = on_degraded
        self._lock = threading.Lock()
        self._skip_primary_until = float("-inf")
        self._local: dict[Reservation, None] = {}  # reservations the fallback made (ordered set)

    def degraded(self, now: float) -> bool:
        return now < self._skip_primary_until

    def _try(self, operation: str, now: float, call: Callable[[], T]) -> tuple[bool, T | None]:
        """(True, result) from the primary, or (False, None) after recording the failure."""
        if self.degraded(now):
            return False, None
        try:
            return True, call()
        except FAILURES as exc:
            with self._lock:
                self._skip_primary_until = now + self.retry_after_s
            LOG.warning(
                "state store degraded: %s failed (%s: %s); serving on in-container state at %.0f%% of limits "
                "for %.0fs", operation, type(exc).__name__, exc, self.fraction * 100, self.retry_after_s,
            )
            if self.on_degraded is not None:
                self.on_degraded(operation, exc)
            return False, None

    def _scaled(self, limits: Mapping[ModelKey, Sequence[WindowLimit]]) -> dict[ModelKey, tuple[WindowLimit, ...]]:
        return {key: scale_limits(lims, self.fraction) for key, lims in limits.items()}

    def load(
        self, limits: Mapping[ModelKey, Sequence[WindowLimit]], now: float, breaker_ids: Sequence[str] = ()
    ) -> StateSnapshot:
        ok, snapshot = self._try("load", now, lambda: self.primary.load(limits, now, breaker_ids))
        if ok and snapshot is not None:
            return snapshot
        local = self.fallback.load(self._scaled(limits), now, breaker_ids)
        return replace(local, degraded=True)

    def reserve(
        self, key: ModelKey, limits: Sequence[WindowLimit], tokens: int, now: float
    ) -> Reservation | None:
        ok, reservation = self._try("reserve", now, lambda: self.primary.reserve(key, limits, tokens, now))
        if ok:
            return reservation
        local = self.fallback.reserve(key, scale_limits(limits, self.fraction), tokens, now)
        if local is not None:
            with self._lock:
                self._local[local] = None
                while len(self._local) > MAX_LOCAL_RESERVATIONS:
                    self._local.pop(next(iter(self._local)))
        return local

    def reconcile(self, reservation: Reservation, actual_tokens: int, now: float) -> None:
        """Reconcile where the reservation was made (local reservations stay local)."""
        with self._lock:
            local = self._local.pop(reservation, False) is None
        if local:
            self.fallback.reconcile(reservation, actual_tokens, now)
            return
        self._try("reconcile", now, lambda: self.primary.reconcile(reservation, actual_tokens, now))

    def cool_down(self, key: ModelKey, until: float, reason: str, now: float) -> None:
        self.fallback.cool_down(key, until, reason, now)
        self._try("cool_down", now, lambda: self.primary.cool_down(key, until, reason, now))

    def record_headers(self, key: ModelKey, info: RateLimitInfo, now: float) -> None:
        self.fallback.record_headers(key, info, now)
        self._try("record_headers", now, lambda: self.primary.record_headers(key, info, now))
