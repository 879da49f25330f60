"""Whole lines on stdout from many threads: what a container host's handlers print.

In Lambda one request runs per process, so Powertools' `print()` of an EMF metric line never
meets another. A container host runs many containers as threads, and `print` writes the text and
its newline in two calls, so two metric lines could come out as `{...}{...}` and an empty line.
Each thread's text is held until its newline, then written whole under one lock.
"""

from __future__ import annotations

import io
import threading
from typing import TextIO


class LineAtomicWriter(io.TextIOBase):
    def __init__(self, target: TextIO) -> None:
        self._target = target
        self._lock = threading.Lock()
        self._pending = threading.local()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        pending = getattr(self._pending, "text", "") + text
        head, newline, tail = pending.rpartition("\n")
        self._pending.text = tail
        if newline:
            with self._lock:
                self._target.write(head + newline)
                self._target.flush()
        return len(text)

    def flush(self) -> None:
        pending = getattr(self._pending, "text", "")
        if pending:
            self._pending.text = ""
            with self._lock:
                self._target.write(pending)
        self._target.flush()

    def fileno(self) -> int:
        return self._target.fileno()
