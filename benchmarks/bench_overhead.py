"""What the gateway adds to a provider call: per-request latency, cold-start import, memory.

Per-request overhead is measured as the difference between runs in the same process on the same
in-process provider (an `httpx.MockTransport` answering a recorded OpenAI response, so no
network noise): the bare adapter call through our HTTP engine (the baseline: request building,
httpx, parsing), and the same request through the whole gateway (auth, validation, token estimate, selection, state reads and writes in
the in-memory store, reservation, reconciliation, cost, response shaping). Import time and
memory are measured in fresh interpreters against a bare `python -c pass`, so the figures are
what a Lambda cold start pays for our code, not for Python itself.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
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
IMPORT_RUNS = int(os.environ.get("BENCH_IMPORT_RUNS", "5"))
BODY = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello in five words."}]}

_MEASURE = (
    "import re, time; t = time.perf_counter();{body}"
    "hwm = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1);"
    "print(time.perf_counter() - t, hwm)"
)
COLD_START = _MEASURE.format(body=(
    "import os; os.environ.update({'OPENAI_API_KEY': 'x', 'LLM_GATEWAY_API_KEYS': 'bench-client-key-00000000000000000000'});"
    "from llm_gateway.config import load_settings; from llm_gateway.gateway import build_gateway;"
    "from llm_gateway.observability.metrics import RecordingMetrics;"
    "build_gateway(load_settings(), metrics=RecordingMetrics());"
))
DEPENDENCIES = _MEASURE.format(body="import boto3, httpx, pydantic, aws_lambda_powertools.event_handler;")
BARE = _MEASURE.format(body="")


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


def _fresh_interpreter(code: str) -> tuple[float, float]:
    """(seconds, max RSS MiB) of `code` in a new interpreter, median of IMPORT_RUNS."""
    runs = []
    for _ in range(IMPORT_RUNS):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        seconds, rss_kib = out.stdout.split()
        runs.append((float(seconds), int(rss_kib) / 1024))
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


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


def cold_start() -> None:
    rows = [("bare interpreter", *_fresh_interpreter(BARE)),
            ("import boto3, httpx, pydantic, powertools", *_fresh_interpreter(DEPENDENCIES)),
            ("import + build_gateway (all of ours)", *_fresh_interpreter(COLD_START))]
    print(f"\nCold start in a fresh interpreter (median of {IMPORT_RUNS}; peak RSS from /proc VmHWM)")
    for name, seconds, mib in rows:
        print(f"  {name:<44}{seconds * 1000:7.0f} ms {mib:7.1f} MiB")
    (_, dep_s, dep_mib), (_, our_s, our_mib) = rows[1], rows[2]
    print(f"  {'ours beyond the dependencies':<44}{(our_s - dep_s) * 1000:7.0f} ms {our_mib - dep_mib:+7.1f} MiB")


def main() -> None:
    request_overhead()
    cold_start()


if __name__ == "__main__":
    main()
