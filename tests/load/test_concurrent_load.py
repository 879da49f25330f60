"""Load: 240 requests in flight at once through the local API, chat, streamed chat and
transcriptions mixed, every provider window enforced by the providers themselves.

`llm-gateway serve` runs as a subprocess, as `make dev` runs it: fake providers in their own
process, the embedded DynamoDB in its own, 260 handler containers over two worker processes, all
containers sharing that one table. An async client starts 240 requests over RAMP_S seconds (150
chat completions, 60 streamed ones read to their `[DONE]`, 30 multipart transcriptions of the
committed audio fixtures, interleaved) and the fakes take LATENCY_MS (longer) to answer, so all
of them are open together.

The fakes enforce the catalog's own free-tier limits (`harness.catalog_limited_fakes`: per model
and per organisation, exact sliding windows, as the real providers count): a call the gateway
sent beyond a window would be answered 429 by the fake and counted there. So "no window
exceeded" is what the providers saw, not what the gateway believes.

Why a ramp and not one instant: 240 containers reading and reserving in the same millisecond
queue ~700 calls on the embedded DynamoDB (moto, one Python process), some wait past the
gateway's 1 s DynamoDB timeout, and the gateway then serves on in-container state, which admits
a share of every limit *per container* (`state/resilient.py`). A real DynamoDB does not queue like
that; an 8 s ramp (30 arrivals/s) keeps the local one within what it carries (about 45 requests/s
on two cores, see the README's `make dev` section) unless other work takes the CPU. If the table
still falls behind (`StateDegraded` in the log), each of the 260 containers admits 1/260 of each
limit (`serve` sets LLM_GATEWAY_MAX_CONTAINERS), paid fallbacks serve, and the test asserts only
what must hold then too: no user-visible error, no provider window exceeded.

The overlap is measured, not assumed, three ways: the client's own start/end times, the server's
peak of open HTTP requests, and its peak of handler invocations executing in containers at the
same instant (each container serves one at a time, so that peak is also the number of distinct
containers busy at once). Each must reach MIN_IN_FLIGHT.

The chat bodies are the sandbox's sample requests (a short question, a JSON-schema extraction, a
reasoning prompt, a tool call) with `max_tokens: 256`: a small and a large category, so the plan
spreads over every free model of a category rather than the few ranked first. Without
`max_tokens` each request reserves 1,024 output tokens, and Groq's token-per-minute windows (6,000
on Llama 3.1 8B) admit five a minute.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterator

import pytest

from llm_gateway.selection.catalog import load_catalog
from llm_gateway.state.store import ModelKey
from sandbox.loadgen import Report, run
from tests.load.harness import REPO, Served, catalog_limited_fakes, served

pytestmark = pytest.mark.load

REQUESTS = 240
MIX = {"chat": 5, "stream": 2, "transcription": 1}  # 150 / 60 / 30
CONTAINERS = 260
WORKERS = 2
LATENCY_MS = 11000
RAMP_S = 8.0
MIN_IN_FLIGHT = 200
BODIES = ("hello", "json_schema", "reasoning", "tools")
MAX_TOKENS = 256


def _bodies() -> list[dict]:
    bodies = []
    for name in BODIES:
        body = json.loads((REPO / "sandbox" / "requests" / f"{name}.json").read_text())
        bodies.append({**body, "max_tokens": MAX_TOKENS})
    return bodies


@pytest.fixture(scope="module")
def gateway(tmp_path_factory) -> Iterator[Served]:
    with served(tmp_path_factory.mktemp("load"), containers=CONTAINERS, workers=WORKERS,
                fakes=catalog_limited_fakes(LATENCY_MS)) as server:
        yield server


@pytest.fixture(scope="module")
def burst(gateway) -> Report:
    return asyncio.run(run(gateway.url, "local-dev-key", REQUESTS, concurrency=REQUESTS, body=_bodies(),
                           timeout_s=45, ramp_s=RAMP_S, mix=MIX))


def test_240_mixed_requests_are_in_flight_at_once_by_three_measures(gateway, burst):
    stats = gateway.stats()
    assert burst.kinds == Counter({"chat": 150, "stream": 60, "transcription": 30})
    assert burst.max_in_flight >= MIN_IN_FLIGHT, burst.summary()
    assert stats["in_flight"]["peak"] >= MIN_IN_FLIGHT, stats["in_flight"]
    assert stats["executing"]["peak"] >= MIN_IN_FLIGHT, stats["executing"]
    assert stats["hosts"] == WORKERS and stats["containers"] == CONTAINERS
    assert burst.elapsed_s < 40, burst.summary()


def test_no_user_sees_an_error_and_every_answer_is_from_a_free_tier(gateway, burst):
    assert not burst.failures, (burst.summary(), Counter((r.kind, r.status, r.error) for r in burst.failures))
    catalog = load_catalog()
    served_by = Counter((r.kind, r.headers["x-gateway-provider"], r.headers["x-gateway-model"]) for r in burst.results)
    if gateway.degraded():
        pytest.skip(f"the embedded DynamoDB fell behind ({gateway.degraded()} degraded state operations: the "
                    f"machine is busy): paid fallbacks served some; no error and no window exceeded still hold")
    for _, provider, model in served_by:
        entry = catalog.get(ModelKey(provider, model))
        assert entry is not None and entry.is_free, (provider, model)
    # buffered answers carry their cost in a header (a stream's is in its last event)
    assert all(float(r.headers["x-gateway-cost-usd"]) == 0 for r in burst.results if r.kind != "stream")
    assert len({provider for _, provider, _ in served_by}) >= 4, served_by


def test_no_provider_window_was_exceeded_as_the_providers_counted(gateway, burst):
    fakes = gateway.fakes()
    # the fakes really enforced the catalog's free tiers (the test would prove nothing otherwise)
    assert fakes["groq"]["limits"]["limits"]["llama-3.1-8b-instant"] == {"rpm": 30, "rpd": 14400, "tpm": 6000,
                                                                         "tpd": 500000}
    assert fakes["mistral"]["limits"]["org_limits"]["rps"] == 1
    received = sum(f["stats"]["received"] for f in fakes.values())
    assert received >= REQUESTS, received
    rejected = {n: f["stats"]["by_status"] for n, f in fakes.items() if f["stats"]["rejected"]}
    rejected.pop("mistral", None)  # its 1 request/s window: see the next test
    assert not rejected, (rejected, gateway.degraded())


def test_mistrals_one_request_per_second_window_was_not_exceeded(gateway, burst):
    """Was a known failure (about 2 bursts in 5): a reservation is stamped before its DynamoDB
    write and the provider call, and the previous 1-second window stopped carrying stamp + 1.05 s
    later, so a write or a new TLS connection slower than 50 ms let the next request reach Mistral
    within the second. The stamp's slack is now at least 0.25 s, and a window's first moments also
    read the window before the previous (`metering.counter_pks`)."""
    stats = gateway.fakes()["mistral"]["stats"]
    assert stats["rejected"] == 0, stats["by_status"]
