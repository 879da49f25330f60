"""DynamoDB `StateStore`: the items every Lambda container shares, in one table.

One table, partition key `pk` (string), TTL attribute `expires_at` (epoch seconds); what each item
holds is `items.py`'s business. Calls per request: `load` is one BatchGetItem (another only per
100 keys, or to retry UnprocessedKeys); a reservation is one conditional UpdateItem per window
item, in a fixed order, the ones already made undone when a later one is refused. The condition
(`attribute_not_exists(n) OR n <= ceiling - ask`) is evaluated by DynamoDB atomically, so no
number of concurrent containers can push a window past its limit.

Not a TransactWriteItems: every request of a model writes the same day-window item, and DynamoDB
cancels a transaction (TransactionConflict) whenever another one touches the same item at the
same time, so under load reservations failed while capacity was left. Single-item UpdateItems on
one item are serialized by DynamoDB and never conflict. The price is a moment in which a window
holds an ask that the next one refuses: a concurrent request may then be refused for capacity
that is given back an instant later, never admitted past a limit. TTL deletion is lazy (up to
48 h), so every read checks `expires_at` itself.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from llm_gateway.state.store import CounterAdd, Item, StateUnavailable

LOG = logging.getLogger("llm_gateway.state")
BATCH_LIMIT = 100
UNPROCESSED_RETRIES = 4
_DESER = TypeDeserializer()
_SER = TypeSerializer()


def client_config() -> Config:
    """Short timeouts and few SDK retries: state must never hold a request hostage."""
    return Config(connect_timeout=1, read_timeout=1, retries={"max_attempts": 2, "mode": "standard"})


def dynamodb_client(endpoint_url: str | None = None) -> Any:
    """`boto3.client("dynamodb", endpoint_url=..., config=client_config())`, on boto3's default
    session, whose data loader is `OneServiceLoader` when this sets that session up (a cold start:
    nothing made one before). botocore's own loader lists every service it knows, walking some
    420 model directories, twice (service model, endpoint rules) to check that the one asked for
    is among them: 15 to 30 ms of a cold start with a state table, for one `in`."""
    import boto3

    if boto3.DEFAULT_SESSION is None:
        import botocore.session

        core = botocore.session.get_session()
        core.lazy_register_component("data_loader", lambda: one_service_loader(core.get_config_variable("data_path")))
        boto3.setup_default_session(botocore_session=core)
    return boto3.client("dynamodb", endpoint_url=endpoint_url, config=client_config())


def one_service_loader(search_path_string: str | None) -> Any:
    """botocore's `create_loader`, with `OneServiceLoader`."""
    from botocore.exceptions import DataNotFoundError
    from botocore.loaders import Loader, instance_cache

    class OneServiceLoader(Loader):
        """`load_service_model` checks that its service has the model type asked for by looking in
        that service's directory (`list_api_versions`), not by listing every service; what it
        returns, and raises for an unknown service, is botocore's (the same lines, a test compares)."""

        @instance_cache
        def load_service_model(self, service_name: str, type_name: str, api_version: str | None = None) -> Any:
            try:
                known = bool(self.list_api_versions(service_name, type_name))
            except DataNotFoundError:
                known = False
            if not known:  # botocore's own path: it raises UnknownServiceError, naming the known ones
                return super().load_service_model(service_name, type_name, api_version)
            if api_version is None:
                api_version = self.determine_latest_version(service_name, type_name)
            model = self.load_data(os.path.join(service_name, api_version, type_name))
            extras = self._find_extras(service_name, type_name, api_version)  # type: ignore[attr-defined]
            self._extras_processor.process(model, extras)  # type: ignore[attr-defined]
            return model

    if search_path_string is None:
        return OneServiceLoader()
    paths = [os.path.expanduser(os.path.expandvars(p)) for p in search_path_string.split(os.pathsep)]
    return OneServiceLoader(extra_search_paths=paths)


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


def plain(value: Any) -> Any:
    """DynamoDB's Decimals as int or float, recursively."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, set, tuple)):
        return [plain(v) for v in value]
    return value


def decode_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: plain(_DESER.deserialize(value)) for name, value in item.items()}


def _encode(value: Any) -> Any:
    if isinstance(value, float):
        return {"N": repr(value)}
    return _SER.serialize(value)


def _conditional_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class DynamoStateStore:
    """StateStore over one DynamoDB table through a low-level boto3 client (shared, thread-safe)."""

    def __init__(self, client: Any, table: str, *, consistent_read: bool = False) -> None:
        self.client = client
        self.table = table
        self.consistent_read = consistent_read

    def load(self, pks: Sequence[str], now: float) -> dict[str, Item]:
        """BatchGetItem in chunks of 100, retrying UnprocessedKeys with a short backoff."""
        found: dict[str, Item] = {}
        for offset in range(0, len(pks), BATCH_LIMIT):
            request: dict[str, Any] = {
                self.table: {"Keys": [{"pk": {"S": pk}} for pk in pks[offset : offset + BATCH_LIMIT]],
                             "ConsistentRead": self.consistent_read}
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
        adds, conditions = [], []
        for index, (unit, amount) in enumerate(sorted(add.amounts.items())):
            names[f"#u{index}"] = unit
            values[f":a{index}"] = {"N": str(amount)}
            adds.append(f"#u{index} :a{index}")
            ceiling = add.ceilings.get(unit)
            if ceiling is not None:
                values[f":c{index}"] = {"N": str(ceiling - amount)}
                conditions.append(f"(attribute_not_exists(#u{index}) OR #u{index} <= :c{index})")
        sets = "SET #e = :exp"
        if add.stamp is not None:  # last writer wins: containers' clocks disagree by more anyway
            names["#l"] = "last_at"
            values[":last"] = {"N": repr(float(add.stamp))}
            sets += ", #l = :last"
        update: dict[str, Any] = {
            "TableName": self.table,
            "Key": {"pk": {"S": add.pk}},
            "UpdateExpression": sets + (" ADD " + ", ".join(adds) if adds else ""),
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
        try:
            for add in sorted(adds, key=lambda a: a.pk):
                try:
                    self.client.update_item(**self._update(add))
                except ClientError as exc:
                    if _conditional_failed(exc):
                        self._undo(done)
                        return False
                    raise
                done.append(add)
        except Exception:
            self._undo(done)
            raise
        return True

    def _undo(self, done: Sequence[CounterAdd]) -> None:
        """Give back adds already made (unconditional). If that fails too, the window over-counts
        one ask until it closes: capacity left unused, never a limit passed."""
        for add in done:
            undo = CounterAdd(add.pk, {unit: -n for unit, n in add.amounts.items()}, add.expires_at)
            try:
                self.client.update_item(**self._update(undo))
            except (ClientError, BotoCoreError, OSError):
                LOG.warning("could not give back a reservation on %s; it over-counts until the window closes",
                            add.pk, exc_info=True)

    def put(self, pk: str, item: Item, expires_at: int, now: float) -> None:
        encoded = {name: _encode(value) for name, value in item.items()}
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
            values[f":f{index}"] = _encode(value)
            sets.append(f"#f{index} = :f{index}")
        try:
            self.client.update_item(
                TableName=self.table, Key={"pk": {"S": pk}}, UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression="attribute_not_exists(#u) OR #u < :u",
                ExpressionAttributeNames=names, ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise
