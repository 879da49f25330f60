"""In-memory `StateStore`: for unit tests, local runs and the degraded-mode fallback.

The same items and semantics as the DynamoDB store (all-or-nothing conditional adds, `extend`
only ever lengthens, expiry honoured on read) behind one lock, so one container's threads can
share it. It is per-process: it never sees other containers' traffic, which is why `resilient.py`
runs it with scaled-down ceilings.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from llm_gateway.state.store import CounterAdd, FrozenItem, Item

PURGE_EVERY = 512


class MemoryStore:
    """Thread-safe dict of pk → (item, expires_at); expired items are invisible. A stored item is
    never changed in place: every write stores a new dict (see `load`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, tuple[FrozenItem, float]] = {}
        self._writes = 0

    def _live(self, pk: str, now: float) -> dict[str, Any] | None:
        found = self._items.get(pk)
        return found[0] if found is not None and found[1] > now else None

    def load(self, pks: Sequence[str], now: float, *, consistent: bool = False) -> dict[str, Item]:
        """Every read is consistent here (one dict). Each item is the stored one, not a copy: it
        is a `FrozenItem`, never changed once stored (every write stores a new one), so it shows
        the item as loaded for as long as it is kept, as a copy would, and a caller cannot change
        the table through it. (A load reads up to a hundred items on every request: copying them
        was most of its time.)"""
        pks = pks if isinstance(pks, list | tuple) else list(pks)  # read twice below
        stored = self._items
        with self._lock:  # `_live` inlined
            if stored.keys().isdisjoint(pks):  # none of them stored (asked in C): the usual miss of most
                return {}
            return {pk: found[0] for pk in pks if (found := stored.get(pk)) is not None and found[1] > now}

    def add(self, adds: Sequence[CounterAdd], now: float) -> bool:
        stored = self._items
        with self._lock:  # `_live` inlined, and each item looked up once per add: this runs on every request
            for add in adds:
                if add.ceilings:  # an unconditional add (the usage ledger's) has nothing to check
                    current = self._live(add.pk, now) or {}
                    for unit, ceiling in add.ceilings.items():
                        if current.get(unit, 0) + add.amounts.get(unit, 0) > ceiling:
                            return False
            for add in adds:
                found = stored.get(add.pk)
                # a new item, never the stored one changed: a load may have handed it out (`load`)
                item: dict[str, Any] = dict(found[0]) if found is not None and found[1] > now else {}
                expires: float = max(add.expires_at, found[1] if found is not None else 0)
                for name in add.removes:
                    item.pop(name, None)
                for unit, amount in add.amounts.items():
                    item[unit] = item.get(unit, 0) + amount
                for name, stamp in add.stamps.items():
                    item[name] = max(float(item.get(name, 0.0)), stamp)
                stored[add.pk] = (FrozenItem(item), expires)
            self._after_write(now)
        return True

    def put(self, pk: str, item: Item, expires_at: int, now: float) -> None:
        with self._lock:
            self._items[pk] = (FrozenItem(item), float(expires_at))
            self._after_write(now)  # affinity items are one per conversation turn: purge them too

    def extend(self, pk: str, item: Item, until: float, expires_at: int, now: float) -> None:
        with self._lock:
            current = self._items.get(pk)
            if current is not None and float(current[0].get("until", 0)) >= until:
                return
            self._items[pk] = (FrozenItem({**item, "until": until}), float(expires_at))

    def _after_write(self, now: float) -> None:
        """Drop dead items now and then so a long-lived container does not grow without bound."""
        self._writes += 1
        if self._writes % PURGE_EVERY == 0:
            for pk in [pk for pk, (_, expires) in self._items.items() if expires <= now]:
                del self._items[pk]
