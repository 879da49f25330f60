"""Virtual time for the simulator: a discrete-event loop of greenlets on one fake clock.

Every simulated request runs in its own greenlet. Nothing sleeps: when the gateway's code sleeps
(`Clocks.sleep`: a capacity wait, a retry back-off) or a simulated provider "takes" seconds to
answer, the greenlet parks itself at `now + seconds` and the loop runs whatever is due first
(another request's arrival, another provider's answer). Requests therefore overlap in virtual
time exactly as they would overlap in real time, in a deterministic order: events are ordered by
(time, sequence number), and only one greenlet ever runs at a time.

Powertools' circuit breaker reads the wall clock itself (`datetime.now()`) and names its probe
owner per *thread*, and the engine keeps a call's deadline scope per thread, on the real
monotonic clock (`time.monotonic()` in `providers/engine.py` and `routing/chat.py`);
`powertools_on(clock)` points them at the virtual clock and at the current greenlet for the
duration of a simulation (and puts them back after). Deadline scopes on the real clock made a
call's time budget, hence the virtual moment of a timeout, depend on how fast the simulation ran
(by microseconds, but enough to reorder events and move the figures): no real time reaches the
simulated timeline now.
"""

from __future__ import annotations

import contextlib
import datetime as _real_dt
import heapq
import itertools
import time as _real_time
from collections.abc import Callable, Iterator
from typing import Any

import greenlet

from llm_gateway.compose import Clocks


class VirtualClock:
    """One timeline for monotonic and wall time. `epoch` is the wall time at t=0."""

    def __init__(self, epoch: float, rand: Callable[[], float]) -> None:
        self.epoch = epoch
        self.now = 0.0
        self._rand = rand
        self._queue: list[tuple[float, int, Any, Any]] = []
        self._seq = itertools.count()
        self._hub: greenlet.greenlet | None = None
        self.scope = GreenletScope()

    # --- the clock, as the gateway sees it ------------------------------------------------------
    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return self.epoch + self.now

    def rand(self) -> float:
        return self._rand()

    def sleep(self, seconds: float) -> None:
        """Park the running greenlet until `now + seconds`; the loop runs everything due before."""
        current = greenlet.getcurrent()
        if self._hub is None or current is self._hub:  # outside the loop (set-up): just move time
            self.now += max(0.0, seconds)
            return
        self._push(self.now + max(0.0, seconds), current, None)
        scope, at = self.scope, self.scope.at
        self._hub.switch()
        scope.at = at  # this greenlet's scope back, whatever the others left in it

    def clocks(self) -> Clocks:
        return Clocks(monotonic=self.monotonic, wall=self.wall, sleep=self.sleep, rand=self.rand)

    # --- the loop ---------------------------------------------------------------------------------
    def _push(self, at: float, target: Any, arg: Any) -> None:
        heapq.heappush(self._queue, (at, next(self._seq), target, arg))

    def at(self, when: float, fn: Callable[[Any], None], arg: Any = None) -> None:
        """Run `fn(arg)` in a new greenlet at virtual time `when`."""
        self._push(when, fn, arg)

    def run(self, until: float | None = None) -> None:
        """Run every event (up to `until`, if given) in time order."""
        self._hub = greenlet.getcurrent()
        queue = self._queue
        try:
            while queue:
                if until is not None and queue[0][0] > until:
                    break
                at, _seq, target, arg = heapq.heappop(queue)
                if at > self.now:
                    self.now = at
                if isinstance(target, greenlet.greenlet):
                    target.switch()
                else:
                    self.scope.at = None  # a new greenlet starts without a scope
                    greenlet.greenlet(target, parent=self._hub).switch(arg)
        finally:
            self._hub = None


class _VirtualDatetime(_real_dt.datetime):
    clock: VirtualClock | None = None

    @classmethod
    def now(cls, tz: Any = None) -> Any:  # type: ignore[override]
        assert cls.clock is not None
        return _real_dt.datetime.fromtimestamp(cls.clock.wall(), tz)


class _VirtualDatetimeModule:
    """Stands in for the `datetime` module inside Powertools' breaker modules."""

    def __init__(self) -> None:
        self.datetime = _VirtualDatetime
        self.timezone = _real_dt.timezone
        self.timedelta = _real_dt.timedelta

    def __getattr__(self, name: str) -> Any:
        return getattr(_real_dt, name)


class _VirtualTimeModule:
    """Stands in for the `time` module inside the provider engine and the chat router, whose
    deadline scopes read `time.monotonic()`: the virtual clock's instead (the rest is `time`'s)."""

    def __init__(self, clock: VirtualClock) -> None:
        self.monotonic = clock.monotonic
        self.time = _real_time.time  # asked by every provider stream: no `__getattr__` round for it

    def __getattr__(self, name: str) -> Any:
        return getattr(_real_time, name)


class GreenletScope:
    """`threading.local` for greenlets, for the engine's deadline scope (`deadline_io._SCOPE`,
    whose one attribute is `at`): the simulation's requests all run in one thread, each in its own
    greenlet, switching while a call is in flight (one request's scope must not leak into
    another's). Greenlets switch only in the clock (`VirtualClock.sleep` parks one, `run` starts
    or resumes one), so the running greenlet's value is a plain attribute the clock swaps: a parked
    greenlet keeps its own on its stack and puts it back when it resumes, a new one starts with
    None (what the engine's `getattr(_SCOPE, "at", None)` makes of a thread without one). The
    engine reads its scope a few dozen times a request; a dict keyed by the current greenlet cost
    a lookup and a `greenlet.getcurrent()` each time."""

    __slots__ = ("at",)

    def __init__(self) -> None:
        self.at: float | None = None


@contextlib.contextmanager
def powertools_on(clock: VirtualClock) -> Iterator[None]:
    """Powertools' breakers (and our in-memory breaker store) on the virtual clock, with one
    probe owner per greenlet instead of per thread; everything is put back on exit."""
    from aws_lambda_powertools.utilities.circuit_breaker import base
    from aws_lambda_powertools.utilities.circuit_breaker.persistence import base as persistence_base

    from llm_gateway.providers import deadline_io
    from llm_gateway.providers import engine as provider_engine
    from llm_gateway.routing import breaker_store
    from llm_gateway.routing import chat as chat_router

    fake = _VirtualDatetimeModule()
    _VirtualDatetime.clock = clock
    owners: dict[int, str] = {}

    def probe_owner_id() -> str:
        current = greenlet.getcurrent()
        owner = getattr(current, "sim_owner", None)
        if owner is None:
            owner = f"sim#{len(owners)}"
            owners[id(current)] = owner
            current.sim_owner = owner  # type: ignore[attr-defined]
        return str(owner)

    saved = [(base, "dt", base.dt), (persistence_base, "dt", persistence_base.dt),
             (breaker_store, "dt", breaker_store.dt), (base, "_probe_owner_id", base._probe_owner_id),
             (deadline_io, "_SCOPE", deadline_io._SCOPE), (provider_engine, "time", provider_engine.time),
             (chat_router, "time", chat_router.time)]
    deadline_io._SCOPE = clock.scope  # type: ignore[assignment]
    provider_engine.time = chat_router.time = _VirtualTimeModule(clock)  # type: ignore[assignment]
    base.dt = fake  # type: ignore[assignment]
    persistence_base.dt = fake  # type: ignore[assignment]
    breaker_store.dt = fake  # type: ignore[attr-defined]
    base._probe_owner_id = probe_owner_id
    with base._COUNTERS_LOCK:
        counters = (dict(base._LOCAL_FAILURES), dict(base._LOCAL_SUCCESSES), dict(base._LAST_OBSERVED_STATE))
        base._LOCAL_FAILURES.clear()
        base._LOCAL_SUCCESSES.clear()
        base._LAST_OBSERVED_STATE.clear()
    try:
        yield
    finally:
        for module, name, value in saved:
            setattr(module, name, value)
        _VirtualDatetime.clock = None
        with base._COUNTERS_LOCK:
            for live, kept in zip((base._LOCAL_FAILURES, base._LOCAL_SUCCESSES, base._LAST_OBSERVED_STATE),
                                  counters, strict=True):
                live.clear()
                live.update(kept)  # type: ignore[arg-type]
