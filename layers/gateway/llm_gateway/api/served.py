"""What every served answer says about itself, whatever the capability: the gateway headers
and the per-provider free/paid/cost metrics (one owner, so chat and transcription agree)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llm_gateway.observability import metrics as m
from llm_gateway.observability.metrics import Metrics
from llm_gateway.tenancy.usage import ServedRequest


def served_headers(provider: str, model: str, attempts: int, cost_usd: float, cost_estimated: bool,
                   request_id: str, cohort: str | None = None) -> dict[str, str]:
    estimated = {"x-gateway-cost-estimated": "true"} if cost_estimated else {}
    if cohort is not None:
        estimated["x-gateway-cohort"] = cohort
    return {
        **estimated,
        "x-gateway-provider": provider,
        "x-gateway-model": model,
        "x-gateway-attempts": str(attempts),
        "x-gateway-cost-usd": f"{cost_usd:.8f}",
        "x-request-id": request_id,
    }


def count_served(metrics: Metrics, provider: str, free: bool, cost_usd: float) -> None:
    """Per provider for the dashboard; paid requests and cost also as one total series each,
    which the anomaly-detection alarms read (a band is learnt per series, not per query)."""
    metrics.count(m.FREE_TIER_REQUESTS if free else m.PAID_REQUESTS, provider=provider)
    if not free:
        metrics.count(m.PAID_REQUESTS_TOTAL)
    if cost_usd:
        metrics.count(m.COST_USD, cost_usd, provider=provider)
        metrics.count(m.COST_USD_TOTAL, cost_usd)


CALLER_LIMIT_CODES = frozenset({"user_rate_limited", "budget_exceeded"})


def count_failure(metrics: Metrics, status: int, code: str | None = None, **dimensions: str) -> None:
    """Only failures the gateway owes the caller count: a bad request is not a bad deploy, and
    this metric drives the rollback alarms. A caller held to its own limit or budget is not the
    gateway's failure either: it is counted apart (`UserLimited`, by code). A 429 for want of
    provider capacity is counted apart too (`CapacityRejected`, its own alarm at 0.1 %).
    `dimensions`: chat's `cohort`."""
    if code in CALLER_LIMIT_CODES:
        metrics.count(m.USER_LIMITED, code=str(code))
        return
    if status == 429:
        metrics.count(m.CAPACITY_REJECTED, 1.0, **dimensions)
    elif status >= 500:
        metrics.count(m.USER_VISIBLE_ERRORS, 1.0, **dimensions)


def log_served(logger: Any, caller: Any, capability: str, served: ServedRequest, attempts: Sequence[Any],
               **extra: str) -> None:
    """One structured summary line per served request (user, key id, capability, provider, model,
    attempts, tokens or audio seconds, cost, the answering model's latency): never content, never a key. Logs Insights queries in
    template.yaml read it (`message = "request served"`)."""
    logger.info("request served", extra={
        "user": caller.user, "key_id": caller.key_id, "capability": capability, "provider": served.provider,
        "model": served.model, "free": served.free, "attempts": len(attempts),
        "latency_ms": round(attempts[-1].latency_ms, 1) if attempts else None, "tokens_in": served.tokens_in,
        "tokens_out": served.tokens_out, "audio_seconds": served.audio_seconds, "cost_usd": served.cost_usd,
        **extra,
    })
