"""Free tiers this container has seen used up for a while, so one state read holds others.

State is read for as many candidates as one BatchGetItem holds, best static rank first
(`planner.bounded`). When the best-ranked free tiers have used up a day's or a month's limit, a
plan built on that read has no free step, and the request went to a paid model while free tiers
ranked lower, never read, could serve (found by `llm-gateway simulate`: at the reference day's
full size, a fifth of the requests). A plan says when each model it dropped for capacity fits
again; one that will not for a while (`MIN_WAIT_S`) is remembered until then, and later reads
load it after every other candidate (after the paid fallbacks too: it cannot serve before then).

Per container, like `FailureMemory`: no extra read or write. A model remembered too long is only
read later than it could have been (what it frees early, from a reconciled over-estimate, waits
for its time to pass); one that freed is read again from that time on.
"""

from __future__ import annotations

import threading
from dataclasses import replace

from llm_gateway.selection.planner import Candidate, Plan, Preparation, bounded
from llm_gateway.state.store import ModelKey

MIN_WAIT_S = 60.0  # shorter waits are a minute's window: the model serves again before it matters
NOT_LOADED = "not loaded: ranked below the best candidates"
USED_UP = "not loaded: used up until {at:.0f} (seen by this container)"


class ExhaustedMemory:
    def __init__(self, min_wait_s: float = MIN_WAIT_S) -> None:
        self.min_wait_s = min_wait_s
        self._until: dict[ModelKey, float] = {}
        self._lock = threading.Lock()

    def note(self, plan: Plan, now: float) -> None:
        """Remember the free tiers the plan dropped for capacity that stay full a while."""
        if not plan.frees_at:
            return
        with self._lock:
            for key, at in plan.frees_at:
                if at - now >= self.min_wait_s:
                    self._until[key] = at
            for key in [key for key, at in self._until.items() if at <= now]:
                del self._until[key]

    def reorder(self, prep: Preparation, now: float) -> Preparation:
        """The preparation with its state read holding the models not remembered used up first."""
        if not self._until or prep.pinned is not None:
            return prep
        with self._lock:  # a snapshot: `note` may drop keys from another thread meanwhile
            until = dict(self._until)
        pool = (*prep.candidates, *prep.rest)

        def used_up(candidate: Candidate) -> bool:
            return until.get(candidate.key, 0.0) > now

        if not any(used_up(c) for c in prep.candidates):
            return prep  # nothing read in vain
        ordered = sorted(pool, key=lambda c: (used_up(c), not c.entry.is_free, *c.rank))
        loaded, beyond = bounded(ordered, prep.meters, prep.state_pks)
        moved = {c.key for c in pool}
        dropped = [d for d in prep.dropped if d[0] not in moved]
        dropped += [(c.key, USED_UP.format(at=until.get(c.key, now)) if used_up(c) else NOT_LOADED) for c in beyond]
        return replace(prep, candidates=tuple(loaded), rest=tuple(beyond), dropped=tuple(dropped))
