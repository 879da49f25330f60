"""The failover runner: one capability-agnostic loop from a prepared request to a served answer.

plan: one state load (windows, cooldowns, headers, breakers, recent failures in one BatchGetItem)
→ blocked = open breakers + providers with rejected keys → rank (planner, balancer as the
tie-breaker) → when nothing has capacity now but something will within `max_wait_s` (and inside
the deadline), wait and plan again rather than refuse; so too when the plan starts with a paid
model and a free tier frees within `free_wait_s` (counted as a capacity wait too).

run: for each step, within `max_attempts` and the deadline: reserve (a conditional write per counter item; a
step that would overflow a limit is skipped; a reservation whose write answered too late for its
stamp is stamped again, or released and the step skipped: `_stamped`) → call through the breakers with a timeout that
fits the provider → outcomes (reconcile, headers, cooldown, failure mark, metrics) → the next
step, preferring providers without a recent failure → or the aggregated error.

A capability supplies only `call(step, timeout_s) -> CallResult` (and `first_chunk` when the
call returns at the answer's first chunk: its timeouts are learned apart); chat adds streaming on top.
Who is calling enters as `limits` (`CallerLimits`, built by `llm_gateway.tenancy`): one step
between preparation and planning that narrows the candidates to what the caller may use and adds
the caller's own windows and budgets as more meters, so every capability gets them unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import Generic, NoReturn, Protocol, TypeVar

from llm_gateway.api.errors import GatewayError, PayloadTooLarge
from llm_gateway.observability import metrics as m
from llm_gateway.observability.metrics import Metrics
from llm_gateway.providers.base import TRANSPORT_TIMEOUT, ProviderError, RateLimitInfo
from llm_gateway.retry.aggregate import aggregate_error
from llm_gateway.retry.backoff import retry_delay, retry_hint_s
from llm_gateway.retry.caller_error import caller_error
from llm_gateway.retry.classifier import Action, ErrorClass, Scope, classify, classify_class
from llm_gateway.retry.handler import AttemptContext, AttemptFailed, Deadline, DeadlineExhausted, RetryHandler
from llm_gateway.routing.balancer import CapacityBalancer
from llm_gateway.routing.circuit_breaker import BreakerOpen, CircuitBreakers
from llm_gateway.routing.exhausted import ExhaustedMemory
from llm_gateway.routing.failures import PAYLOAD_PROVOKED, AdaptiveTimeouts, FailureMemory, work_size
from llm_gateway.routing.health import HealthView
from llm_gateway.routing.outcomes import Outcomes
from llm_gateway.routing.run import RequestRun
from llm_gateway.routing.tracing import AttemptTracer, NoTracing
from llm_gateway.selection.planner import Plan, Planner, PlanStep, Preparation
from llm_gateway.state.items import StateSnapshot
from llm_gateway.state.metering import Amounts, WindowUsage
from llm_gateway.state.shared import Reservation, SharedState
from llm_gateway.state.store import ModelKey

T = TypeVar("T")
TRANSIENT = frozenset({ErrorClass.SERVER_ERROR, ErrorClass.OVERLOADED})  # worth one retry on the same model
WAIT_MARGIN_S = 0.02  # past the computed instant, so the window has really moved on
MAX_WAIT_ROUNDS = 3


@dataclass(slots=True, unsafe_hash=True)  # a value, never changed; not frozen: see FAST_VALUES in metering.py
class CallResult(Generic[T]):
    """What a capability's call returns: the value, the provider's rate-limit headers, and what
    was really used (`actual`; None while unknown, e.g. a stream still running)."""

    value: T
    rate_limits: RateLimitInfo | None
    actual: Amounts | None


@dataclass(slots=True, unsafe_hash=True)  # a value, never changed; not frozen: see FAST_VALUES in metering.py
class Served(Generic[T]):
    """A successful attempt, with what a caller needs to settle it later (streams)."""

    value: T
    step: PlanStep
    reservation: Reservation
    run: RequestRun
    started: float
    deadline: Deadline | None = None
    cut_short: bool = False  # the request deadline, not the provider's timeout, bounds this call
    fingerprint: Callable[[], str] | None = None  # the request's (`FailureMemory.answered` when a stream ends)
    first_chunk: bool = False  # the call returned at the first chunk: the whole is timed when it ends (`settle`)


@dataclass(frozen=True, slots=True)
class RunnerSettings:
    """How long a request may wait for capacity (or a free tier) before it is answered 429 (or paid)."""

    max_wait_s: float  # wait this long at most for capacity rather than answer 429
    free_wait_s: float  # wait this long at most for a free tier rather than pay (within max_wait_s)


class _NoStepLeft(Exception):
    pass


class CallerLimits(Protocol):
    """What the caller may use and is limited to (`llm_gateway.tenancy.limits.UserLimits`)."""

    def apply(self, prep: Preparation) -> Preparation:
        """The preparation narrowed to the models the caller may use, with the caller's meters
        and budget amounts added; raises the caller's 403 when nothing it may use is left."""
        ...

    def refusal(self, plan: Plan) -> GatewayError | None:
        """The caller's 429 when its own limits emptied the plan (None: they did not)."""
        ...


class FailoverRunner:
    def __init__(
        self,
        *,
        state: SharedState,
        planner: Planner,
        breakers: CircuitBreakers,
        health: HealthView,
        balancer: CapacityBalancer,
        outcomes: Outcomes,
        failures: FailureMemory,
        timeouts: AdaptiveTimeouts,
        retry: RetryHandler,
        metrics: Metrics,
        settings: RunnerSettings,
        wall: Callable[[], float],
        sleep: Callable[[float], None],
        rand: Callable[[], float],
        exhausted: ExhaustedMemory,
        tracing: AttemptTracer | None = None,
    ) -> None:
        self.state = state
        self.planner = planner
        self.breakers = breakers
        self.health = health
        self.balancer = balancer
        self.outcomes = outcomes
        self.failures = failures
        self.timeouts = timeouts
        self.retry = retry
        self.metrics = metrics
        self.settings = settings
        self._wall = wall
        self._sleep = sleep
        self._rand = rand
        self.tracing: AttemptTracer = tracing or NoTracing()
        self.exhausted = exhausted

    # --- planning ------------------------------------------------------------------------------------
    def plan(self, prep: Preparation) -> tuple[Plan, StateSnapshot]:
        """The plan this request would follow now (the router and `llm-gateway plan` alike)."""
        clock = self.retry.clock
        started = clock()
        now = self._wall()
        keys = prep.keys
        snapshot = self.state.load(prep.all_meters(), keys, now, prep.state_pks)
        loaded = clock()
        self.metrics.timing(m.STATE_LATENCY_MS, (loaded - started) * 1000)
        items = self.breakers.current_items(keys, snapshot.breakers, degraded=snapshot.degraded)
        blocked = self.breakers.blocked(keys, items, now)
        for provider, why in self.health.unavailable().items():
            blocked.update({key: why for key in keys if key.provider == provider and key not in blocked})
        plan = self.planner.plan(prep, snapshot, now, blocked=blocked, failures=self.failures.merged(snapshot.failures),
                                 tie_breaker=self.balancer)
        if not snapshot.degraded:  # a degraded plan checks this container's share: used up for it, not for all
            self.exhausted.note(plan, now)
        self.metrics.timing(m.SELECTION_LATENCY_MS, (clock() - loaded) * 1000)
        return plan, snapshot

    def _plan_or_wait(self, prep: Preparation, deadline: Deadline, waited: float,
                      whole: Callable[[], Preparation] | None = None,
                      ) -> tuple[Plan, float, Preparation, Callable[[], Preparation] | None]:
        """Plan; when only capacity stops every candidate and one frees within what is left of
        `max_wait_s` (and the deadline still leaves an attempt after it), wait and plan again. So
        too when the plan would start with a paid model while a free tier frees within
        `free_wait_s`: a moment's wait for Mistral's next free second is cheaper than a paid call.
        `whole`: the preparation with the models `ExhaustedMemory` left out of `prep`, planned
        instead once a plan of `prep` comes out empty (`_planned`).
        Returns the plan, the total waited so far, the preparation planned and what is left of
        `whole`."""
        for _ in range(MAX_WAIT_ROUNDS):
            plan, prep, whole = self._planned(prep, whole)
            if plan.steps:
                wait, most = plan.free_tier_in_s, min(self.settings.free_wait_s, self.settings.max_wait_s)
            elif plan.capacity_only:
                wait, most = plan.free_again_in_s, self.settings.max_wait_s
            else:
                wait = None
            if wait is None:
                return plan, waited, prep, whole
            wait += WAIT_MARGIN_S
            if waited + wait > most or wait > self.retry.wait_budget(deadline):
                return plan, waited, prep, whole
            self.metrics.count(m.CAPACITY_WAITS)
            self._sleep(wait)
            waited += wait
        plan, prep, whole = self._planned(prep, whole)
        return plan, waited, prep, whole

    def _planned(self, prep: Preparation, whole: Callable[[], Preparation] | None,
                 ) -> tuple[Plan, Preparation, Callable[[], Preparation] | None]:
        """`prep`'s plan; when it is empty and models were left out of `prep` as used up (`whole`
        builds the preparation with them), the plan of every candidate instead: they may have
        freed early, and when they have not, the refusal (429 and its Retry-After, 503, 413) is
        the one the whole pool gives. Unless the narrowed plan frees sooner: `whole` is bounded
        to one read in plain rank order, so when the candidates do not all fit, its read may
        hold the used-up models instead of those the narrowing moved in, and a wait of a second
        for one of those would become a 429 of hours. Returns the plan, the preparation it was
        made from and what is left of `whole` (None once used)."""
        plan = self.plan(prep)[0]
        if plan.steps or whole is None:
            return plan, prep, whole
        every = whole()
        other = self.plan(every)[0]
        soon = plan.free_again_in_s
        if (other.steps or soon is None or not plan.capacity_only
                or (other.free_again_in_s is not None and other.free_again_in_s <= soon)):
            return other, every, None
        return plan, prep, None  # what frees first is in the narrowed read: wait for it (or its Retry-After)

    def _narrowed(self, prep: Preparation, limits: CallerLimits | None,
                  ) -> tuple[Preparation, Callable[[], Preparation] | None]:
        """The preparation to plan (the caller's `limits` applied), without the models this
        container saw used up past the longest wait (`ExhaustedMemory.narrow`), and, when some
        were left out, what builds it with them (`_planned`)."""
        narrowed = self.exhausted.narrow(prep, self._wall(), self.settings.max_wait_s + MAX_WAIT_ROUNDS * WAIT_MARGIN_S)
        if narrowed is prep:
            return (limits.apply(prep) if limits is not None else prep), None
        if limits is None:
            return narrowed, lambda: prep
        try:
            return limits.apply(narrowed), partial(limits.apply, prep)
        except GatewayError:  # all the key allows was left out: the whole pool's answer
            return limits.apply(prep), None

    # --- running -------------------------------------------------------------------------------------
    def run(self, prep: Preparation, call: Callable[[PlanStep, float], CallResult[T]], deadline: Deadline,
            *, limits: CallerLimits | None = None, fingerprint: Callable[[], str] | None = None,
            first_chunk: bool = False) -> Served[T]:
        """`fingerprint`: what tells this request from others (asked only when an attempt fails), so
        a caller retrying a request a provider chokes on is not taken for an outage
        (`FailureMemory.repeated`); worked out once a request, however many attempts ask.
        `first_chunk`: `call` returns at the answer's first chunk (a stream sent live), so its
        timeout and latency are of that chunk, learned apart from whole answers' (`AdaptiveTimeouts`);
        the stream's whole time is learned with whole answers' when it ends (`settle`)."""
        if fingerprint is not None:
            fingerprint = _Once(fingerprint)
        repeated = self._repeats(fingerprint)
        prep, whole = self._narrowed(prep, limits)
        waited = 0.0
        for _ in range(MAX_WAIT_ROUNDS):
            plan, waited, prep, whole = self._plan_or_wait(prep, deadline, waited, whole)
            if not plan.steps:
                raise self._nothing_to_try(plan, limits)
            run = RequestRun(list(plan.steps), standing=lambda provider: self.failures.standing(provider, self._wall()),
                             pace=self.timeouts.pace)
            try:
                return self.retry.run(partial(self._attempt, run, call=call, fingerprint=fingerprint,
                                              repeated=repeated, first_chunk=first_chunk), deadline)
            except AttemptFailed as failed:
                if isinstance(failed.cause, _NoStepLeft) and not run.attempts:
                    continue  # others took the capacity between plan and reserve: plan (and wait) again
                cause = failed.cause
                if isinstance(cause, ProviderError) and (decision := classify(cause)).action is Action.RETURN:
                    raise caller_error(cause, decision.error_class) from cause
                # tenacity stops on the deadline as well as on the attempt cap: say which it was
                out_of_time = failed.retry and self.retry.attempt_timeout(deadline) is None
                raise self._aggregate(run, timed_out=out_of_time) from None
            except DeadlineExhausted:
                raise self._aggregate(run, timed_out=True) from None
        raise self._nothing_to_try(self._planned(prep, whole)[0], limits)

    def _attempt(self, run: RequestRun, ctx: AttemptContext, call: Callable[[PlanStep, float], CallResult[T]],
                 fingerprint: Callable[[], str] | None = None,
                 repeated: Callable[[PlanStep, ProviderError], bool] | None = None,
                 first_chunk: bool = False) -> Served[T]:
        """Find the next step that can be called and call it; skipping a step costs no attempt."""
        while True:
            step = run.next_step()
            if step is None:
                raise AttemptFailed(_NoStepLeft("no plan step left"), retry=False)
            now = self._wall()
            current = self._current(step, now)
            if current is not step.usages:  # later windows: what the outcomes judge (near misses, budgets) too
                step = replace(step, usages=current)
            reservation = self.state.reserve(current, step.amounts, now, run.counted)
            if reservation is None:
                run.skipped.append(f"{step.key}: no capacity left at reserve time")
                continue
            stamped = self._stamped(step, reservation, now)
            if stamped is None:
                run.skipped.append(f"{step.key}: the state store answered too late to hold capacity for the call")
                continue
            step, reservation = stamped
            # What is left *now*, after the reservation write: the call's budget counts from here.
            budget = self.retry.attempt_timeout(ctx.deadline)
            if budget is None:
                self.outcomes.guarded("release", self.state.release, reservation, self._wall())
                raise DeadlineExhausted("the reservation used up the time left for an attempt")
            full = self.retry.settings.attempt_timeout_s
            # A request that asked for a very long answer gets the whole budget (the provider's
            # usual latency says nothing about it) and its timeout is not held against anyone. So
            # do the attempt after a timeout (the answer has shown it is longer than usual) and
            # the last chance (a shorter timeout only saves time for a failover there is not):
            # a timeout of those, if the deadline did not cut it, still counts.
            size = work_size(step.amounts)
            whole = (step.slow_by_request or run.timed_out() or not run.has_untried()
                     or ctx.number >= self.retry.settings.max_attempts)
            own = full if whole else self.timeouts.timeout_for(step.key.provider, full, size, first_chunk=first_chunk)
            budget = min(budget, ctx.timeout_s)
            timeout = min(own, budget)
            cut_short = budget < own or step.slow_by_request
            self.outcomes.failover(run, step)
            started = self.retry.clock()
            try:
                result = self.breakers.call(step.key, self.tracing.wrap(step.key.provider, step.key.model,
                                                                        partial(_marked, call, step, timeout, cut_short,
                                                                                repeated)))
            except BreakerOpen as rejected:
                self.outcomes.guarded("release", self.state.release, reservation, self._wall())
                run.skipped.append(f"{step.key}: {rejected}")
                continue
            except ProviderError as error:
                self.outcomes.attempt_made(run, step, reservation)
                self._failed(run, step, reservation, error, started, ctx)
            except BaseException:  # a bug (or an interrupt): the reservation must not leak with it
                self.outcomes.guarded("release", self.state.release, reservation, self._wall())
                raise
            latency = self.retry.clock() - started
            self.outcomes.attempt_made(run, step, reservation)
            self.timeouts.observe(step.key.provider, latency, work_size(result.actual) if result.actual else size,
                                  first_chunk=first_chunk)
            now = self._wall()
            if result.actual is not None:  # a whole answer; a stream has answered only once it ends (`settle`)
                self.failures.answered(step.key.provider, step.key.model, now, fingerprint)
            recovered = self.failures.succeeded(step.key.provider, now)
            if recovered is not None:  # it answered after a streak: every container starts over
                self.outcomes.guarded("mark_failure", self.state.mark_failure, recovered, now)
            if result.actual is not None:
                self.outcomes.success(run, step, reservation, result.actual, result.rate_limits, latency, now,
                                      deadline=ctx.deadline)
            else:
                self.outcomes.headers(step, result.rate_limits, now, deadline=ctx.deadline)
            return Served(result.value, step, reservation, run, started, ctx.deadline, cut_short, fingerprint,
                          first_chunk)

    def _stamped(self, step: PlanStep, reservation: Reservation,
                 stamp: float) -> tuple[PlanStep, Reservation] | None:
        """The step and its reservation as the call may go with them. Other containers take what a
        window counted to last a window length and the stamp's slack past the reservation's stamp,
        taken before its write; a write that answered later than its windows allow
        (`Reservation.late`: a queued DynamoDB write, a throttled retry) would have the provider
        count the call that much later, and another container admitted a length after the stamp
        would reach the provider less than a length after it. Such a reservation is stamped again
        as of the moment its write answered (`SharedState.restamp`: one more write, only then),
        in that moment's windows (the step's windows follow). Refused, or late again, the step
        is given up like a refused reservation (None), with nothing of it left counted: what was
        reserved is released. A restamp that raises (an error, not a refusal) is passed up
        without a release: its write may have landed, and giving the count back then could give
        it back twice (an over-count at worst, never a limit passed)."""
        answered = self._wall()
        if not reservation.late(stamp, answered):
            return step, reservation
        try:
            # Strongly consistent, as every state read is (`SharedState.load`): the restamp leaves
            # its own count out of what the windows it leaves carry (`SharedState.restamp`), so the
            # read must show its write; a replica a write behind made the carry one reservation
            # short, and a third call went into a 2-requests-a-second window
            # (tests/unit/routing/test_slow_reservation_writes.py).
            current = self._current(step, answered)
        except BaseException:
            self.outcomes.guarded("release", partial(self.state.release, late=True), reservation, self._wall())
            raise
        again = self.state.restamp(reservation, current, answered)
        if again is None:
            self.outcomes.guarded("release", partial(self.state.release, late=True), reservation, self._wall())
            return None
        if again.late(answered, self._wall()):
            self.outcomes.guarded("release", partial(self.state.release, late=True), again, self._wall())
            return None
        return (step if current is step.usages else replace(step, usages=current)), again

    def _repeats(self, fingerprint: Callable[[], str] | None) -> Callable[[PlanStep, ProviderError], bool] | None:
        """Whether a failure repeats the same request's after the model answered others since."""
        if fingerprint is None:
            return None

        def repeated(step: PlanStep, error: ProviderError) -> bool:
            return classify_class(error) in PAYLOAD_PROVOKED and self.failures.repeated(
                step.key.provider, step.key.model, fingerprint(), self._wall())

        return repeated

    def _current(self, step: PlanStep, now: float) -> tuple[WindowUsage, ...]:
        """The step's windows as of `now`. The plan computed them when it was made; a step reached
        after an attempt that took seconds may lie in later windows (a 1-second one surely), and
        reserving in the plan's would count in a window that is over: read those again."""
        usages = step.usages
        if all(u.meter.limit.period.start(now) == u.start for u in usages):
            return usages
        meters = [u.meter for u in usages]
        # the windows only: nothing else of the model is used
        snapshot = self.state.load(meters, (), now)
        return tuple(snapshot.usage(meter, now) for meter in meters)

    def _failed(
        self, run: RequestRun, step: PlanStep, reservation: Reservation, error: ProviderError, started: float,
        ctx: AttemptContext,
    ) -> NoReturn:
        decision = self.outcomes.failure(run, step, reservation, error, self.retry.clock() - started, self._wall(),
                                         deadline=ctx.deadline)
        if decision.action is Action.RETURN:
            raise AttemptFailed(error, retry=False)
        # A 5xx moves on to the next model; with none left (a pinned model, the last step) the
        # same model most likely answers a moment later: it gets one retry, as a connection does
        # (not when the request caused it: the same request would fail the same way, and be paid).
        last_chance = (decision.action is Action.NEXT_MODEL and decision.error_class in TRANSIENT
                       and not error.request_caused and not run.has_untried())
        if (decision.action is Action.RETRY_SAME or last_chance) and run.may_retry_same(step):
            wait = retry_delay(ctx.number - 1, policy=self.retry.settings.backoff,
                               remaining_s=self.retry.wait_budget(ctx.deadline), hint_s=retry_hint_s(error),
                               rand=self._rand)
            if wait is not None:
                run.retry_same(step)
                raise AttemptFailed(error, retry=True, wait_s=wait)
        if decision.counts_for_circuit and decision.circuit_scope is Scope.PROVIDER:
            run.shun(step.key.provider)  # its key or connection failed: every model of it would
        raise AttemptFailed(error, retry=True)

    # --- settling what ends after the call returned (streams) ----------------------------------------
    def settle(self, served: Served[T], actual: Amounts | None, latency_s: float, *, ended: bool = True) -> None:
        """A stream's end: `ended`, the provider sent it whole (not: the caller left first, so
        whether the model would have finished is not known, and it is not taken to have answered).
        A stream whose attempt returned at its first chunk has now shown how long its whole answer
        took (`latency_s`, from the attempt's start): whole answers' timeouts and the providers'
        pace learn it, as they learn an answer read whole inside its attempt."""
        now = self._wall()
        if ended:
            self.failures.answered(served.step.key.provider, served.step.key.model, now, served.fingerprint)
            if served.first_chunk:
                self.timeouts.observe(served.step.key.provider, latency_s,
                                      work_size(actual) if actual else work_size(served.step.amounts))
        self.outcomes.success(served.run, served.step, served.reservation, actual, None, latency_s, now,
                              deadline=served.deadline)

    def prefer_next(self, pk: str, key: ModelKey) -> None:
        """Name `key` in the state item `pk`, for a later request whose preparation prefers `pk`
        (chat: the next turn of this conversation). Guarded: it never fails a served request."""
        self.outcomes.guarded("remember_affinity", self.state.remember_affinity, pk, key, self._wall())

    def fail_late(self, served: Served[T], error: ProviderError, latency_s: float,
                  actual: Amounts | None = None) -> None:
        """A failure after the first byte reached the caller: count it; the reservation is
        reconciled with `actual` (what was produced until the cut, when the caller knows it)."""
        if served.cut_short and error.transport == TRANSPORT_TIMEOUT:
            error.request_caused = True
        if actual is not None:
            self.outcomes.guarded("reconcile", self.state.reconcile, served.reservation, actual, self._wall())
        self.outcomes.failure(served.run, served.step, None, error, latency_s, self._wall(), deadline=served.deadline)
        self.breakers.record_failure(served.step.key, error)

    # --- errors -------------------------------------------------------------------------------------
    def _aggregate(self, run: RequestRun, *, timed_out: bool) -> GatewayError:
        hints = [a.retry_after_s for a in run.failed if a.retry_after_s]
        return aggregate_error(run.failed, retry_after_s=min(hints) if hints else None, timed_out=timed_out)

    @staticmethod
    def _nothing_to_try(plan: Plan, limits: CallerLimits | None = None) -> GatewayError:
        """Every candidate was dropped: the caller's own 429 if its limits did it, else 429 if
        only capacity stopped them, else 503."""
        own = limits.refusal(plan) if limits is not None else None
        if own is not None:
            return own
        if plan.too_large:  # no wait makes it fit: a 429 would have the caller (and SDKs) retry in vain
            reasons = "; ".join(f"{key}: {why}" for key, why in plan.dropped[:5])
            return PayloadTooLarge(f"This request is larger than the limits of every model that could serve it allow "
                                   f"({reasons}). A smaller prompt or max_tokens would fit.", code="request_too_large")
        error = aggregate_error([], retry_after_s=plan.free_again_in_s, skipped_for_rate_limits=plan.capacity_only)
        error.extra["skipped"] = [f"{key}: {why}" for key, why in plan.dropped][:10]
        return error


class _Once:
    """`fn()`, computed at the first call and kept."""

    __slots__ = ("_fn", "_value")

    def __init__(self, fn: Callable[[], str]) -> None:
        self._fn: Callable[[], str] | None = fn
        self._value = ""

    def __call__(self) -> str:
        if self._fn is not None:
            self._value, self._fn = self._fn(), None
        return self._value


def _marked(call: Callable[[PlanStep, float], CallResult[T]], step: PlanStep, timeout: float, cut_short: bool,
            repeated: Callable[[PlanStep, ProviderError], bool] | None = None) -> CallResult[T]:
    """Call; a timeout of a call whose budget the request deadline cut short is marked
    `request_caused`, and a failure that `repeated` says is the request's doing `repeated`, both
    *before* the breakers classify them, so they count against neither the circuits nor the
    provider's standing (a repeat is still retried and counted as a failure: the request's doing
    is only a guess)."""
    try:
        return call(step, timeout)
    except ProviderError as error:
        if cut_short and error.transport == TRANSPORT_TIMEOUT:
            error.request_caused = True
        elif repeated is not None and not error.request_caused and repeated(step, error):
            error.repeated = True
        raise
