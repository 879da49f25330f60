"""Breaker records in the gateway's DynamoDB state table: Powertools' DynamoDB layer, primed.

Its own module because Powertools' DynamoDB layer imports boto3 at import time, which a
container without a state table never needs (see `breaker_store.py`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aws_lambda_powertools.utilities.circuit_breaker.persistence.dynamodb import (
    CircuitBreakerDynamoDBPersistence,
)

from llm_gateway.routing.breaker_store import EXPIRY_ATTR, KEY_ATTR, BreakerStore, item_from_record


class DynamoDBBreakerPersistence(BreakerStore, CircuitBreakerDynamoDBPersistence):
    """Powertools' DynamoDB layer on the gateway's state table (pk `cb#...`, TTL `expires_at`)."""

    shares_state_table = True

    def __init__(self, table_name: str, client: Any) -> None:
        super().__init__(table_name=table_name, key_attr=KEY_ATTR, expiry_attr=EXPIRY_ATTR, boto3_client=client)

    def read_items(self, names: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Direct reads for the status page (the request path uses the state load instead)."""
        out: dict[str, dict[str, Any]] = {}
        for name in names:
            record = self._get_record(name)
            if record is not None:
                out[name] = item_from_record(record)
        return out
