"""`llm-gateway fold-windows --table NAME`: after the deploy that moved rate-limit counting to one
item per counter, fold what the old containers counted (one item per window) into the counters'
items, so the day's and the month's windows go on from their count. Run it once the old version
no longer serves; running it again does nothing. An operator's tool (Scan, DeleteItem), not the
functions': their roles do not have those actions.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from llm_gateway.state.aws_client import error_code
from llm_gateway.state.dynamodb import DynamoStateStore, boto3_client, decode_item
from llm_gateway.state.items import legacy_window, meter_expires
from llm_gateway.state.store import CounterAdd


def fold_legacy_windows(client: Any, table: str, now: float) -> int:
    """Every window of the old layout a load still reads is added to its counter's item and its
    old item deleted; returns how many. Run twice and nothing is counted twice (the old items are
    gone); a failure between the add and the delete over-counts that one window, never under-counts."""
    folded = 0
    store = DynamoStateStore(client, table)
    request: dict[str, Any] = {"TableName": table, "FilterExpression": "begins_with(pk, :rl)",
                               "ExpressionAttributeValues": {":rl": {"S": "rl#"}}}
    while True:
        page = client.scan(**request)
        for raw in page.get("Items", []):
            item = decode_item(raw)
            pk = str(item.pop("pk"))
            found = legacy_window(pk, item, now)
            if found is None:
                continue
            counter_pk, counts, stamps = found
            client.update_item(**store._update(CounterAdd(counter_pk, counts, meter_expires(now))))
            for name, stamp in stamps.items():  # a stamp only ever moves later (the carry ends by it)
                try:
                    client.update_item(TableName=table, Key={"pk": {"S": counter_pk}}, UpdateExpression="SET #s = :s",
                                       ConditionExpression="attribute_not_exists(#s) OR #s < :s",
                                       ExpressionAttributeNames={"#s": name},
                                       ExpressionAttributeValues={":s": {"N": repr(stamp)}})
                except Exception as exc:
                    if error_code(exc) != "ConditionalCheckFailedException":
                        raise
            client.delete_item(TableName=table, Key={"pk": {"S": pk}})
            folded += 1
        if not page.get("LastEvaluatedKey"):
            return folded
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="llm-gateway fold-windows", description=__doc__)
    parser.add_argument("--table", required=True, help="the DynamoDB state table (AWS credentials)")
    parser.add_argument("--endpoint-url", help="DynamoDB endpoint (the embedded one of `make dev`)")
    args = parser.parse_args(argv)
    folded = fold_legacy_windows(boto3_client(args.endpoint_url), args.table, time.time())
    print(f"folded {folded} window item(s) into their counters' items")
    return 0
