"""What the runner writes down after each attempt: usage, headers, cooldowns, failures, metrics.

One place so every capability, streamed and buffered responses, successes and failures, keep the
shared state in step: the reservation is reconciled with what was really used, the provider's own
rate-limit figures are kept for the planner, a 429 cools the model down (for every container,
until its reset), a failure marks the provider as just failed, and passive health and metrics see
every outcome.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from llm_gateway.observability import metrics as m
from llm_gateway.observability.metrics import Metrics
from llm_gateway.providers.base import ProviderError, RateLimitInfo
from llm_gateway.retry.backoff import BackoffPolicy, cooldown_s
from llm_gateway.retry.classifier import Decision, ErrorClass, classify
from llm_gateway.retry.handler import Deadline
from llm_gateway.routing.failures import FAILURE_CLASSES, FailureMemory
from llm_gateway.routing.health import PassiveHealth
from llm_gateway.routing.run import AttemptRecord, RequestRun
from llm_gateway.selection.planner import PlanStep
from llm_gateway.state.items import window_ref
from llm_gateway.state.metering import CALLER_SCOPE, REQUESTS, USD_MICROS, Amounts
from llm_gateway.state.rate_limits import cooldown_from_headers, near_miss, window_near_miss, worth_recording
from llm_gateway.state.shared import Reservation, SharedState

LOG = logging.getLogger("llm_gateway.routing")
BUDGET_WARNING_SHARE = 0.8  # the "a user passes 80 % of a budget"
_RATE = (ErrorClass.RATE_LIMITED, ErrorClass.QUOTA_EXHAUSTED)
# The provider's own failures (its error rate, the rollback trigger "a provider consistently
# failing"): not its rate limits (`limited`), not what the request caused (`refused`).
_PROVIDER_FAULT = frozenset({ErrorClass.OVERLOADED, ErrorClass.SERVER_ERROR, ErrorClass.TIMEOUT,
                             ErrorClass.CONNECTION, ErrorClass.AUTH})
OK, FAILED, LIMITED, REFUSED = "ok", "failed", "limited", "refused"


def attempt_outcome(error_class: ErrorClass | None, request_caused: bool = False) -> str:
    """The `outcome` dimension of `ProviderAttempts` for one provider call."""
    if error_class is None:
        return OK
    if error_class in _RATE:
        return LIMITED
    if error_class in _PROVIDER_FAULT and not request_caused:
        return FAILED
    return REFUSED


@dataclass
class Outcomes:
    """Where each attempt's outcome is recorded: shared state, metrics, health, failure memory."""

    state: SharedState
    metrics: Metrics
    passive: PassiveHealth
    failures: FailureMemory
    policy: BackoffPolicy

    def guarded(self, what: str, fn: Callable[..., object], *args: object) -> None:
        """State writes after a call must never turn a served request into an error.

        Each is bounded by the store (DynamoDB client: 1 s connect/read timeouts, 2 attempts; after
        one outage the resilient store goes local for a while), and the handler keeps
        `LAMBDA_MARGIN_S` of the Lambda's time past the request deadline for them."""
        try:
            fn(*args)
        except Exception:
            LOG.warning("state write failed: %s", what, exc_info=True)

    def headers(self, step: PlanStep, info: RateLimitInfo | None, now: float, *, deadline: Deadline | None = None,
                near_own_limit: bool = False) -> None:
        """`near_own_limit`: the gateway's own count of a window says near miss (one data point
        per attempt, whichever of the two views saw it)."""
        if info is None or info.is_empty:
            if near_own_limit:
                self.metrics.count(m.RATE_LIMIT_NEAR_MISS, provider=step.key.provider, model=step.key.model)
            return
        if worth_recording(info) and not _gone(deadline, "record_headers"):
            self.guarded("record_headers", self.state.record_headers, step.key, info, now)
        if near_own_limit or near_miss(info):
            self.metrics.count(m.RATE_LIMIT_NEAR_MISS, provider=step.key.provider, model=step.key.model)
        exhausted = cooldown_from_headers(info, now)
        if exhausted is not None:
            self.guarded("cool_down", self.state.cool_down, step.key, exhausted.until, exhausted.reason, now)

    def success(
        self, run: RequestRun, step: PlanStep, reservation: Reservation, actual: Amounts | None,
        info: RateLimitInfo | None, latency_s: float, now: float, *, deadline: Deadline | None = None,
    ) -> None:
        usages = step.usages  # none: a model and caller without limits (no budget, no window to miss)
        if actual is not None:
            self.guarded("reconcile", self.state.reconcile, reservation, actual, now)
            if usages:
                self._budget_warnings(step, actual)
        near = bool(usages) and window_near_miss(usages, reservation.amounts if actual is None else actual)
        self.headers(step, info, now, deadline=deadline, near_own_limit=near)
        self.passive.record(step.key, None, now)
        self.metrics.timing(m.PROVIDER_LATENCY_MS, latency_s * 1000, provider=step.key.provider)
        self.metrics.count(m.PROVIDER_ATTEMPTS, provider=step.key.provider, outcome=OK)
        run.attempts.append(AttemptRecord(step.key.provider, step.key.model, latency_ms=latency_s * 1000))

    def _budget_warnings(self, step: PlanStep, actual: Amounts) -> None:
        """A caller's spend that this call took past BUDGET_WARNING_SHARE of a budget: counted
        (an alarm notifies operators within minutes) and logged with whose budget, once per
        crossing. Worked out from the window the plan read and what the call cost, so it adds no
        I/O; two calls crossing at once in different containers may both report it."""
        spent = actual.get(USD_MICROS, 0)
        if spent <= 0:
            return
        for usage in step.usages:
            ceiling = usage.meter.limit.max_of(USD_MICROS)
            if usage.meter.scope != CALLER_SCOPE or not ceiling:
                continue
            before = usage.used.get(USD_MICROS, 0) + usage.carried.get(USD_MICROS, 0)
            threshold = ceiling * BUDGET_WARNING_SHARE
            if before < threshold <= before + spent:
                self.metrics.count(m.BUDGET_WARNINGS)
                LOG.warning("budget threshold passed", extra={
                    "counter": usage.meter.counter, "window": usage.meter.limit.period.name,
                    "spent_usd": (before + spent) / 1_000_000, "budget_usd": ceiling / 1_000_000,
                    "share": BUDGET_WARNING_SHARE})

    def failure(
        self, run: RequestRun, step: PlanStep, reservation: Reservation | None, error: ProviderError,
        latency_s: float, now: float, *, deadline: Deadline | None = None,
    ) -> Decision:
        decision = classify(error)
        error_class = decision.error_class
        if reservation is not None and error.status is not None:
            # The provider answered with an error: it saw the request (its limits count it) but
            # produced nothing, so the tokens and audio seconds go back. A call that got *no*
            # answer (a timeout, a cut connection) keeps everything it reserved: the provider may
            # have received it and counted its prompt, its audio and even the output it went on
            # writing (found by `llm-gateway simulate`: giving those back left Groq's day and hour
            # windows below the provider's own count, and later calls passed its limits).
            counted = {REQUESTS: reservation.amounts[REQUESTS]} if REQUESTS in reservation.amounts else {}
            self.guarded("reconcile", self.state.reconcile, reservation, counted, now)
        self.headers(step, error.rate_limit, now, deadline=deadline)
        wait = cooldown_s(error, error_class, self.policy)
        if wait is not None:
            reason = f"{error_class} ({error.status or error.code or 'no status'})"
            self.guarded("cool_down", self.state.cool_down, step.key, now + wait, reason, now)
        # What the request caused (its content, its deadline) says nothing about the provider.
        says_something = not decision.caller_caused
        if says_something and error_class in FAILURE_CLASSES:
            mark = self.failures.record(step.key.provider, str(error_class), now, started=now - latency_s)
            if mark is not None and not _gone(deadline, "mark_failure"):
                self.guarded("mark_failure", self.state.mark_failure, mark, now)
        if says_something:
            self.passive.record(step.key, str(error_class), now)
        provider, model = step.key
        self.metrics.count(m.PROVIDER_ERRORS, error_class=str(error_class), provider=provider, model=model)
        self.metrics.count(m.PROVIDER_ATTEMPTS, provider=provider,
                           outcome=attempt_outcome(error_class, error.request_caused))
        if error_class in _RATE:
            self.metrics.count(m.RATE_LIMITED, provider=provider, model=model)
        run.attempts.append(
            AttemptRecord(step.key.provider, step.key.model, str(error_class), error.status, latency_s * 1000, wait)
        )
        return decision

    def attempt_made(self, run: RequestRun, step: PlanStep, reservation: Reservation) -> None:
        """A key's `rpm`/`rpd` count the caller's requests, not the provider calls made for them:
        a request counts once, on the caller's windows of its latest attempt (the provider's
        windows keep every call). What this attempt counted there is what the next attempt's
        reservation takes over (`run.counted`, `SharedState.reserve`'s `moved`): given back in
        that reservation's own conditional write, so a caller at its last request can still fail
        over, and a failover costs no write of its own. A next reservation refused, or released
        without its call, leaves it counted here: a request that ends with no later attempt made
        (one that failed everywhere) has counted once, with no write after its last attempt."""
        if not reservation.windows:  # it counted on no window (a model and caller without limits)
            run.counted = None
            return
        asked = reservation.amounts.get(REQUESTS)
        keys = {window_ref(u.meter, u.start).key for u in step.usages if u.meter.scope == CALLER_SCOPE}
        windows = tuple(held for held in reservation.windows if held.window.key in keys)
        run.counted = Reservation((), {REQUESTS: asked}, windows) if asked and windows else None

    def failover(self, run: RequestRun, step: PlanStep) -> None:
        """Count a move to another model after a failure (what the user never sees)."""
        previous = run.previous_failure()
        if previous is not None and (previous.provider, previous.model) != (step.key.provider, step.key.model):
            self.metrics.count(m.FAILOVERS, provider=previous.provider, to_provider=step.key.provider)


def _gone(deadline: Deadline | None, what: str) -> bool:
    """True (and logged) when the request's deadline has passed: a write that only informs later
    requests (header snapshots, failure marks) is then not started, so it cannot hold a request
    past its deadline. Writes that keep limits honest (reconcile, release, 429 cooldowns) still
    run, bounded as `Outcomes.guarded` says."""
    if deadline is None or deadline.remaining() > 0:
        return False
    LOG.info("state write skipped, the request deadline has passed: %s", what)
    return True
