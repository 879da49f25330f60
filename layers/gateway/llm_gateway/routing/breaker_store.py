"""Where breaker state lives: Powertools' circuit-breaker persistence, extended for the gateway.

Two extensions, both through Powertools' persistence layer (docs/circuit-breaker.md says why):
- the DynamoDB layer is pointed at the gateway's one state table (`pk`, TTL `expires_at`) and
  can be *primed* with the raw breaker items the per-request state load already fetched in its
  BatchGetItem, so a breaker check costs no extra read and a circuit opened by another
  container is seen on the very next request instead of after the local cache expires;
- an in-memory layer (Powertools ships none) for tests and local runs, storing the very same
  item shape, so `blocked_from` and the status page read both alike.

The DynamoDB layer (`breaker_dynamodb.py`) is loaded on the first lookup of
`DynamoDBBreakerPersistence`: a container without a state table never needs it.
"""

from __future__ import annotations

import datetime as dt
import threading
from abc import abstractmethod
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from llm_gateway.lazy_packages import defer_package_init

if TYPE_CHECKING:
    from llm_gateway.routing.breaker_dynamodb import DynamoDBBreakerPersistence

# Powertools' `persistence/__init__.py` imports its DynamoDB layer (boto3); ours need only
# `base`, `record` and `states` (see `lazy_packages.py`).
defer_package_init("aws_lambda_powertools.utilities.circuit_breaker.persistence")

from aws_lambda_powertools.utilities.circuit_breaker.persistence.base import (  # noqa: E402
    CircuitBreakerExistingLockError,
    CircuitBreakerPersistenceLayer,
)
from aws_lambda_powertools.utilities.circuit_breaker.persistence.record import CircuitStateRecord  # noqa: E402
from aws_lambda_powertools.utilities.circuit_breaker.states import CircuitState  # noqa: E402

from llm_gateway.state.items import EXPIRES, PK, breaker_item, decode_breaker  # noqa: E402

KEY_ATTR = PK
EXPIRY_ATTR = EXPIRES
_ATTRIBUTE_TYPES = frozenset({"S", "N", "BOOL", "NULL", "M", "L", "SS", "NS"})  # what `decode_value` reads


def plain_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """Accept an item as DynamoDB AttributeValues (`{"S": ...}`) or already deserialized."""
    out: dict[str, Any] = {}
    for name, value in item.items():
        if isinstance(value, Mapping) and len(value) == 1 and next(iter(value)) in _ATTRIBUTE_TYPES:
            from llm_gateway.state.dynamodb import decode_value  # only raw items need it

            out[name] = decode_value(value)
        else:
            out[name] = value
    return out


def record_from_item(item: Mapping[str, Any]) -> CircuitStateRecord | None:
    """A Powertools record from a raw or plain breaker item (`items.decode_breaker`)."""
    return decode_breaker(plain_item(item))


class BreakerStore(CircuitBreakerPersistenceLayer):
    """A Powertools persistence layer the gateway can also prime and read directly (one type,
    so `CircuitBreakers` hands it to Powertools and calls these without an `Any`)."""

    shares_state_table: bool = False  # True: the per-request state load reads its items too

    def prime(self, items: Iterable[Mapping[str, Any]]) -> None:
        """Feed records read elsewhere (the state load) into Powertools' local cache."""
        for item in items:
            record = record_from_item(item)
            if record is not None:
                self._save_to_cache(record)

    @abstractmethod
    def read_items(self, names: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Raw items of these circuits, for when the state load did not read them."""

    def prime_closed(self, names: Iterable[str], *, keep_known: bool) -> None:
        """Cache these circuits as closed (no record: Powertools' own reading of a missing item);
        with `keep_known`, only those the cache holds nothing fresh for."""
        for name in names:
            if keep_known and self._retrieve_from_cache(name) is not None:
                continue
            self._save_to_cache(CircuitStateRecord(name=name, state=CircuitState.CLOSED))


class MemoryBreakerPersistence(BreakerStore):
    """Breaker records in a dict: one instance stands for one shared table."""

    shares_state_table = False

    def __init__(self) -> None:
        super().__init__()
        self._items: dict[str, CircuitStateRecord] = {}
        self._store_lock = threading.Lock()

    def read_items(self, names: Iterable[str]) -> dict[str, dict[str, Any]]:
        names = names if isinstance(names, list | tuple) else list(names)  # read twice below
        with self._store_lock:
            if self._items.keys().isdisjoint(names):  # no circuit of these has a record (asked in C): the usual case
                return {}
            return {name: breaker_item(self._items[name]) for name in names if name in self._items}

    def _get_record(self, name: str) -> CircuitStateRecord | None:
        with self._store_lock:
            record = self._items.get(name)
            return None if record is None else CircuitStateRecord(**vars(record))

    def _put_record(
        self, record: CircuitStateRecord, condition: str | None = None, expected_opened_at: int | None = None
    ) -> None:
        with self._store_lock:
            if condition == "half_open" and not self._may_probe(self._items.get(record.name), expected_opened_at):
                raise CircuitBreakerExistingLockError
            self._items[record.name] = CircuitStateRecord(**vars(record))

    @staticmethod
    def _may_probe(current: CircuitStateRecord | None, expected_opened_at: int | None) -> bool:
        """The same condition as the DynamoDB layer's conditional put."""
        if current is None:
            return False
        if current.state == CircuitState.OPEN and current.half_open_owner is None:
            return expected_opened_at is None or current.opened_at == expected_opened_at
        if current.state == CircuitState.HALF_OPEN and current.probe_lease_expiry is not None:
            return current.probe_lease_expiry <= int(dt.datetime.now().timestamp())
        return False

    def _update_record(self, record: CircuitStateRecord) -> None:
        with self._store_lock:
            current = self._items.get(record.name)
            updated = CircuitStateRecord(**vars(record))
            if current is not None and record.opened_at is None and record.state != CircuitState.CLOSED:
                updated.opened_at = current.opened_at
            updated.half_open_owner = None
            updated.probe_lease_expiry = None
            self._items[record.name] = updated


def __getattr__(name: str) -> type[DynamoDBBreakerPersistence]:
    """`DynamoDBBreakerPersistence` lives in `breaker_dynamodb.py`, imported on first use."""
    if name == "DynamoDBBreakerPersistence":
        from llm_gateway.routing.breaker_dynamodb import DynamoDBBreakerPersistence

        return DynamoDBBreakerPersistence
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
