"""`GET /v1/status` and `llm-gateway status`: what the router knows, per provider and model.

Operators ask the same questions every time a request fails over: is a breaker open and until
when, which model is cooling down and why, how much of each window is left, and what went wrong
last. This builds that answer as plain JSON-ready data from the router's collaborators (one
state load, direct breaker reads, the health view and this container's passive health).
"""

from __future__ import annotations

import time
from typing import Any

from llm_gateway.routing.circuit_breaker import circuit_ids, model_circuit, provider_circuit, view_of
from llm_gateway.state.rate_limits import current_usage, remaining_now
from llm_gateway.state.store import ModelKey, ModelState


def _breaker(items: dict[str, Any], circuit: str, now: float, recovery_s: float) -> dict[str, Any]:
    item = items.get(circuit)
    view = view_of({"pk": circuit, **item}, now, recovery_s) if item else None
    if view is None:
        return {"state": "CLOSED"}
    return {"state": view.state, "blocking": view.blocked, "until": view.until, "opened_at": view.opened_at}


def _windows(state: ModelState | None, limits: tuple[Any, ...], now: float) -> list[dict[str, Any]]:
    out = []
    for limit in limits:
        usage = current_usage(state, limit, now)
        remaining_requests, remaining_tokens = remaining_now(state, usage, now)  # what the selector sees
        out.append({
            "seconds": limit.seconds, "resets_at": usage.start + limit.seconds,
            "requests_used": usage.requests, "max_requests": usage.limit.max_requests,
            "remaining_requests": remaining_requests,
            "tokens_used": usage.tokens, "max_tokens": usage.limit.max_tokens,
            "remaining_tokens": remaining_tokens,
        })
    return out


def _model(router: Any, key: ModelKey, snapshot: Any, items: dict[str, Any], passive: dict, now: float) -> dict:
    entry = router.catalog.get(key)
    state = snapshot.models.get(key)
    cooldown = state.cooldown if state is not None and state.cooling(now) else None
    headers = state.headers.info if state is not None and state.headers is not None else None
    stats = passive.get(key, {})
    return {
        "free": bool(entry and entry.is_free),
        "breaker": _breaker(items, model_circuit(key), now, router.breakers.settings.recovery_timeout_s),
        "cooldown": {"until": cooldown.until, "reason": cooldown.reason} if cooldown else None,
        "windows": _windows(state, entry.windows() if entry else (), now),
        "provider_headers": None if headers is None else {
            "remaining_requests": headers.remaining_requests, "remaining_tokens": headers.remaining_tokens,
            "reset_requests_s": headers.reset_requests_s, "reset_tokens_s": headers.reset_tokens_s,
        },
        "last_error_class": stats.get("last_error_class"),
        "last_error_at": stats.get("last_error_at"),
        "last_success_at": stats.get("last_success_at"),
    }


def build_status(router: Any, now: float | None = None) -> dict[str, Any]:
    """Status of every configured provider and catalog model it serves."""
    moment = time.time() if now is None else now
    keys = sorted(router.available())
    limits = {key: router.catalog.get(key).windows() for key in keys}
    snapshot = router.store.load(limits, moment, circuit_ids(keys))
    items = router.breakers.persistence.read_items(circuit_ids(keys))
    unavailable = router.health.unavailable()
    passive = router.passive.snapshot()
    recovery = router.breakers.settings.recovery_timeout_s
    providers: dict[str, Any] = {}
    for name in sorted(router.adapters):
        providers[name] = {
            "available": name not in unavailable,
            "health": unavailable.get(name),
            "breaker": _breaker(items, provider_circuit(name), moment, recovery),
            "models": {key.model: _model(router, key, snapshot, items, passive, moment)
                       for key in keys if key.provider == name},
        }
    return {"object": "gateway.status", "generated_at": moment, "state_degraded": snapshot.degraded,
            "providers": providers}
