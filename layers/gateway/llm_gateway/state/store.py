"""The shared-state seam: a table of items, read in one round trip and written with conditions.

All Lambda containers share state through one DynamoDB table (`dynamodb.py`); tests and local
runs may use `memory.py`; `resilient.py` falls back from the first to the second. The store knows
items, not meaning: what each item holds and how it is encoded is owned by `items.py`, and the
metering arithmetic (windows, limits, reservations) by `metering.py`. Callers pass `now`
explicitly, and nobody relies on DynamoDB TTL having deleted anything: expired items are
invisible on read.

A store offers exactly the operations the request path needs:
- `load`: one BatchGetItem for every item a request may consult;
- `add`: atomic counter additions on one or more items, all or nothing, each guarded by a
  ceiling (`value + amount <= ceiling`), or unguarded for reconciliation; the same write may set
  stamps and remove attributes of the item (one item may hold several windows, `items.py`);
- `put`: replace an item (header snapshots, failure marks, health records);
- `extend`: write an item only when its `until` grows (cooldowns never shrink).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, NoReturn, Protocol, SupportsIndex

Item = Mapping[str, Any]  # plain Python values: str, int, float, bool (never DynamoDB's typed form)


class FrozenItem(dict[str, Any]):
    """An item a store hands out and never changes (`memory.MemoryStore`'s: each write stores a
    new one): whoever holds it may keep it without a copy, and tell it unchanged by identity
    (`items._view`). Changing it raises, so no caller can change the table through it."""

    __slots__ = ()

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("a stored item is read-only: change a copy (dict(item))")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = __ior__ = _refuse

    def __reduce_ex__(self, protocol: SupportsIndex) -> tuple[type[dict[str, Any]], tuple[dict[str, Any]]]:
        """A copy (`copy`, `deepcopy`) or a pickle is a plain dict: rebuilt as a `FrozenItem`, it
        would be filled through the refused `__setitem__`."""
        return dict, (dict(self),)


class StateUnavailable(Exception):
    """The shared store could not answer (beyond SDK errors); `resilient.py` falls back on it."""


class ModelKey(NamedTuple):
    """`provider/model`. A NamedTuple (immutable, ordered) because it is hashed several times per
    candidate per request, and tuple hashing is done in C (a frozen dataclass hashes in Python)."""

    provider: str
    model: str

    def __str__(self) -> str:
        return f"{self.provider}/{self.model}"


@dataclass(slots=True, unsafe_hash=True)  # a value, never changed; not frozen: see FAST_VALUES in metering.py
class CounterAdd:
    """Add `amounts` (attribute → n) to the counters of item `pk`.

    `ceilings` (attribute → max) make it conditional: the add happens only if, for each
    attribute, `current + amount <= ceiling`. `expires_at` is set on the item (TTL); each of
    `stamps` (attribute → time) is set (the latest reservation on a window: last writer wins
    remotely, the later one in memory); each of `removes` is removed (the attributes of windows
    nobody reads any more), all in the same write.
    """

    pk: str
    amounts: Mapping[str, int]
    expires_at: int
    ceilings: Mapping[str, int] = field(default_factory=dict)
    stamps: Mapping[str, float] = field(default_factory=dict)
    removes: tuple[str, ...] = ()

    def plus(self, other: CounterAdd) -> CounterAdd:
        """This add and `other` (on the same item) as one write: amounts added up (a condition then
        checks the sum), ceilings, the later stamps and expiry kept, and a removal only of what
        neither counts on nor stamps (DynamoDB refuses an attribute both set and removed)."""
        amounts = dict(self.amounts)
        for unit, n in other.amounts.items():
            amounts[unit] = amounts.get(unit, 0) + n
        stamps = dict(self.stamps)
        for name, at in other.stamps.items():
            stamps[name] = max(at, stamps.get(name, at))
        removes = tuple(name for name in dict.fromkeys((*self.removes, *other.removes)) if name not in amounts and name not in stamps)
        return CounterAdd(self.pk, amounts, max(self.expires_at, other.expires_at), {**other.ceilings, **self.ceilings},
                          stamps, removes)


class StateStore(Protocol):
    def load(self, pks: Sequence[str], now: float, *, consistent: bool = False) -> dict[str, Item]:
        """Every live item among `pks`, in one round trip (per 100 keys). `consistent`: the read
        must show every write that answered before it (DynamoDB's strongly consistent read; a
        plain one may come from a replica a write behind), as the request path's every read
        (`SharedState.load`: what earlier windows carry must count every reservation made)."""
        ...

    def add(self, adds: Sequence[CounterAdd], now: float) -> bool:
        """Apply all adds atomically; False (nothing written) when any ceiling would be passed."""
        ...

    def put(self, pk: str, item: Item, expires_at: int, now: float) -> None:
        """Replace the item (last writer wins)."""
        ...

    def extend(self, pk: str, item: Item, until: float, expires_at: int, now: float) -> None:
        """Write the item (with `until`) only if it has no later `until` already."""
        ...
