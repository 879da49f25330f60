"""Routes one request across providers so that failures stay invisible while anything can serve.

prepare (selector, no I/O) → one state load (windows, cooldowns, headers and breaker items in
one BatchGetItem) → blocked = open breakers + providers with rejected keys → plan (balancer as
the tie-breaker) → for each step, within `max_attempts` and the deadline: reserve (skip the step
if it would overflow a limit) → call through the breakers with a per-attempt timeout shrunk to
what is left → reconcile usage, keep rate-limit headers, cool down on 429 → next step or return.

Streaming: a failure before the first chunk fails over like any other; after it, the chunk
iterator raises `ProviderError` and the gateway ends the SSE body with an error event (text
already sent is never repeated by another model).

Every collaborator is injected (`RouterDeps`), so tests build a router from fake providers, a
MemoryStore or a moto-backed store, and a catalog, without HTTP handlers.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from llm_gateway.api.errors import GatewayError
from llm_gateway.api.schemas import ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, Usage
from llm_gateway.observability.metrics import Metrics, RecordingMetrics
from llm_gateway.providers.base import TRANSPORT_STREAM_CUT, ChatAdapter, ProviderError
from llm_gateway.providers.engine import ProviderEngine
from llm_gateway.retry.aggregate import aggregate_error
from llm_gateway.retry.backoff import retry_delay, retry_hint_s
from llm_gateway.retry.caller_error import caller_error
from llm_gateway.retry.classifier import Action, Scope, classify
from llm_gateway.retry.handler import (
    AttemptContext,
    AttemptFailed,
    Deadline,
    DeadlineExhausted,
    RetryHandler,
    RetrySettings,
)
from llm_gateway.routing.balancer import CapacityBalancer
from llm_gateway.routing.breaker_store import MemoryBreakerPersistence
from llm_gateway.routing.circuit_breaker import BreakerOpen, CircuitBreakers, circuit_ids
from llm_gateway.routing.health import HealthView, MemoryHealthStore, PassiveHealth
from llm_gateway.routing.outcomes import Outcomes
from llm_gateway.routing.run import AttemptRecord, RequestRun
from llm_gateway.selection.catalog import Catalog, default_catalog
from llm_gateway.selection.cost import request_cost
from llm_gateway.selection.selector import Plan, PlanStep, Selector
from llm_gateway.state.memory import MemoryStore
from llm_gateway.state.rate_limits import next_admission_at
from llm_gateway.state.store import ModelKey, ModelState, Reservation, StateSnapshot, StateStore

AUTO_ALIASES = ("auto", "auto:small", "auto:large", "auto:reasoning")
__all__ = ["AUTO_ALIASES", "AttemptRecord", "RoutedCompletion", "RoutedStream", "Router", "RouterDeps"]


@dataclass
class RoutedCompletion:
    completion: ChatCompletion
    provider: str
    model: str
    attempts: list[AttemptRecord]
    cost_usd: float = 0.0
    free: bool = False
    cost_estimated: bool = False


@dataclass
class RoutedStream:
    """A stream that has produced its first chunk; `usage`/`cost_usd` are final once drained."""

    provider: str
    model: str
    attempts: list[AttemptRecord]
    chunks: Iterator[ChatCompletionChunk]
    usage: Usage | None = None
    cost_usd: float = 0.0
    free: bool = False
    cost_estimated: bool = False
    extra: dict[str, object] = field(default_factory=dict)


@dataclass
class RouterDeps:
    """Collaborators; anything left None gets an in-memory default (local runs, tests)."""

    catalog: Catalog | None = None
    store: StateStore | None = None
    breakers: CircuitBreakers | None = None
    health: HealthView | None = None
    passive: PassiveHealth | None = None
    metrics: Metrics | None = None
    retry: RetrySettings | None = None
    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    rand: Callable[[], float] = random.random


class _NoStepLeft(Exception):
    pass


@dataclass
class _Call:
    """One request being routed: the plan run plus what every attempt needs."""

    request: ChatCompletionRequest
    run: RequestRun
    stream: bool
    buffered: bool = False
    prompt_tokens: int = 0


class Router:
    def __init__(
        self,
        adapters: Mapping[str, ChatAdapter],
        engine: ProviderEngine,
        *,
        max_attempts: int = 3,
        attempt_timeout_s: float = 20.0,
        deadline_s: float = 25.0,
        deps: RouterDeps | None = None,
    ) -> None:
        deps = deps or RouterDeps()
        self.adapters = dict(adapters)
        self.engine = engine
        self.catalog = deps.catalog or default_catalog()
        self.selector = Selector(self.catalog)
        self.store: StateStore = deps.store or MemoryStore()
        self.metrics = deps.metrics or RecordingMetrics()
        self.breakers = deps.breakers or CircuitBreakers(MemoryBreakerPersistence(), metrics=self.metrics)
        self.health = deps.health or HealthView(MemoryHealthStore(), self.adapters)
        self.passive = deps.passive or PassiveHealth()
        retry = deps.retry or RetrySettings(max_attempts=max_attempts, attempt_timeout_s=attempt_timeout_s,
                                            deadline_s=deadline_s)
        self.retry = RetryHandler(retry, clock=deps.clock, sleep=deps.sleep)
        self.balancer = CapacityBalancer()
        self.outcomes = Outcomes(self.store, self.metrics, self.passive, retry.backoff)
        self._wall = deps.wall
        self._available: frozenset[ModelKey] | None = None
        self._rand = deps.rand

    # --- public -----------------------------------------------------------------------------------
    def available(self) -> frozenset[ModelKey]:
        """Catalog models whose provider is configured (and lists the model, when it lists any).

        Adapters and catalog are fixed for the container's life, so this is computed once."""
        if self._available is None:
            self._available = frozenset(
                entry.key for entry in self.catalog.entries
                if (adapter := self.adapters.get(entry.provider)) is not None
                and (not adapter.config.models or entry.model in adapter.config.models)
            )
        return self._available

    def complete(self, request: ChatCompletionRequest, deadline: float | None = None) -> RoutedCompletion:
        limit = self._deadline(deadline)  # planning and the state load count against it too
        call = self._begin(request, stream=False)
        reply, step = self._run(call, limit)
        run = call.run
        usage = reply.completion.usage
        texts = [c.message.content or "" for c in reply.completion.choices]
        cost = request_cost(step.entry.price, usage, free=step.free, estimate=self._estimate(call, texts))
        return RoutedCompletion(reply.completion, step.key.provider, step.key.model, run.attempts,
                                cost.usd, cost.free, cost.estimated)

    def stream(
        self, request: ChatCompletionRequest, deadline: float | None = None, *, buffered: bool = False
    ) -> RoutedStream:
        """Open a stream that has produced its first chunk.

        `buffered=True` is for callers that send the SSE body whole (API Gateway REST + Python):
        nothing reaches the user before the provider's stream ends, so the whole stream is read
        inside the attempt and a cut at any point fails over transparently. Live callers
        (`buffered=False`) get chunks as they come; a failure after the first one raises
        `ProviderError` from the iterator and the caller ends the stream with an error event.
        """
        limit = self._deadline(deadline)
        call = self._begin(request, stream=True, buffered=buffered)
        (opened, rest, first, reservation, started), step = self._run(call, limit)
        routed = RoutedStream(step.key.provider, step.key.model, call.run.attempts, iter(()), free=step.free)
        routed.chunks = self._drain(call, step, reservation, opened, first, rest, routed, started)
        return routed

    def plan(self, request: ChatCompletionRequest) -> tuple[Plan, StateSnapshot]:
        """The plan this request would follow now (for `llm-gateway plan` and tests)."""
        now = self._wall()
        prep = self.selector.prepare(request, self.available())
        keys = list(prep.limits)
        snapshot = self.store.load(prep.limits, now, circuit_ids(keys))
        items = self.breakers.current_items(keys, snapshot.breakers)
        blocked = self.breakers.blocked(keys, items, now)
        for provider, why in self.health.unavailable().items():
            blocked.update({key: why for key in keys if key.provider == provider and key not in blocked})
        plan = self.selector.plan(prep, snapshot, now, blocked=blocked, tie_breaker=self.balancer)
        return plan, snapshot

    def status(self) -> dict[str, Any]:
        """Breakers, cooldowns, window capacity and last errors per provider and model."""
        from llm_gateway.routing.status import build_status

        return build_status(self)

    # --- flow -------------------------------------------------------------------------------------
    def _begin(self, request: ChatCompletionRequest, *, stream: bool, buffered: bool = False) -> _Call:
        plan, snapshot = self.plan(request)
        run = RequestRun(list(plan.steps))
        if not plan.steps:
            raise self._nothing_to_try(plan, snapshot)
        return _Call(request, run, stream, buffered, plan.prompt_tokens)

    def _deadline(self, deadline: float | None) -> Deadline:
        """The caller's absolute deadline (same clock), or our own budget from now."""
        return self.retry.deadline(None if deadline is None else deadline - self.retry.clock())

    def _run(self, call: _Call, limit: Deadline) -> tuple[Any, PlanStep]:
        try:
            return self.retry.run(lambda ctx: self._attempt(call, ctx), limit)
        except AttemptFailed as failed:
            cause = failed.cause
            if isinstance(cause, ProviderError) and (decision := classify(cause)).action is Action.RETURN:
                raise caller_error(cause, decision.error_class) from cause
            raise self._aggregate(call.run, timed_out=False) from None
        except DeadlineExhausted:
            raise self._aggregate(call.run, timed_out=True) from None

    def _attempt(self, call: _Call, ctx: AttemptContext) -> tuple[Any, PlanStep]:
        """Find the next step that can be called and call it; skipping a step costs no attempt."""
        run = call.run
        while True:
            step = run.next_step()
            if step is None:
                raise AttemptFailed(_NoStepLeft("no plan step left"), retry=False)
            reservation = self.store.reserve(step.key, step.limits, step.reserve_tokens, self._wall())
            if reservation is None:
                run.skipped.append(f"{step.key}: no capacity left at reserve time")
                continue
            self.outcomes.failover(run, step)
            started = self.retry.clock()
            timeout = min(ctx.timeout_s, max(0.05, ctx.deadline.remaining() - self.retry.settings.safety_margin_s))
            try:
                result = self.breakers.call(step.key, lambda s=step, t=timeout: self._call(call, s, t))
            except BreakerOpen as rejected:
                self.outcomes.guarded("reconcile", self.store.reconcile, reservation, 0, self._wall())
                run.skipped.append(f"{step.key}: {rejected}")
                continue
            except ProviderError as error:
                self._failed(call, step, reservation, error, started, ctx)
            return self._succeeded(call, step, reservation, result, started), step

    def _call(self, call: _Call, step: PlanStep, timeout: float) -> Any:
        adapter = self.adapters[step.key.provider]
        if not call.stream:
            return self.engine.complete(adapter, call.request, step.key.model, timeout)
        opened = self.engine.open_stream(adapter, call.request, step.key.model, timeout)
        try:
            rest = iter(opened)
            first = next(rest)
            if call.buffered:
                collected = list(rest)  # a cut here is a failure of this attempt: fail over
                opened.close()
                rest = iter(collected)
        except StopIteration:
            opened.close()
            raise ProviderError(f"{step.key.provider} ended the stream before any chunk",
                                provider=step.key.provider, model=step.key.model,
                                transport=TRANSPORT_STREAM_CUT) from None
        except BaseException:
            opened.close()
            raise
        return opened, rest, first

    def _succeeded(self, call: _Call, step: PlanStep, reservation: Reservation, result: Any, started: float) -> Any:
        latency = self.retry.clock() - started
        now = self._wall()
        if call.stream:
            opened, rest, first = result
            self.outcomes.headers(step, opened.rate_limits, now)
            return opened, rest, first, reservation, started
        self.outcomes.success(call.run, step, reservation, result.completion.usage, result.rate_limits, latency, now)
        return result

    def _failed(
        self, call: _Call, step: PlanStep, reservation: Reservation, error: ProviderError, started: float,
        ctx: AttemptContext,
    ) -> None:
        run = call.run
        decision = self.outcomes.failure(run, step, reservation, error, self.retry.clock() - started, self._wall())
        if decision.action is Action.RETURN:
            raise AttemptFailed(error, retry=False)
        if decision.action is Action.RETRY_SAME and run.may_retry_same(step):
            wait = retry_delay(0, policy=self.retry.settings.backoff, remaining_s=self.retry.wait_budget(ctx.deadline),
                               hint_s=retry_hint_s(error), rand=self._rand)
            if wait is not None:
                run.retry_same(step)
                raise AttemptFailed(error, retry=True, wait_s=wait)
        # Fail over to another provider first: a provider that just failed one model (even with a
        # 429: limits are often per organization) is the likeliest to fail the next one too.
        if decision.affects_provider and decision.circuit_scope is Scope.PROVIDER:
            run.shun(step.key.provider)
        else:
            run.demote(step.key.provider)
        raise AttemptFailed(error, retry=True)

    def _drain(
        self, call: _Call, step: PlanStep, reservation: Reservation, opened: Any, first: ChatCompletionChunk,
        rest: Iterator[ChatCompletionChunk], routed: RoutedStream, started: float,
    ) -> Iterator[ChatCompletionChunk]:
        """Yield the stream; settle usage, cost and health when it ends, however it ends."""
        texts: list[str] = []
        try:
            for chunk in itertools.chain((first,), rest):
                if chunk.usage is not None:
                    routed.usage = chunk.usage
                texts += [c.delta.content for c in chunk.choices if c.delta.content]
                yield chunk
        except ProviderError as error:
            self.outcomes.failure(call.run, step, reservation, error, self.retry.clock() - started, self._wall())
            self.breakers.record_failure(step.key, error)
            raise
        finally:
            opened.close()
        cost = request_cost(step.entry.price, routed.usage, free=step.free, estimate=self._estimate(call, texts))
        routed.cost_usd, routed.free, routed.cost_estimated = cost.usd, cost.free, cost.estimated
        self.outcomes.success(call.run, step, reservation, routed.usage, None, self.retry.clock() - started,
                              self._wall())

    def _estimate(self, call: _Call, texts: list[str]) -> Usage:
        """Usage to price when a provider reports none: our prompt estimate + the text it sent."""
        return Usage.of(call.prompt_tokens, self.selector.tokens.count_text("".join(texts)))

    # --- errors -----------------------------------------------------------------------------------
    def _aggregate(self, run: RequestRun, *, timed_out: bool) -> GatewayError:
        hints = [a.retry_after_s for a in run.failed if a.retry_after_s]
        return aggregate_error(run.failed, retry_after_s=min(hints) if hints else None, timed_out=timed_out)

    def _nothing_to_try(self, plan: Plan, snapshot: StateSnapshot) -> GatewayError:
        """Every candidate was dropped: 429 if only capacity stopped them, else 503."""
        now = self._wall()
        reasons = [why for _, why in plan.dropped]
        capacity_only = bool(reasons) and all(not why.startswith("blocked") for why in reasons)
        waits = [wait for state in snapshot.models.values() if (wait := _free_again_in(state, now)) is not None]
        error = aggregate_error([], retry_after_s=min(waits) if waits else None,
                                skipped_for_rate_limits=capacity_only)
        error.extra["skipped"] = [f"{key}: {why}" for key, why in plan.dropped][:10]
        return error


def _free_again_in(state: ModelState, now: float) -> float | None:
    """Seconds until this model can take a request again: its cooldown and every full window."""
    blocked_until = [state.cooldown.until] if state.cooldown is not None and state.cooldown.until > now else []
    for usage in state.windows:
        at = next_admission_at(state, usage, now)
        if at is not None:
            blocked_until.append(at)
    return max(blocked_until) - now if blocked_until else None
