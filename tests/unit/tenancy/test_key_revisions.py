"""Admin changes to one key that race each other (`tenancy/admin.py`, `tenancy/keys.py revise`).

An update reads the key, then writes the whole record back. A revocation landing between that
read and write was undone: the update wrote the record it had read, unrevoked, and the revoked
key served again everywhere (and of two updates, one lost the other's fields).
"""

from __future__ import annotations

from collections.abc import Callable

from llm_gateway.tenancy.admin import KeyAdmin
from llm_gateway.tenancy.keys import KeyDirectory, KeyRecord, MemoryKeyStore


class Racing(MemoryKeyStore):
    """A key store where another admin's change lands just before the next write."""

    race: Callable[[], object] | None = None

    def save(self, record: KeyRecord, **kwargs):  # type: ignore[no-untyped-def]
        race, self.race = self.race, None
        if race is not None:
            race()
        return super().save(record, **kwargs)


def _admins() -> tuple[Racing, KeyAdmin, KeyAdmin]:
    store = Racing()
    clock = iter(range(1000, 2000)).__next__
    return store, KeyAdmin(store, clock=lambda: float(clock())), KeyAdmin(store, clock=lambda: float(clock()))


def test_a_revocation_made_while_an_update_was_writing_stays() -> None:
    store, one, other = _admins()
    made = one.create({"user": "alice", "rpm": 10})
    store.race = lambda: other.revoke(made["id"])
    updated = one.update(made["id"], {"rpm": 20})
    assert updated["revoked"] is True and updated["policy"]["rpm"] == 20
    assert KeyDirectory(store).lookup(made["key"]) is None  # the revoked key serves nowhere
    assert one.get(made["id"]).revoked


def test_two_updates_racing_keep_both_changes() -> None:
    store, one, other = _admins()
    made = one.create({"user": "alice", "rpm": 10})
    store.race = lambda: other.update(made["id"], {"daily_budget_usd": 1.0})
    one.update(made["id"], {"rpm": 20})
    policy = one.get(made["id"]).policy
    assert (policy.rpm, policy.daily_budget_usd) == (20, 1.0)
