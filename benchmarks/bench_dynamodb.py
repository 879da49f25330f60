"""DynamoDB calls on the critical path, counted over whole requests through the gateway.

The gateway is built as Lambda builds it with a state table (the real `DynamoStateStore`
behind the degraded-mode wrapper, DynamoDB breakers and health store, and the container's own
DynamoDB client, `state/aws_client.py`), on an in-process moto table (`mock_aws`, reached
through moto's DynamoDB WSGI app), and serves N chat requests answered by an
`httpx.MockTransport`. Every DynamoDB API call is counted as the client makes it, and provider attempts from the
`x-gateway-attempts` header; each call is named by what it touches (the state load, a
reservation or reconciliation of a counter's item `rl#…`, the conversation-affinity item `aff#…`, a
failure mark, the user's usage record `usage#…` (one unconditional UpdateItem per served request),
the health view's read of the scheduled checks, cached a minute per container).

What the design budgets: one BatchGetItem per request for all the state a plan needs, and per
attempt on a metered model one conditional UpdateItem per counter item it counts on (one item
holds every window of a counter: a model's own minute and day windows are one item, its
provider's organisation-wide windows another: no transactions, see `state/dynamodb.py`). A
reconciliation that gives back (the provider used less than reserved, the usual case: output is
reserved at its cap) is folded into the container's next reservation on the same item; one that
takes more (the provider counted more than we estimated: Cohere's
fixture answer bills 503 prompt tokens for a 9-token prompt) is written at once, so other
containers see it. An unpinned answer also writes the conversation's affinity item.

Three runs: every first attempt answers; one where the provider planned first answers 503 (its
first failure writes the provider's failure mark, one PutItem shared with every container for
`FAILURE_MEMORY_S`, after which plans put it last, so later requests need one attempt); and the
same with a key of its own `rpm`/`rpd` limits, whose windows (the user's counter item) every
attempt reserves on too, and whose request counts once in them however many attempts it made.
For the first request that failed over, the calls are also printed in order around its provider
calls (`call`): what the caller waits for before each attempt.

After each run the counter items are sized as DynamoDB sizes an item (attribute names and values,
numbers at a byte per two digits plus one): an UpdateItem costs a write unit per KB of the larger
of the item before and after it.

What it printed (2026-11-30, 40 requests a run; which of Mistral, Groq and Cohere answer depends
on Mistral's 1 request/s against the wall clock, so the splits move a little between runs):

| calls | every first attempt answers | first provider answers 503 | a key with rpm/rpd, first provider answers 503 |
|---|---|---|---|
| BatchGetItem, state load | 40 (1.00 per request) | 40 | 40 |
| UpdateItem, reservation (conditional) | 50 (1.25 per attempt) | 42 (1.02 per attempt) | 83 (2.02 per attempt: the model's item and the user's) |
| UpdateItem, reconciliation | 20 (0.50 per attempt) | 0 | 0 |
| UpdateItem, counter with no condition | 0 | 0 | 0 (1 before the caller's request moved inside the next reservation: its give-back before the next attempt) |
| PutItem, failure mark | 0 | 1 | 1 |
| UpdateItem, usage record | 40 | 40 | 40 |
| all but the health read, per request | 3.75 | 3.08 | 4.10 (4.12 before) |

The failover of the key with limits, in order: BatchGetItem; the conditional UpdateItems of
Cohere's organisation, its model and the user; Cohere's call (503); the failure mark's PutItem;
the conditional UpdateItems of Gemini's model and the user; Gemini's call; the usage record.
Before the move rode on the reservation, an unconditional UpdateItem of the user's item came
between the failure mark and Gemini's reservation.
"""

from __future__ import annotations

import math
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


class _Transport(httpx.MockTransport):
    trace: list[str] | None = None  # where each provider call is noted (`call {provider}`), when set


def _transport(failing: set[str]) -> _Transport:
    """Each host answers its provider's fixture response; providers in `failing` answer 503."""
    bodies = {name: (FIXTURES / name / "chat_text.json").read_bytes() for name in set(HOSTS.values())}

    def answer(request: httpx.Request) -> httpx.Response:
        provider = HOSTS[request.url.host]
        if transport.trace is not None:
            transport.trace.append(f"call {provider}")
        if provider in failing:
            return httpx.Response(503, json={"error": {"message": "overloaded"}})
        return httpx.Response(200, content=bodies[provider], headers={"content-type": "application/json"})

    transport = _Transport(answer)
    return transport


LIMITED_KEY = {"user": "bench", "rpm": 1000, "rpd": 100_000}  # limits that count every request, never refuse


def run(failing_first: bool, limited: bool = False) -> dict[str, Any]:
    """Serve REQUESTS requests on a fresh table (with a key of `LIMITED_KEY`'s limits when
    `limited`); calls by operation, requests and attempts."""
    import boto3
    from moto import mock_aws
    from moto.moto_server.werkzeug_app import create_backend_app

    from llm_gateway.config import AwsAccess
    from llm_gateway.state.aws_client import DynamoDBClient
    from llm_gateway.state.dynamodb import create_table

    env = {**{f"{name.upper()}_API_KEY": "k" for name in set(HOSTS.values())}, "LLM_GATEWAY_API_KEYS": CLIENT_KEY,
           "LLM_GATEWAY_STATE_TABLE": TABLE}
    with mock_aws():
        create_table(boto3.client("dynamodb", region_name="us-east-1"), TABLE)
        client = DynamoDBClient(httpx.Client(transport=httpx.WSGITransport(app=create_backend_app("dynamodb"))),
                                AwsAccess("us-east-1", "testing", "testing"), endpoint="http://dynamodb.us-east-1.amazonaws.com")
        failing: set[str] = set()
        transport = _transport(failing)
        gateway = build_gateway(load_settings(env), metrics=RecordingMetrics(), dynamodb_client=client,
                                http_client=httpx.Client(transport=transport))
        key = gateway.core.tenancy.admin.create(LIMITED_KEY)["key"] if limited else CLIENT_KEY
        caller = gateway.authenticate(f"Bearer {key}")
        if failing_first:  # whichever provider the plan puts first answers 503 from now on
            first = gateway.router.plan(ChatCompletionRequest.model_validate(BODY)).steps[0].key.provider
            failing.add(first)
        counts: Counter[str] = Counter()
        phase = ["request"]  # what the runner is doing when a call goes out
        trace: list[str] = []  # this request's calls in order, provider calls as `call`
        transport.trace = trace

        call = client.call

        def count(operation: str, params: dict[str, Any], **options: Any) -> Any:
            """Each DynamoDB call, named by operation and by the item it touches."""
            keys = [k["pk"]["S"] for k in params.get("RequestItems", {}).get(TABLE, {}).get("Keys", [])]
            pk = str(params.get("Key", params.get("Item", {})).get("pk", {}).get("S", ""))
            if operation == "BatchGetItem":
                what = "health read" if keys and all(k.startswith("health#") for k in keys) else "state load"
            elif pk.startswith("rl#"):
                what = ("reconciliation" if phase[0] == "reconcile" else
                        "reservation" if "ConditionExpression" in params else "counter, no condition")
            else:
                what = {"aff#": "affinity", "fail#": "failure mark", "hdr#": "header snapshot", "key#": "key read",
                        "cd#": "cooldown", "cb#": "breaker", "usage#": "usage record"}.get(pk.split("#", 1)[0] + "#", "other")
            counts[f"{operation} ({what})"] += 1
            if what != "health read":
                trace.append(f"{operation} ({what}{' ' + pk if pk.startswith('rl#') else ''})")
            return call(operation, params, **options)

        client.call = count  # type: ignore[method-assign]
        state = gateway.core.state
        reserve, reconcile = state.reserve, state.reconcile
        reservations: list[int] = []

        def counted_reserve(usages: Any, amounts: Any, now: float, moved: Any = None) -> Any:
            """Attempts on a metered model reserve; paid models without limits write nothing."""
            reservation = reserve(usages, amounts, now, moved)
            if reservation is not None and reservation.adds:
                reservations.append(len(reservation.adds))
            return reservation

        def counted_reconcile(reservation: Any, actual: Any, now: float) -> None:
            phase[0] = "reconcile"
            try:
                reconcile(reservation, actual, now)
            finally:
                phase[0] = "request"

        state.reserve, state.reconcile = counted_reserve, counted_reconcile  # type: ignore[method-assign]
        attempts = 0
        served: Counter[str] = Counter()
        failover: list[str] = []
        for _ in range(REQUESTS):
            trace.clear()
            outcome = gateway.chat(ChatCompletionRequest.model_validate(BODY), caller, "bench")
            made = int(outcome.headers["x-gateway-attempts"])
            attempts += made
            served[outcome.headers["x-gateway-provider"]] += 1
            if made > 1 and not failover:
                failover = list(trace)
        scan = boto3.client("dynamodb", region_name="us-east-1").scan(TableName=TABLE)["Items"]
        sizes = [item_size(item) for item in scan if item["pk"]["S"].startswith("rl#")]
    return {"counts": dict(counts), "requests": REQUESTS, "attempts": attempts, "failing": sorted(failing),
            "reservations": len(reservations), "windows": sum(reservations), "served": dict(served),
            "sizes": sizes, "failover": failover}


def item_size(item: dict[str, Any]) -> int:
    """An item's size as DynamoDB counts it for write units (strings and numbers only here)."""
    size = 0
    for name, value in item.items():
        size += len(name.encode())
        if "S" in value:
            size += len(value["S"].encode())
        elif "N" in value:
            digits = value["N"].lstrip("-").replace(".", "").strip("0") or "0"
            size += (len(digits) + 1) // 2 + 1
        else:
            size += len(str(value).encode())
    return size


def main() -> None:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    print(f"\nDynamoDB calls through the whole gateway (moto, {REQUESTS} requests each; "
          f"{', '.join(sorted(set(HOSTS.values())))} configured)")
    runs = (("every first attempt answers", False, False), ("first provider answers 503", True, False),
            (f"a key with rpm {LIMITED_KEY['rpm']} and rpd {LIMITED_KEY['rpd']}, first provider answers 503", True,
             True))
    for label, failing_first, limited in runs:
        result = run(failing_first, limited)
        counts, requests, attempts = result["counts"], result["requests"], result["attempts"]
        reserved, windows = result["reservations"], result["windows"]
        failing = f" ({', '.join(result['failing'])} failing)" if result["failing"] else ""
        print(f"  {label}{failing}: {requests} requests, {attempts} attempts, {reserved} of them on metered "
              f"models ({windows / max(reserved, 1):.2f} counter items each), served by {result['served']}")
        per = {"state load": requests, "reservation": reserved, "reconciliation": reserved, "affinity": requests}
        for name, n in sorted(counts.items()):
            what = name[name.index("(") + 1 : -1]
            unit = {"state load": "request", "reservation": "metered attempt", "reconciliation": "metered attempt",
                    "affinity": "request"}.get(what)
            rate = f" = {n / max(per[what], 1):.2f} per {unit}" if unit else ""
            print(f"    {name:<36}{n:5d}{rate}")
        on_path = sum(n for name, n in counts.items() if "health read" not in name) / requests
        print(f"    all calls but the health read: {on_path:.2f} per request")
        sizes = result["sizes"]
        print(f"    counter items: {len(sizes)}, largest {max(sizes, default=0)} bytes, mean "
              f"{sum(sizes) / max(len(sizes), 1):.0f} bytes ({math.ceil(max(sizes, default=0) / 1024)} write unit(s) "
              "per UpdateItem on the largest)")
        if result["failover"]:
            print("    the first request that failed over, in order:")
            for call in result["failover"]:
                print(f"      {call}")

if __name__ == "__main__":
    main()
