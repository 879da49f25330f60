"""`llm-gateway plan REQUEST.json`: why would this request go where it goes?

Builds the gateway's own core and chat router (`llm_gateway.compose`) and asks the router for
the plan it would follow now (`ChatRouter.plan`: the same preparation, state read, breakers,
health and planner as a real request). The catalog is the built-in one plus
`LLM_GATEWAY_CATALOG_OVERRIDES`; every catalog provider counts as configured unless
`--configured` says otherwise (no key is needed: nothing is called). State is empty and in
memory, or the shared DynamoDB table (`--state-table`, `--endpoint-url` for moto/local).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from llm_gateway.api.errors import GatewayError, from_validation_error
from llm_gateway.api.schemas import ChatCompletionRequest
from llm_gateway.compose import build_chat, build_core
from llm_gateway.config import Settings
from llm_gateway.observability.metrics import RecordingMetrics
from llm_gateway.providers.base import ProviderConfig
from llm_gateway.providers.registry import provider_specs
from llm_gateway.routing.chat import ChatRouter
from llm_gateway.selection.catalog import OVERRIDES_ENV, load_catalog
from llm_gateway.selection.planner import Plan
from llm_gateway.selection.selector import ChatDetail

PLAN_ONLY_KEY = "plan-only"  # never sent anywhere: the plan makes no provider call


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llm-gateway plan", description=__doc__.splitlines()[0])
    parser.add_argument("request", help="chat completion request body (JSON file, or - for stdin)")
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    parser.add_argument("--configured", help="comma-separated providers to treat as configured")
    parser.add_argument("--state-table", help="read rate-limit state from this DynamoDB table")
    parser.add_argument("--endpoint-url", help="DynamoDB endpoint (e.g. the local moto server)")
    parser.add_argument("--region", default=None, help="AWS region for --state-table")
    return parser


def _provider(name: str) -> ProviderConfig:
    """A config for `name` as if its key were set (an unknown name is an OpenAI-compatible endpoint)."""
    specs = provider_specs()
    spec = specs.get(name) or specs["openai_compatible"]
    return ProviderConfig(name=name, kind=spec.kind, base_url=spec.default_base_url or "http://plan.invalid/v1",
                          api_key=PLAN_ONLY_KEY)


def build_router(args: argparse.Namespace) -> ChatRouter:
    """The gateway's composition root, with the providers and state table the operator named."""
    overrides = os.environ.get(OVERRIDES_ENV) or None
    catalog = load_catalog(overrides)
    names = [n.strip() for n in args.configured.split(",") if n.strip()] if args.configured else catalog.providers()
    settings = Settings(providers=tuple(_provider(n) for n in names), catalog_overrides=overrides,
                        state_table=args.state_table, dynamodb_endpoint=args.endpoint_url)
    extra: dict[str, Any] = {}
    if args.state_table:
        import boto3

        from llm_gateway.state.dynamodb import DynamoStateStore, client_config

        client = boto3.client("dynamodb", endpoint_url=args.endpoint_url, region_name=args.region,
                              config=client_config())
        # The plain store, not the degraded-mode wrapper: an unreachable table is an error here,
        # not an empty state that would make the plan look healthy.
        extra = {"dynamodb_client": client, "store": DynamoStateStore(client, args.state_table)}
    core = build_core(settings, metrics=RecordingMetrics(), catalog=catalog, **extra)  # EMF would go to stdout
    return build_chat(core)


def plan_as_json(plan: Plan, detail: ChatDetail) -> dict[str, Any]:
    """The documented `--json` shape, nothing more (operators script against it)."""
    return {
        "category": plan.label,
        "prompt_tokens": detail.prompt_tokens,
        "plan": [
            {"provider": s.key.provider, "model": s.key.model, "free": s.free,
             "context_window": s.entry.context_window, "reason": s.reason}
            for s in plan.steps
        ],
        "dropped": [{"provider": k.provider, "model": k.model, "reason": why} for k, why in plan.dropped],
    }


def _print_text(plan: Plan, detail: ChatDetail) -> None:
    rule = detail.analysis.rule
    print(f"category: {plan.label}" + (f" ({rule})" if rule else ""))
    print(f"prompt tokens (cl100k estimate): {detail.prompt_tokens}")
    if plan.pinned:
        print(f"pinned: {plan.pinned}")
    print(f"\nplan ({len(plan.steps)}):")
    for n, step in enumerate(plan.steps, 1):
        tag = "free" if step.free else "paid"
        print(f"  {n:>2}. {step.key!s:<50} {tag}  ctx {step.entry.context_window or 0:>8}  {step.reason}")
    print(f"\ndropped ({len(plan.dropped)}):")
    for key, why in plan.dropped:
        print(f"      {key!s:<50} {why}")
    if plan.free_again_in_s is not None and not plan.steps:
        print(f"\nfirst capacity frees in {plan.free_again_in_s:.1f}s")


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    text = sys.stdin.read() if args.request == "-" else Path(args.request).read_text(encoding="utf-8")
    try:
        request = ChatCompletionRequest.model_validate(json.loads(text))
        router = build_router(args)
        # What preparation learnt about the request (category rule, prompt tokens); the plan
        # itself is the router's, exactly as a request would get it.
        detail: ChatDetail = router.preparer.prepare(request, router.available()).detail
        plan = router.plan(request)
    except ValidationError as exc:
        print(json.dumps(from_validation_error(exc).body()), file=sys.stderr)
        return 2
    except GatewayError as exc:
        print(json.dumps(exc.body()), file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(plan_as_json(plan, detail), indent=2))
    else:
        _print_text(plan, detail)
    return 0
