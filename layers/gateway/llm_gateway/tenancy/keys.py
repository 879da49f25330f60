"""Gateway keys: generated here, shown once, stored only as their SHA-256 with a user and a policy.

A key is `sk-gw-` + 32 random bytes (URL-safe base64): guessing one is hopeless, so a plain
SHA-256 (no salt, no slow hash) is the right lookup key: it is what the request path computes
to find the item `key#{sha256}` (`state/items.py`). The admin list reads one index item
(`keys#index`: key id → hash) and then the key items in one BatchGetItem: no Scan, anywhere.

`KeyDirectory` is the request path's view: a lookup per request, answered from an in-container
cache for `ttl_s` (5 s by default), so a policy change or a revocation reaches every container
within that long (the bound the README states is 60 s). If the table cannot be read, a cached
record is used while it is under a minute old; an unknown key then gets a 503, never a pass.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, TypeVar

from llm_gateway.state.items import KEY_INDEX_PK, KEY_INDEX_SHARD_PKS, key_index_shard_pk, key_pk
from llm_gateway.tenancy.policy import Policy

KEY_PREFIX = "sk-gw-"
KEY_BYTES = 32
STALE_OK_S = 60.0  # a cached record serves while the table is unreachable, this long at most
MAX_CACHED = 10_000


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)


def new_key_id() -> str:
    return "key_" + secrets.token_hex(8)


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def looks_issued(token: str) -> bool:
    return token.startswith(KEY_PREFIX) and 40 <= len(token) <= 100


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A stored gateway key: its user and policy, the key's digest (never the key), its history."""

    id: str
    user: str
    policy: Policy
    digest: str = field(repr=False)
    name: str = ""
    created_at: float = 0.0
    updated_at: float = 0.0
    revoked_at: float | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def public(self) -> dict[str, Any]:
        """What the admin API shows: never the key, never its hash."""
        return {
            "id": self.id, "user": self.user, "name": self.name, "policy": self.policy.public(),
            "created_at": _iso(self.created_at), "updated_at": _iso(self.updated_at),
            "revoked": self.revoked, "revoked_at": _iso(self.revoked_at) if self.revoked_at is not None else None,
        }

    def item(self) -> dict[str, Any]:
        item: dict[str, Any] = {"kind": "key", "id": self.id, "user": self.user, "name": self.name,
                                "policy": self.policy.encode(), "created_at": float(self.created_at),
                                "updated_at": float(self.updated_at)}
        if self.revoked_at is not None:
            item["revoked_at"] = float(self.revoked_at)
        return item

    @classmethod
    def from_item(cls, key_digest: str, item: dict[str, Any]) -> KeyRecord:
        revoked = item.get("revoked_at")
        return cls(id=str(item["id"]), user=str(item["user"]), policy=Policy.decode(str(item.get("policy", ""))),
                   digest=key_digest, name=str(item.get("name", "")), created_at=float(item.get("created_at", 0)),
                   updated_at=float(item.get("updated_at", 0)), revoked_at=None if revoked is None else float(revoked))


def _iso(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


class KeyStore(Protocol):
    def get(self, key_digest: str) -> KeyRecord | None: ...

    def save(self, record: KeyRecord, *, over: KeyRecord | None = None) -> bool:
        """Write the key's item and its entry in the index. `over`: the stored record this one
        revises; then it is written only if the key's item is still that record (False: another
        change came in between, and this one, made from the record before it, would undo it)."""
        ...

    def find(self, key_id: str) -> KeyRecord | None: ...

    def list(self) -> list[KeyRecord]: ...


class MemoryKeyStore:
    """Keys in this process (tests and local runs without a table)."""

    def __init__(self) -> None:
        self._by_digest: dict[str, KeyRecord] = {}
        self._lock = threading.Lock()

    def get(self, key_digest: str) -> KeyRecord | None:
        return self._by_digest.get(key_digest)

    def save(self, record: KeyRecord, *, over: KeyRecord | None = None) -> bool:
        with self._lock:
            if over is not None and self._by_digest.get(record.digest) != over:
                return False
            self._by_digest[record.digest] = record
            return True

    def find(self, key_id: str) -> KeyRecord | None:
        return next((r for r in self._by_digest.values() if r.id == key_id), None)

    def list(self) -> list[KeyRecord]:
        return sorted(self._by_digest.values(), key=lambda r: (r.created_at, r.id))


class DynamoKeyStore:
    """Keys in the state table: `key#{sha256}` items and the `keys#index` item, or once that is
    full (an item holds at most 400 KB: about 4,800 keys) the `keys#index#{digit}` items, read
    with it (strongly consistent reads: an admin's change is read back at once). `keys#index` is
    written while it has room because a version before the shards reads only it: during a canary
    or after a rollback that version still finds every key it could find before."""

    def __init__(self, client: Any, table: str) -> None:
        from llm_gateway.state.dynamodb import DynamoStateStore

        self.client = client
        self.table = table
        self._items = DynamoStateStore(client, table, consistent_read=True)

    def _load(self, pks: Sequence[str]) -> dict[str, Any]:
        return self._items.load(list(pks), time.time())

    def get(self, key_digest: str) -> KeyRecord | None:
        item = self._load([key_pk(key_digest)]).get(key_pk(key_digest))
        return None if item is None else KeyRecord.from_item(key_digest, dict(item))

    def save(self, record: KeyRecord, *, over: KeyRecord | None = None) -> bool:
        from llm_gateway.state.aws_client import error_code
        from llm_gateway.state.dynamodb import CONDITION_FAILED, encode_value

        encoded = {name: encode_value(value) for name, value in record.item().items()}
        put: dict[str, Any] = {"TableName": self.table, "Item": {"pk": {"S": key_pk(record.digest)}, **encoded}}
        if over is not None:
            put.update(_unchanged(over, encode_value))
        try:
            self.client.put_item(**put)
        except Exception as exc:
            if error_code(exc) == CONDITION_FAILED:
                return False
            raise
        self._index_entry(record)
        return True

    def _index_entry(self, record: KeyRecord) -> None:
        from llm_gateway.state.aws_client import error_code

        entry = {"UpdateExpression": "SET #id = :digest", "ExpressionAttributeNames": {"#id": record.id},
                 "ExpressionAttributeValues": {":digest": {"S": record.digest}}}
        try:
            self.client.update_item(TableName=self.table, Key={"pk": {"S": KEY_INDEX_PK}}, **entry)
        except Exception as exc:
            if error_code(exc) != "ValidationException":  # what DynamoDB answers an item grown past 400 KB
                raise
            self.client.update_item(TableName=self.table, Key={"pk": {"S": key_index_shard_pk(record.id)}}, **entry)

    def _index(self, key_id: str | None = None) -> dict[str, str]:
        """id → digest of every key, or of `key_id` (read from the two items that may hold it)."""
        pks = [KEY_INDEX_PK, *(KEY_INDEX_SHARD_PKS if key_id is None else (key_index_shard_pk(key_id),))]
        items = self._load(pks)
        return {str(k): str(v) for pk in pks for k, v in (items.get(pk) or {}).items() if k.startswith("key_")}

    def find(self, key_id: str) -> KeyRecord | None:
        found = self._index(key_id).get(key_id)
        return None if found is None else self.get(found)

    def list(self) -> list[KeyRecord]:
        index = self._index()
        items = self._load([key_pk(d) for d in index.values()])
        records = [KeyRecord.from_item(d, dict(items[key_pk(d)])) for d in index.values() if key_pk(d) in items]
        return sorted(records, key=lambda r: (r.created_at, r.id))


def _unchanged(record: KeyRecord, encode: Callable[[Any], Any]) -> dict[str, Any]:
    """A put's condition that the key's item is still `record`: every revision sets the time of
    its change (`updated_at`), and a revocation `revoked_at` too. The policy is not compared: a
    newer version's fields, dropped when read here, would never match."""
    names = {"#u": "updated_at", "#r": "revoked_at"}
    values = {":u": encode(float(record.updated_at))}
    # An item without `updated_at` reads as 0 (`from_item`): one written so must still match.
    updated = "(#u = :u OR attribute_not_exists(#u))" if not record.updated_at else "#u = :u"
    revoked = "attribute_not_exists(#r)"
    if record.revoked_at is not None:
        values[":r"] = encode(float(record.revoked_at))
        revoked = "#r = :r"
    return {"ConditionExpression": f"{updated} AND {revoked}", "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values}


class KeyUnavailable(Exception):
    """The key table could not be read and nothing fresh enough is cached."""


class KeyDirectory:
    """The request path's lookup: issued key → its record (None: unknown or revoked), cached."""

    def __init__(self, store: KeyStore, *, ttl_s: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self._clock = clock
        # Keys found and keys not found are cached apart, each bounded and emptied when full:
        # anyone can send made-up keys, and their misses must never push a real key out (it
        # would need the table again, and during an outage its caller would be refused).
        self._found: dict[str, tuple[KeyRecord, float]] = {}
        self._missing: dict[str, float] = {}
        self._lock = threading.Lock()

    def _cached(self, key_digest: str) -> tuple[KeyRecord | None, float] | None:
        found = self._found.get(key_digest)
        if found is not None:
            return found
        missed_at = self._missing.get(key_digest)
        return None if missed_at is None else (None, missed_at)

    def lookup(self, key: str) -> KeyRecord | None:
        key_digest = digest(key)
        now = self._clock()
        cached = self._cached(key_digest)
        if cached is not None and now - cached[1] < self.ttl_s:
            return _live(cached[0])
        try:
            record = self.store.get(key_digest)
        except Exception as exc:
            # Only a record read serves stale: a cached miss is not evidence the key is invalid
            # past the cache time (it may have been issued since), so it gets the 503, not a 401.
            if cached is not None and cached[0] is not None and now - cached[1] < STALE_OK_S:
                return _live(cached[0])
            raise KeyUnavailable("the key table could not be read") from exc
        with self._lock:
            if record is None:
                self._found.pop(key_digest, None)
                _bounded_put(self._missing, key_digest, now)
            else:
                self._missing.pop(key_digest, None)
                _bounded_put(self._found, key_digest, (record, now))
        return _live(record)

    def forget(self, key_digest: str) -> None:
        """Drop a cached record (this container's own admin change applies at once)."""
        with self._lock:
            self._found.pop(key_digest, None)
            self._missing.pop(key_digest, None)


V = TypeVar("V")


def _bounded_put(cache: dict[str, V], key: str, value: V) -> None:
    if key not in cache and len(cache) >= MAX_CACHED:
        cache.clear()
    cache[key] = value


def _live(record: KeyRecord | None) -> KeyRecord | None:
    return None if record is None or record.revoked else record


def issue(store: KeyStore, user: str, policy: Policy, name: str, now: float) -> tuple[str, KeyRecord]:
    """A new key for `user`: (the key, shown once; its record, as stored)."""
    key = new_key()
    record = KeyRecord(id=new_key_id(), user=user, policy=policy, digest=digest(key), name=name,
                       created_at=now, updated_at=now)
    store.save(record)
    return key, record


def revise(store: KeyStore, record: KeyRecord, now: float, *, policy: Policy | None = None,
           name: str | None = None, revoke: bool = False) -> KeyRecord | None:
    """`record` changed and saved over itself; None when the stored key changed since `record`
    was read (nothing written: read it again and revise that, or a revocation made meanwhile
    would be undone by a change made from the record before it)."""
    changed = replace(record, policy=policy or record.policy, name=record.name if name is None else name,
                      updated_at=now, revoked_at=(record.revoked_at or now) if revoke else record.revoked_at)
    return changed if store.save(changed, over=record) else None
