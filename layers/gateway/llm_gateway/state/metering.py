"""Limits in units (requests, tokens, audio seconds, …) over windows, counted on shared counters.

A *limit* says "at most N of a unit per window"; a *meter* says on whose counter it is counted:
one model (`groq/llama-3.1-8b-instant`), a whole provider organisation (Mistral's free tier
allows 1 request per second across all models), or, later, a user. Provider limits, user limits
and budgets are the same mechanism: a conditional add on a counter item per window.

Windows are fixed and epoch-aligned (every container agrees on the bucket) for lengths in
seconds, or calendar months in UTC (Cohere's trial key: 1,000 calls a month). Providers enforce
sliding windows or token buckets, so for second-based windows the previous window's usage is
carried into the current one by its remaining overlap (the two-bucket estimate); a calendar
month resets at its boundary, as the provider's does, and carries nothing.

Pure: no I/O, no clock; `now` is always passed in.
"""

from __future__ import annotations

import calendar
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

REQUESTS = "requests"
TOKENS = "tokens"
AUDIO_SECONDS = "audio_seconds"
USD_MICROS = "usd_micros"  # budgets: a call's cost in millionths of a dollar (0 on a free tier)
UNITS = (REQUESTS, TOKENS, AUDIO_SECONDS, USD_MICROS)
MONTH = 0  # `Period.seconds` of a calendar month
# A stamp is taken when the reservation is written, a little before the provider counts the
# request: its window is taken to end this fraction of a length later than stamp + length.
STAMP_SLACK = 0.05
Amounts = Mapping[str, int]


def usd_micros(usd: float) -> int:
    """A cost in whole micro-dollars (`USD_MICROS`), rounded up: a budget never under-counts."""
    return max(0, math.ceil(usd * 1_000_000 - 1e-6))


@dataclass(frozen=True, slots=True)
class Period:
    """A window length in seconds, or a UTC calendar month (`seconds == MONTH`).

    `fixed`: the window resets at its boundary and carries nothing into the next one (a user's
    per-day limits and budgets reset at UTC midnight, as a calendar month resets at its end);
    otherwise the previous window is carried over by its overlap (providers' sliding windows)."""

    seconds: int
    fixed: bool = False

    @property
    def name(self) -> str:
        if self.seconds == MONTH:
            return "month"
        return ("day" if self.seconds == 86_400 else f"{self.seconds}f") if self.fixed else str(self.seconds)

    @property
    def sliding(self) -> bool:
        return self.seconds != MONTH and not self.fixed

    def start(self, now: float) -> int:
        if self.seconds == MONTH:
            return _month_start(int(now) // 86_400)
        return int(now) - int(now) % self.seconds

    def end(self, start: int) -> int:
        if self.seconds == MONTH:
            return _month_end(start)
        return start + self.seconds

    def previous_start(self, now: float) -> int:
        start = self.start(now)
        return self.start(start - 1) if self.seconds == MONTH else start - self.seconds

    def expires_at(self, start: int) -> int:
        """A window's count is kept one whole window past its end (plus a minute for late
        reconciles): the next window's sliding estimate reads it."""
        end = self.end(start)
        return end + (end - start) + 60


@lru_cache(maxsize=64)
def _month_start(day: int) -> int:
    """Start of the UTC calendar month holding epoch day `day` (a month starts at a midnight,
    so every instant of a day has the same month). Cached: it runs per metered model and request."""
    moment = time.gmtime(day * 86_400)
    return calendar.timegm((moment.tm_year, moment.tm_mon, 1, 0, 0, 0))


@lru_cache(maxsize=64)
def _month_end(start: int) -> int:
    moment = time.gmtime(start)
    return start + calendar.monthrange(moment.tm_year, moment.tm_mon)[1] * 86_400


SECOND, MINUTE, HOUR, DAY = Period(1), Period(60), Period(3600), Period(86_400)
CALENDAR_MONTH = Period(MONTH)
CALENDAR_DAY = Period(86_400, fixed=True)  # a UTC day: resets at midnight, carries nothing


@dataclass(frozen=True, slots=True)
class WindowLimit:
    """At most `maxima[unit]` of each unit per `period`. One item holds all units of a window,
    so one condition guards them together."""

    period: Period
    maxima: Mapping[str, int]
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Meters are hashed on every request (de-duplicated per state read): sort once, not per hash.
        object.__setattr__(self, "_hash", hash((self.period, tuple(sorted(self.maxima.items())))))

    def max_of(self, unit: str) -> int | None:
        return self.maxima.get(unit)

    def __hash__(self) -> int:
        return self._hash

    @classmethod
    def of(cls, seconds: int, **maxima: int | None) -> WindowLimit:
        """`WindowLimit.of(60, requests=30, tokens=6000)`; None values are dropped."""
        return cls(Period(seconds), {unit: n for unit, n in maxima.items() if n is not None})


PROVIDER_SCOPE = "provider"  # a provider's limit: when it binds, the request waits or fails over
CALLER_SCOPE = "caller"  # the caller's own limit or budget: when it binds, the caller is told so


@dataclass(frozen=True, slots=True)
class Meter:
    """A limit counted on `counter` (the item key's owner part: `provider#model`, `provider#*`,
    `user#{id}`). `scope` says whose limit it is (`PROVIDER_SCOPE` or `CALLER_SCOPE`): the same
    conditional write enforces both, but a refusal is answered differently."""

    counter: str
    limit: WindowLimit
    scope: str = PROVIDER_SCOPE
    _prefix: str = field(init=False, repr=False, compare=False)  # "rl#{counter}#{period}#", built once
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_prefix", f"rl#{self.counter}#{self.limit.period.name}#")
        object.__setattr__(self, "_hash", hash((self.counter, self.limit, self.scope)))

    def __hash__(self) -> int:  # meters are de-duplicated per request: hash once, not per lookup
        return self._hash

    def pk(self, start: int) -> str:
        return f"{self._prefix}{start}"


def model_counter(provider: str, model: str) -> str:
    return f"{provider}#{model}"


def provider_counter(provider: str) -> str:
    return f"{provider}#*"


@dataclass(frozen=True, slots=True)
class WindowUsage:
    """What a meter's current window has counted, plus the previous window's carry-over."""

    meter: Meter
    start: int
    used: Amounts = field(default_factory=dict)
    carried: Amounts = field(default_factory=dict)
    carried_until: float | None = None  # the previous window's last request + one length: no carry after
    last_at: float | None = None  # this window's latest reservation, when the store stamped it

    def remaining(self, unit: str) -> int | None:
        """What the window can still take now (its own room less the carry-over)."""
        ceiling = self.meter.limit.max_of(unit)
        if ceiling is None:
            return None
        return max(0, ceiling - self.used.get(unit, 0) - self.carried.get(unit, 0))

    def ceilings(self) -> dict[str, int]:
        """The conditional write's ceilings: each maximum less the carry-over (the sliding
        estimate is enforced by the write itself, with no extra read)."""
        return {unit: max(0, n - self.carried.get(unit, 0)) for unit, n in self.meter.limit.maxima.items()}

    def fits(self, amounts: Amounts) -> str | None:
        """Why `amounts` does not fit now (None = it fits)."""
        limit = self.meter.limit
        for unit, ask in amounts.items():
            ceiling = limit.max_of(unit)
            if ceiling is None or ask <= 0:
                continue
            if ask > ceiling:
                return f"needs {ask} {unit} > {ceiling} per {limit.period.name}s window"
            left = self.remaining(unit)
            if left is not None and left < ask:
                return f"{left} of {ceiling} {unit} per {limit.period.name}s left on {self.meter.counter}, needs {ask}"
        return None

    def short_of(self, amounts: Amounts) -> str | None:
        """The first unit `amounts` does not fit in now (None = it fits)."""
        for unit, ask in amounts.items():
            left = self.remaining(unit)
            if ask > 0 and left is not None and left < ask:
                return unit
        return None

    def free_again_at(self, amounts: Amounts, now: float) -> float | None:
        """When this window takes `amounts` (None: never, the ask is above the limit itself).

        A window whose own count is full frees after it closes, when its own carry into the next
        window has decayed enough (a calendar month carries nothing: at its close); one held back
        only by the previous window's carry-over frees as that carry decays, linearly.
        """
        period = self.meter.limit.period
        closes = float(period.end(self.start))
        at = now
        for unit, ask in amounts.items():
            ceiling = self.meter.limit.max_of(unit)
            if ceiling is None or ask <= 0:
                continue
            if ask > ceiling:
                return None
            room = ceiling - self.used.get(unit, 0) - ask
            carried = self.carried.get(unit, 0)
            if room < 0:  # full on its own count: it frees after it closes, once its carry into
                # the next window has decayed to what that window can take
                used = self.used.get(unit, 0)
                if period.sliding and self.last_at is not None:
                    at = max(at, closes, self.last_at + period.seconds * (1 + STAMP_SLACK))  # all gone by then
                else:
                    decay = period.seconds * max(0.0, 1 - (ceiling - ask) / used) if period.sliding and used else 0.0
                    at = max(at, closes + decay)
            elif room < carried:
                elapsed = (now - self.start) / period.seconds
                previous = carried / max(1e-9, 1.0 - elapsed)  # the previous window's count
                decayed = self.start + period.seconds * (1 - room / previous)
                if self.carried_until is not None:
                    decayed = min(decayed, self.carried_until)
                at = max(at, min(closes, decayed))
        return at


def usage_of(meter: Meter, counters: Mapping[str, Amounts], now: float,
             stamps: Mapping[str, float] | None = None) -> WindowUsage:
    """The meter's window at `now` from the loaded counters (current and previous item).

    `stamps` holds each window item's latest reservation time. Every request of the previous
    window happened at or before its stamp, so once `now` is one window length past it nothing of
    that window is left in the provider's sliding window: the estimate stops carrying it. Without
    this a 1 request/s limit would admit one request every two seconds, since the estimate
    rounds a lone previous request up to a whole one for the entire next window.
    """
    period = meter.limit.period
    start = period.start(now)
    prefix = meter._prefix
    used = counters.get(f"{prefix}{start}", {})
    carried: dict[str, int] = {}
    carried_until: float | None = None
    if period.sliding:  # the previous window carries over (its start, inlined)
        previous_pk = f"{prefix}{start - period.seconds}"
        before = counters.get(previous_pk)
        stamp = stamps.get(previous_pk) if stamps else None
        if stamp is not None:
            carried_until = stamp + period.seconds * (1 + STAMP_SLACK)
        if before and (carried_until is None or now < carried_until):
            overlap = 1.0 - (now - start) / period.seconds
            carried = {unit: math.ceil(n * overlap) for unit, n in before.items() if n > 0}
    last_at = stamps.get(f"{prefix}{start}") if stamps else None
    return WindowUsage(meter, start, used, carried, carried_until, last_at)


def counter_pks(meter: Meter, now: float) -> tuple[str, ...]:
    """The items a load must read for a meter: its current window, and the previous one when
    it carries over."""
    period = meter.limit.period
    start = period.start(now)
    previous = start - period.seconds if period.seconds != MONTH else period.start(start - 1)
    if period.fixed:  # nothing carries over: the previous window is never read
        return (f"{meter._prefix}{start}",)
    return f"{meter._prefix}{start}", f"{meter._prefix}{previous}"


def share_of(amount: int, fraction: float) -> int:
    """One container's share of a limit while it cannot see the others (degraded mode), rounded
    down: N containers with a share of 1/N each never admit more than the limit together, and a
    limit too small to share (1 request/s across 20 containers) is not used at all until the
    shared table answers again."""
    return max(0, int(amount * fraction))


def scale_limit(limit: WindowLimit, fraction: float) -> WindowLimit:
    """A container's share of every maximum of a limit (see `share_of`)."""
    return WindowLimit(limit.period, {u: share_of(n, fraction) for u, n in limit.maxima.items()})
