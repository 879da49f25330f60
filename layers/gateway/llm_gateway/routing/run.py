"""Per-request routing state: the plan cursor, what was tried, and what the next attempt is.

Kept apart from the router so the failover policy (which step comes next) is plain data and
logic: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from llm_gateway.selection.selector import PlanStep


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One provider call. `error_class` is None for the attempt that succeeded."""

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
    attempts: list[AttemptRecord] = field(default_factory=list)
    retry_after: list[float] = field(default_factory=list)  # seconds until a tried model frees up
    skipped: list[str] = field(default_factory=list)  # "provider/model: why" for steps never called
    _cursor: int = 0
    _again: PlanStep | None = None
    _retried: set[Any] = field(default_factory=set)
    _shunned: set[str] = field(default_factory=set)

    def next_step(self) -> PlanStep | None:
        """The same step again if a retry was asked for, else the next untried, unshunned one."""
        if self._again is not None:
            step, self._again = self._again, None
            return step
        while self._cursor < len(self.steps):
            step = self.steps[self._cursor]
            self._cursor += 1
            if step.key.provider not in self._shunned:
                return step
            self.skipped.append(f"{step.key}: provider failed earlier in this request")
        return None

    def may_retry_same(self, step: PlanStep) -> bool:
        return step.key not in self._retried

    def retry_same(self, step: PlanStep) -> None:
        self._retried.add(step.key)
        self._again = step

    def shun(self, provider: str) -> None:
        """Skip the provider's remaining steps (its key or connection failed: all models would)."""
        self._shunned.add(provider)

    def demote(self, provider: str) -> None:
        """Try other providers' remaining steps first (stable), then this provider's."""
        head = self.steps[: self._cursor]
        rest = self.steps[self._cursor :]
        others = [s for s in rest if s.key.provider != provider]
        same = [s for s in rest if s.key.provider == provider]
        self.steps = head + others + same

    def previous_failure(self) -> AttemptRecord | None:
        return self.attempts[-1] if self.attempts and self.attempts[-1].error_class else None

    @property
    def failed(self) -> list[AttemptRecord]:
        return [a for a in self.attempts if a.error_class is not None]
