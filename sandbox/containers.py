"""Lambda "containers" on this machine: independently imported copies of a handler module.

Like Lambda containers, each copy serves one request at a time and keeps its own in-container
state (HTTP pool, caches, breaker counters), while all of them share the state store. A copy is
created on first need (a cold start) and reused afterwards.
"""

from __future__ import annotations

import queue
import threading
from types import ModuleType
from typing import Any

from sandbox.apigw import LocalContext, load_handler_module
from sandbox.gauge import Gauge


class ContainerPool:
    """At most `size` copies of `functions/<function>/app.py`, each serving one event at a time."""

    def __init__(self, function: str, size: int, prefix: str = "", executing: Gauge | None = None) -> None:
        self.function = function
        self.size = size
        self.executing = executing or Gauge()
        self._prefix = prefix
        self._idle: queue.LifoQueue[ModuleType] = queue.LifoQueue()
        self._slots = threading.Semaphore(size)
        self._created = 0
        self._lock = threading.Lock()

    @property
    def created(self) -> int:
        return self._created

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        with self._slots, self.executing.track():
            module = self._take()
            try:
                return module.lambda_handler(event, LocalContext(function_name=self.function))
            finally:
                self._idle.put(module)

    def prewarm(self, count: int = 1) -> None:
        """Cold-start `count` copies now, so that a broken handler fails at startup, not on a request."""
        for _ in range(min(count, self.size) - self._created):
            self._idle.put(self._new())

    def _take(self) -> ModuleType:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            return self._new()

    def _new(self) -> ModuleType:
        with self._lock:
            self._created += 1
            instance = f"{self._prefix}{self._created}"
        return load_handler_module(self.function, instance)
