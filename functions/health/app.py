"""Scheduled active health checks (EventBridge rate(5 minutes)): a thin handler.

All logic lives in the layer (llm_gateway.routing.health); this only calls it.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

logger = Logger()


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        from llm_gateway.routing.health import run_active_checks
    except ImportError:
        logger.exception("llm_gateway.routing.health is not available yet; no checks run")
        return {"checked": 0}
    return run_active_checks()
