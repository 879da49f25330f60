"""`GET /v1/status` and `llm-gateway status`: what the gateway knows, per provider and model.

Operators ask the same questions every time a request fails over: is a breaker open and until
when, which model is cooling down and why, how much of each window (the model's own and its
provider's) is left, and what went wrong last. This builds that answer as plain JSON-ready data
from the core's collaborators (one state load, direct breaker reads, the health view and this
container's passive health).
"""

from __future__ import annotations

import time
from collections.abc import Collection
from typing import Any

from llm_gateway.routing.circuit_breaker import view_of
from llm_gateway.state.items import StateSnapshot, circuit_ids, model_circuit, provider_circuit
from llm_gateway.state.metering import Meter
from llm_gateway.state.store import ModelKey


def _breaker(items: dict[str, Any], circuit: str, now: float, recovery_s: float) -> dict[str, Any]:
    item = items.get(circuit)
    view = view_of({"pk": circuit, **item}, now, recovery_s) if item else None
    if view is None:
        return {"state": "CLOSED"}
    return {"state": view.state, "blocking": view.blocked, "until": view.until, "opened_at": view.opened_at}


def _windows(meters: tuple[Meter, ...], snapshot: StateSnapshot, now: float) -> list[dict[str, Any]]:
    out = []
    for meter in meters:
        usage = snapshot.usage(meter, now)  # what the planner sees, carry-over included
        limit = meter.limit
        out.append({
            "counter": meter.counter, "window": limit.period.name, "resets_at": limit.period.end(usage.start),
            **{f"{unit}_used": usage.used.get(unit, 0) for unit in limit.maxima},
            **{f"max_{unit}": n for unit, n in limit.maxima.items()},
            **{f"remaining_{unit}": usage.remaining(unit) for unit in limit.maxima},
        })
    return out


def build_status(core: Any, available: Collection[ModelKey], now: float | None = None) -> dict[str, Any]:
    """Status of every configured provider and catalog model it serves."""
    moment = time.time() if now is None else now
    keys = sorted(available)
    meters = {key: core.catalog.meters(core.catalog.get(key)) for key in keys}
    snapshot = core.state.load([m for ms in meters.values() for m in ms], keys, moment)
    items = core.breakers.persistence.read_items(circuit_ids(keys))
    unavailable = core.health.unavailable()
    passive = core.passive.snapshot()
    recovery = core.breakers.settings.recovery_timeout_s
    failures = core.failures.merged(snapshot.failures)
    providers: dict[str, Any] = {}
    for name in sorted({key.provider for key in keys}):
        mark = failures.get(name)
        providers[name] = {
            "available": name not in unavailable,
            "health": unavailable.get(name),
            "breaker": _breaker(items, provider_circuit(name), moment, recovery),
            "last_failure": None if mark is None else {"at": mark.at, "kind": mark.kind, "streak": mark.streak,
                                                       "ranked_last_until": mark.until},
            "models": {},
        }
    for key in keys:
        entry = core.catalog.get(key)
        state = snapshot.models.get(key)
        cooldown = state.cooldown if state is not None and state.cooling(moment) else None
        headers = state.headers.info if state is not None and state.headers is not None else None
        stats = passive.get(key, {})
        providers[key.provider]["models"][key.model] = {
            "free": bool(entry and entry.is_free),
            "breaker": _breaker(items, model_circuit(key), moment, recovery),
            "cooldown": {"until": cooldown.until, "reason": cooldown.reason} if cooldown else None,
            "windows": _windows(meters[key], snapshot, moment),
            "provider_headers": None if headers is None else {
                "remaining_requests": headers.remaining_requests, "remaining_tokens": headers.remaining_tokens,
                "reset_requests_s": headers.reset_requests_s, "reset_tokens_s": headers.reset_tokens_s,
            },
            "last_error_class": stats.get("last_error_class"),
            "last_error_at": stats.get("last_error_at"),
            "last_success_at": stats.get("last_success_at"),
        }
    return {"object": "gateway.status", "generated_at": moment, "state_degraded": snapshot.degraded,
            "providers": providers}
