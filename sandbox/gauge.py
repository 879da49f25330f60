"""A thread-safe count of things in progress that remembers its peak.

The local server keeps two: requests open on its HTTP front, and handler invocations executing
in containers. The load test reads both peaks to prove how many requests really overlapped.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Gauge:
    def __init__(self) -> None:
        self._lock = threading.Condition()
        self.current = 0
        self.peak = 0
        self.total = 0

    @contextmanager
    def track(self) -> Iterator[None]:
        self.enter()
        try:
            yield
        finally:
            self.leave()

    def enter(self) -> None:
        """One more in progress (`leave` when it ends; `track` does both around a block)."""
        with self._lock:
            self.current += 1
            self.total += 1
            self.peak = max(self.peak, self.current)

    def leave(self) -> None:
        with self._lock:
            self.current -= 1
            self._lock.notify_all()

    def wait_idle(self, timeout_s: float) -> bool:
        """Block until nothing is in progress; False if `timeout_s` passed first."""
        with self._lock:
            return self._lock.wait_for(lambda: self.current == 0, timeout_s)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {"current": self.current, "peak": self.peak, "total": self.total}
