"""`llm-gateway fold-windows --table NAME`: after the deploy that moved rate-limit counting to one
item per counter, fold what the old containers counted (one item per window) into the counters'
items, so the day's and the month's windows go on from their count (`state.dynamodb.fold_legacy_windows`).
Run it once the old version no longer serves; running it again does nothing.
"""

from __future__ import annotations

import argparse
import time

from llm_gateway.state.dynamodb import boto3_client, fold_legacy_windows


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="llm-gateway fold-windows", description=__doc__)
    parser.add_argument("--table", required=True, help="the DynamoDB state table (AWS credentials)")
    parser.add_argument("--endpoint-url", help="DynamoDB endpoint (the embedded one of `make dev`)")
    args = parser.parse_args(argv)
    folded = fold_legacy_windows(boto3_client(args.endpoint_url), args.table, time.time())
    print(f"folded {folded} window item(s) into their counters' items")
    return 0
