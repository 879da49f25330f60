"""One value kept for a few seconds: the status answer, which costs a state-table read per call.

An operator's dashboard polling `/v1/status` every second from several tabs would otherwise read
the table (and every breaker item) that often; a few seconds of staleness is invisible next to
cooldowns measured in tens of seconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class TtlValue(Generic[T]):
    """`get(compute)` returns the value computed less than `ttl_s` ago, or computes a new one."""

    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.clock = clock
        self._value: tuple[float, T] | None = None
        self._lock = threading.Lock()

    def get(self, compute: Callable[[], T]) -> T:
        with self._lock:
            if self._value is not None and self.clock() - self._value[0] < self.ttl_s:
                return self._value[1]
            value = compute()
            self._value = (self.clock(), value)
            return value
