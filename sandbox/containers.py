"""Lambda "containers" on this machine: independently imported copies of a handler module.

Like Lambda containers, each copy serves one request at a time and keeps its own in-container
state (HTTP pool, caches, breaker counters), while all of them share the state store. A copy is
created on first need (a cold start) and reused afterwards.
"""

from __future__ import annotations

import queue
import threading
from abc import ABCMeta
from collections.abc import Callable, Iterable, Iterator
from types import ModuleType
from typing import Any

from llm_gateway.api.live import LiveResponse
from sandbox.apigw import STREAM_TIMEOUT_MS, LocalContext, load_handler_module
from sandbox.gauge import Gauge

_PER_THREAD = threading.local()
_PER_THREAD_NAMES = ("current_event", "lambda_context")


class _ThisThreads:
    """`BaseRouter.<name>` (on the class, through the metaclass, or on an instance), per thread."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        try:
            return getattr(_PER_THREAD, self.name)
        except AttributeError:
            raise AttributeError(self.name) from None

    def __set__(self, obj: Any, value: Any) -> None:
        setattr(_PER_THREAD, self.name, value)


def isolate_events_per_thread() -> None:
    """Make Powertools' event being resolved a per-thread value, so that containers sharing a
    process cannot read each other's (see tests/unit/test_containers_isolated.py).

    Powertools assigns `BaseRouter.current_event` (and `lambda_context`) on the class: one value
    per process, which Lambda, serving one request per process, never shares. Here a host
    process runs its containers as threads, so the class gets a metaclass whose data descriptors
    keep both per thread, and the class itself a descriptor for reads through an instance."""
    from aws_lambda_powertools.event_handler.api_gateway import BaseRouter

    if isinstance(BaseRouter, _PerThreadRouterMeta):
        return
    for name in _PER_THREAD_NAMES:
        if name in vars(BaseRouter):
            setattr(_PER_THREAD, name, vars(BaseRouter)[name])
        setattr(BaseRouter, name, _ThisThreads(name))  # instance reads find this in the class dict
    BaseRouter.__class__ = _PerThreadRouterMeta  # class reads and writes go through the metaclass


class _PerThreadRouterMeta(ABCMeta):
    current_event = _ThisThreads("current_event")
    lambda_context = _ThisThreads("lambda_context")


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

    def invoke_stream(self, event: dict[str, Any]) -> LiveResponse:
        """A streaming invocation (`stream_handler`): the container stays busy until the body has
        been sent or closed, as a Lambda container does while it streams."""
        self._slots.acquire()
        self.executing.enter()
        try:
            module = self._take()
        except BaseException:
            self.executing.leave()
            self._slots.release()
            raise
        try:
            response: LiveResponse = module.stream_handler(
                event, LocalContext(function_name=self.function, timeout_ms=STREAM_TIMEOUT_MS))
        except BaseException:
            self._free(module)
            raise
        response.body = _Releasing(response.body, lambda: self._free(module))
        return response

    def _free(self, module: ModuleType) -> None:
        self._idle.put(module)
        self.executing.leave()
        self._slots.release()

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
        isolate_events_per_thread()  # containers of one process are threads here, not processes
        with self._lock:
            self._created += 1
            instance = f"{self._prefix}{self._created}"
        return load_handler_module(self.function, instance)


class _Releasing:
    """A body that gives its container back once it is exhausted or closed (started or not)."""

    def __init__(self, body: Iterable[bytes], release: Callable[[], None]) -> None:
        self._body = body
        self._chunks = iter(body)
        self._release: Callable[[], None] | None = release

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        try:
            return next(self._chunks)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        release, self._release = self._release, None
        if release is None:
            return
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            release()
