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
from llm_gateway.selection.planner import Planner
from llm_gateway.selection.selector import ChatPreparer
from llm_gateway.selection.tokens import TokenEstimator
from llm_gateway.state.items import StateSnapshot, pks_for

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
    preparer, planner = ChatPreparer(catalog, TokenEstimator()), Planner()
    request = ChatCompletionRequest.model_validate(REQUEST_BODY)
    available = frozenset(catalog.keys())
    prep = preparer.prepare(request, available)
    empty = StateSnapshot()
    now = time.time()

    def noop() -> None:
        return None

    return [
        ("baseline: empty call", percentiles(noop)),
        ("baseline: json.dumps(request)", percentiles(lambda: json.dumps(REQUEST_BODY))),
        ("token estimate (cl100k, exact)", percentiles(lambda: preparer.tokens.estimate(request))),
        ("prepare (incl. tokens, 50 models)", percentiles(lambda: preparer.prepare(request, available))),
        (f"plan ({len(prep.candidates)} loaded, empty state)", percentiles(lambda: planner.plan(prep, empty, now))),
        ("prepare + plan", percentiles(lambda: planner.plan(preparer.prepare(request, available), empty, now))),
    ]


def dynamodb_calls() -> list[tuple[str, dict[str, int]]]:
    """Calls per request through the real DynamoStateStore on moto (in-process), driven as the
    runner drives it: one load, then reserve and reconcile for one attempt (a reconcile folds
    into the next reservation of the same window, so it costs no call of its own)."""
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    import boto3
    from moto import mock_aws

    from llm_gateway.state.dynamodb import DynamoStateStore, create_table
    from llm_gateway.state.metering import TOKENS
    from llm_gateway.state.shared import SharedState

    rows: list[tuple[str, dict[str, int]]] = []
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table(client, "bench")
        state = SharedState(DynamoStateStore(client, "bench"), fold_reconcile=True)
        counts: dict[str, int] = {}
        client.meta.events.register(
            "before-call.dynamodb.*", lambda model, **_: counts.__setitem__(model.name, counts.get(model.name, 0) + 1)
        )
        request = ChatCompletionRequest.model_validate(REQUEST_BODY)
        planner = Planner()
        default = default_catalog()
        for label, catalog in ((f"catalog ({len(default)} models)", default), ("50-model catalog", fifty_model_catalog())):
            preparer = ChatPreparer(catalog, TokenEstimator())
            prep = preparer.prepare(request, frozenset(catalog.keys()))
            now = time.time()
            counts.clear()
            snapshot = state.load(prep.all_meters(), prep.keys, now)
            plan = planner.plan(prep, snapshot, now)
            step = plan.steps[0]
            reservation = state.reserve(step.usages, step.amounts, now)
            if reservation is not None:
                state.reconcile(reservation, {**step.amounts, TOKENS: step.amounts[TOKENS] - 100}, now)
            items = len(pks_for(prep.all_meters(), prep.keys, now))
            rows.append((f"{label}: {items} items for {len(prep.keys)} loaded candidates, first step {step.key} "
                         f"({len(step.usages)} windows)", dict(counts)))
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
