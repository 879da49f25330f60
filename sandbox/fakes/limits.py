"""Rate limits of one fake provider, counted the way the real providers count them.

Real providers free capacity continuously: a request made 59 s ago frees its slot of a
per-minute limit one second from now (OpenAI's `x-ratelimit-reset-*` is "time until the limit
is back to full", not the next minute boundary). Epoch-aligned windows would let a client send
twice the limit across a boundary and would reset everything at once, which no real provider
does. So every per-second, per-minute and per-day limit here is an exact sliding window: what
was used in the last N seconds. Monthly limits are calendar months (UTC), as Cohere's trial key
counts its 1,000 calls a month: they reset on the 1st.

Limits have a scope. Per model: `limits` maps `default` and model ids to dimensions. Whole
provider (organisation): `org_limits`, e.g. Mistral's free tier, 1 request per second for all
models together. A request must fit every limit of its model and of the organisation.

Dimensions: rps, rpm, rpd, rpmonth (requests per second/minute/day/calendar month), tpm, tpd,
tpmonth (tokens) and ash, asd (seconds of audio per hour/day, Groq's transcription limits). A
request is admitted if it fits (1 request, its prompt tokens, its billed audio seconds); its
completion tokens are charged afterwards, so token windows may run over their limit, as OpenAI's
"Used" counts do.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

MODEL, ORG = "model", "org"
DEFAULT_LIMITS = {"rpm": 1000, "tpm": 2_000_000}  # what `limits.default` is when a config has none
_MODEL_FALLBACK = {"rpm": 1000, "tpm": 1_000_000}  # every model has a minute window for its headers


@dataclass(frozen=True)
class Dimension:
    key: str  # the config key, e.g. "rpm"
    unit: str  # "requests" | "tokens" | "seconds" (of audio)
    period: str  # "second" | "minute" | "hour" | "day" | "month"
    seconds: float  # sliding-window length; 0 for calendar months


DIMENSIONS: dict[str, Dimension] = {d.key: d for d in (
    Dimension("rps", "requests", "second", 1.0), Dimension("rpm", "requests", "minute", 60.0),
    Dimension("rpd", "requests", "day", 86_400.0), Dimension("rpmonth", "requests", "month", 0.0),
    Dimension("tpm", "tokens", "minute", 60.0), Dimension("tpd", "tokens", "day", 86_400.0),
    Dimension("tpmonth", "tokens", "month", 0.0),
    Dimension("ash", "seconds", "hour", 3_600.0), Dimension("asd", "seconds", "day", 86_400.0),
)}  # fmt: skip


def _amount(key: str, requests: int, tokens: int, seconds: int) -> int:
    unit = DIMENSIONS[key].unit
    return requests if unit == "requests" else tokens if unit == "tokens" else seconds


def parse_dimensions(raw: Any, where: str) -> dict[str, int]:
    """`{rpm: 30, tpm: 6000}` checked against the known dimensions (a typo must not mean "no limit")."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: expected a mapping of {', '.join(DIMENSIONS)}")
    out: dict[str, int] = {}
    for key, value in raw.items():
        if key not in DIMENSIONS:
            raise ValueError(f"{where}: unknown limit {key!r}; expected one of {', '.join(DIMENSIONS)}")
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ValueError(f"{where}.{key}: expected a number >= 0, got {value!r}")
        out[str(key)] = int(value)
    return out


def parse_model_limits(raw: Any, where: str = "limits") -> dict[str, dict[str, int]]:
    """`limits:` → {"default" | model id: dimensions}; `default` is DEFAULT_LIMITS when not given."""
    if raw is not None and not isinstance(raw, Mapping):
        raise ValueError(f"{where}: expected a mapping of `default` and model ids to limits")
    out = {str(k): parse_dimensions(v, f"{where}.{k}") for k, v in (raw or {}).items()}
    out.setdefault("default", dict(DEFAULT_LIMITS))
    return out


class Window(Protocol):
    limit: int
    used: int

    def fits_in(self, amount: int, now: float) -> float:
        """Seconds until `amount` more fits (0.0: it fits now)."""

    def add(self, amount: int, now: float) -> None: ...

    def remaining(self, now: float) -> int: ...

    def reset_in(self, now: float) -> float:
        """Seconds until the window is back to full (0.0 when nothing is used)."""


class SlidingWindow:
    """Exactly what was used in the last `seconds`: a log of (time, amount), oldest first."""

    def __init__(self, limit: int, seconds: float) -> None:
        self.limit, self.seconds, self.used = limit, seconds, 0
        self._log: deque[tuple[float, int]] = deque()

    def _expire(self, now: float) -> None:
        while self._log and self._log[0][0] <= now - self.seconds:
            self.used -= self._log.popleft()[1]

    def fits_in(self, amount: int, now: float) -> float:
        self._expire(now)
        excess = self.used + amount - self.limit
        if excess <= 0:
            return 0.0
        if amount > self.limit:  # can never fit: answer with the longest wait there is
            return self.seconds
        freed = 0
        for at, spent in self._log:
            freed += spent
            if freed >= excess:
                return max(0.001, at + self.seconds - now)
        return self.seconds

    def add(self, amount: int, now: float) -> None:
        self._expire(now)
        if amount > 0:
            self._log.append((now, amount))
            self.used += amount

    def remaining(self, now: float) -> int:
        self._expire(now)
        return max(0, self.limit - self.used)

    def reset_in(self, now: float) -> float:
        self._expire(now)
        return max(0.0, self._log[-1][0] + self.seconds - now) if self._log else 0.0


class CalendarMonth:
    """Usage in the current calendar month (UTC); everything frees at 00:00 on the 1st."""

    def __init__(self, limit: int) -> None:
        self.limit, self.used = limit, 0
        self._month: tuple[int, int] | None = None
        # [start, end) of the month last seen, as timestamps: a time inside it is that month
        # without a datetime made of it (every call on the window asks, several a request). A
        # microsecond from either end, `datetime.fromtimestamp` is asked: it rounds to microseconds.
        self._start, self._end = 0.0, 0.0

    def _roll(self, now: float) -> None:
        if self._start + 1e-6 <= now < self._end - 1e-6:
            return
        day = datetime.fromtimestamp(now, UTC)
        if (day.year, day.month) != self._month:
            self._month, self.used = (day.year, day.month), 0
        self._start = datetime(day.year, day.month, 1, tzinfo=UTC).timestamp()
        self._end = _next_month_start(day)

    def _until_next_month(self, now: float) -> float:
        self._roll(now)
        return self._end - now

    def fits_in(self, amount: int, now: float) -> float:
        self._roll(now)
        return 0.0 if self.used + amount <= self.limit else self._until_next_month(now)

    def add(self, amount: int, now: float) -> None:
        self._roll(now)
        self.used += max(0, amount)

    def remaining(self, now: float) -> int:
        self._roll(now)
        return max(0, self.limit - self.used)

    def reset_in(self, now: float) -> float:
        self._roll(now)
        return self._until_next_month(now) if self.used else 0.0


def _next_month_start(day: datetime) -> float:
    year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
    return datetime(year, month, 1, tzinfo=UTC).timestamp()


def make_window(key: str, limit: int) -> Window:
    dim = DIMENSIONS[key]
    return CalendarMonth(limit) if dim.period == "month" else SlidingWindow(limit, dim.seconds)


@dataclass(frozen=True)
class WindowState:
    """One limit as a response reports it."""

    limit: int
    remaining: int
    reset_s: float  # until back to full


@dataclass(frozen=True)
class Exceeded:
    """The limit a refused request ran into (the one with the longest wait, if several)."""

    dimension: Dimension
    scope: str  # MODEL | ORG
    limit: int
    used: int
    requested: int
    retry_after: float


@dataclass
class LimitSnapshot:
    """Rate-limit state after (or instead of) one request, for the wire's headers and 429 body.
    `windows` has one state per dimension: the scope with the fewest remaining (the binding one)."""

    windows: dict[str, WindowState] = field(default_factory=dict)
    cost: int = 0
    exceeded: Exceeded | None = None

    def get(self, key: str) -> WindowState | None:
        return self.windows.get(key)


class RateLimiter:
    """The model and organisation windows of one fake provider (thread-safe: one lock)."""

    def __init__(
        self, limits: dict[str, dict[str, int]], org_limits: dict[str, int] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:  # fmt: skip
        self._clock = clock
        self._lock = threading.Lock()
        self._startup = (limits, dict(org_limits or {}))
        self.configure(limits, org_limits or {})

    def configure(self, limits: dict[str, dict[str, int]] | None = None, org_limits: dict[str, int] | None = None) -> None:
        """Replace the model limits and/or the organisation limits; counting starts over."""
        with self._lock:
            if limits is not None:
                self._limits = {k: dict(v) for k, v in limits.items()}
            if org_limits is not None:
                self._org_limits = dict(org_limits)
            self._models: dict[str, dict[str, Window]] = {}
            self._org = {key: make_window(key, limit) for key, limit in self._org_limits.items()}

    def reset(self) -> None:
        """Back to the limits the provider started with, nothing used."""
        self.configure(*self._startup)

    def _model(self, model: str) -> dict[str, Window]:
        if model not in self._models:
            conf = {**_MODEL_FALLBACK, **self._limits.get("default", {}), **self._limits.get(model, {})}
            self._models[model] = {key: make_window(key, limit) for key, limit in conf.items()}
        return self._models[model]

    def _scopes(self, model: str) -> list[tuple[str, dict[str, Window]]]:
        return [(MODEL, self._model(model)), (ORG, self._org)]

    def admit(self, model: str, prompt_tokens: int, audio_seconds: int = 0) -> LimitSnapshot:
        """Count one request, its prompt tokens and billed audio seconds, or report the limit it
        runs into."""
        with self._lock:
            now = self._clock()
            worst: Exceeded | None = None
            for scope, windows in self._scopes(model):
                for key, window in windows.items():
                    need = _amount(key, 1, prompt_tokens, audio_seconds)
                    wait = window.fits_in(need, now)
                    if wait > 0 and (worst is None or wait > worst.retry_after):
                        worst = Exceeded(DIMENSIONS[key], scope, window.limit, window.used, need, wait)
            if worst is None:
                self._charge(model, 1, prompt_tokens, now, audio_seconds)
            return self._snapshot(model, now, exceeded=worst)

    def add_tokens(self, model: str, tokens: int) -> LimitSnapshot:
        """Charge completion tokens of an admitted request."""
        with self._lock:
            now = self._clock()
            self._charge(model, 0, tokens, now)
            return self._snapshot(model, now)

    def _charge(self, model: str, requests: int, tokens: int, now: float, seconds: int = 0) -> None:
        for _, windows in self._scopes(model):
            for key, window in windows.items():
                window.add(_amount(key, requests, tokens, seconds), now)

    def peek(self, model: str) -> LimitSnapshot:
        with self._lock:
            return self._snapshot(model, self._clock())

    def exhausted(self, model: str | None, retry_after: float | None) -> LimitSnapshot:
        """What an injected 429 reports: the request limits read as used up until `retry_after`
        (default: until the minute window frees a slot, at least 1 s)."""
        with self._lock:
            now = self._clock()
            snap = self._snapshot(model, now) if model else LimitSnapshot(
                {"rpm": WindowState(1000, 0, 1.0), "tpm": WindowState(10**6, 0, 1.0)})
            rpm = snap.windows["rpm"]
            wait = retry_after if retry_after is not None else max(1.0, rpm.reset_s)
            for key, state in snap.windows.items():
                if DIMENSIONS[key].unit == "requests":
                    snap.windows[key] = WindowState(state.limit, 0, wait)
            snap.exceeded = Exceeded(DIMENSIONS["rpm"], MODEL, rpm.limit, rpm.limit, 1, wait)
            return snap

    def _snapshot(self, model: str | None, now: float, exceeded: Exceeded | None = None) -> LimitSnapshot:
        states: dict[str, WindowState] = {}
        for _, windows in self._scopes(model) if model else [(ORG, self._org)]:
            for key, window in windows.items():
                state = WindowState(window.limit, window.remaining(now), window.reset_in(now))
                if key not in states or state.remaining < states[key].remaining:
                    states[key] = state
        return LimitSnapshot(states, exceeded=exceeded)

    def describe(self) -> dict[str, Any]:
        """Configured limits and current usage, for GET /_sandbox/limits."""
        with self._lock:
            now = self._clock()

            def usage(windows: dict[str, Window]) -> dict[str, dict[str, Any]]:
                return {key: {"limit": w.limit, "used": w.used, "remaining": w.remaining(now),
                              "reset_s": round(w.reset_in(now), 3)} for key, w in windows.items()}  # fmt: skip

            return {
                "limits": {k: dict(v) for k, v in self._limits.items()},
                "org_limits": dict(self._org_limits),
                "usage": {"org": usage(self._org), "models": {m: usage(w) for m, w in self._models.items()}},
            }
