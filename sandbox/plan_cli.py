"""`llm-gateway plan REQUEST.json`: why would this request go where it goes?

Runs the real selector on the built-in catalog (plus `LLM_GATEWAY_CATALOG_OVERRIDES`), assuming
every catalog provider is configured unless `--configured` says otherwise, against empty
in-memory state or the shared DynamoDB table (`--state-table`, `--endpoint-url` for moto/local).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from llm_gateway.api.errors import GatewayError, from_validation_error
from llm_gateway.api.schemas import ChatCompletionRequest
from llm_gateway.selection.catalog import default_catalog
from llm_gateway.selection.selector import Plan, Selector
from llm_gateway.state.memory import MemoryStore
from llm_gateway.state.store import StateStore


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llm-gateway plan", description=__doc__.splitlines()[0])
    parser.add_argument("request", help="chat completion request body (JSON file, or - for stdin)")
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    parser.add_argument("--configured", help="comma-separated providers to treat as configured")
    parser.add_argument("--state-table", help="read rate-limit state from this DynamoDB table")
    parser.add_argument("--endpoint-url", help="DynamoDB endpoint (e.g. the local moto server)")
    parser.add_argument("--region", default=None, help="AWS region for --state-table")
    return parser


def _store(args: argparse.Namespace) -> StateStore:
    if not args.state_table:
        return MemoryStore()
    import boto3

    from llm_gateway.state.dynamodb import DynamoStateStore, client_config

    client = boto3.client("dynamodb", endpoint_url=args.endpoint_url, region_name=args.region, config=client_config())
    return DynamoStateStore(client, args.state_table)


def plan_as_json(plan: Plan) -> dict[str, Any]:
    """The documented `--json` shape, nothing more (operators script against it)."""
    return {
        "category": plan.category,
        "prompt_tokens": plan.prompt_tokens,
        "plan": [
            {"provider": s.key.provider, "model": s.key.model, "free": s.free,
             "context_window": s.context_window, "reason": s.reason}
            for s in plan.steps
        ],
        "dropped": [{"provider": k.provider, "model": k.model, "reason": why} for k, why in plan.dropped],
    }


def _print_text(plan: Plan, rule: str | None) -> None:
    print(f"category: {plan.category}" + (f" ({rule})" if rule else ""))
    print(f"prompt tokens (cl100k estimate): {plan.prompt_tokens}")
    if plan.pinned:
        print(f"pinned: {plan.pinned}")
    print(f"\nplan ({len(plan.steps)}):")
    for n, step in enumerate(plan.steps, 1):
        tag = "free" if step.free else "paid"
        print(f"  {n:>2}. {step.key!s:<50} {tag}  ctx {step.context_window:>8}  {step.reason}")
    print(f"\ndropped ({len(plan.dropped)}):")
    for key, why in plan.dropped:
        print(f"      {key!s:<50} {why}")


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    text = sys.stdin.read() if args.request == "-" else Path(args.request).read_text(encoding="utf-8")
    try:
        request = ChatCompletionRequest.model_validate(json.loads(text))
        catalog = default_catalog()
        providers = set(args.configured.split(",")) if args.configured else set(catalog.providers())
        available = [e.key for e in catalog.served_by(providers)]
        selector = Selector(catalog)
        prep = selector.prepare(request, available)
        now = time.time()
        snapshot = _store(args).load(prep.limits, now)
        plan = selector.plan(prep, snapshot, now)
    except ValidationError as exc:
        print(json.dumps(from_validation_error(exc).body()), file=sys.stderr)
        return 2
    except GatewayError as exc:
        print(json.dumps(exc.body()), file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(plan_as_json(plan), indent=2))
    else:
        _print_text(plan, prep.analysis.rule if prep.analysis else None)
    return 0
