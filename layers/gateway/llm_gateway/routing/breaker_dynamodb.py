"""Breaker records in the gateway's DynamoDB state table: a Powertools persistence layer.

Powertools' own DynamoDB layer (`CircuitBreakerDynamoDBPersistence`) imports boto3 when its
module loads, and a chat container would import it only for this: about 0.4 G instructions of a
cold start that otherwise needs no boto3 (the state table is spoken over httpx,
`state/aws_client.py`). So this layer does what that one does, with the same items, the same
conditional put for the half-open probe election and the same update, through any DynamoDB
client (the container's `DynamoDBClient`, or a boto3 client: same calls, same shapes); the
breaker logic itself (states, counting, cache, probe lease) stays Powertools' base class.
A test runs the two layers side by side against one moto table and compares the items.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from aws_lambda_powertools.utilities.circuit_breaker.persistence.base import CircuitBreakerExistingLockError
from aws_lambda_powertools.utilities.circuit_breaker.persistence.record import CircuitStateRecord
from aws_lambda_powertools.utilities.circuit_breaker.states import CircuitState

from llm_gateway.routing.breaker_store import BreakerStore
from llm_gateway.state.aws_client import error_code
from llm_gateway.state.dynamodb import CONDITION_FAILED, decode_item, encode_value
from llm_gateway.state.items import EXPIRES, PK, breaker_item, decode_breaker


class DynamoDBBreakerPersistence(BreakerStore):
    """Breaker items (`cb#...`, TTL `expires_at`) in the gateway's state table."""

    shares_state_table = True

    def __init__(self, table_name: str, client: Any) -> None:
        super().__init__()
        self.table_name = table_name
        self.client = client

    def read_items(self, names: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Direct reads for the status page (the request path uses the state load instead)."""
        out: dict[str, dict[str, Any]] = {}
        for name in names:
            record = self._get_record(name)
            if record is not None:
                out[name] = breaker_item(record)
        return out

    def _get_record(self, name: str) -> CircuitStateRecord | None:
        # Eventually consistent, as Powertools' layer reads: the local cache is as stale anyway.
        response = self.client.get_item(TableName=self.table_name, Key={PK: {"S": name}},
                                        ConsistentRead=False)
        item = response.get("Item")
        return None if item is None else decode_breaker(decode_item(item))

    def _put_record(self, record: CircuitStateRecord, condition: str | None = None,
                    expected_opened_at: int | None = None) -> None:
        put: dict[str, Any] = {
            "TableName": self.table_name,
            "Item": {name: encode_value(value) for name, value in breaker_item(record).items()},
        }
        if condition == "half_open":
            put.update(_half_open_condition(expected_opened_at))
        try:
            self.client.put_item(**put)
        except Exception as exc:
            if error_code(exc) == CONDITION_FAILED:
                raise CircuitBreakerExistingLockError from exc
            raise

    def _update_record(self, record: CircuitStateRecord) -> None:
        """Powertools' unconditional state change: set state, count, expiry (and `opened_at`
        when reopened), and always drop the probe owner and lease, or a stale owner would make
        every later probe election fail."""
        names = {"#state": "state", "#failure_count": "failure_count", "#opened_at": "opened_at",
                 "#half_open_owner": "half_open_owner", "#probe_lease_expiry": "probe_lease_expiry"}
        values: dict[str, Any] = {":state": {"S": str(record.state)},
                                  ":failure_count": {"N": str(record.failure_count)}}
        expression = "SET #state = :state, #failure_count = :failure_count"
        if record.expiry_timestamp is not None:
            expression += ", #expiration = :expiration"
            names["#expiration"] = EXPIRES
            values[":expiration"] = {"N": str(record.expiry_timestamp)}
        if record.opened_at is not None:
            expression += ", #opened_at = :opened_at REMOVE #half_open_owner, #probe_lease_expiry"
            values[":opened_at"] = {"N": str(record.opened_at)}
        else:
            expression += " REMOVE #opened_at, #half_open_owner, #probe_lease_expiry"
        self.client.update_item(TableName=self.table_name, Key={PK: {"S": record.name}},
                                UpdateExpression=expression, ExpressionAttributeNames=names,
                                ExpressionAttributeValues=values)


def _half_open_condition(expected_opened_at: int | None) -> dict[str, Any]:
    """One container wins the probe: the circuit is open with no owner (and, when given, opened
    at the time the caller saw), or half-open with an expired probe lease."""
    open_part = "(#state = :open AND attribute_not_exists(#half_open_owner))"
    names = {"#state": "state", "#half_open_owner": "half_open_owner", "#probe_lease_expiry": "probe_lease_expiry"}
    values: dict[str, Any] = {":open": {"S": str(CircuitState.OPEN)}, ":half_open": {"S": str(CircuitState.HALF_OPEN)},
                              ":now": {"N": str(int(dt.datetime.now().timestamp()))}}
    if expected_opened_at is not None:
        open_part = "(#state = :open AND attribute_not_exists(#half_open_owner) AND #opened_at = :expected_opened_at)"
        names["#opened_at"] = "opened_at"
        values[":expected_opened_at"] = {"N": str(expected_opened_at)}
    return {"ConditionExpression": f"{open_part} OR (#state = :half_open AND #probe_lease_expiry <= :now)",
            "ExpressionAttributeNames": names, "ExpressionAttributeValues": values}
