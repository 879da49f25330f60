"""Mutable per-provider state of a fake: injected faults, request statistics, rate-limit windows.

Every class here is thread-safe (one lock each) because the HTTP server handles requests on
many threads. Randomness (fault `rate`) comes from a seeded `random.Random`, so a test that
sends the same requests in the same order sees the same faults.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

FAULT_KINDS = ("429", "500", "503", "401", "timeout", "reset", "malformed", "cut_stream")


@dataclass
class Fault:
    fault: str
    rate: float = 1.0
    model: str | None = None
    count: int | None = None
    after_chunks: int = 1
    retry_after: float | None = None
    hang_seconds: float = 30.0
    fired: int = 0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fault:
        kind = str(data.get("fault", ""))
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; expected one of {', '.join(FAULT_KINDS)}")
        rate = float(data.get("rate", 1.0))
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be between 0.0 and 1.0")
        count = data.get("count")
        return cls(
            fault=kind,
            rate=rate,
            model=data.get("model"),
            count=None if count is None else int(count),
            after_chunks=int(data.get("after_chunks", 1)),
            retry_after=None if data.get("retry_after") is None else float(data["retry_after"]),
            hang_seconds=float(data.get("hang_seconds", 30.0)),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class FaultBook:
    """Active faults; `pick` decides (deterministically for a given seed) which one fires."""

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._rng = random.Random(seed)

    def add(self, data: dict[str, Any]) -> Fault:
        fault = Fault.from_dict(data)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self._rng = random.Random(self._seed)

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.to_dict() for f in self._faults]

    def pick(self, model: str | None) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.model is not None and fault.model != model:
                    continue
                if fault.count is not None and fault.fired >= fault.count:
                    continue
                if fault.rate < 1.0 and self._rng.random() >= fault.rate:
                    continue
                fault.fired += 1
                return fault
        return None


class Stats:
    """Counters behind GET /_sandbox/stats."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        self._data: dict[str, Any] = {
            "received": 0, "served": 0, "rejected": 0,
            "by_status": {}, "by_model": {}, "faults_fired": {},
        }  # fmt: skip

    def _model(self, model: str | None) -> dict[str, int] | None:
        if not model:
            return None
        return self._data["by_model"].setdefault(model, {"received": 0, "served": 0, "rejected": 0})

    def received(self, model: str | None) -> None:
        with self._lock:
            self._data["received"] += 1
            entry = self._model(model)
            if entry is not None:
                entry["received"] += 1

    def responded(self, model: str | None, status: int) -> None:
        key = "served" if status < 400 else "rejected"
        with self._lock:
            self._data[key] += 1
            by_status = self._data["by_status"]
            by_status[str(status)] = by_status.get(str(status), 0) + 1
            entry = self._model(model)
            if entry is not None:
                entry[key] += 1

    def fault(self, kind: str) -> None:
        with self._lock:
            fired = self._data["faults_fired"]
            fired[kind] = fired.get(kind, 0) + 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            data = self._data
            return {
                "received": data["received"],
                "served": data["served"],
                "rejected": data["rejected"],
                "by_status": dict(data["by_status"]),
                "by_model": {m: dict(v) for m, v in data["by_model"].items()},
                "faults_fired": dict(data["faults_fired"]),
            }


@dataclass
class Window:
    """A fixed window that opens at its first use and lasts `length` seconds."""

    limit: int
    length: float
    used: int = 0
    start: float = 0.0

    def roll(self, now: float) -> None:
        if now - self.start >= self.length:
            self.start, self.used = now, 0

    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    def reset_in(self, now: float) -> float:
        """Seconds until the window is back to full (0 when nothing is used)."""
        return 0.0 if self.used == 0 else max(0.0, self.start + self.length - now)


@dataclass
class LimitSnapshot:
    """Rate-limit state after (or instead of) one request, for the wire's headers."""

    rpm: tuple[int, int, float]  # limit, remaining, reset seconds
    tpm: tuple[int, int, float]
    rpd: tuple[int, int, float] | None
    cost: int = 0
    exceeded: str | None = None  # "requests" | "tokens" | "requests_day"
    requested: int = 0
    used: int = 0
    limit: int = 0
    retry_after: float = 0.0


@dataclass
class _ModelWindows:
    rpm: Window
    tpm: Window
    rpd: Window | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class RateLimiter:
    """Per-model request and token counters for the configured rpm/tpm (and optional rpd)."""

    def __init__(self, limits: dict[str, dict[str, int]], clock: Any = time.monotonic) -> None:
        self._limits = limits
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[str, _ModelWindows] = {}

    def clear(self) -> None:
        with self._lock:
            self._windows.clear()

    def _for(self, model: str) -> _ModelWindows:
        if model not in self._windows:
            conf = {**self._limits.get("default", {}), **self._limits.get(model, {})}
            rpd = conf.get("rpd")
            self._windows[model] = _ModelWindows(
                rpm=Window(int(conf.get("rpm", 1000)), 60.0),
                tpm=Window(int(conf.get("tpm", 1_000_000)), 60.0),
                rpd=Window(int(rpd), 86_400.0) if rpd else None,
            )
        return self._windows[model]

    def admit(self, model: str, prompt_tokens: int) -> LimitSnapshot:
        """Count one request and its prompt tokens, or report which limit it would exceed."""
        with self._lock:
            now = self._clock()
            win = self._for(model)
            windows = [w for w in (win.rpm, win.tpm, win.rpd) if w is not None]
            for w in windows:
                w.roll(now)
            exceeded = self._exceeded(win, prompt_tokens, now)
            if exceeded is None:
                for w in (win.rpm, win.rpd):
                    if w is not None:
                        w.used += 1
                win.tpm.used += prompt_tokens
            return self._snapshot(win, now, exceeded, prompt_tokens)

    def _exceeded(self, win: _ModelWindows, tokens: int, now: float) -> LimitSnapshot | None:
        checks = [("requests", win.rpm, 1), ("tokens", win.tpm, tokens)]
        if win.rpd is not None:
            checks.append(("requests_day", win.rpd, 1))
        for kind, w, need in checks:
            if w.used + need > w.limit:
                wait = max(0.001, w.start + w.length - now)
                return LimitSnapshot((0, 0, 0), (0, 0, 0), None, 0, kind, need, w.used, w.limit, wait)
        return None

    def add_tokens(self, model: str, tokens: int) -> LimitSnapshot:
        with self._lock:
            now = self._clock()
            win = self._for(model)
            win.tpm.roll(now)
            win.tpm.used += tokens
            return self._snapshot(win, now, None, tokens)

    def peek(self, model: str) -> LimitSnapshot:
        with self._lock:
            now = self._clock()
            return self._snapshot(self._for(model), now, None, 0)

    @staticmethod
    def _snapshot(win: _ModelWindows, now: float, exceeded: LimitSnapshot | None, cost: int) -> LimitSnapshot:
        def triple(w: Window) -> tuple[int, int, float]:
            return (w.limit, w.remaining(), w.reset_in(now))

        snap = LimitSnapshot(triple(win.rpm), triple(win.tpm), triple(win.rpd) if win.rpd else None, cost)
        if exceeded is not None:
            snap.exceeded, snap.requested = exceeded.exceeded, exceeded.requested
            snap.used, snap.limit, snap.retry_after = exceeded.used, exceeded.limit, exceeded.retry_after
        return snap
