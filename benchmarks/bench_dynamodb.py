"""DynamoDB calls on the critical path, counted over whole requests through the gateway.

The gateway is built as Lambda builds it with a state table (the real `DynamoStateStore`
behind the degraded-mode wrapper, DynamoDB breakers and health store), on an in-process moto
table (`mock_aws`), and serves N chat requests answered by an `httpx.MockTransport`. Every
DynamoDB API call is counted with a botocore `before-call` hook, and provider attempts from the
`x-gateway-attempts` header. The design's budget: one BatchGetItem per request (windows,
cooldowns, header snapshots, breakers, failure marks in one read) and one conditional write per
attempt (UpdateItem, or TransactWriteItems when several windows move together), with each
attempt's reconciliation folded into the container's next reservation of the same window
instead of a write of its own.

Two runs: every first attempt answers; and one where the first provider tried answers 503,
so each request fails over once (two attempts), which also writes the provider's failure mark.
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
HOSTS = {"api.groq.com": "groq", "api.mistral.ai": "mistral", "api.openai.com": "openai"}
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

    env = {"GROQ_API_KEY": "k", "MISTRAL_API_KEY": "k", "OPENAI_API_KEY": "k", "LLM_GATEWAY_API_KEYS": CLIENT_KEY,
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
        client.meta.events.register("before-call.dynamodb.*", lambda model, **_: counts.update([model.name]))
        attempts = 0
        for _ in range(REQUESTS):
            outcome = gateway.chat(ChatCompletionRequest.model_validate(BODY), caller, "bench")
            attempts += int(outcome.headers["x-gateway-attempts"])
    return {"counts": dict(counts), "requests": REQUESTS, "attempts": attempts, "failing": sorted(failing)}


def main() -> None:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    print(f"\nDynamoDB calls through the whole gateway (moto, {REQUESTS} requests each; groq, mistral, openai)")
    for label, failing_first in (("every first attempt answers", False), ("first provider answers 503", True)):
        result = run(failing_first)
        counts, requests, attempts = result["counts"], result["requests"], result["attempts"]
        writes = sum(counts.get(op, 0) for op in WRITES)
        reads = counts.get("BatchGetItem", 0)
        others = {op: n for op, n in counts.items() if op not in (*WRITES, "BatchGetItem")}
        failing = f" ({', '.join(result['failing'])})" if result["failing"] else ""
        print(f"  {label}{failing}: {attempts} attempts for {requests} requests")
        print(f"    BatchGetItem {reads} = {reads / requests:.2f} per request; conditional writes "
              f"{writes} = {writes / attempts:.2f} per attempt "
              f"({', '.join(f'{op} {counts.get(op, 0)}' for op in WRITES)}); "
              f"other calls {others or 'none'}")


if __name__ == "__main__":
    main()
