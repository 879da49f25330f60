"""DynamoDB `StateStore`: the items every Lambda container shares, in one table.

One table, partition key `pk` (string), TTL attribute `expires_at` (epoch seconds); what each item
holds is `items.py`'s business. Calls per request: `load` is one BatchGetItem (another only per
100 keys, or to retry UnprocessedKeys); a reservation is one conditional UpdateItem per item it
counts on (one item holds every window of a counter, so a model's own windows are one write, its
provider organisation's another), in a fixed order, the ones already made undone when a later one
is refused. The condition (`attribute_not_exists(n) OR n <= ceiling - ask`, for every window's
limited units at once) is evaluated by DynamoDB atomically, so no number of concurrent
containers can push a window past its limit. The same UpdateExpression sets the windows' stamps
and, when the reserving container finds some (a window rolled over, or one its load shows it
holds no longer needed), REMOVEs the attributes of windows no load reads any more.

Not a TransactWriteItems: every request of a model writes the same item, and DynamoDB
cancels a transaction (TransactionConflict) whenever another one touches the same item at the
same time, so under load reservations failed while capacity was left; it also costs twice the
write units. Single-item UpdateItems on one item are serialized by DynamoDB and never conflict.
The price, where a request counts on two items (a model and its provider's organisation), is a
moment in which one item holds an ask that the other refuses: a concurrent request may then be
refused for capacity that is given back an instant later, never admitted past a limit. An
UpdateItem costs a write unit per KB of the item (before or after, the larger): a counter's item
with a minute and a day window fully used per tenth is about 1.6-2 KB. TTL deletion is lazy (up
to 48 h), so every read checks `expires_at` itself.

The client is the container's `aws_client.DynamoDBClient` (JSON over httpx, no boto3) or a
low-level boto3 client: both take and return the same shapes. Items cross this edge as plain
Python values, converted here (`decode_value` / `encode_value`), not by boto3's serializers,
whose module imports all of boto3.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from llm_gateway.state.aws_client import error_code, is_aws_failure
from llm_gateway.state.store import CounterAdd, Item, StateUnavailable

LOG = logging.getLogger("llm_gateway.state")
BATCH_LIMIT = 100
UNPROCESSED_RETRIES = 4
CONDITION_FAILED = "ConditionalCheckFailedException"


def client_config() -> Any:
    """A boto3 client's config: short timeouts and few SDK retries (state must never hold a
    request hostage). For boto3 clients only (`boto3_client`, the scripts and other functions)."""
    from botocore.config import Config

    return Config(connect_timeout=1, read_timeout=1, retries={"max_attempts": 2, "mode": "standard"})


def boto3_client(endpoint_url: str | None = None) -> Any:
    """A boto3 DynamoDB client, for where AWS credentials are not in the environment (a profile,
    SSO, an instance role): the request path uses `aws_client.DynamoDBClient` where they are."""
    import boto3

    return boto3.client("dynamodb", endpoint_url=endpoint_url, config=client_config())


def create_table(client: Any, name: str) -> None:
    """Create the state table (on-demand, TTL on `expires_at`) and wait until it is active."""
    client.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    client.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
    )


def _number(text: str) -> int | float:
    """A DynamoDB number as int when it is whole (`"3"`, `"3.0"`), else float."""
    try:
        return int(text)
    except ValueError:
        number = Decimal(text)
        return int(number) if number == number.to_integral_value() else float(number)


def decode_value(value: Mapping[str, Any]) -> Any:
    """One AttributeValue (`{"S": "x"}`, `{"N": "1"}`, …) as a plain value; sets become lists,
    numbers int or float (never Decimal: the items are plain Python values)."""
    (kind, data), = value.items()
    if kind == "S":
        return data
    if kind == "N":
        return _number(data)
    if kind == "BOOL":
        return bool(data)
    if kind == "NULL":
        return None
    if kind == "M":
        return {name: decode_value(v) for name, v in data.items()}
    if kind == "L":
        return [decode_value(v) for v in data]
    if kind == "SS":
        return list(data)
    if kind == "NS":
        return [_number(n) for n in data]
    raise ValueError(f"DynamoDB attribute type {kind!r} is not one the gateway stores")


def decode_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: decode_value(value) for name, value in item.items()}


def encode_value(value: Any) -> dict[str, Any]:
    """A plain value as an AttributeValue; floats keep their `repr` (boto3's serializer refuses
    floats), bytes are refused (their wire form differs between boto3 and the JSON protocol)."""
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, int):
        return {"N": str(value)}
    if isinstance(value, float):
        return {"N": repr(value)}
    if isinstance(value, Decimal):
        return {"N": str(value)}
    if value is None:
        return {"NULL": True}
    if isinstance(value, Mapping):
        return {"M": {str(k): encode_value(v) for k, v in value.items()}}
    if isinstance(value, (list, tuple)):
        return {"L": [encode_value(v) for v in value]}
    if isinstance(value, (set, frozenset)) and value and all(isinstance(v, str) for v in value):
        return {"SS": sorted(value)}
    raise TypeError(f"cannot store a {type(value).__name__} in the state table")


def _conditional_failed(exc: BaseException) -> bool:
    return error_code(exc) == CONDITION_FAILED


class DynamoStateStore:
    """StateStore over one DynamoDB table through a DynamoDB client (shared, thread-safe): the
    container's `aws_client.DynamoDBClient`, or a low-level boto3 client (same calls)."""

    def __init__(self, client: Any, table: str, *, consistent_read: bool = False) -> None:
        self.client = client
        self.table = table
        self.consistent_read = consistent_read

    def load(self, pks: Sequence[str], now: float, *, consistent: bool = False) -> dict[str, Item]:
        """BatchGetItem in chunks of 100, retrying UnprocessedKeys with a short backoff."""
        found: dict[str, Item] = {}
        for offset in range(0, len(pks), BATCH_LIMIT):
            request: dict[str, Any] = {
                self.table: {"Keys": [{"pk": {"S": pk}} for pk in pks[offset : offset + BATCH_LIMIT]],
                             "ConsistentRead": self.consistent_read or consistent}
            }
            for attempt in range(UNPROCESSED_RETRIES + 1):
                response = self.client.batch_get_item(RequestItems=request)
                for raw in response.get("Responses", {}).get(self.table, []):
                    item = decode_item(raw)
                    if float(item.get("expires_at", float("inf"))) > now:
                        found[str(item.pop("pk"))] = item
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                if attempt == UNPROCESSED_RETRIES:
                    raise StateUnavailable(f"DynamoDB left {len(request[self.table]['Keys'])} keys unprocessed")
                time.sleep(0.01 * 2**attempt)
        return found

    def _update(self, add: CounterAdd) -> dict[str, Any]:
        names: dict[str, str] = {"#e": "expires_at"}
        values: dict[str, Any] = {":exp": {"N": str(add.expires_at)}}
        adds, conditions, sets = [], [], ["#e = :exp"]
        for index, (unit, amount) in enumerate(sorted(add.amounts.items())):
            names[f"#u{index}"] = unit
            values[f":a{index}"] = {"N": str(amount)}
            adds.append(f"#u{index} :a{index}")
            ceiling = add.ceilings.get(unit)
            if ceiling is not None:
                values[f":c{index}"] = {"N": str(ceiling - amount)}
                conditions.append(f"(attribute_not_exists(#u{index}) OR #u{index} <= :c{index})")
        # last writer wins: containers' clocks disagree by more than two writes' order anyway (a
        # write that answered late, whose stamp may be older than one it overwrote, is stamped
        # again by its container before the call: `SharedState.restamp`)
        for index, (name, stamp) in enumerate(sorted(add.stamps.items())):
            names[f"#s{index}"] = name
            values[f":s{index}"] = {"N": repr(float(stamp))}
            sets.append(f"#s{index} = :s{index}")
        removes = []
        for index, name in enumerate(add.removes):
            names[f"#r{index}"] = name
            removes.append(f"#r{index}")
        expression = "SET " + ", ".join(sets)
        if adds:
            expression += " ADD " + ", ".join(adds)
        if removes:
            expression += " REMOVE " + ", ".join(removes)
        update: dict[str, Any] = {
            "TableName": self.table,
            "Key": {"pk": {"S": add.pk}},
            "UpdateExpression": expression,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        if conditions:
            update["ConditionExpression"] = " AND ".join(conditions)
        return update

    def add(self, adds: Sequence[CounterAdd], now: float) -> bool:
        """Conditional UpdateItems, one per item, sorted by pk; False (and every add already made
        undone) when one is refused. The fixed order makes two requests racing for the last unit
        of two windows meet at the same first item, so one of them gets both, not each one half."""
        done: list[CounterAdd] = []
        for add in sorted(adds, key=lambda a: a.pk):
            try:
                self.client.update_item(**self._update(add))
            except Exception as exc:
                failed = self._undo(done)
                if not _conditional_failed(exc):
                    raise
                if failed is not None:  # not a clean refusal: part of it stays written
                    raise failed from exc
                return False
            done.append(add)
        return True

    def _undo(self, done: Sequence[CounterAdd]) -> Exception | None:
        """Give back adds already made (unconditional); the first AWS failure, if one failed. Such
        an add stays written, ask and folded correction alike: the caller must not take it for a
        refusal (it would keep the correction and deliver it twice). The ask over-counts until its
        window closes: capacity left unused, never a limit passed."""
        failed: Exception | None = None
        for add in done:
            undo = CounterAdd(add.pk, {unit: -n for unit, n in add.amounts.items()}, add.expires_at)
            try:
                self.client.update_item(**self._update(undo))
            except Exception as exc:
                if not is_aws_failure(exc):
                    raise
                failed = failed or exc
                LOG.warning("could not give back a reservation on %s; it over-counts until the window closes",
                            add.pk, exc_info=True)
        return failed

    def put(self, pk: str, item: Item, expires_at: int, now: float) -> None:
        encoded = {name: encode_value(value) for name, value in item.items()}
        encoded.update({"pk": {"S": pk}, "expires_at": {"N": str(int(expires_at))}})
        self.client.put_item(TableName=self.table, Item=encoded)

    def extend(self, pk: str, item: Item, until: float, expires_at: int, now: float) -> None:
        """Conditional: only extends (`attribute_not_exists(until) OR until < :u`)."""
        names = {"#u": "until", "#e": "expires_at"}
        values: dict[str, Any] = {":u": {"N": repr(float(until))}, ":exp": {"N": str(int(expires_at))}}
        sets = ["#u = :u", "#e = :exp"]
        for index, (name, value) in enumerate(item.items()):
            if name == "until":
                continue
            names[f"#f{index}"] = name
            values[f":f{index}"] = encode_value(value)
            sets.append(f"#f{index} = :f{index}")
        try:
            self.client.update_item(
                TableName=self.table, Key={"pk": {"S": pk}}, UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression="attribute_not_exists(#u) OR #u < :u",
                ExpressionAttributeNames=names, ExpressionAttributeValues=values,
            )
        except Exception as exc:
            if not _conditional_failed(exc):
                raise
