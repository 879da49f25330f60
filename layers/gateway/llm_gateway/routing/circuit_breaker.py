"""Circuit breakers per provider and per model, shared by every container, on Powertools.

The state machine, the single-prober election (a conditional write with a lease) and the
local state cache are Powertools' `utilities.circuit_breaker`; this module only decides
*what* to protect and *which* failures count:

- each call runs through two nested Powertools breakers, `cb#{provider}` outside and
  `cb#{provider}#{model}` inside;
- the classifier decides whether a failure counts and at which scope; the call raises a
  scope-tagged exception that only the matching breaker is configured to handle
  (`handled_exceptions`), so a 429 or a bad request never trips anything;
- `blocked_from` reads the raw breaker items returned by the per-request state load, so the
  selector skips open circuits without calling them (and without a second read);
- `record_failure` replays a failure that happened after the call returned (a stream cut
  after its first chunk) through the same machinery.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

from aws_lambda_powertools.utilities.circuit_breaker import (
    CircuitBreakerConfig,
    CircuitBreakerOpenError,
    CircuitState,
    CircuitTransition,
    circuit_breaker,
)
from aws_lambda_powertools.utilities.circuit_breaker import base as _powertools_base
from aws_lambda_powertools.utilities.circuit_breaker.base import CircuitBreakerHandler

from llm_gateway.observability.metrics import BREAKER_TRANSITIONS, Metrics
from llm_gateway.providers.base import ProviderError
from llm_gateway.retry.classifier import Decision, Scope, classify
from llm_gateway.routing.breaker_store import EXPIRY_ATTR, KEY_ATTR, BreakerStore, plain_item
from llm_gateway.state.items import circuit_ids, model_circuit, provider_circuit
from llm_gateway.state.store import ModelKey

T = TypeVar("T")
RECOVERY_TIMEOUT_S = 30


@dataclass(frozen=True, slots=True)
class BreakerSettings:
    failure_threshold: int = 3  # consecutive counted failures (per container, see docs)
    recovery_timeout_s: int = RECOVERY_TIMEOUT_S  # open → one probe after this long
    local_cache_max_age_s: int = 5


@dataclass(frozen=True, slots=True)
class BreakerView:
    """What the selector and the status page need to know about one circuit."""

    circuit: str
    state: str
    blocked: bool
    until: float | None  # when it becomes probe-eligible (open) or the probe lease lapses
    opened_at: float | None


def view_of(item: Mapping[str, Any], now: float, recovery_timeout_s: float) -> BreakerView | None:
    """Interpret one raw breaker item at `now`; None if it is missing, expired or closed."""
    data = plain_item(item)
    expires = data.get(EXPIRY_ATTR)
    if expires is not None and float(expires) <= now:
        return None  # DynamoDB TTL is lazy: an expired item is no item
    state = str(data.get("state", CircuitState.CLOSED.value))
    opened_at = data.get("opened_at")
    opened = float(opened_at) if opened_at is not None else None
    name = str(data.get(KEY_ATTR, ""))
    if state == CircuitState.OPEN.value:
        until = (opened if opened is not None else now) + recovery_timeout_s
        return BreakerView(name, state, now < until, until, opened)
    if state == CircuitState.HALF_OPEN.value:
        lease = data.get("probe_lease_expiry")
        lease_until = float(lease) if lease is not None else None
        return BreakerView(name, state, lease_until is None or now < lease_until, lease_until, opened)
    return None


def blocked_from(
    items: Mapping[str, Mapping[str, Any]], now: float, recovery_timeout_s: float = RECOVERY_TIMEOUT_S
) -> dict[str, str]:
    """Circuit id → reason, for every circuit that must not be called at `now`.

    An open circuit whose cooldown has passed is *not* blocked: the next request may become
    the single probe (Powertools elects it when the call is made).
    """
    blocked: dict[str, str] = {}
    for circuit, item in items.items():
        view = view_of({KEY_ATTR: circuit, **plain_item(item)}, now, recovery_timeout_s)
        if view is not None and view.blocked:
            what = "open" if view.state == CircuitState.OPEN.value else "half-open, probe in flight"
            blocked[circuit] = f"breaker {what} until {view.until:.0f}" if view.until else f"breaker {what}"
    return blocked


def blocked_keys(
    keys: Iterable[ModelKey], items: Mapping[str, Mapping[str, Any]], now: float, recovery_timeout_s: float
) -> dict[ModelKey, str]:
    """The selector's `blocked` map: a model is blocked by its own or its provider's circuit."""
    circuits = blocked_from(items, now, recovery_timeout_s)
    out: dict[ModelKey, str] = {}
    if not circuits:  # the usual case: no circuit open, no name to format per key
        return out
    for key in keys:
        reason = circuits.get(provider_circuit(key.provider)) or circuits.get(model_circuit(key))
        if reason:
            out[key] = reason
    return out


class CountedFailure(Exception):
    """A provider failure the classifier says counts against a circuit at `scope`."""

    def __init__(self, error: ProviderError, decision: Decision) -> None:
        super().__init__(str(error))
        self.error = error
        self.decision = decision


class ProviderScopedFailure(CountedFailure):
    pass


class ModelScopedFailure(CountedFailure):
    pass


class BreakerOpen(Exception):
    """The call was not made: a circuit rejected it (open, or another container is probing)."""

    def __init__(self, circuit: str) -> None:
        super().__init__(f"circuit {circuit} is open")
        self.circuit = circuit


class CircuitBreakers:
    """Provider and model breakers over one shared persistence layer."""

    def __init__(
        self,
        persistence: BreakerStore,
        settings: BreakerSettings | None = None,
        *,
        metrics: Metrics | None = None,
        classifier: Callable[[ProviderError], Decision] = classify,
    ) -> None:
        self.persistence = persistence
        self.settings = settings or BreakerSettings()
        self._metrics = metrics
        self._classify = classifier
        self._provider_config = self._config(ProviderScopedFailure)
        self._model_config = self._config(ModelScopedFailure)
        self._protected: dict[tuple[str, int], Callable[[Callable[[], Any]], Any]] = {}
        self._bound: set[str] = set()  # circuits Powertools has configured on the persistence
        self._names: dict[ModelKey, tuple[str, str]] = {}  # a model's (provider, model) circuit names

    def _config(self, handled: type[CountedFailure]) -> CircuitBreakerConfig:
        """A breaker that counts only failures of its own scope (see the module docstring)."""
        return CircuitBreakerConfig(
            handled_exceptions=handled,
            failure_threshold=self.settings.failure_threshold,
            recovery_timeout=self.settings.recovery_timeout_s,
            success_threshold=1,  # one good probe closes: exactly one probe per recovery
            local_cache_max_age=self.settings.local_cache_max_age_s,
        )

    # --- reading ----------------------------------------------------------------------------------
    def current_items(self, keys: Iterable[ModelKey], loaded: Mapping[str, Mapping[str, Any]], *,
                      degraded: bool = False) -> dict[str, Any]:
        """Breaker items for these candidates: from the state load when it read our table
        (and then primed into Powertools' cache), else straight from the persistence layer.

        The load read every candidate's circuit, so a circuit it did not find is closed: it is
        primed as closed too, or Powertools would GetItem it (a missing record is a cache miss)
        on the next attempt. While the store is `degraded` the load came from in-container state,
        which holds no breaker items: what Powertools already knows is kept, and the rest is
        primed closed (Powertools' own fail-open), so no attempt waits on a read of a store
        that is down."""
        ids = circuit_ids(keys)
        if getattr(self.persistence, "shares_state_table", False):
            found = {cid: dict(loaded[cid]) for cid in ids if cid in loaded}
            self.persistence.prime({KEY_ATTR: cid, **plain_item(item)} for cid, item in found.items())
            absent = [cid for cid in ids if cid not in found]
            self.persistence.prime_closed(absent, keep_known=degraded)
            return found
        return self.persistence.read_items(ids)

    def blocked(self, keys: Iterable[ModelKey], items: Mapping[str, Mapping[str, Any]], now: float) -> dict[ModelKey, str]:
        return blocked_keys(keys, items, now, self.settings.recovery_timeout_s)

    # --- calling ----------------------------------------------------------------------------------
    def call(self, key: ModelKey, fn: Callable[[], T]) -> T:
        """Run `fn` through the provider then the model breaker.

        Raises `BreakerOpen` if either rejects the call, or the original `ProviderError`.

        When both circuits are closed with no failure counted (nearly every call), `fn` runs
        without Powertools' two handlers (they cost about a tenth of what the gateway adds to a
        request), and what they would have done after it is done here: a success ends any
        streak counted meanwhile (another thread's failure), a failure is counted by the
        handlers' closed-circuit step on the state the call was admitted on (`_closed_failure`).
        """
        names = self._names.get(key)
        if names is None:  # each model's two circuit names formatted once (this runs on every attempt)
            if len(self._names) >= 4096:
                self._names.clear()
            names = self._names[key] = (provider_circuit(key.provider), model_circuit(key))
        if not self._quiet(names):
            return self._through(key, fn)
        try:
            result = fn()
        except ProviderError as error:
            self._closed_failure(key, error)
            raise
        failures = _powertools_base._LOCAL_FAILURES
        for name in names:
            if failures.get(name):
                with _powertools_base._COUNTERS_LOCK:
                    failures[name] = 0
        return result

    def _quiet(self, names: tuple[str, str]) -> bool:
        """Whether Powertools, asked to run a call on both circuits `names` (a model's provider and
        model circuits), would run it as a closed circuit's call (`_call_closed`): each circuit has
        been through Powertools here before (so its settings are bound), its last observed state
        and its state now are CLOSED, and no failure is counted toward tripping it. Powertools' per-process counters
        are read as they are (the simulator's containers share them, as Powertools keeps them)."""
        failures, observed = _powertools_base._LOCAL_FAILURES, _powertools_base._LAST_OBSERVED_STATE
        for name in names:
            if (name not in self._bound or failures.get(name, 0) or observed.get(name, CircuitState.CLOSED)
                    is not CircuitState.CLOSED or self.persistence.get_state(name).state is not CircuitState.CLOSED):
                return False
        return True

    def _closed_failure(self, key: ModelKey, error: ProviderError) -> None:
        """Count `error` as the two handlers count a failure of a call they admitted on closed
        circuits: their closed-circuit step, without reading the state again (a state read after
        a slow call could find the circuit opened meanwhile and make this failure its probe)."""

        def replay() -> NoReturn:
            raise error

        def handler(function: Callable[[], Any], name: str, config: CircuitBreakerConfig) -> CircuitBreakerHandler:
            return CircuitBreakerHandler(function=function, name=name, config=config,
                                         persistence_store=self.persistence, on_transition=self._on_transition)

        model = handler(self._scoped(replay), model_circuit(key), self._model_config)
        with contextlib.suppress(ProviderError, CountedFailure):
            handler(model._call_closed, provider_circuit(key.provider), self._provider_config)._call_closed()

    def _scoped(self, fn: Callable[[], T]) -> Callable[[], T]:
        """`fn`, its counted failures raised as the exception only their scope's breaker handles."""

        def scoped() -> T:
            try:
                return fn()
            except ProviderError as error:
                decision = self._classify(error)
                if not decision.counts_for_circuit:
                    raise
                failure = ProviderScopedFailure if decision.circuit_scope is Scope.PROVIDER else ModelScopedFailure
                raise failure(error, decision) from error

        return scoped

    def _through(self, key: ModelKey, fn: Callable[[], T]) -> T:
        """`fn` through Powertools' provider breaker, then its model breaker."""
        innermost = self._scoped(fn)

        def model_level() -> T:
            return self._guard(model_circuit(key), innermost, self._model_config)

        try:
            return self._guard(provider_circuit(key.provider), model_level, self._provider_config)
        except CountedFailure as failure:
            raise failure.error from failure.error.__cause__
        except CircuitBreakerOpenError as rejected:
            circuit = rejected.circuit.name if rejected.circuit else provider_circuit(key.provider)
            raise BreakerOpen(circuit) from None

    def record_failure(self, key: ModelKey, error: ProviderError) -> None:
        """Count a failure seen after `call` returned (a stream that broke mid-way)."""

        def replay() -> None:
            raise error

        with contextlib.suppress(ProviderError, BreakerOpen):
            self._through(key, replay)

    def _guard(self, name: str, fn: Callable[[], T], config: CircuitBreakerConfig) -> T:
        """`fn()` under Powertools' breaker `name`. The decorated callable is built once per
        circuit and takes the call as its argument (decorating every call cost a `functools.wraps`
        and two closures per breaker per attempt); Powertools still runs one handler per call."""
        protected = self._protected.get((name, id(config)))
        if protected is None:
            protected = circuit_breaker(  # Powertools' decorator returns a bare Callable
                name=name, persistence_store=self.persistence, config=config, on_transition=self._on_transition
            )(_call)
            self._protected[(name, id(config))] = protected
        self._bound.add(name)  # the handler binds the circuit's settings before it runs `fn`
        result: T = protected(fn)
        return result

    def _on_transition(self, transition: CircuitTransition) -> None:
        if self._metrics is not None:
            self._metrics.count(
                BREAKER_TRANSITIONS, circuit=transition.circuit_name, to_state=str(transition.to_state)
            )


def _call(fn: Callable[[], T]) -> T:
    return fn()


def reset_local_counters() -> None:
    """Forget Powertools' per-process failure/success streaks (tests simulate fresh containers).

    Powertools keeps them in module-level dicts keyed by circuit name, so two breaker objects in
    one process share them; a real Lambda container is one process, so production never needs this.
    """
    with _powertools_base._COUNTERS_LOCK:
        _powertools_base._LOCAL_FAILURES.clear()
        _powertools_base._LOCAL_SUCCESSES.clear()
        _powertools_base._LAST_OBSERVED_STATE.clear()
