"""Per-request routing state: the plan cursor, what was tried, and which step comes next.

Kept apart from the runner so the failover policy (which step comes next) is plain data and
logic: no I/O, no clock (the caller passes `standing`, which reads the container's live failure
memory: a provider that fails during this request, in this request or any other, is tried after
every provider that has not, and after a failure a provider that has just answered goes first;
and `pace`, each provider's recent seconds per unit of work: after a *timeout* the fastest
provider left goes first, since the answer has shown it is long or the provider it went to hangs).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from llm_gateway.selection.planner import PlanStep
from llm_gateway.state.store import ModelKey

if TYPE_CHECKING:
    from llm_gateway.state.shared import Reservation

TIMEOUT = "timeout"  # `ErrorClass.TIMEOUT` as an attempt records it


class AttemptRecord(NamedTuple):
    """One provider call. `error_class` is None for the attempt that succeeded.

    Immutable and compared by its fields, as the frozen dataclass it was; a NamedTuple because
    one is made for every attempt, and a frozen dataclass sets each field through
    `object.__setattr__` (10,800 instructions an attempt against about 3,000, valgrind)."""

    provider: str
    model: str
    error_class: str | None = None
    status: int | None = None
    latency_ms: float = 0.0
    retry_after_s: float | None = None

    def public(self) -> dict[str, Any]:
        """What the caller may see: no message, no provider body, no key."""
        out: dict[str, Any] = {
            "provider": self.provider, "model": self.model, "error_class": self.error_class, "status": self.status,
        }
        if self.retry_after_s is not None:
            out["retry_after_s"] = round(self.retry_after_s, 3)
        return out


@dataclass
class RequestRun:
    """Mutable state of one routed request."""

    steps: list[PlanStep]
    standing: Callable[[str], int] = lambda _provider: 1  # 0 answered lately, 1 unknown, 2 failed lately
    pace: Callable[[str], float | None] = lambda _provider: None  # seconds per unit of work lately (None: unknown)
    attempts: list[AttemptRecord] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "provider/model: why" for steps never called
    _tried: set[ModelKey] = field(default_factory=set)
    _again: PlanStep | None = None
    _retried: set[ModelKey] = field(default_factory=set)
    _shunned: set[str] = field(default_factory=set)
    # The request as the caller's windows count it now: on the latest attempt's (`Outcomes.attempt_made`).
    counted: Reservation | None = None

    def next_step(self) -> PlanStep | None:
        """The same step again if a retry was asked for; else the best untried, unshunned step:
        in plan order, providers that failed lately last; after a failure in this request, those
        that answered lately first; after a timeout, or first for a very long answer, the fastest."""
        if self._again is not None:
            step, self._again = self._again, None
            return step
        if self.timed_out() or (not self.attempts and bool(self.steps) and self.steps[0].slow_by_request):
            return self._fastest()
        best: PlanStep | None = None
        best_rank = 3
        failing_over = self.previous_failure() is not None
        for _, step in self._open_steps():
            rank = self.standing(step.key.provider)
            if not failing_over:
                rank = max(rank, 1)  # first attempt: plan order among all that have not failed
            if rank < best_rank:
                best, best_rank = step, rank
                if rank <= (0 if failing_over else 1):
                    break
        if best is not None:
            self._tried.add(best.key)
        return best

    def _open_steps(self) -> Iterator[tuple[int, PlanStep]]:
        """The untried steps in plan order, with their index; a step of a provider shunned in this
        request is set aside (tried, and said why) as it is passed."""
        for index, step in enumerate(self.steps):
            if step.key in self._tried:
                continue
            if step.key.provider in self._shunned:
                self._tried.add(step.key)
                self.skipped.append(f"{step.key}: provider failed earlier in this request")
                continue
            yield index, step

    def has_untried(self) -> bool:
        """Whether a step is left to fail over to."""
        return any(step.key not in self._tried and step.key.provider not in self._shunned for step in self.steps)

    def timed_out(self) -> bool:
        """Whether this request's last attempt timed out: its answer is longer than the time that
        provider was given (or the provider hangs), so the next one gets all the time left."""
        previous = self.previous_failure()
        return previous is not None and previous.error_class == TIMEOUT

    def _fastest(self) -> PlanStep | None:
        """After a timeout, or first for a request that asked for a very long answer: the untried,
        unshunned step whose provider writes fastest lately (providers that failed lately last,
        free tiers before paid models, unknown pace after known, then plan order). The fastest
        has the best chance to finish a long answer within the deadline, and a hanging provider
        is left behind just the same."""
        best: PlanStep | None = None
        best_rank: tuple[bool, bool, bool, float, int] | None = None
        for index, step in self._open_steps():
            pace = self.pace(step.key.provider)
            rank = (self.standing(step.key.provider) == 2, not step.free, pace is None, pace or 0.0, index)
            if best_rank is None or rank < best_rank:
                best, best_rank = step, rank
        if best is not None:
            self._tried.add(best.key)
        return best

    def may_retry_same(self, step: PlanStep) -> bool:
        return step.key not in self._retried

    def retry_same(self, step: PlanStep) -> None:
        self._retried.add(step.key)
        self._again = step

    def shun(self, provider: str) -> None:
        """Skip the provider's remaining steps (its key or connection failed: all models would)."""
        self._shunned.add(provider)

    def previous_failure(self) -> AttemptRecord | None:
        return self.attempts[-1] if self.attempts and self.attempts[-1].error_class else None

    @property
    def failed(self) -> list[AttemptRecord]:
        return [a for a in self.attempts if a.error_class is not None]
