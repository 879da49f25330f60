"""`llm-gateway status`: print breaker, cooldown and capacity state from a running gateway.

Reads `GET /v1/status` (same auth as the API) and prints one row per provider and model, or the
raw JSON with `--json`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import httpx

from sandbox.cli_args import connection_args


def _until(value: float | None, now: float) -> str:
    return "-" if value is None else f"{max(0.0, value - now):.0f}s"


def _capacity(windows: list[dict[str, Any]]) -> str:
    parts = []
    short = {"requests": "req", "tokens": "tok", "audio_seconds": "audio s"}
    for w in windows:
        span = {"1": "s", "60": "min", "3600": "h", "86400": "day", "month": "month"}.get(w["window"], f"{w['window']}s")
        shared = " (organisation)" if w["counter"].endswith("#*") else ""
        for unit, name in short.items():
            if w.get(f"max_{unit}") is not None:
                parts.append(f"{w[f'remaining_{unit}']}/{w[f'max_{unit}']} {name}/{span}{shared}")
    return ", ".join(parts) or "no known limit"


def _breaker(b: dict[str, Any], now: float) -> str:
    return b["state"] if b["state"] == "CLOSED" else f"{b['state']} ({_until(b.get('until'), now)})"


def rows(status: dict[str, Any], now: float) -> list[list[str]]:
    """One row per model: provider, model, breaker, cooldown, capacity, last error."""
    out = []
    for provider, info in status.get("providers", {}).items():
        provider_note = "" if info.get("available", True) else f" [{info.get('health')}]"
        provider_breaker = info.get("breaker", {"state": "CLOSED"})
        for model, m in info.get("models", {}).items():
            breaker = _breaker(m["breaker"], now)
            if provider_breaker["state"] != "CLOSED":
                breaker = f"provider {_breaker(provider_breaker, now)}"
            cooldown = m.get("cooldown")
            cool = "-" if not cooldown else f"{_until(cooldown['until'], now)} ({cooldown['reason']})"
            out.append([provider + provider_note, model, breaker, cool, _capacity(m.get("windows", [])),
                        m.get("last_error_class") or "-"])
    return out


def render(status: dict[str, Any], now: float | None = None) -> str:
    header = ["PROVIDER", "MODEL", "BREAKER", "COOLDOWN", "CAPACITY LEFT", "LAST ERROR"]
    table = [header, *rows(status, time.time() if now is None else now)]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in table]
    if status.get("state_degraded"):
        lines.append("(shared state unavailable: showing this container's conservative local state)")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="llm-gateway status", description=__doc__.splitlines()[0])
    connection_args(parser)
    args = parser.parse_args(argv)
    url = args.url.rstrip("/") + "/v1/status"
    try:
        response = httpx.get(url, headers={"Authorization": f"Bearer {args.key}"}, timeout=10, trust_env=False)
    except httpx.HTTPError as exc:
        print(f"could not reach {url}: {type(exc).__name__}", file=sys.stderr)
        return 1
    if response.status_code != 200:
        print(f"{url} answered HTTP {response.status_code}: {response.text[:300]}", file=sys.stderr)
        return 1
    status = response.json()
    print(json.dumps(status, indent=2) if args.json else render(status))
    return 0
