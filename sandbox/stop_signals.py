"""Ctrl-C and SIGTERM for the foreground commands (`llm-gateway serve`, `llm-gateway fakes`).

The handler only counts: it takes no lock. A Python signal handler runs in the main thread between
two bytecodes, wherever that thread is, so a handler calling `threading.Event.set` while the main
thread was inside `Event.wait` holding the event's lock waited for that lock forever (a command
that hung on Ctrl-C, and on every Ctrl-C after it). The main thread polls the count instead,
sleeping in short slices; `time.sleep` lets the handler run at once.
"""

from __future__ import annotations

import signal
import time
from types import FrameType


class StopSignals:
    """Counts SIGINT and SIGTERM once installed, and does nothing else: a command that stops at
    a second one polls `count` (a handler that raised, wherever the main thread happened to be,
    printed tracebacks and cut cleanups short)."""

    def __init__(self) -> None:
        self.count = 0

    def install(self) -> StopSignals:
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        return self

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1

    def wait(self, timeout_s: float) -> bool:
        """True as soon as a stop signal has come, else False after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while not self.count:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(left, 0.1))
        return True
