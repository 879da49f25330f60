"""`llm-gateway` console script: one entry, one module per subcommand.

Each subcommand lives in its own module so that importing the CLI stays cheap and so that the
people working on fakes, the local server or the planner never edit the same file.
"""

from __future__ import annotations

import importlib
import os
import sys

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("sandbox.serve_cli", "run the gateway locally on 127.0.0.1 (what `make dev` runs)"),
    "invoke": ("sandbox.invoke", "run a Lambda handler on an API Gateway event file, like `sam local invoke`"),
    "fakes": ("sandbox.fakes.cli", "start the fake providers and print their base URLs (--json: as one JSON line)"),
    "plan": ("sandbox.plan_cli", "print the selection plan for a request file, with reasons"),
    "status": ("sandbox.status_cli", "print breaker, cooldown and capacity state per provider and model"),
    "keys": ("sandbox.users_cli", "create, list, update and revoke gateway keys (admin key, or --table)"),
    "usage": ("sandbox.usage_cli", "print a user's usage, limits and what is left (GET /v1/usage)"),
    "report": ("sandbox.report_cli", "build the daily cost report (JSON, CSV, summary) from the state table"),
    "rollout": ("sandbox.rollout_cli", "show or change the safe rollout's percentage (make dev, or --stack: AppConfig)"),
    "loadgen": ("sandbox.loadgen", "send chat requests N at a time to a running gateway; report rate, latency, overlap"),
    "simulate": ("sandbox.simulate.cli", "simulate a day of a workload through the real gateway on a virtual clock"),
    "fold-windows": ("sandbox.fold_windows_cli", "after the one-item-per-counter deploy: fold old window items in"),
}


def _usage() -> str:
    lines = ["usage: llm-gateway <command> [options]", "", "commands:"]
    width = max(map(len, SUBCOMMANDS))
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in SUBCOMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help", "help"}:
        print(_usage())
        return 0
    name, rest = args[0], args[1:]
    if name not in SUBCOMMANDS:
        print(f"unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(SUBCOMMANDS[name][0])
    try:
        return int(module.main(rest) or 0)
    except BrokenPipeError:  # `llm-gateway plan r.json | head`: the reader left, not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:
        if not _is_aws_error(exc):
            raise
        # no region, no credentials, an endpoint that does not answer, an AWS error answer: what the
        # operator's shell or account lacks, said in one line (botocore's messages carry no secret)
        print(f"llm-gateway {name}: AWS: {exc}", file=sys.stderr)
        return 1


AWS_MODULES = ("botocore.", "boto3.", "s3transfer.")


def _is_aws_error(exc: BaseException) -> bool:
    """The AWS SDK's own errors (botocore's NoRegionError, NoCredentialsError, EndpointConnectionError,
    ClientError, ...; boto3's and s3transfer's), recognised without importing them, as most
    commands never load them; and a built-in error the SDK raised itself about what it was given
    (botocore's ValueError("Invalid endpoint: notaurl") for an --endpoint-url that is no URL)."""
    if any(cls.__module__.startswith(AWS_MODULES) for cls in type(exc).__mro__):
        return True
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return isinstance(exc, ValueError) and tb is not None \
        and str(tb.tb_frame.f_globals.get("__name__", "")).startswith(AWS_MODULES)


if __name__ == "__main__":
    raise SystemExit(main())
