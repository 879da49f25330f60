"""Spread load among equally good models: smooth weighted round-robin by remaining capacity.

The selector hands us each group of steps it ranks equal (same tier, category distance and
cost). Always taking the first would drain one free tier while its peers idle, and a plain
rotation would keep hitting a model that has 2 % of its day left as often as one at 100 %.
So each model's weight is the fraction of its tightest window still free (known limits and the
provider's own headers, from the same state snapshot), and the pick rotates in proportion
(nginx's smooth weighted round-robin: deterministic, no bursts, no randomness to seed).

Per container: the rotation state lives in the instance; containers balance independently,
which still spreads load because every container's weights come from the shared state.
"""

from __future__ import annotations

import math
import threading

from llm_gateway.selection.planner import PlanStep
from llm_gateway.state.items import StateSnapshot
from llm_gateway.state.rate_limits import capacity
from llm_gateway.state.store import ModelKey

MIN_WEIGHT = 0.02  # a nearly drained model still gets an occasional turn (its windows may reset)


def remaining_fraction(step: PlanStep, snapshot: StateSnapshot, now: float) -> float:
    """Fraction (0..1] of the step's tightest known limit still available; 1 when unknown.
    `snapshot` is the one the step was planned from (its capacity check, done by the planner at
    `step.room_at`, is not repeated at that moment)."""
    state = snapshot.models.get(step.key)
    if step.room_at != now and not capacity(step.usages, state, step.amounts, now).ok:
        return 0.0
    lowest = math.inf  # the lowest fraction so far (none yet: inf), kept as it goes rather than listed
    for usage in step.usages:
        used, carried = usage.used, usage.carried
        for unit, ceiling in usage.meter.limit.maxima.items():
            if ceiling:  # `usage.remaining(unit)`, inlined: this runs for every step of every tie
                fraction = max(0, ceiling - used.get(unit, 0) - carried.get(unit, 0)) / ceiling
                if fraction < lowest:
                    lowest = fraction
    if state is not None and state.headers is not None:
        info = state.headers.info
        for left, limit in ((info.remaining_requests, info.limit_requests), (info.remaining_tokens, info.limit_tokens)):
            if left is not None and limit and left / limit < lowest:
                lowest = left / limit
    return 1.0 if lowest == math.inf else max(0.0, lowest)


class CapacityBalancer:
    """The selector's `tie_breaker`: `balancer(group, snapshot, now) -> reordered group`."""

    def __init__(self) -> None:
        self._current: dict[frozenset[ModelKey], dict[ModelKey, float]] = {}
        self._lock = threading.Lock()

    def __call__(self, group: list[PlanStep], snapshot: StateSnapshot, now: float) -> list[PlanStep]:
        if len(group) < 2:
            return list(group)
        weights = {step.key: max(MIN_WEIGHT, remaining_fraction(step, snapshot, now)) for step in group}
        first = self._pick(weights)
        rest = sorted((s for s in group if s.key != first), key=lambda s: -weights[s.key])
        return [next(s for s in group if s.key == first), *rest]

    def _pick(self, weights: dict[ModelKey, float]) -> ModelKey:
        """Smooth WRR: add each weight to its running score, take the top, charge it the total."""
        ident = frozenset(weights)
        total = sum(weights.values())
        with self._lock:
            scores = self._current.setdefault(ident, dict.fromkeys(weights, 0.0))
            for key, weight in weights.items():
                scores[key] = scores.get(key, 0.0) + weight
            best = max(sorted(weights), key=lambda key: scores[key])
            scores[best] -= total
        return best

