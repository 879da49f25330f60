"""Scheduled active health checks (EventBridge rate(5 minutes)): a thin handler.

All logic lives in the layer (`llm_gateway.routing.health`): each provider's models list is
called, and a provider whose key is rejected is marked unavailable in the state table until its
configuration changes.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from llm_gateway.routing.health import health_dependencies, run_active_checks

logger = Logger()
adapters, engine, store = health_dependencies()  # once per container, like the chat handler


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    result = run_active_checks(adapters, engine, store)
    logger.info("active health checks done", extra={"result": result})
    return result
