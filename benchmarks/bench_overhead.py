"""What the gateway adds to a provider call, per request.

Per-request overhead is measured as the difference between runs in the same process on the same
in-process provider (an `httpx.MockTransport` answering a recorded OpenAI response, so no
network noise): the bare adapter call through our HTTP engine (the baseline: request building,
httpx, parsing), and the same request through the whole gateway (auth, validation, token estimate, selection, state reads and writes in
the in-memory store, reservation, reconciliation, cost, response shaping). Cold start is
`bench_cold_start.py`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from llm_gateway.api.schemas import ChatCompletionRequest
from llm_gateway.config import load_settings
from llm_gateway.gateway import build_gateway
from llm_gateway.observability.metrics import RecordingMetrics
from llm_gateway.providers.engine import ProviderEngine

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "providers"

RUNS = int(os.environ.get("BENCH_OVERHEAD_RUNS", "400"))
CLIENT_KEY = "bench-client-key-" + "0" * 20  # client keys must be at least 32 characters
BODY = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello in five words."}]}

def _samples(fn: Callable[[], object], runs: int) -> list[float]:
    for _ in range(20):  # warm the pool, caches and branch predictors alike for both runs
        fn()
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return sorted(out)


def _pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))]


def _recorded_transport() -> httpx.MockTransport:
    """A provider that answers instantly with a recorded OpenAI response: no network noise."""
    body = (FIXTURES / "openai" / "chat_text.json").read_bytes()
    headers = {"content-type": "application/json", "x-ratelimit-remaining-requests": "499",
               "x-ratelimit-limit-requests": "500", "x-ratelimit-reset-requests": "120ms"}
    return httpx.MockTransport(lambda _request: httpx.Response(200, content=body, headers=headers))


def request_overhead() -> None:
    """Gateway vs bare adapter call on the same in-process transport: the difference is ours."""
    client = httpx.Client(transport=_recorded_transport())
    env = {"OPENAI_API_KEY": "bench-key", "LLM_GATEWAY_API_KEYS": CLIENT_KEY}
    gateway = build_gateway(load_settings(env), metrics=RecordingMetrics(), http_client=client)
    caller = gateway.authenticate(f"Bearer {CLIENT_KEY}")
    adapter = gateway.router.adapters.current().adapters["openai"]  # the gateway's own chat adapter
    engine = ProviderEngine(client)
    request = ChatCompletionRequest.model_validate(BODY)
    rows = [
        ("baseline: adapter + engine, no gateway", _samples(lambda: engine.complete(adapter, request, "gpt-4o-mini", 10), RUNS)),
        ("gateway, model pinned", _samples(
            lambda: gateway.chat(ChatCompletionRequest.model_validate(BODY), caller, "b"), RUNS)),
        ("gateway, model auto (5 candidates)", _samples(
            lambda: gateway.chat(ChatCompletionRequest.model_validate({**BODY, "model": "auto"}), caller, "b"), RUNS)),
    ]
    print(f"\nPer-request cost, {RUNS} runs each, provider = in-process recorded response (ms)")
    print(f"{'measurement':<44}{'p50':>8}{'p95':>8}{'p99':>8}")
    for name, values in rows:
        print(f"{name:<44}{_pct(values, .5):8.3f}{_pct(values, .95):8.3f}{_pct(values, .99):8.3f}")
    base = rows[0][1]
    for name, values in rows[1:]:
        print(f"{'gateway overhead, ' + name.split(', ')[1]:<44}"
              + "".join(f"{_pct(values, q) - _pct(base, q):8.3f}" for q in (.5, .95, .99)))


def main() -> None:
    request_overhead()


if __name__ == "__main__":
    main()
