"""Selection latency for a 50-model catalog, and DynamoDB calls per request against moto.

Timings are p50/p95/p99 in microseconds over many runs, with ratios against baselines measured
in the same process (an empty function call, `json.dumps` of the request), because absolute
numbers move with the machine. The DynamoDB part counts API calls with botocore event hooks on
an in-process moto table: the design's target is one read (BatchGetItem) and one conditional
write per attempt.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

from llm_gateway.api.schemas import ChatCompletionRequest
from llm_gateway.selection.catalog import Catalog, ModelEntry, default_catalog
from llm_gateway.selection.selector import Selector
from llm_gateway.state.store import StateSnapshot

RUNS = int(os.environ.get("BENCH_RUNS", "3000"))
REQUEST_BODY = {
    "model": "auto",
    "messages": [
        {"role": "system", "content": "You are a concise assistant for a travel company."},
        {"role": "user", "content": "Suggest three things to do in Lisbon on a rainy afternoon, with a budget."},
    ],
    "max_tokens": 512,
}


def fifty_model_catalog() -> Catalog:
    """The real catalog padded to 50 models with renamed copies (same shapes, new keys)."""
    base = default_catalog()
    entries: list[ModelEntry] = list(base.entries)
    n = 0
    while len(entries) < 50:
        src = base.entries[n % len(base.entries)]
        data = src.model_dump(by_alias=True) | {"model": f"{src.model}-copy{n}"}
        entries.append(ModelEntry.model_validate(data))  # not model_copy: it would copy cached keys
        n += 1
    return Catalog.from_entries(entries, base.data.providers)


def percentiles(fn: Callable[[], Any], runs: int = RUNS) -> dict[str, float]:
    for _ in range(min(200, runs)):
        fn()  # warm caches and branch predictors
    samples = []
    clock = time.perf_counter_ns
    for _ in range(runs):
        start = clock()
        fn()
        samples.append((clock() - start) / 1000.0)
    samples.sort()
    pick = lambda q: samples[min(len(samples) - 1, int(q * len(samples)))]  # noqa: E731
    return {"p50": pick(0.50), "p95": pick(0.95), "p99": pick(0.99), "mean": statistics.fmean(samples)}


def selection_figures() -> list[tuple[str, dict[str, float]]]:
    catalog = fifty_model_catalog()
    selector = Selector(catalog)
    request = ChatCompletionRequest.model_validate(REQUEST_BODY)
    available = list(catalog.keys())
    prep = selector.prepare(request, available)
    empty = StateSnapshot(models={})
    now = time.time()

    def noop() -> None:
        return None

    return [
        ("baseline: empty call", percentiles(noop)),
        ("baseline: json.dumps(request)", percentiles(lambda: json.dumps(REQUEST_BODY))),
        ("token estimate (tiktoken cl100k)", percentiles(lambda: selector.tokens.estimate(request))),
        ("prepare (incl. tokens, 50 models)", percentiles(lambda: selector.prepare(request, available))),
        ("plan (50 models, empty state)", percentiles(lambda: selector.plan(prep, empty, now))),
        ("prepare + plan", percentiles(lambda: selector.plan(selector.prepare(request, available), empty, now))),
    ]


def dynamodb_calls() -> list[tuple[str, dict[str, int]]]:
    """Calls per request through the real DynamoStateStore on moto (in-process)."""
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    import boto3
    from moto import mock_aws

    from llm_gateway.state.dynamodb import DynamoStateStore, create_table

    rows: list[tuple[str, dict[str, int]]] = []
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table(client, "bench")
        store = DynamoStateStore(client, "bench")
        counts: dict[str, int] = {}
        client.meta.events.register(
            "before-call.dynamodb.*", lambda model, **_: counts.__setitem__(model.name, counts.get(model.name, 0) + 1)
        )
        default = Selector(default_catalog())
        request = ChatCompletionRequest.model_validate(REQUEST_BODY)
        for label, selector in ((f"catalog ({len(default.catalog)} models)", default),
                                ("50-model catalog", Selector(fifty_model_catalog()))):
            prep = selector.prepare(request, list(selector.catalog.keys()))
            now = time.time()
            counts.clear()
            snapshot = store.load(prep.limits, now, breaker_ids=["cb#groq"])
            plan = selector.plan(prep, snapshot, now)
            step = plan.steps[0]
            reservation = store.reserve(step.key, step.limits, step.reserve_tokens, now)
            if reservation is not None:
                store.reconcile(reservation, step.reserve_tokens - 100, now)
            keys = sum(2 * len(v) + 2 for v in prep.limits.values()) + 1  # windows now and before, hdr, cd
            rows.append((f"{label}: {keys} keys, first step {step.key} ({len(step.limits)} windows)", dict(counts)))
    return rows


def main() -> None:
    figures = selection_figures()
    base = figures[1][1]["p50"]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nSelection latency, 50-model catalog, {RUNS} runs each (µs; ratio = p50 / json.dumps p50)")
    print(f"machine: {os.cpu_count()} CPUs, load average {load:.2f} (p95/p99 suffer first on a busy machine)")
    print(f"{'measurement':<38}{'p50':>9}{'p95':>9}{'p99':>9}{'ratio':>8}")
    for name, f in figures:
        print(f"{name:<38}{f['p50']:>9.1f}{f['p95']:>9.1f}{f['p99']:>9.1f}{f['p50'] / base:>8.1f}")
    print("\nDynamoDB calls per request (moto in-process; load + reserve + reconcile of one attempt)")
    for label, counts in dynamodb_calls():
        print(f"  {label}\n    {counts}")


if __name__ == "__main__":
    main()
