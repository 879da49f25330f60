"""`llm-gateway plan REQUEST.json`: why would this request go where it goes?

Runs the real selector on the catalog the gateway would load (built-in plus
`LLM_GATEWAY_CATALOG_OVERRIDES`), for the providers the gateway would have: those configured in
this environment (`<PROVIDER>_API_KEY`, narrowed by `<PROVIDER>_MODELS`), or, with no key set, the
fake providers `make dev` would start; `--configured a,b` overrides that. State is empty
(in memory) unless `--state-table` reads the shared DynamoDB table (`--endpoint-url` for the local
one). The input is a request body (see `sandbox/requests/`), an API Gateway event file (see
`events/`), or `-` for stdin. The first line of output says which providers were assumed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from typing import Any

from pydantic import ValidationError

from llm_gateway.api.errors import GatewayError, from_validation_error
from llm_gateway.api.schemas import ChatCompletionRequest
from llm_gateway.config import ConfigError, load_settings
from llm_gateway.selection.catalog import Catalog, load_catalog
from llm_gateway.selection.selector import Plan, Selector
from llm_gateway.state.memory import MemoryStore
from llm_gateway.state.store import ModelKey, StateStore
from sandbox.local_env import configured_env, plan_local_env
from sandbox.request_input import RequestInputError, read_request
from sandbox.served import describe_served, served_models

PROG = "llm-gateway plan"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("request", help="request body or API Gateway event (JSON file), or - for stdin")
    parser.add_argument("--json", action="store_true", help="print the plan as JSON (the assumption goes to stderr)")
    parser.add_argument("--configured", help="comma-separated providers to plan for, instead of the environment's")
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


def providers_to_plan_for(configured: str | None) -> tuple[Catalog, dict[str, list[str]], str]:
    """The catalog, provider -> models to plan with, and a sentence saying where that came from."""
    env = dict(os.environ)
    local = plan_local_env(env, state="memory")
    settings = load_settings(configured_env(env, local))
    catalog = load_catalog(settings.catalog_overrides)
    if configured:
        names = [p.strip() for p in configured.split(",") if p.strip()]
        unknown = sorted(set(names) - set(catalog.providers()))
        if unknown:
            raise ConfigError(f"--configured names unknown provider(s) {', '.join(unknown)}; "
                              f"the catalog has {', '.join(catalog.providers())}")
        served = {name: [e.model for e in catalog.served_by({name})] for name in names}
        return catalog, served, f"providers: {describe_served(served)} (as given by --configured)"
    served = served_models(settings, catalog)
    if local.fakes:
        why = "no provider keys set, so the sandbox's fake providers, as make dev would start them"
    else:
        why = "the providers configured in the environment"
    return catalog, served, f"providers: {describe_served(served)} ({why})"


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


def singular(text: str) -> str:
    """'1 requests left' -> '1 request left' (the selector's reasons count with a plain plural)."""
    return re.sub(r"\b1 (request|token|model|candidate)s\b", r"1 \1", text)


def _print_text(plan: Plan, rule: str | None, assumption: str) -> None:
    print(assumption)
    print(f"category: {plan.category}" + (f" ({rule})" if rule else ""))
    print(f"prompt tokens (cl100k estimate): {plan.prompt_tokens}")
    if plan.pinned:
        print(f"pinned: {plan.pinned}")
    print(f"\nplan ({len(plan.steps)}):")
    for n, step in enumerate(plan.steps, 1):
        tag = "free" if step.free else "paid"
        print(singular(f"  {n:>2}. {step.key!s:<50} {tag}  ctx {step.context_window:>8}  {step.reason}"))
    print(f"\ndropped ({len(plan.dropped)}):")
    for key, why in plan.dropped:
        print(singular(f"      {key!s:<50} {why}"))


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        body = read_request(args.request)
        catalog, served, assumption = providers_to_plan_for(args.configured)
    except (RequestInputError, ConfigError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    try:
        request = ChatCompletionRequest.model_validate(body)
        available = [ModelKey(provider, model) for provider, models in served.items() for model in models]
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
        print(assumption, file=sys.stderr)
        print(json.dumps(plan_as_json(plan), indent=2))
    else:
        _print_text(plan, prep.analysis.rule if prep.analysis else None, assumption)
    return 0
