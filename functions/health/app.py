"""Scheduled active health checks (EventBridge rate(5 minutes)): a thin handler.

All logic lives in the layer (`llm_gateway.routing.health`): each provider's models list is
called, and a provider whose key is rejected is marked unavailable in the state table until its
configuration changes. The logger redacts the provider keys this function holds, from its own
lines and from every library's (see `observability/logging.py`).
"""

from __future__ import annotations

from typing import Any

from llm_gateway.config import load_settings
from llm_gateway.observability.logging import build_logger, redact_into
from llm_gateway.routing.health import health_dependencies, run_active_checks

settings = load_settings()  # provider keys only: this function's role cannot read client keys
logger = build_logger(settings.secrets)
# once per container, like the chat handler; the adapters follow the provider secret's TTL
adapters, engine, store = health_dependencies(settings, on_new_secrets=redact_into(logger))


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    result = run_active_checks(adapters(), engine, store)
    logger.info("active health checks done", extra={"result": result})
    return result
