"""One readable line per request on the local server, beside the handler's JSON logs and EMF lines.

    19:40:01 POST /v1/chat/completions 200 groq/llama-3.1-8b-instant attempts=1 35ms id=4b1e…

The JSON lines are what CloudWatch gets; this line is for the person watching `make dev`.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Mapping

_lock = threading.Lock()


def request_line(method: str, path: str, status: int, headers: Mapping[str, str], elapsed_s: float,
                 request_id: str) -> str:
    lower = {k.lower(): v for k, v in headers.items()}
    provider, model = lower.get("x-gateway-provider"), lower.get("x-gateway-model")
    served = f"{provider}/{model}" if provider and model else "-"
    attempts = lower.get("x-gateway-attempts", "-")
    clock = time.strftime("%H:%M:%S")
    return f"{clock} {method} {path} {status} {served} attempts={attempts} {elapsed_s * 1000:.0f}ms id={request_id}"


def print_line(line: str) -> None:
    """Whole lines only, even with many request threads writing."""
    with _lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
