"""Free tiers this container has seen used up for a while: neither read nor planned until then.

State is read for as many candidates as one BatchGetItem holds, best static rank first
(`planner.bounded`). When the best-ranked free tiers have used up a day's or a month's limit, a
plan built on that read has no free step, and the request went to a paid model while free tiers
ranked lower, never read, could serve (found by `llm-gateway simulate`: at the reference day's
full size, a fifth of the requests). A plan says when each model it dropped for capacity fits
again; one that will not for a while (`MIN_WAIT_S`) is remembered until then, and a request's
preparation leaves it out (dropped as `USED_UP`) so its read holds others in its place. So is a
model whose window takes small requests but not this one's ask (a day's tokens nearly used up):
it is remembered for asks of at least as much of the unit it was short of (`Plan.full_for`,
dropped as `USED_UP_FOR`), and a smaller request still reads and plans it.

Left out, not only read last: a model remembered used up would be read, decoded and found full
by every plan of every request until its time (at a 100,000-request day, a quarter of each
plan's candidates), and it could not serve before then. A model remembered within the runner's
longest wait (`horizon`) of its time is kept, so a wait for it is still seen; a pinned model is
never left out; and a plan that comes out empty is made again with every candidate
(`FailoverRunner._planned`), so a 429's Retry-After, a 503 or a 413 are what the whole pool says
(unless the narrowed read holds a model that frees sooner: that one is waited for, or told). A
plan made while the container is degraded is not noted: it checks this container's share of
each limit, used up for it but not for the gateway once the table answers again.

Per container, like `FailureMemory`: no extra read or write. A model remembered too long (what it
frees early, from a reconciled over-estimate or a released reservation) serves again only from
its remembered time on, unless a request finds nothing else; one that freed is read and planned
again from that time on.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from functools import lru_cache

from llm_gateway.selection.planner import Candidate, Plan, Preparation, bounded
from llm_gateway.state.store import ModelKey

MIN_WAIT_S = 60.0  # shorter waits are a minute's window: the model serves again before it matters
NOT_LOADED = "not loaded: ranked below the best candidates"
USED_UP = "not loaded: used up until {at:.0f} (seen by this container)"
USED_UP_FOR = "not loaded: used up for {ask} {unit} or more until {at:.0f} (seen by this container)"


class ExhaustedMemory:
    def __init__(self, min_wait_s: float = MIN_WAIT_S) -> None:
        self.min_wait_s = min_wait_s
        self._until: dict[ModelKey, float] = {}  # takes no request before then
        self._short: dict[ModelKey, tuple[str, int, float]] = {}  # takes no ask of unit >= n before then
        self._lock = threading.Lock()

    def note(self, plan: Plan, now: float) -> None:
        """Remember the free tiers the plan dropped for capacity that stay full a while: for any
        request (`Plan.frees_at`), or for one asking as much as this one of the unit it was short
        of (`Plan.full_for`: a day's tokens nearly used up still take a small request)."""
        if not plan.frees_at and not plan.full_for:
            return
        least = now + self.min_wait_s
        with self._lock:
            for key, at in plan.frees_at:
                if at >= least:
                    self._until[key] = at
            for key, unit, ask, at in plan.full_for:
                if at >= least:
                    self._short[key] = (unit, ask, at)
            for key in [key for key, at in self._until.items() if at <= now]:
                del self._until[key]
            for key in [key for key, (_, _, at) in self._short.items() if at <= now]:
                del self._short[key]

    def narrow(self, prep: Preparation, now: float, horizon: float = 0.0) -> Preparation:
        """The preparation without the models remembered used up past `now + horizon` (dropped
        with `USED_UP`), its state read bounded again over the others; the same object when it
        loads none of them (or when they are all it has: the plan then says what they say)."""
        if (not self._until and not self._short) or prep.pinned is not None:
            return prep
        with self._lock:  # a snapshot: `note` may drop keys from another thread meanwhile
            until = dict(self._until)
            short = dict(self._short)
        later = now + horizon

        def used_up_until(candidate: Candidate) -> float:
            key = candidate.entry.key
            at = until.get(key, 0.0)
            found = short.get(key)
            if found is not None and found[2] > at and candidate.amounts.get(found[0], 0) >= found[1]:
                at = found[2]
            return at

        if not any(used_up_until(c) > later for c in prep.candidates):
            return prep  # nothing read in vain
        pool = (*prep.candidates, *prep.rest)
        ats = [used_up_until(c) for c in pool]
        kept = [c for c, at in zip(pool, ats, strict=True) if at <= later]
        if not kept:
            return prep
        used_up = [(c.entry.key, _why(c.entry.key, at, until, short)) for c, at in zip(pool, ats, strict=True)
                   if at > later]
        kept.sort(key=lambda c: (not c.entry.is_free, *c.rank))  # the preparers' order
        loaded, beyond = bounded(kept, prep.meters, prep.state_pks)
        moved = {c.entry.key for c in pool}
        dropped = [d for d in prep.dropped if d[0] not in moved]
        dropped += used_up
        dropped += [(c.entry.key, NOT_LOADED) for c in beyond]
        return replace(prep, candidates=tuple(loaded), rest=tuple(beyond), dropped=tuple(dropped))


def _why(key: ModelKey, at: float, until: dict[ModelKey, float], short: dict[ModelKey, tuple[str, int, float]]) -> str:
    if until.get(key) == at:
        return _used_up(at)
    unit, ask, _ = short[key]
    return _used_up_for(ask, unit, at)


# Every request a model stays remembered drops it with the same reason (the same moment): formatted
# once per value, not per request (a float's formatting was most of `narrow`'s own time).
@lru_cache(maxsize=1024)
def _used_up(at: float) -> str:
    return USED_UP.format(at=at)


@lru_cache(maxsize=1024)
def _used_up_for(ask: int, unit: str, at: float) -> str:
    return USED_UP_FOR.format(ask=ask, unit=unit, at=at)
