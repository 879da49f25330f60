"""TTL for the embedded DynamoDB: delete items whose `expires_at` has passed, as DynamoDB does.

moto stores TTL settings but never deletes anything. The gateway writes a rate-limit window
item per model per minute (and per day, per second for some), so over a long `make dev` session
the table only grows, and moto's TransactWriteItems deep-copies the whole table on every call:
reservations got slower the longer the server ran. The gateway ignores expired items anyway
(TTL deletion is lazy on AWS too), so deleting them changes no answer, only the cost.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from botocore.exceptions import ClientError

TTL_ATTRIBUTE = "expires_at"


def sweep_expired(client: Any, table: str, now: float | None = None) -> int:
    """Delete every item of `table` expired at `now`; returns how many were deleted."""
    moment = int(time.time() if now is None else now)
    values = {":now": {"N": str(moment)}}
    deleted = 0
    scan: dict[str, Any] = {"TableName": table, "ProjectionExpression": "pk",
                            "FilterExpression": f"{TTL_ATTRIBUTE} < :now", "ExpressionAttributeValues": values}
    while True:
        page = client.scan(**scan)
        for item in page.get("Items", []):
            try:  # the condition re-checks at delete time: an item rewritten meanwhile stays
                client.delete_item(TableName=table, Key={"pk": item["pk"]},
                                   ConditionExpression=f"{TTL_ATTRIBUTE} < :now", ExpressionAttributeValues=values)
                deleted += 1
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise
        if "LastEvaluatedKey" not in page:
            return deleted
        scan["ExclusiveStartKey"] = page["LastEvaluatedKey"]


class TtlSweeper:
    """Sweeps a table every `every_s` seconds on a daemon thread until stopped."""

    def __init__(self, client: Any, table: str, every_s: float = 15.0) -> None:
        self._client, self._table, self._every_s = client, table, every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ttl-sweeper", daemon=True)

    def start(self) -> TtlSweeper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(self._every_s):
            try:
                sweep_expired(self._client, self._table)
            except Exception:  # a failed sweep leaves expired items a little longer; nothing more
                continue
