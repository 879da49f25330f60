"""Cold-start wiring of the router's collaborators from settings (used by `gateway.build_gateway`).

With a state table configured, rate-limit state, breakers and health all live in that one
DynamoDB table (the state store behind the degraded-mode wrapper, Powertools' breaker
persistence on `cb#...` items, `health#...` items); without one, everything is in memory.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llm_gateway.config import Settings
from llm_gateway.observability.metrics import STATE_DEGRADED, Metrics
from llm_gateway.providers.base import ChatAdapter
from llm_gateway.providers.engine import ProviderEngine
from llm_gateway.routing.breaker_store import DynamoDBBreakerPersistence, MemoryBreakerPersistence
from llm_gateway.routing.circuit_breaker import BreakerSettings, CircuitBreakers
from llm_gateway.routing.health import DynamoHealthStore, HealthView, MemoryHealthStore
from llm_gateway.routing.router import Router, RouterDeps
from llm_gateway.selection.catalog import load_catalog


def build_router(settings: Settings, adapters: Mapping[str, ChatAdapter], engine: ProviderEngine, metrics: Metrics) -> Router:
    # The probe lease Powertools grants lasts recovery_timeout: it must outlive one attempt.
    breaker_settings = BreakerSettings(recovery_timeout_s=max(30, int(settings.attempt_timeout_s) + 5))
    deps = RouterDeps(metrics=metrics, catalog=load_catalog(settings.catalog_overrides))
    table = settings.state_table
    if table:
        import boto3

        from llm_gateway.state.dynamodb import DynamoStateStore, client_config
        from llm_gateway.state.resilient import ResilientStore

        client = boto3.client("dynamodb", endpoint_url=settings.dynamodb_endpoint, config=client_config())
        deps.store = ResilientStore(
            DynamoStateStore(client, table),
            on_degraded=lambda operation, _error: metrics.count(STATE_DEGRADED, operation=operation),
        )
        persistence: Any = DynamoDBBreakerPersistence(table, client)
        deps.health = HealthView(DynamoHealthStore(client, table), adapters)
    else:
        persistence = MemoryBreakerPersistence()
        deps.health = HealthView(MemoryHealthStore(), adapters)
    deps.breakers = CircuitBreakers(persistence, breaker_settings, metrics=metrics)
    return Router(adapters, engine, max_attempts=settings.max_attempts, attempt_timeout_s=settings.attempt_timeout_s,
                  deadline_s=settings.deadline_s, deps=deps)
