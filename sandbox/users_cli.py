"""`llm-gateway keys` and `llm-gateway usage`: gateway keys and what users used.

Against a running gateway with an admin key (`--url`, `--key`; locally the dev key is admin), or,
for `keys`, directly against the state table with AWS credentials (`--table NAME`, optionally
`--endpoint-url` for the embedded DynamoDB of `make dev`): the same logic either way
(`llm_gateway.tenancy.admin.KeyAdmin`).

    llm-gateway keys create --user alice --rpm 60 --daily-budget-usd 1 --models 'groq/*,gemini/*'
    llm-gateway keys list [--user alice]
    llm-gateway keys update key_0123456789abcdef --rpm 120 --clear daily_budget_usd
    llm-gateway keys revoke key_0123456789abcdef
    llm-gateway usage [--user alice | --user '*'] [--days 7] [--json]

Options the admin API refuses (a 400: a `--models` rule that matches no catalog model, a bad user
id) exit 2 with its message, as argparse's own errors do; any other failure exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any

import httpx

from sandbox.cli_args import connection_args, finite_number

POLICY_FLAGS: dict[str, Callable[[str], Any]] = {
    "rpm": int, "rpd": int, "tpm": int, "audio_seconds_per_day": int,
    "daily_budget_usd": finite_number, "monthly_budget_usd": finite_number,
}
SWITCHES = ("free_only", "admin", "per_end_user")


def _policy_args(parser: argparse.ArgumentParser) -> None:
    for name, kind in POLICY_FLAGS.items():
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, type=kind)
    for name in SWITCHES:
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, action=argparse.BooleanOptionalAction)
    parser.add_argument("--models", help="comma-separated allow-list: provider/model, a model id, provider/*")
    parser.add_argument("--name", help="a label for the key")
    parser.add_argument("--clear", action="append", default=[], metavar="FIELD", help="remove a limit (update)")


def _body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for name in (*POLICY_FLAGS, *SWITCHES, "name"):
        if getattr(args, name, None) is not None:
            body[name] = getattr(args, name)
    if args.models is not None:
        body["models"] = [m.strip() for m in args.models.split(",") if m.strip()]
    for name in args.clear:
        body[name] = None
    if getattr(args, "user", None):
        body["user"] = args.user
    return body


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="llm-gateway keys", description="create, list, update and revoke gateway keys")
    commands = top.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="a new key for a user (printed once)")
    create.add_argument("--user", required=True)
    _policy_args(create)
    listing = commands.add_parser("list", help="every key (never the key itself)")
    listing.add_argument("--user")
    update = commands.add_parser("update", help="change a key's policy or name")
    update.add_argument("id")
    _policy_args(update)
    revoke = commands.add_parser("revoke", help="revoke a key (refused everywhere within a minute)")
    revoke.add_argument("id")
    for sub in (create, listing, update, revoke):
        connection_args(sub, table=True)
    return top


def _over_http(args: argparse.Namespace) -> tuple[int, dict[str, Any]]:
    base = args.url.rstrip("/") + "/v1/admin/keys"
    headers = {"Authorization": f"Bearer {args.key}"}
    with httpx.Client(timeout=15, trust_env=False, headers=headers) as client:
        if args.command == "create":
            response = client.post(base, json=_body(args))
        elif args.command == "list":
            response = client.get(base, params={"user": args.user} if args.user else None)
        elif args.command == "update":
            response = client.patch(f"{base}/{args.id}", json=_body(args))
        else:
            response = client.delete(f"{base}/{args.id}")
    return response.status_code, response.json()


def _on_table(args: argparse.Namespace) -> tuple[int, dict[str, Any]]:
    import boto3

    from llm_gateway.api.errors import GatewayError, InvalidRequest
    from llm_gateway.selection.catalog import OVERRIDES_ENV, Catalog, load_catalog
    from llm_gateway.tenancy.admin import KeyAdmin
    from llm_gateway.tenancy.keys import DynamoKeyStore

    def catalog() -> Catalog:
        """`--models` rules are checked against the catalog with this shell's overrides: set
        LLM_GATEWAY_CATALOG_OVERRIDES as the deployment does to name a model only they add."""
        try:
            return load_catalog(os.environ.get(OVERRIDES_ENV))
        except (OSError, ValueError) as exc:  # pydantic's ValidationError and JSONDecodeError are ValueErrors
            why = " ".join(str(exc).split())[:300] or type(exc).__name__
            raise InvalidRequest(f"{OVERRIDES_ENV} does not load, so --models cannot be checked: {why}",
                                 param="models", code="invalid_catalog_overrides") from None

    admin = KeyAdmin(DynamoKeyStore(boto3.client("dynamodb", endpoint_url=args.endpoint_url), args.table),
                     catalog=catalog)
    try:
        if args.command == "create":
            return 201, admin.create(_body(args))
        if args.command == "list":
            return 200, admin.list(args.user)
        if args.command == "update":
            return 200, admin.update(args.id, _body(args))
        return 200, admin.revoke(args.id)
    except GatewayError as error:
        return error.status, error.body()


def render_keys(answer: dict[str, Any]) -> str:
    rows = [["ID", "USER", "NAME", "STATE", "POLICY"]]
    for key in answer.get("data", [answer]):
        # unset, off or empty; `not in (None, False, [])` also dropped a limit of 0 (0 == False)
        policy = {k: v for k, v in key["policy"].items() if v is not None and v is not False and v != []}
        rows.append([key["id"], key["user"], key.get("name") or "-", "revoked" if key["revoked"] else "active",
                     ", ".join(f"{k}={v}" for k, v in policy.items()) or "no limits"])
    return _table(rows)


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def keys_main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    try:
        status, answer = _on_table(args) if args.table else _over_http(args)
    except httpx.HTTPError as exc:
        print(f"could not reach {args.url}: {type(exc).__name__}", file=sys.stderr)
        return 1
    if status >= 400:
        print(f"HTTP {status}: {answer.get('error', {}).get('message', answer)}", file=sys.stderr)
        return 2 if status == 400 else 1  # 400: the options given were refused, as argparse's own errors exit
    if args.json:
        print(json.dumps(answer, indent=2))
    elif args.command == "create":
        print(render_keys(answer))
        print(f"\nkey (shown once, store it now): {answer['key']}")
    else:
        print(render_keys(answer))
    return 0


def render_usage(answer: dict[str, Any]) -> str:
    def row(label: str, who: str, s: dict[str, Any]) -> list[str]:
        share = "-" if s["free_share"] is None else f"{s['free_share']:.0%}"
        return [label, who, str(s["requests"]), share, str(s["tokens_in"]), str(s["tokens_out"]),
                f"{s['audio_seconds']:g}", f"{s['cost_usd']:.8f}"]

    rows = [["PERIOD", "USER", "REQUESTS", "FREE", "TOKENS IN", "TOKENS OUT", "AUDIO S", "COST USD"]]
    for day in answer.get("days", []):
        rows.append(row(day["date"], day["user"], day))
    rows.append(row(f"today {answer['today']['date']}", answer["user"], answer["today"]))
    rows.append(row(f"month {answer['month']['month']}", answer["user"], answer["month"]))
    lines = [_table(rows)]
    by_model = answer["month"].get("by_model", {})
    if by_model:
        models = [["MODEL (this month)", "REQUESTS", "FREE", "COST USD"]]
        models += [[m, str(s["requests"]), "-" if s["free_share"] is None else f"{s['free_share']:.0%}",
                    f"{s['cost_usd']:.8f}"] for m, s in by_model.items()]
        lines += ["", _table(models)]
    if answer.get("limits"):
        limits = [["LIMIT", "USED", "LEFT", "RESETS"]]
        limits += [[f"{r['unit']} per {r['window']}" + (" (gateway)" if r.get("scope") else ""), f"{r['used']:g}",
                    f"{r['remaining']:g}", r["resets_at"]] for r in answer["limits"]]
        lines += ["", _table(limits)]
    return "\n".join(lines)


def usage_main(argv: list[str]) -> int:
    top = argparse.ArgumentParser(prog="llm-gateway usage", description="a user's usage (GET /v1/usage) as a table")
    top.add_argument("--user", help="another user (admin keys), or '*' for every user")
    top.add_argument("--days", type=int, help="also one row per day for the last N days")
    connection_args(top)
    args = top.parse_args(argv)
    params = {k: str(v) for k, v in (("user", args.user), ("days", args.days)) if v is not None}
    url = args.url.rstrip("/") + "/v1/usage"
    try:
        response = httpx.get(url, params=params, headers={"Authorization": f"Bearer {args.key}"}, timeout=15,
                             trust_env=False)
    except httpx.HTTPError as exc:
        print(f"could not reach {url}: {type(exc).__name__}", file=sys.stderr)
        return 1
    if response.status_code != 200:
        print(f"{url} answered HTTP {response.status_code}: {response.text[:300]}", file=sys.stderr)
        return 1
    print(json.dumps(response.json(), indent=2) if args.json else render_usage(response.json()))
    return 0


main = keys_main
