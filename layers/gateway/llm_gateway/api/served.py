"""What every served answer says about itself, whatever the capability: the gateway headers
and the per-provider free/paid/cost metrics (one owner, so chat and transcription agree)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llm_gateway.observability import metrics as m
from llm_gateway.observability.logging import log_info
from llm_gateway.observability.metrics import Metrics
from llm_gateway.tenancy.usage import ServedRequest, usd_text


def told_usd(cost_usd: float) -> float:
    """`usd_text` as a JSON number (the body's and the stream's `usage.cost_usd`), so what a user
    adds up of what they were told is exactly what the ledger says they spent."""
    return float(usd_text(cost_usd))


def served_headers(provider: str, model: str, attempts: int, cost_usd: float, cost_estimated: bool,
                   request_id: str, cohort: str | None = None) -> dict[str, str]:
    headers = {"x-gateway-cost-estimated": "true"} if cost_estimated else {}
    if cohort is not None:
        headers["x-gateway-cohort"] = cohort
    headers["x-gateway-provider"] = provider
    headers["x-gateway-model"] = model
    headers["x-gateway-attempts"] = str(attempts)
    headers["x-gateway-cost-usd"] = usd_text(cost_usd)
    headers["x-request-id"] = request_id
    return headers


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
# Whose an answered failure is: the caller's own limit or budget, no provider capacity (a 429),
# the gateway's (a 5xx it owes), or the caller's request (any other 4xx).
USER_LIMITED, CAPACITY, GATEWAY_FAULT, CALLER_MISTAKE = "user_limited", "capacity", "gateway_fault", "caller_mistake"


def failure_kind(status: int, code: str | None = None) -> str:
    if code in CALLER_LIMIT_CODES:
        return USER_LIMITED
    if status == 429:
        return CAPACITY
    return GATEWAY_FAULT if status >= 500 else CALLER_MISTAKE


def count_failure(metrics: Metrics, status: int, code: str | None = None, **dimensions: str) -> None:
    """Only failures the gateway owes the caller count: a bad request is not a bad deploy, and
    this metric drives the rollback alarms. A caller held to its own limit or budget is not the
    gateway's failure either: it is counted apart (`UserLimited`, by code). A 429 for want of
    provider capacity is counted apart too (`CapacityRejected`, its own alarm at 0.1 %).
    `dimensions`: chat's `cohort`."""
    kind = failure_kind(status, code)
    if kind == USER_LIMITED:
        metrics.count(m.USER_LIMITED, code=str(code))
    elif kind == CAPACITY:
        metrics.count(m.CAPACITY_REJECTED, 1.0, **dimensions)
    elif kind == GATEWAY_FAULT:
        metrics.count(m.USER_VISIBLE_ERRORS, 1.0, **dimensions)


def log_served(logger: Any, caller: Any, capability: str, served: ServedRequest, attempts: Sequence[Any],
               **extra: str) -> None:
    """One structured summary line per served request (user, key id, capability, provider, model,
    attempts, tokens or audio seconds, cost, the answering model's latency): never content, never a key. Logs Insights queries in
    template.yaml read it (`message = "request served"`). Written by `log_info`: the line
    `logger.info` writes, at a fraction of its cost."""
    log_info(logger, "request served", {
        "user": caller.user, "key_id": caller.key_id, "capability": capability, "provider": served.provider,
        "model": served.model, "free": served.free, "attempts": len(attempts),
        "latency_ms": round(attempts[-1].latency_ms, 1) if attempts else None, "tokens_in": served.tokens_in,
        "tokens_out": served.tokens_out, "audio_seconds": served.audio_seconds, "cost_usd": served.cost_usd,
        **extra,
    })
