"""What every served answer says about itself, whatever the capability: the gateway headers
and the per-provider free/paid/cost metrics (one owner, so chat and transcription agree)."""

from __future__ import annotations

from llm_gateway.observability import metrics as m
from llm_gateway.observability.metrics import Metrics


def served_headers(provider: str, model: str, attempts: int, cost_usd: float, cost_estimated: bool,
                   request_id: str) -> dict[str, str]:
    estimated = {"x-gateway-cost-estimated": "true"} if cost_estimated else {}
    return {
        **estimated,
        "x-gateway-provider": provider,
        "x-gateway-model": model,
        "x-gateway-attempts": str(attempts),
        "x-gateway-cost-usd": f"{cost_usd:.8f}",
        "x-request-id": request_id,
    }


def count_served(metrics: Metrics, provider: str, free: bool, cost_usd: float) -> None:
    metrics.count(m.FREE_TIER_REQUESTS if free else m.PAID_REQUESTS, provider=provider)
    if cost_usd:
        metrics.count(m.COST_USD, cost_usd, provider=provider)


def count_failure(metrics: Metrics, status: int) -> None:
    """Only failures the gateway owes the caller count: a bad request is not a bad deploy, and
    this metric drives the canary rollback alarm."""
    if status >= 500 or status == 429:
        metrics.count(m.USER_VISIBLE_ERRORS)
