"""In-memory `StateStore`: for unit tests, local runs and the degraded-mode fallback.

Same semantics as the DynamoDB store (fixed epoch-aligned windows, all-or-nothing reservations,
cooldowns that only extend, expiry honoured on read) behind one lock, so one container's threads
can share it safely. It is per-process: it never sees other containers' traffic, which is why
`resilient.py` runs it with scaled-down limits.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

from llm_gateway.providers.base import RateLimitInfo
from llm_gateway.state.rate_limits import header_snapshot, snapshot_expiry
from llm_gateway.state.store import (
    Cooldown,
    HeaderSnapshot,
    ModelKey,
    ModelState,
    Reservation,
    StateSnapshot,
    WindowLimit,
    WindowUsage,
)

PURGE_EVERY = 512


class MemoryStore:
    """Thread-safe dicts keyed like the DynamoDB items; expired entries are invisible."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._windows: dict[tuple[ModelKey, int, int], list[int]] = {}  # [requests, tokens, expires_at]
        self._cooldowns: dict[ModelKey, Cooldown] = {}
        self._headers: dict[ModelKey, tuple[HeaderSnapshot, float]] = {}
        self._breakers: dict[str, tuple[dict[str, Any], float | None]] = {}
        self._writes = 0

    # --- reads -------------------------------------------------------------------------------------
    def _usage(self, key: ModelKey, limit: WindowLimit, now: float, start: int | None = None) -> WindowUsage:
        start = limit.start(now) if start is None else start
        row = self._windows.get((key, limit.seconds, start))
        if row is None or row[2] <= now:
            return WindowUsage(limit=limit, start=start)
        return WindowUsage(limit=limit, start=start, requests=row[0], tokens=row[1])

    def load(
        self, limits: Mapping[ModelKey, Sequence[WindowLimit]], now: float, breaker_ids: Sequence[str] = ()
    ) -> StateSnapshot:
        models: dict[ModelKey, ModelState] = {}
        with self._lock:
            for key, lims in limits.items():
                cooldown = self._cooldowns.get(key)
                if cooldown is not None and cooldown.until <= now:
                    cooldown = None
                hdr = self._headers.get(key)
                headers = hdr[0] if hdr is not None and hdr[1] > now else None
                windows = tuple(self._usage(key, lim, now) for lim in lims)
                previous = tuple(self._usage(key, lim, now, lim.start(now) - lim.seconds) for lim in lims)
                models[key] = ModelState(key, windows=windows, cooldown=cooldown, headers=headers, previous=previous)
            breakers = {
                bid: dict(attrs)
                for bid in breaker_ids
                if (found := self._breakers.get(bid)) is not None
                for attrs, expires in [found]
                if expires is None or expires > now
            }
        return StateSnapshot(models=models, breakers=breakers)

    # --- writes ------------------------------------------------------------------------------------
    def reserve(
        self, key: ModelKey, limits: Sequence[WindowLimit], tokens: int, now: float
    ) -> Reservation | None:
        """All windows or none, checked and applied under one lock."""
        limits = tuple(limits)
        starts = tuple(lim.start(now) for lim in limits)
        with self._lock:
            for lim in limits:
                usage = self._usage(key, lim, now)
                if lim.max_requests is not None and usage.requests + 1 > lim.max_requests:
                    return None
                if lim.max_tokens is not None and usage.tokens + tokens > lim.max_tokens:
                    return None
            for lim, start in zip(limits, starts, strict=True):
                row = self._row(key, lim, start, now)
                row[0] += 1
                row[1] += tokens
            self._after_write(now)
        return Reservation(key=key, limits=limits, starts=starts, tokens=tokens)

    def _row(self, key: ModelKey, lim: WindowLimit, start: int, now: float) -> list[int]:
        ident = (key, lim.seconds, start)
        row = self._windows.get(ident)
        if row is None or row[2] <= now:
            row = [0, 0, lim.expires_at(start)]
            self._windows[ident] = row
        return row

    def reconcile(self, reservation: Reservation, actual_tokens: int, now: float) -> None:
        """Adjust by the delta; may exceed a limit by what the provider really used, never more."""
        delta = actual_tokens - reservation.tokens
        if delta == 0:
            return
        with self._lock:
            for lim, start in zip(reservation.limits, reservation.starts, strict=True):
                self._row(reservation.key, lim, start, now)[1] += delta

    def cool_down(self, key: ModelKey, until: float, reason: str, now: float) -> None:
        with self._lock:
            current = self._cooldowns.get(key)
            if current is None or current.until < until:  # only ever extends (an expired one is shorter)
                self._cooldowns[key] = Cooldown(until=until, reason=reason)

    def record_headers(self, key: ModelKey, info: RateLimitInfo, now: float) -> None:
        with self._lock:
            self._headers[key] = (header_snapshot(info, now), snapshot_expiry(info, now))

    def put_breaker(self, breaker_id: str, attributes: Mapping[str, Any], expires_at: float | None = None) -> None:
        """Breaker records are owned by routing; this lets local runs and tests seed them."""
        with self._lock:
            self._breakers[breaker_id] = (dict(attributes), expires_at)

    def _after_write(self, now: float) -> None:
        """Drop dead windows now and then so a long-lived container does not grow without bound."""
        self._writes += 1
        if self._writes % PURGE_EVERY == 0:
            for ident in [i for i, row in self._windows.items() if row[2] <= now]:
                del self._windows[ident]
