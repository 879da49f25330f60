"""`llm-gateway rollout status | set N | rollback`: the safe rollout's percentage.

Where it lives:
- a running `make dev` (default, `--url http://127.0.0.1:3000`): its flag file, found through
  `GET /_sandbox/stats`; every container re-reads it within its cache time (2 s locally);
- a flag file (`--file PATH`);
- a deployed stack (`--stack NAME`): AWS AppConfig, through the stack's outputs (application,
  environment, profile, immediate deployment strategy); `set` deploys a new version of the flag.

`rollback` is `set 0`: every user is served the baseline way. `rehearse --stack NAME` proves the
automatic path on a deployed stack: it sets the composite rollback alarm to ALARM (as a trigger
would) and waits for the rollback Lambda to bring the flag to 0 % (the alarm returns to its real
state at its next evaluation; go forward again with `set N`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from llm_gateway.rollout.appconfig import AppConfigRollout, AppConfigTarget
from llm_gateway.rollout.flag import LocalRollout
from sandbox.cli_args import gateway_url

STACK_OUTPUTS = {"application": "RolloutApplicationId", "environment": "RolloutEnvironmentId",
                 "profile": "RolloutProfileId", "strategy": "RolloutImmediateStrategyId"}


def stack_target(outputs: dict[str, str], stack: str) -> AppConfigTarget:
    missing = [name for name in STACK_OUTPUTS.values() if name not in outputs]
    if missing:
        raise SystemExit(f"llm-gateway rollout: stack {stack} has no output {', '.join(missing)} (deployed before the rollout?)")
    return AppConfigTarget(**{field: outputs[name] for field, name in STACK_OUTPUTS.items()})


def _session(region: str | None, session: Any = None) -> Any:
    import boto3

    return session or boto3.session.Session(region_name=region)


def _outputs(stack: str, session: Any) -> dict[str, str]:
    described = session.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}


def _stack_rollout(stack: str, region: str | None, session: Any = None) -> AppConfigRollout:
    session = _session(region, session)
    return AppConfigRollout(session.client("appconfig"), stack_target(_outputs(stack, session), stack))


def rehearse(stack: str, session: Any, *, wait_s: float = 180.0, sleep: Callable[[float], None] = time.sleep,
             clock: Callable[[], float] = time.monotonic) -> dict[str, Any]:
    """Set the composite rollback alarm to ALARM and wait until the flag reads 0 %."""
    outputs = _outputs(stack, session)
    alarm = outputs.get("RollbackAlarmName")
    if not alarm:
        raise SystemExit(f"llm-gateway rollout: stack {stack} has no RollbackAlarmName output")
    rollout = AppConfigRollout(session.client("appconfig"), stack_target(outputs, stack))
    before = rollout.status().get("percent")
    session.client("cloudwatch").set_alarm_state(
        AlarmName=alarm, StateValue="ALARM", StateReason="llm-gateway rollout rehearse: proving the automatic rollback")
    started = clock()
    while True:
        status = rollout.status()
        if status.get("percent") == 0 and not status.get("deploying"):
            return {"rehearsal": "passed", "alarm": alarm, "before": before, "percent": 0,
                    "seconds": round(clock() - started, 1)}
        if clock() - started > wait_s:
            return {"rehearsal": "failed", "alarm": alarm, "before": before, "status": status,
                    "hint": "check the rollback function's log group (/aws/lambda/<stack>-rollback)"}
        sleep(5)


def _local_rollout(url: str) -> LocalRollout:
    import httpx

    try:
        stats = httpx.get(url.rstrip("/") + "/_sandbox/stats", timeout=5).json()
    except (httpx.HTTPError, ValueError) as exc:
        raise SystemExit(f"llm-gateway rollout: no running `make dev` at {url} ({exc}); use --url, --file or --stack") from None
    rollout = stats.get("rollout") if isinstance(stats, dict) else None  # the stand-ins it runs on
    if not rollout or not rollout.get("file"):
        raise SystemExit(f"llm-gateway rollout: the gateway at {url} runs without a local rollout "
                         "(AppConfig named, or no baseline model)")
    return LocalRollout(rollout["file"])


def main(argv: list[str], *, session: Any = None) -> int:
    parser = argparse.ArgumentParser(prog="llm-gateway rollout", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["status", "set", "rollback", "rehearse"])
    parser.add_argument("percent", nargs="?", type=float, help="with set: 0 to 100")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--url", default="http://127.0.0.1:3000", type=gateway_url, help="a running make dev (default)")
    where.add_argument("--file", help="a local flag file")
    where.add_argument("--stack", help="a deployed stack: AppConfig through its outputs")
    parser.add_argument("--region", help="with --stack: the stack's region (default: the AWS configuration's)")
    parser.add_argument("--reason", default="", help="recorded with the new AppConfig version")
    args = parser.parse_args(argv)
    if args.action == "set" and args.percent is None:
        parser.error("set needs a percentage: llm-gateway rollout set 5")
    if args.action != "set" and args.percent is not None:
        parser.error(f"{args.action} takes no percentage")
    if args.action == "rehearse":
        if not args.stack:
            parser.error("rehearse needs --stack: it proves the deployed automatic path")
        result = rehearse(args.stack, _session(args.region, session))
        print(json.dumps(result, indent=2))
        return 0 if result["rehearsal"] == "passed" else 1
    if args.stack:
        control = _stack_rollout(args.stack, args.region, session)
    elif args.file:
        if args.action == "status" and not Path(args.file).is_file():  # a mistyped path is no unset rollout
            print(f"llm-gateway rollout: no flag file at {args.file} (`set N --file` writes one)", file=sys.stderr)
            return 2
        control = LocalRollout(args.file)
    else:
        control = _local_rollout(args.url)
    if args.action == "status":
        print(json.dumps(control.status(), indent=2))
        return 0
    percent = 0.0 if args.action == "rollback" else float(args.percent)
    why = args.reason or ("manual rollback" if args.action == "rollback" else f"rollout to {percent:g}%")
    try:
        result = control.set(percent, description=f"llm-gateway rollout: {why}")
    except ValueError as exc:
        print(f"llm-gateway rollout: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a flag file that cannot be written (a folder, a read-only place)
        print(f"llm-gateway rollout: cannot write the flag file: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    return 0
