"""What the gateway adds to a provider call, per request.

Per-request overhead is measured as the difference between runs in the same process on the same
in-process provider (an `httpx.MockTransport` answering the OpenAI fixture response, so no
network noise): the bare adapter call through our HTTP engine (the baseline: request building,
httpx, parsing), and the same request through the whole gateway (auth, validation, token estimate, selection, state reads and writes in
the in-memory store, reservation, reconciliation, cost, response shaping). Metrics go to an
in-memory recorder in the first rows; the last row has the EMF lines Lambda writes (to
/dev/null here). The five-provider row answers each provider from its own fixture response;
its free tiers run out over the run, as under load, so it mostly plans past exhausted windows.
Cold start is `bench_cold_start.py`.

Morning run (2026-11-30, `main` at 65ee46a, load average 1.8), as printed:

measurement                                              p50     p95     p99  p50 / baseline
baseline: adapter + engine, no gateway                 0.202   0.263   0.397           1.00x
gateway, model pinned                                  0.451   0.606   0.902           2.23x
gateway, model auto (5 candidates)                     0.501   0.637   0.969           2.47x
gateway, auto, 5 providers (27 models)                 0.997   1.276   1.682           4.93x
gateway, model pinned, EMF metrics to stdout           0.516   0.615   0.932           2.55x
added by the gateway, model pinned                     0.249   0.343   0.505
added by the gateway, model auto (5 candidates)        0.298   0.374   0.572
added by the gateway, auto, 5 providers (27 models)    0.795   1.013   1.284
added by the gateway, model pinned, EMF metrics to stdout   0.314   0.352   0.535

Afternoon run (2026-11-30, `main` at 7f12f82, load average 0.6-0.7 with a review helper running
tests; the machine ran slower than in the morning: LiteLLM's router took 2.6-2.9 ms against
2.0-2.1 ms, and the instruction counts of what the gateway adds did not change), as printed:

baseline: adapter + engine, no gateway                 0.179   0.309   0.377           1.00x
gateway, model pinned                                  0.485   0.703   0.843           2.71x
gateway, model auto (5 candidates)                     0.531   0.778   0.976           2.96x
gateway, auto, 5 providers (27 models)                 1.230   1.876   2.153           6.86x
gateway, model pinned, EMF metrics to stdout           0.551   0.777   0.933           3.07x
added by the gateway, model pinned                     0.306   0.394   0.466
added by the gateway, model auto (5 candidates)        0.352   0.469   0.599
added by the gateway, auto, 5 providers (27 models)    1.051   1.567   1.775
added by the gateway, model pinned, EMF metrics to stdout   0.372   0.467   0.556

Evening run (2026-11-30, `main` at 9b5e7ad after the last performance pass, load average 0.6; the
five-provider row with LLM_GATEWAY_FREE_WAIT_S=0): only the p50s were kept (the README's table),
in ms: baseline 0.176; pinned 0.419 (2.38x); auto, 5 candidates 0.438 (2.49x); auto, 5 providers
(27 models) 1.039 (5.90x); pinned, EMF metrics 0.479 (2.72x); added by the gateway 0.243, 0.262,
0.863 and 0.303.

`steps` (the same day, main at 65ee46a plus this mode, load 0.2-1.0, stdout to a file; p50 µs):
gateway.chat 401.9 = router.complete 323.1 (preparation 36.3; runner.run 275.9: runner.plan 39.8
with the state load 10.7 and planning 17.5, reservation 1.7, breakers + provider call 193.6 of
which the provider call 178.9, outcomes 13.6) + usage record 11.0 + the `request served` log line
35.2 (66.4 with stdout a pipe) + what no timer covers; request validation 7.5 outside it.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from llm_gateway.api.schemas import ChatCompletionRequest
from llm_gateway.config import load_settings
from llm_gateway.gateway import build_gateway
from llm_gateway.observability.metrics import EmfMetrics, RecordingMetrics
from llm_gateway.providers.engine import ProviderEngine, build_http_client

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "providers"

RUNS = int(os.environ.get("BENCH_OVERHEAD_RUNS", "2000"))
CLIENT_KEY = "bench-client-key-" + "0" * 20  # client keys must be at least 32 characters
BODY = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello in five words."}]}
PROVIDERS = ("openai", "groq", "gemini", "cohere", "mistral")
HOSTS = {"api.openai.com": "openai", "api.groq.com": "groq", "generativelanguage.googleapis.com": "gemini",
         "api.cohere.com": "cohere", "api.mistral.ai": "mistral"}
TARGET_P50_MS = 0.5


def _interleaved(fns: list[Callable[[], object]], runs: int, *, warm: bool = True) -> list[list[float]]:
    """Time each function `runs` times, taking turns, so drift in machine load falls on all alike."""
    for _ in range(50 if warm else 0):  # warm the pool, caches and branch predictors alike for every row
        for fn in fns:
            fn()
    out: list[list[float]] = [[] for _ in fns]
    clock = time.perf_counter
    for _ in range(runs):
        for fn, samples in zip(fns, out, strict=True):
            started = clock()
            fn()
            samples.append((clock() - started) * 1000)
    return [sorted(samples) for samples in out]


def _samples(fn: Callable[[], object], runs: int) -> list[float]:
    return _interleaved([fn], runs)[0]


def _pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))]


def _recorded_transport() -> httpx.MockTransport:
    """A provider that answers instantly with the OpenAI fixture response: no network noise."""
    body = (FIXTURES / "openai" / "chat_text.json").read_bytes()
    headers = {"content-type": "application/json", "x-ratelimit-remaining-requests": "499",
               "x-ratelimit-limit-requests": "500", "x-ratelimit-reset-requests": "120ms"}
    return httpx.MockTransport(lambda _request: httpx.Response(200, content=body, headers=headers))


def _five_provider_transport() -> httpx.MockTransport:
    """Each provider's host answers with that provider's fixture chat response."""
    bodies = {name: (FIXTURES / name / "chat_text.json").read_bytes() for name in PROVIDERS}
    return httpx.MockTransport(lambda request: httpx.Response(
        200, content=bodies[HOSTS[request.url.host]], headers={"content-type": "application/json"}))


def request_overhead() -> None:
    """Gateway vs bare adapter call on the same in-process transport: the difference is ours."""
    client = build_http_client(_recorded_transport())
    env = {"OPENAI_API_KEY": "bench-key", "LLM_GATEWAY_API_KEYS": CLIENT_KEY}
    gateway = build_gateway(load_settings(env), metrics=RecordingMetrics(), http_client=client)
    caller = gateway.authenticate(f"Bearer {CLIENT_KEY}")
    adapter = gateway.router.adapters.current().adapters["openai"]  # the gateway's own chat adapter
    engine = ProviderEngine(client)
    request = ChatCompletionRequest.model_validate(BODY)
    every = {f"{name.upper()}_API_KEY": "bench-key" for name in PROVIDERS}
    # The row is what the gateway adds, not how long it waits for a free tier: requests this close
    # together fill Mistral's 1 request/s at once, and each would wait up to 1.5 s for the next.
    no_free_wait = {"LLM_GATEWAY_FREE_WAIT_S": "0"}
    wide = build_gateway(load_settings({**every, **no_free_wait, "LLM_GATEWAY_API_KEYS": CLIENT_KEY}),
                         metrics=RecordingMetrics(), http_client=build_http_client(_five_provider_transport()))
    models = len(wide.router.available())
    emf = build_gateway(load_settings(env), metrics=EmfMetrics(), http_client=client)  # what Lambda runs
    names = ["baseline: adapter + engine, no gateway", "gateway, model pinned", "gateway, model auto (5 candidates)",
             f"gateway, auto, 5 providers ({models} models)", "gateway, model pinned, EMF metrics to stdout"]
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        rows = list(zip(names, _interleaved([
            lambda: engine.complete(adapter, request, "gpt-4o-mini", 10),
            lambda: gateway.chat(ChatCompletionRequest.model_validate(BODY), caller, "b"),
            lambda: gateway.chat(ChatCompletionRequest.model_validate({**BODY, "model": "auto"}), caller, "b"),
            lambda: wide.chat(ChatCompletionRequest.model_validate({**BODY, "model": "auto"}), caller, "b"),
            lambda: emf.chat(ChatCompletionRequest.model_validate(BODY), caller, "b"),
        ], RUNS), strict=True))
    print(f"\nPer-request cost, {RUNS} runs each, interleaved, provider = in-process fixture response (ms)")
    print(f"{'measurement':<52}{'p50':>8}{'p95':>8}{'p99':>8}{'p50 / baseline':>16}")
    base = rows[0][1]
    for name, values in rows:
        print(f"{name:<52}{_pct(values, .5):8.3f}{_pct(values, .95):8.3f}{_pct(values, .99):8.3f}"
              f"{_pct(values, .5) / _pct(base, .5):15.2f}x")
    for name, values in rows[1:]:
        print(f"{'added by the gateway, ' + name.split(', ', 1)[1]:<52}"
              + "".join(f"{_pct(values, q) - _pct(base, q):8.3f}" for q in (.5, .95, .99)))
    worst = max(_pct(values, .5) for _, values in rows[1:3])
    print(f"target: through the gateway <= {TARGET_P50_MS} ms p50 (pinned and auto): {worst:.3f} ms "
          f"({'met' if worst <= TARGET_P50_MS else 'NOT met'}) on this machine, where the bare call is "
          f"{_pct(base, .5):.3f} ms")


def steps(runs: int = 4000) -> None:
    """Where an `auto` request's time goes, step by step: each step's own p50 with a timer around
    it in place (inside real requests, so its caches are as warm as in the gateway, not as in a
    loop of that step alone). Timers nest: an outer step's figure holds its inner ones. The timers
    cost about half a microsecond each, so the figures are a little high; they are an inventory,
    not the overhead (that is `request_overhead`'s difference of two rows)."""
    env = {"OPENAI_API_KEY": "bench-key", "LLM_GATEWAY_API_KEYS": CLIENT_KEY}
    gateway = build_gateway(load_settings(env), metrics=RecordingMetrics(), http_client=build_http_client(
        _recorded_transport()))
    caller = gateway.authenticate(f"Bearer {CLIENT_KEY}")
    router, runner = gateway.router, gateway.router.runner
    spent: dict[str, list[float]] = {}

    def timed(owner: object, name: str, label: str) -> None:
        inner = getattr(owner, name)
        samples = spent.setdefault(label, [])
        clock = time.perf_counter

        def wrapper(*args: object, **kwargs: object) -> object:
            started = clock()
            try:
                return inner(*args, **kwargs)
            finally:
                samples.append((clock() - started) * 1e6)

        setattr(owner, name, wrapper)

    for owner, name, label in (
        (gateway, "chat", "gateway.chat (all below)"), (router, "complete", "  router.complete"),
        (router.preparer, "prepare", "    preparation (token count, ranking)"),
        (runner, "run", "    runner.run"), (runner, "plan", "      runner.plan"),
        (runner.state, "load", "        state load"), (runner.planner, "plan", "        planning"),
        (runner.state, "reserve", "      reservation"), (runner.breakers, "call", "      breakers + provider call"),
        (router.engine, "complete", "        provider call (the bare row's work)"),
        (runner.outcomes, "success", "      outcomes"), (gateway.core.tenancy, "record", "  usage record"),
    ):
        timed(owner, name, label)
    served = _served_line_timer(spent)
    body = {**BODY, "model": "auto"}
    validation = spent.setdefault("request validation (outside gateway.chat)", [])
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        for _ in range(runs):
            started = time.perf_counter()
            request = ChatCompletionRequest.model_validate(body)
            validation.append((time.perf_counter() - started) * 1e6)
            gateway.chat(request, caller, "b")
    served()
    print(f"\nWhere an `auto` request's time goes, in place: p50 of each step, {runs} requests (µs)")
    for label, samples in spent.items():
        samples = sorted(samples[runs // 10:])  # the first tenth warms up
        print(f"{label:<52}{samples[len(samples) // 2]:8.1f}")


def _served_line_timer(spent: dict[str, list[float]]) -> Callable[[], None]:
    """Time the `request served` log line where the gateway writes it; returns the undo."""
    import llm_gateway.gateway as gateway_module

    inner = gateway_module.log_served
    samples = spent.setdefault("  the `request served` log line", [])

    def wrapper(*args: object, **kwargs: object) -> None:
        started = time.perf_counter()
        inner(*args, **kwargs)  # type: ignore[arg-type]
        samples.append((time.perf_counter() - started) * 1e6)

    gateway_module.log_served = wrapper  # type: ignore[assignment]

    def undo() -> None:
        gateway_module.log_served = inner

    return undo


def main() -> None:
    """`python -m benchmarks.bench_overhead [steps]`: the overhead rows, or the steps' inventory."""
    if "steps" in sys.argv[1:]:
        steps()
    else:
        request_overhead()


if __name__ == "__main__":
    main()
