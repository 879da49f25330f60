"""DynamoDB calls on the critical path, counted over whole requests through the gateway.

The gateway is built as Lambda builds it with a state table (the real `DynamoStateStore`
behind the degraded-mode wrapper, DynamoDB breakers and health store), on an in-process moto
table (`mock_aws`), and serves N chat requests answered by an `httpx.MockTransport`. Every
DynamoDB API call is counted with a botocore `before-parameter-build` hook, and provider attempts from the
`x-gateway-attempts` header. The design's budget: one BatchGetItem per request (windows,
cooldowns, header snapshots, breakers, failure marks in one read) and one conditional write per
attempt (UpdateItem, or TransactWriteItems when several windows move together). A
reconciliation that gives back (the provider used less than reserved, the usual case: output
is reserved at its cap) is folded into the container's next reservation of the same window; one
that takes more (the provider counted more than we estimated: Cohere's recorded answer bills
503 prompt tokens for a 9-token prompt) is written at once, so other containers see it. The
count tells the two apart.

Two runs: every first attempt answers; and one where the provider planned first answers 503.
Its first failure writes the provider's failure mark (one PutItem, shared with every container
for `FAILURE_MEMORY_S`), after which plans put it last, so later requests need one attempt.
The health view's read of the scheduled checks' verdicts (one BatchGetItem, cached per
container for a minute) is counted apart.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from llm_gateway.api.schemas import ChatCompletionRequest
from llm_gateway.config import load_settings
from llm_gateway.gateway import build_gateway
from llm_gateway.observability.metrics import RecordingMetrics

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "providers"
REQUESTS = int(os.environ.get("BENCH_DYNAMODB_REQUESTS", "40"))
CLIENT_KEY = "bench-client-key-" + "0" * 20
TABLE = "bench-state"
HOSTS = {"api.groq.com": "groq", "generativelanguage.googleapis.com": "gemini", "api.cohere.com": "cohere",
         "api.mistral.ai": "mistral", "api.openai.com": "openai"}
BODY = {"model": "auto", "messages": [{"role": "user", "content": "Say hello in five words."}], "max_tokens": 64}
WRITES = ("UpdateItem", "TransactWriteItems")


def _transport(failing: set[str]) -> httpx.MockTransport:
    """Each host answers its provider's recorded response; providers in `failing` answer 503."""
    bodies = {name: (FIXTURES / name / "chat_text.json").read_bytes() for name in set(HOSTS.values())}

    def answer(request: httpx.Request) -> httpx.Response:
        provider = HOSTS[request.url.host]
        if provider in failing:
            return httpx.Response(503, json={"error": {"message": "overloaded"}})
        return httpx.Response(200, content=bodies[provider], headers={"content-type": "application/json"})

    return httpx.MockTransport(answer)


def run(failing_first: bool) -> dict[str, Any]:
    """Serve REQUESTS requests on a fresh table; calls by operation, requests and attempts."""
    import boto3
    from moto import mock_aws

    from llm_gateway.state.dynamodb import create_table

    env = {**{f"{name.upper()}_API_KEY": "k" for name in set(HOSTS.values())}, "LLM_GATEWAY_API_KEYS": CLIENT_KEY,
           "LLM_GATEWAY_STATE_TABLE": TABLE}
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table(client, TABLE)
        failing: set[str] = set()
        gateway = build_gateway(load_settings(env), metrics=RecordingMetrics(), dynamodb_client=client,
                                http_client=httpx.Client(transport=_transport(failing)))
        caller = gateway.authenticate(f"Bearer {CLIENT_KEY}")
        if failing_first:  # whichever provider the plan puts first answers 503 from now on
            first = gateway.router.plan(ChatCompletionRequest.model_validate(BODY)).steps[0].key.provider
            failing.add(first)
        counts: Counter[str] = Counter()

        def count(model: Any, params: dict[str, Any], **_: Any) -> None:
            keys = params.get("RequestItems", {}).get(TABLE, {}).get("Keys", [])
            health = keys and all(key["pk"]["S"].startswith("health#") for key in keys)
            counts.update(["BatchGetItem (health)" if health else model.name])

        client.meta.events.register("before-parameter-build.dynamodb.*", count)
        state = gateway.core.state
        reserve, reconcile, add = state.reserve, state.reconcile, state.store.add
        reservations: list[int] = []
        writes = Counter[str]()
        doing = ["reserve"]

        def counted_reserve(usages: Any, amounts: Any, now: float) -> Any:
            """Attempts on a metered model reserve (one write); paid models without limits do not."""
            doing[0] = "reserve"
            reservation = reserve(usages, amounts, now)
            if reservation is not None and reservation.adds:
                reservations.append(len(reservation.adds))
            return reservation

        def counted_reconcile(reservation: Any, actual: Any, now: float) -> None:
            doing[0] = "reconcile"
            try:
                reconcile(reservation, actual, now)
            finally:
                doing[0] = "reserve"

        def counted_add(adds: Any, now: float) -> bool:
            writes[doing[0]] += 1
            return add(adds, now)

        state.reserve, state.reconcile, state.store.add = counted_reserve, counted_reconcile, counted_add  # type: ignore[method-assign]
        attempts = 0
        served: Counter[str] = Counter()
        for _ in range(REQUESTS):
            outcome = gateway.chat(ChatCompletionRequest.model_validate(BODY), caller, "bench")
            attempts += int(outcome.headers["x-gateway-attempts"])
            served[outcome.headers["x-gateway-provider"]] += 1
    return {"counts": dict(counts), "requests": REQUESTS, "attempts": attempts, "failing": sorted(failing),
            "reservations": len(reservations), "windows": sum(reservations), "served": dict(served),
            "writes": dict(writes)}


def main() -> None:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    print(f"\nDynamoDB calls through the whole gateway (moto, {REQUESTS} requests each; "
          f"{', '.join(sorted(set(HOSTS.values())))} configured)")
    for label, failing_first in (("every first attempt answers", False), ("first provider answers 503", True)):
        result = run(failing_first)
        counts, requests, attempts = result["counts"], result["requests"], result["attempts"]
        reserved, kinds = result["reservations"], result["writes"]
        reads = counts.get("BatchGetItem", 0)
        others = {op: n for op, n in counts.items() if op not in (*WRITES, "BatchGetItem")}
        failing = f" ({', '.join(result['failing'])} failing)" if result["failing"] else ""
        print(f"  {label}{failing}: {requests} requests, {attempts} attempts, {reserved} reserved on metered "
              f"models, served by {result['served']}")
        print(f"    BatchGetItem {reads / requests:.2f} per request (the health view adds one per container-minute); "
              f"conditional writes {kinds.get('reserve', 0) / max(reserved, 1):.2f} per metered attempt "
              f"({', '.join(f'{op} {counts.get(op, 0)}' for op in WRITES)} in all); reconciliation writes "
              f"{kinds.get('reconcile', 0)} (usage above the reservation is written at once, below it folds "
              f"into the next reservation); other calls {others or 'none'}")

if __name__ == "__main__":
    main()
