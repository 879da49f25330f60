"""The one composition root: a core every capability shares, and a builder per capability.

Settings, keys, catalog, state store, breakers, health, failure memory, timeouts, metrics, the
HTTP engine and the failover runner are built here, once per container at cold start, and passed
in; nothing below this module builds a collaborator of its own or reads the environment. Each
Lambda builds only the capability it serves (`build_chat`, `build_transcription`).

With a state table configured, rate-limit state, breakers and health all live in that one
DynamoDB table (behind the degraded-mode wrapper); without one, everything is in memory.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from llm_gateway.config import Settings, fetch_secret_values
from llm_gateway.keys import KeySource
from llm_gateway.observability.logging import build_logger, redact_into
from llm_gateway.observability.metrics import STATE_DEGRADED, EmfMetrics, Metrics
from llm_gateway.providers.base import CHAT, TRANSCRIPTION, ChatAdapter
from llm_gateway.providers.engine import ProviderEngine, build_http_client
from llm_gateway.providers.pool import AdapterPool
from llm_gateway.retry.handler import RetryHandler, RetrySettings
from llm_gateway.rollout.flag import Rollout
from llm_gateway.routing.balancer import CapacityBalancer
from llm_gateway.routing.breaker_store import MemoryBreakerPersistence
from llm_gateway.routing.chat import ChatRouter
from llm_gateway.routing.circuit_breaker import BreakerSettings, CircuitBreakers
from llm_gateway.routing.exhausted import ExhaustedMemory
from llm_gateway.routing.failures import AdaptiveTimeouts, FailureMemory
from llm_gateway.routing.health import DynamoHealthStore, HealthView, MemoryHealthStore, PassiveHealth
from llm_gateway.routing.outcomes import Outcomes
from llm_gateway.routing.runner import FailoverRunner, RunnerSettings
from llm_gateway.routing.tracing import build_tracing
from llm_gateway.selection.catalog import Catalog, load_catalog
from llm_gateway.selection.planner import Planner
from llm_gateway.selection.selector import ChatPreparer
from llm_gateway.selection.tokens import TokenEstimator
from llm_gateway.state.items import is_usage_pk
from llm_gateway.state.memory import MemoryStore
from llm_gateway.state.shared import SharedState
from llm_gateway.state.store import StateStore
from llm_gateway.tenancy.admin import KeyAdmin
from llm_gateway.tenancy.service import Tenancy
from llm_gateway.tenancy.usage import UsageLedger

if TYPE_CHECKING:  # the chat Lambda never builds transcription (its modules: about 5 ms of a cold start)
    from llm_gateway.providers.transcription import TranscriptionAdapter
    from llm_gateway.routing.transcription import TranscriptionRouter

HEALTH_CACHE_S = 60.0


@dataclass(frozen=True)
class Clocks:
    """Time and chance, injected so routers and runners can be tested on a fake clock."""

    monotonic: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    rand: Callable[[], float] = random.random


@dataclass(frozen=True)
class Core:
    """What every capability's gateway shares in a container: settings, keys, catalog, state, breakers."""

    settings: Settings
    keys: KeySource
    catalog: Catalog
    metrics: Metrics
    logger: Any
    engine: ProviderEngine
    state: SharedState
    breakers: CircuitBreakers
    passive: PassiveHealth
    failures: FailureMemory
    chat_adapters: AdapterPool[ChatAdapter]
    health: HealthView
    runner: FailoverRunner
    tenancy: Tenancy


def build_core(
    settings: Settings,
    *,
    metrics: Metrics | None = None,
    http_client: httpx.Client | None = None,
    store: StateStore | None = None,
    dynamodb_client: Any = None,
    clocks: Clocks | None = None,
    catalog: Catalog | None = None,
    retry: RetrySettings | None = None,
    breakers: CircuitBreakers | None = None,
) -> Core:
    """Everything the capabilities share. The keyword arguments let tests and benchmarks put an
    `httpx.MockTransport`, a recording metrics sink, a given store, catalog, retry tunables,
    breakers or a fake clock under the real code; production passes none of them."""
    clocks = clocks or Clocks()
    metrics = metrics or EmfMetrics()
    logger = build_logger(settings.secrets)
    keys = KeySource(settings, settings.secret_fetch or fetch_secret_values, on_new_secrets=redact_into(logger))
    catalog = catalog or settings.catalog or load_catalog(settings.catalog_overrides)
    chat_adapters: AdapterPool[ChatAdapter] = AdapterPool(CHAT, catalog, keys.providers)
    state_store, breaker_persistence, health_store, dynamodb_client = _stores(settings, metrics, store, dynamodb_client)
    shared = SharedState(state_store, fold_reconcile=not isinstance(state_store, MemoryStore))
    # The probe lease Powertools grants lasts recovery_timeout: it must outlive one attempt.
    breakers = breakers or CircuitBreakers(
        breaker_persistence, BreakerSettings(recovery_timeout_s=max(30, int(settings.attempt_timeout_s) + 5)),
        metrics=metrics,
    )
    health = HealthView(health_store, lambda: chat_adapters.current().adapters, HEALTH_CACHE_S, clocks.monotonic)
    passive, failures = PassiveHealth(), FailureMemory()
    retry_handler = RetryHandler(
        retry or RetrySettings(max_attempts=settings.max_attempts, attempt_timeout_s=settings.attempt_timeout_s,
                               deadline_s=settings.deadline_s),
        clock=clocks.monotonic, sleep=clocks.sleep,
    )
    runner = FailoverRunner(
        state=shared, planner=Planner(), breakers=breakers, health=health, balancer=CapacityBalancer(),
        outcomes=Outcomes(shared, metrics, passive, failures, retry_handler.settings.backoff), failures=failures,
        timeouts=AdaptiveTimeouts(), retry=retry_handler, metrics=metrics,
        settings=RunnerSettings(max_wait_s=settings.max_wait_s, free_wait_s=settings.free_wait_s), wall=clocks.wall, sleep=clocks.sleep,
        rand=clocks.rand, exhausted=ExhaustedMemory(), tracing=build_tracing(settings.tracing),
    )
    engine = ProviderEngine(http_client or build_http_client(), sleep=clocks.sleep)
    return Core(settings, keys, catalog, metrics, logger, engine, shared, breakers, passive, failures,
                chat_adapters, health, runner,
                build_tenancy(settings, shared.store, dynamodb_client, clocks, catalog))


def build_tenancy(settings: Settings, store: StateStore, client: Any, clocks: Clocks, catalog: Catalog) -> Tenancy:
    """Users: issued keys (in the state table when there is one), their limits, the usage ledger.
    Key allow-lists are checked against `catalog`, the one the gateway routes on."""
    from llm_gateway.tenancy.keys import DynamoKeyStore, KeyDirectory, KeyStore, MemoryKeyStore

    key_store: KeyStore = MemoryKeyStore()
    if settings.state_table:
        key_store = DynamoKeyStore(client or _dynamodb_client(settings), settings.state_table)
    directory = KeyDirectory(key_store, ttl_s=settings.key_cache_s)
    cap = settings.daily_spend_cap_usd
    return Tenancy(key_store, directory, KeyAdmin(key_store, directory, clocks.wall, catalog=lambda: catalog), UsageLedger(store), store,
                   cap_micros=None if cap is None else round(cap * 1_000_000), wall=clocks.wall)


def build_chat(core: Core) -> ChatRouter:
    preparer = ChatPreparer(core.catalog, TokenEstimator())
    return ChatRouter(preparer=preparer, runner=core.runner, engine=core.engine, adapters=core.chat_adapters)


def build_rollout(core: Core, *, appconfig_client: Any = None) -> Rollout:
    """The rollout flag of the chat function (`rollout/flag.py`): AppConfig, a local file, or a
    fixed percentage; each read of it is the `RolloutPercent` metric. A baseline model the
    catalog does not know stops the start (every baseline request would fail). Without a
    baseline model there is no rollout, and Powertools' Feature Flags are never loaded."""
    settings = core.settings.rollout
    baseline = settings.baseline_model
    if baseline is None:
        return Rollout(None, fallback=100.0)
    from llm_gateway.config_check import check_baseline
    from llm_gateway.observability.metrics import ROLLOUT_PERCENT
    from llm_gateway.rollout.stores import build_rollout as build

    check_baseline(baseline, core.catalog)  # the catalog this core routes on (a test may pass its own)
    return build(settings, cache_s=settings.cache_s, appconfig_client=appconfig_client, aws=core.settings.aws,
                 clock=core.runner.retry.clock,
                 on_read=lambda percent: core.metrics.count(ROLLOUT_PERCENT, percent))


def build_transcription(core: Core) -> TranscriptionRouter:
    from llm_gateway.routing.transcription import TranscriptionRouter
    from llm_gateway.selection.transcription import TranscriptionPreparer

    adapters: AdapterPool[TranscriptionAdapter] = AdapterPool(TRANSCRIPTION, core.catalog, core.keys.providers)
    return TranscriptionRouter(preparer=TranscriptionPreparer(core.catalog), runner=core.runner, engine=core.engine,
                               adapters=adapters)


def _stores(settings: Settings, metrics: Metrics, store: StateStore | None,
            client: Any) -> tuple[StateStore, Any, Any, Any]:
    """(state store, breaker persistence, health store, DynamoDB client or None): DynamoDB when a
    table is configured."""
    table = settings.state_table
    if not table:
        return store or MemoryStore(), MemoryBreakerPersistence(), MemoryHealthStore(), None
    # The DynamoDB layers are imported here, not at the top: without a table they are never needed.
    from llm_gateway.routing.breaker_dynamodb import DynamoDBBreakerPersistence

    client = client or _dynamodb_client(settings)
    if store is None:
        from llm_gateway.state.dynamodb import DynamoStateStore
        from llm_gateway.state.resilient import ResilientStore

        store = ResilientStore(
            DynamoStateStore(client, table), MemoryStore(),
            on_degraded=lambda operation, _error: metrics.count(STATE_DEGRADED, operation=operation),
            durable=is_usage_pk, fraction=1.0 / settings.max_containers,
        )
    return store, DynamoDBBreakerPersistence(table, client), DynamoHealthStore(client, table), client


def _dynamodb_client(settings: Settings) -> Any:
    """The container's DynamoDB client: JSON over httpx (`state/aws_client.py`, no boto3) when
    the region and credentials are in the environment, as Lambda always sets them; otherwise a
    boto3 client, whose credential chain also knows profiles, SSO and instance roles."""
    if settings.aws is not None:
        from llm_gateway.state.aws_client import dynamodb_client

        return dynamodb_client(settings.aws, settings.dynamodb_endpoint)
    from llm_gateway.state.dynamodb import boto3_client

    return boto3_client(settings.dynamodb_endpoint)
