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

REQUESTS = "requests"
TOKENS = "tokens"
AUDIO_SECONDS = "audio_seconds"
UNITS = (REQUESTS, TOKENS, AUDIO_SECONDS)
MONTH = 0  # `Period.seconds` of a calendar month
Amounts = Mapping[str, int]


@dataclass(frozen=True, slots=True)
class Period:
    """A window length in seconds, or a UTC calendar month (`seconds == MONTH`)."""

    seconds: int

    @property
    def name(self) -> str:
        return "month" if self.seconds == MONTH else str(self.seconds)

    @property
    def sliding(self) -> bool:
        return self.seconds != MONTH

    def start(self, now: float) -> int:
        if self.seconds == MONTH:
            moment = time.gmtime(now)
            return calendar.timegm((moment.tm_year, moment.tm_mon, 1, 0, 0, 0))
        return int(now) - int(now) % self.seconds

    def end(self, start: int) -> int:
        if self.seconds == MONTH:
            moment = time.gmtime(start)
            days = calendar.monthrange(moment.tm_year, moment.tm_mon)[1]
            return start + days * 86_400
        return start + self.seconds

    def previous_start(self, now: float) -> int:
        start = self.start(now)
        return self.start(start - 1) if self.seconds == MONTH else start - self.seconds

    def expires_at(self, start: int) -> int:
        """A window's count is kept one whole window past its end (plus a minute for late
        reconciles): the next window's sliding estimate reads it."""
        end = self.end(start)
        return end + (end - start) + 60


SECOND, MINUTE, HOUR, DAY = Period(1), Period(60), Period(3600), Period(86_400)
CALENDAR_MONTH = Period(MONTH)


@dataclass(frozen=True, slots=True)
class WindowLimit:
    """At most `maxima[unit]` of each unit per `period`. One item holds all units of a window,
    so one condition guards them together."""

    period: Period
    maxima: Mapping[str, int]

    def max_of(self, unit: str) -> int | None:
        return self.maxima.get(unit)

    def __hash__(self) -> int:
        return hash((self.period, tuple(sorted(self.maxima.items()))))

    @classmethod
    def of(cls, seconds: int, **maxima: int | None) -> WindowLimit:
        """`WindowLimit.of(60, requests=30, tokens=6000)`; None values are dropped."""
        return cls(Period(seconds), {unit: n for unit, n in maxima.items() if n is not None})


@dataclass(frozen=True, slots=True)
class Meter:
    """A limit counted on `counter` (the item key's owner part: `provider#model`, `provider#*`)."""

    counter: str
    limit: WindowLimit

    def pk(self, start: int) -> str:
        return f"rl#{self.counter}#{self.limit.period.name}#{start}"


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
                decay = period.seconds * max(0.0, 1 - (ceiling - ask) / used) if period.sliding and used else 0.0
                at = max(at, closes + decay)
            elif room < carried:
                elapsed = (now - self.start) / period.seconds
                previous = carried / max(1e-9, 1.0 - elapsed)  # the previous window's count
                at = max(at, min(closes, self.start + period.seconds * (1 - room / previous)))
        return at


def usage_of(meter: Meter, counters: Mapping[str, Amounts], now: float) -> WindowUsage:
    """The meter's window at `now` from the loaded counters (current and previous item)."""
    period = meter.limit.period
    start = period.start(now)
    used = counters.get(meter.pk(start), {})
    carried: dict[str, int] = {}
    if period.sliding:
        before = counters.get(meter.pk(period.previous_start(now)))
        if before:
            overlap = 1.0 - (now - start) / period.seconds
            carried = {unit: math.ceil(n * overlap) for unit, n in before.items() if n > 0}
    return WindowUsage(meter, start, used, carried)


def counter_pks(meter: Meter, now: float) -> tuple[str, str]:
    """The items a load must read for a meter: its current and previous window."""
    period = meter.limit.period
    return meter.pk(period.start(now)), meter.pk(period.previous_start(now))


def scale_limit(limit: WindowLimit, fraction: float) -> WindowLimit:
    """Conservative limits for degraded mode (other containers share the real ones unseen)."""
    return WindowLimit(limit.period, {u: (max(1, int(n * fraction)) if n > 0 else 0) for u, n in limit.maxima.items()})
