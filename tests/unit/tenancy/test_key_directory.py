"""The request path's key lookup and its cache (`tenancy/keys.py KeyDirectory`)."""

from __future__ import annotations

import pytest

from llm_gateway.tenancy import keys
from llm_gateway.tenancy.keys import KeyDirectory, KeyRecord, KeyUnavailable, MemoryKeyStore, issue
from llm_gateway.tenancy.policy import Policy


class Outage(MemoryKeyStore):
    """A key table that can stop answering."""

    down = False

    def get(self, key_digest: str) -> KeyRecord | None:
        if self.down:
            raise OSError("the table is unreachable")
        return super().get(key_digest)


def test_a_flood_of_unknown_keys_cannot_push_a_real_key_out_of_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by the security audit: misses were cached beside real keys in one bounded cache
    that empties when full, so anyone sending made-up keys (each costs a read) emptied it, and a
    real key then needed the table: during an outage its caller got 503 `key_store_unavailable`
    though the key had been seen seconds before (a cached record serves for 60 s)."""
    monkeypatch.setattr(keys, "MAX_CACHED", 50)
    moment = [1000.0]
    store = Outage()
    key, _ = issue(store, "alice", Policy(), "laptop", moment[0])
    directory = KeyDirectory(store, ttl_s=5.0, clock=lambda: moment[0])
    assert directory.lookup(key) is not None
    for n in range(200):  # a flood of made-up keys
        assert directory.lookup(f"gk-made-up-{n:040d}") is None
    moment[0] += 10  # past the 5 s cache: the table is asked again, and is down
    store.down = True
    record = directory.lookup(key)
    assert record is not None and record.user == "alice"
    with pytest.raises(KeyUnavailable):
        directory.lookup("gk-made-up-" + "9" * 40 + "x")


def test_while_the_table_cannot_be_read_a_key_read_under_a_minute_ago_serves_then_503() -> None:
    """What the README promises for revocations during an outage: a container that cannot read
    the table keeps a key record it read less than 60 s before (a key revoked meanwhile may serve
    that long there), and after that answers 503, never a pass."""
    moment = [1000.0]
    store = Outage()
    key, _ = issue(store, "alice", Policy(), "laptop", moment[0])
    directory = KeyDirectory(store, ttl_s=5.0, clock=lambda: moment[0])
    assert directory.lookup(key) is not None
    store.down = True
    moment[0] += keys.STALE_OK_S - 1
    assert directory.lookup(key) is not None
    moment[0] += 1
    with pytest.raises(KeyUnavailable):
        directory.lookup(key)


def test_a_key_created_after_a_miss_is_not_refused_as_invalid_while_the_table_cannot_be_read() -> None:
    """A miss is cached for the cache time only: it says nothing of the key after that. A key
    looked up before it was created (another container issued it a moment later) and sent again
    once the table stopped answering got 401 `invalid_api_key` for up to a minute (the stale
    allowance, meant for records read, served the cached miss too): a client told its key is
    invalid stops, where the README promises a 503 for keys the container does not have."""
    moment = [1000.0]
    store = Outage()
    key = keys.new_key()
    directory = KeyDirectory(store, ttl_s=5.0, clock=lambda: moment[0])
    assert directory.lookup(key) is None  # not issued yet: unknown, cached as a miss
    store.save(KeyRecord(id=keys.new_key_id(), user="alice", policy=Policy(), digest=keys.digest(key)))
    moment[0] += 10  # past the cache time: the table is asked again, and is down
    store.down = True
    with pytest.raises(KeyUnavailable):
        directory.lookup(key)
