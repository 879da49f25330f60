"""`llm-gateway plan REQUEST.json`: why would this request go where it goes?

Builds the gateway's own core and chat router (`llm_gateway.compose`) and asks the router for
the plan it would follow now (`ChatRouter.plan`: the same preparation, state read, breakers,
health and planner as a real request). The catalog is the one the gateway would load (built-in
plus `LLM_GATEWAY_CATALOG_OVERRIDES`), for the providers the gateway would have: those configured
in this environment (`<PROVIDER>_API_KEY`, narrowed by `<PROVIDER>_MODELS`), or, with no key set,
the fake providers `make dev` would start; `--configured a,b` overrides that (no key is needed:
nothing is called). State is empty (in memory) unless `--state-table` reads the shared DynamoDB
table (`--endpoint-url` for the local one). The input is a request body (see `sandbox/requests/`),
an API Gateway event file (see `events/`), or `-` for stdin. The first line of output says which
providers were assumed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from pydantic import ValidationError

from llm_gateway.api.errors import GatewayError, from_validation_error
from llm_gateway.api.schemas import ChatCompletionRequest
from llm_gateway.compose import build_chat, build_core
from llm_gateway.config import ConfigError, Settings, load_settings
from llm_gateway.observability.metrics import RecordingMetrics
from llm_gateway.providers.base import ProviderConfig
from llm_gateway.providers.registry import provider_specs
from llm_gateway.routing.chat import ChatRouter
from llm_gateway.selection.catalog import Catalog, load_catalog
from llm_gateway.selection.planner import Plan
from llm_gateway.selection.selector import ChatDetail
from sandbox.local_env import configured_env, plan_local_env
from sandbox.request_input import RequestInputError, read_request
from sandbox.served import describe_served, served_models

PROG = "llm-gateway plan"
PLAN_ONLY_KEY = "plan-only"  # never sent anywhere: the plan makes no provider call


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("request", help="request body or API Gateway event (JSON file), or - for stdin")
    parser.add_argument("--json", action="store_true", help="print the plan as JSON (the assumption goes to stderr)")
    parser.add_argument("--configured", help="comma-separated providers to plan for, instead of the environment's")
    parser.add_argument("--state-table", help="read rate-limit state from this DynamoDB table")
    parser.add_argument("--endpoint-url", help="DynamoDB endpoint (e.g. the local moto server)")
    parser.add_argument("--region", default=None, help="AWS region for --state-table")
    return parser


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


def _provider(name: str, models: list[str]) -> ProviderConfig:
    """A config for `name` as if its key were set (an unknown kind is an OpenAI-compatible endpoint)."""
    specs = provider_specs()
    spec = specs.get(name) or specs["openai_compatible"]
    return ProviderConfig(name=name, kind=spec.kind, base_url=spec.default_base_url or "http://plan.invalid/v1",
                          api_key=PLAN_ONLY_KEY, models=tuple(models))


def build_router(args: argparse.Namespace, catalog: Catalog, served: dict[str, list[str]]) -> ChatRouter:
    """The gateway's composition root, with the providers and state table to plan for."""
    settings = Settings(providers=tuple(_provider(n, models) for n, models in served.items()),
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


def _print_text(plan: Plan, detail: ChatDetail, assumption: str) -> None:
    print(assumption)
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
    try:
        body = read_request(args.request)
        catalog, served, assumption = providers_to_plan_for(args.configured)
    except (RequestInputError, ConfigError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    try:
        request = ChatCompletionRequest.model_validate(body)
        router = build_router(args, catalog, served)
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
        print(assumption, file=sys.stderr)
        print(json.dumps(plan_as_json(plan, detail), indent=2))
    else:
        _print_text(plan, detail, assumption)
    return 0
