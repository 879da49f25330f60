"""`llm-gateway report --date YYYY-MM-DD`: the daily cost report, built locally from the state table.

The same report the `cost_report` Lambda writes (`llm_gateway.tenancy.report`): the summary is
printed, the JSON and CSV written under `--out`. The table is `--table` / `$LLM_GATEWAY_STATE_TABLE`
(with `--endpoint-url` / `$LLM_GATEWAY_DYNAMODB_ENDPOINT` for `make dev`'s embedded DynamoDB).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from sandbox.out_folder import writable_folder


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="llm-gateway report", description=__doc__.splitlines()[0])
    parser.add_argument("--date", help="the UTC day to report (default: yesterday)")
    parser.add_argument("--table", default=os.environ.get("LLM_GATEWAY_STATE_TABLE"))
    parser.add_argument("--endpoint-url", default=os.environ.get("LLM_GATEWAY_DYNAMODB_ENDPOINT"))
    parser.add_argument("--out", type=Path, default=Path("reports"), help="folder for the JSON and CSV")
    args = parser.parse_args(argv)
    if not args.table:
        print("llm-gateway report: no state table (--table or LLM_GATEWAY_STATE_TABLE)", file=sys.stderr)
        return 2
    import boto3

    from llm_gateway.state.dynamodb import DynamoStateStore
    from llm_gateway.tenancy.keys import DynamoKeyStore
    from llm_gateway.tenancy.report import build_report, checked_day, previous_day, summary_text, to_csv
    from llm_gateway.tenancy.usage import UsageLedger

    now = time.time()
    try:  # `--date ""` is a date given wrong, not the default day
        day = checked_day(args.date) if args.date is not None else previous_day(now)
    except ValueError as exc:
        print(f"llm-gateway report: --date: {exc}", file=sys.stderr)
        return 2
    problem = writable_folder(args.out)  # before the table is read
    if problem:
        print(f"llm-gateway report: --out {str(args.out)!r}: {problem}", file=sys.stderr)
        return 2
    client = boto3.client("dynamodb", endpoint_url=args.endpoint_url)
    report = build_report(UsageLedger(DynamoStateStore(client, args.table)), DynamoKeyStore(client, args.table).list(),
                          day, now)
    (args.out / f"{day}.json").write_text(json.dumps(report, indent=2))
    (args.out / f"{day}.csv").write_text(to_csv(report))
    print(summary_text(report))
    print(f"\nwritten: {args.out / (day + '.json')}, {args.out / (day + '.csv')}")
    return 0
