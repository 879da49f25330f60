"""The shared-state seam: rate-limit windows, cooldowns, header snapshots and breaker records.

All Lambda containers share this state through one DynamoDB table (`dynamodb.py`); tests and
local runs may use `memory.py`. Both implement `StateStore`. Callers pass `now` explicitly so
the logic is testable without a clock, and never rely on DynamoDB TTL having deleted anything:
expired items are ignored on read.

Item keys (DESIGN.md): `rl#{provider}#{model}#{window_s}#{start}`, `hdr#{provider}#{model}`,
`cd#{provider}#{model}` (cooldown), `cb#{provider}` / `cb#{provider}#{model}` (breakers).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from llm_gateway.providers.base import RateLimitInfo


class StateUnavailable(Exception):
    """The shared store could not answer (beyond SDK errors); `resilient.py` falls back on it."""


class ModelKey(NamedTuple):
    """`provider/model`. A NamedTuple (immutable, ordered) because it is hashed several times per
    candidate per request, and tuple hashing is done in C (a frozen dataclass hashes in Python)."""

    provider: str
    model: str

    def __str__(self) -> str:
        return f"{self.provider}/{self.model}"


@dataclass(frozen=True, slots=True)
class WindowLimit:
    """A provider limit: at most `max_requests` requests and/or `max_tokens` tokens per `seconds`."""

    seconds: int
    max_requests: int | None = None
    max_tokens: int | None = None

    def start(self, now: float) -> int:
        """Fixed windows aligned to the epoch, so every container agrees on the bucket."""
        return int(now) - int(now) % self.seconds

    def expires_at(self, start: int) -> int:
        """A window's count is kept one whole window past its end (plus a minute for late
        reconciles): the next window's sliding estimate reads it (`rate_limits.carried_over`)."""
        return start + 2 * self.seconds + 60


# One BatchGetItem reads at most 100 items. A model's state takes its current and previous
# window items, a header snapshot, a cooldown and a model breaker; each provider adds a breaker.
LOAD_ITEM_BUDGET = 100
PROVIDER_ITEMS_RESERVE = 8


def items_per_model(limits: tuple[WindowLimit, ...]) -> int:
    return 2 * len(limits) + 3


@dataclass(frozen=True, slots=True)
class WindowUsage:
    limit: WindowLimit
    start: int
    requests: int = 0
    tokens: int = 0

    def remaining_requests(self) -> int | None:
        return None if self.limit.max_requests is None else max(0, self.limit.max_requests - self.requests)

    def remaining_tokens(self) -> int | None:
        return None if self.limit.max_tokens is None else max(0, self.limit.max_tokens - self.tokens)


@dataclass(frozen=True, slots=True)
class Cooldown:
    until: float
    reason: str


@dataclass(frozen=True, slots=True)
class HeaderSnapshot:
    info: RateLimitInfo
    observed_at: float


@dataclass(frozen=True, slots=True)
class ModelState:
    """Everything known about one candidate model at `load` time."""

    key: ModelKey
    windows: tuple[WindowUsage, ...] = ()
    cooldown: Cooldown | None = None
    headers: HeaderSnapshot | None = None
    previous: tuple[WindowUsage, ...] = ()  # the window before each current one (sliding estimate)

    def cooling(self, now: float) -> bool:
        return self.cooldown is not None and self.cooldown.until > now


@dataclass(frozen=True, slots=True)
class StateSnapshot:
    """The result of one `load`: model states plus the raw breaker records found in the same read."""

    models: Mapping[ModelKey, ModelState]
    breakers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    degraded: bool = False  # True when the shared store failed and in-container state answered


@dataclass(frozen=True, slots=True)
class Reservation:
    """Capacity held for one attempt; `reconcile` replaces the estimate with actual usage."""

    key: ModelKey
    limits: tuple[WindowLimit, ...]
    starts: tuple[int, ...]
    tokens: int


class StateStore(Protocol):
    def load(
        self, limits: Mapping[ModelKey, Sequence[WindowLimit]], now: float, breaker_ids: Sequence[str] = ()
    ) -> StateSnapshot:
        """One round trip (BatchGetItem) for every candidate's windows, cooldown, headers and breakers."""
        ...

    def reserve(
        self, key: ModelKey, limits: Sequence[WindowLimit], tokens: int, now: float
    ) -> Reservation | None:
        """Atomically take one request and `tokens` in every window, or nothing (None) if any would overflow."""
        ...

    def reconcile(self, reservation: Reservation, actual_tokens: int, now: float) -> None:
        """Correct the token count of a reservation once the provider reported real usage."""
        ...

    def cool_down(self, key: ModelKey, until: float, reason: str, now: float) -> None:
        """Leave a model alone until `until`; a later, longer cooldown extends it, never shortens it."""
        ...

    def record_headers(self, key: ModelKey, info: RateLimitInfo, now: float) -> None:
        """Keep the provider's own remaining/reset figures for the selector."""
        ...
