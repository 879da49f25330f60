"""The request path's view of shared state, in domain terms: load, reserve, reconcile, remember.

Built on a `StateStore` (items) with `items.py` (what each item means) and `metering.py` (the
arithmetic of windows). Every attempt costs one conditional write per window item before its provider call; the
load is one read per request.

Reconciliation adds no round trip the caller waits for in the usual case. When the store is
remote, an *over*-estimate (the usual case: output is estimated at its cap) is kept in this
container and folded into the next reservation of the same window item (one UpdateItem carries
both the new ask and the correction, with the condition adjusted to match). A correction whose
window closes before this container reserves on it again is dropped: what is lost is an
over-count, capacity left unused, never a limit passed. An *under*-estimate (the model wrote more
than expected) is written at once, unconditionally, so other containers see the true count: one
write, only when the estimate was too low. Within a memory store every correction is applied at
once, since it costs nothing. Budgets (`USD_MICROS`) are the exception: a paid call reserves its
*maximum* cost, so the over-estimate is given back at once, in one write after a paid call.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace

from llm_gateway.providers.base import RateLimitInfo
from llm_gateway.state import items
from llm_gateway.state.metering import USD_MICROS, Amounts, Meter, WindowUsage, slot_of, with_slot
from llm_gateway.state.rate_limits import snapshot_expiry
from llm_gateway.state.store import CounterAdd, ModelKey, StateStore

COOLDOWN_MARGIN_S = 60
SETTLED_AT_ONCE = frozenset({USD_MICROS})  # units whose over-estimates are never folded


@dataclass(frozen=True, slots=True)
class Reservation:
    """Capacity held for one attempt: what was asked of which window items."""

    adds: tuple[CounterAdd, ...]
    amounts: Amounts
    closes: tuple[int, ...] = ()  # when each window closes: no reservation writes to it after that
    slots: tuple[int | None, ...] = ()  # each sliding window's slot it was counted in (None: not sliding)

    def slot(self, index: int) -> int | None:
        return self.slots[index] if index < len(self.slots) else None

    def writes(self, amounts: Amounts) -> list[tuple[CounterAdd, dict[str, int]]]:
        """Per window item, `amounts` as that item counts them: its totals and the reservation's
        own slot (a correction lands where the reservation was counted)."""
        return [(add, with_slot(amounts, self.slot(index), add.ceilings)) for index, add in enumerate(self.adds)]


class SharedState:
    def __init__(self, store: StateStore, *, fold_reconcile: bool) -> None:
        self.store = store
        self._fold = fold_reconcile
        self._pending: dict[str, tuple[dict[str, int], int]] = {}  # pk → (unit → correction, window close)
        self._lock = threading.Lock()

    # --- reads ---------------------------------------------------------------------------------------
    def load(self, meters: Collection[Meter], keys: Collection[ModelKey], now: float,
             extra_pks: Collection[str] = ()) -> items.StateSnapshot:
        raw = self.store.load(items.pks_for(meters, keys, now, extra_pks), now)
        degraded = _degraded(self.store, now)
        scale = float(getattr(self.store, "fraction", 1.0)) if degraded else 1.0
        return items.decode_snapshot(raw, keys, now, degraded=degraded, limit_scale=scale)

    # --- counters ------------------------------------------------------------------------------------
    def reserve(self, usages: Sequence[WindowUsage], amounts: Amounts, now: float) -> Reservation | None:
        """Take `amounts` in every window or none (None: a window would pass its limit)."""
        slots = tuple(slot_of(u.meter.limit.period, u.start, now) if u.meter.limit.period.sliding else None
                      for u in usages)
        adds = tuple(
            CounterAdd(u.meter.pk(u.start), with_slot(amounts, slot, ceilings), u.meter.limit.period.expires_at(u.start),
                       ceilings, stamp=now)
            for u, slot in zip(usages, slots, strict=True)
            for ceilings in (u.ceilings(),)
        )
        reservation = Reservation(adds, dict(amounts), tuple(u.meter.limit.period.end(u.start) for u in usages), slots)
        for add in adds:
            for unit, ask in amounts.items():
                ceiling = add.ceilings.get(unit)
                if ceiling is not None and ask > ceiling:
                    return None  # can never fit: do not spend a write finding out
        if not adds:
            return reservation
        with self._lock:
            self._prune(now)
            folded = {add.pk: self._pending.pop(add.pk) for add in adds if add.pk in self._pending}
        writes = [_with_correction(add, folded[add.pk][0] if add.pk in folded else None) for add in adds]
        written = False
        try:
            written = self.store.add(writes, now)
        finally:
            if not written:  # nothing was written: keep the corrections for the next reservation
                with self._lock:
                    for pk, (correction, expires) in folded.items():
                        self._keep(pk, correction, expires)
        return reservation if written else None

    def reconcile(self, reservation: Reservation, actual: Amounts, now: float) -> None:
        """Replace the estimate with what was really used (see the module docstring for when)."""
        delta = {unit: actual.get(unit, 0) - asked for unit, asked in reservation.amounts.items()}
        delta = {unit: n for unit, n in delta.items() if n}
        if not delta:
            return
        # Money given back is written at once too: a budget's over-estimate is large (the call's
        # maximum cost was reserved) and other containers must not refuse a user on it.
        less = {unit: n for unit, n in delta.items() if n < 0 and self._fold and unit not in SETTLED_AT_ONCE}
        now_written = {unit: n for unit, n in delta.items() if unit not in less}
        if now_written:
            self.store.add([CounterAdd(add.pk, counted, add.expires_at) for add, counted in reservation.writes(now_written)],
                           now)
        if less:
            with self._lock:
                for (add, counted), closes in zip(reservation.writes(less), reservation.closes, strict=True):
                    self._keep(add.pk, counted, closes)

    def _keep(self, pk: str, correction: Mapping[str, int], closes: int) -> None:
        held, _ = self._pending.get(pk, ({}, closes))
        _merge(held, correction)
        self._pending[pk] = (held, closes)

    def _prune(self, now: float) -> None:
        """Forget corrections of windows that have closed: no reservation will carry them."""
        for pk in [pk for pk, (_, closes) in self._pending.items() if closes <= now]:
            del self._pending[pk]

    def release(self, reservation: Reservation, now: float) -> None:
        """The call was never made: give back everything the reservation took, at once and to
        every container (folding it would keep a small window full for the others until this
        container reserves on it again)."""
        give_back = {unit: -asked for unit, asked in reservation.amounts.items() if asked}
        if give_back:
            self.store.add([CounterAdd(add.pk, counted, add.expires_at) for add, counted in reservation.writes(give_back)],
                           now)

    # --- what the selector should know -----------------------------------------------------------------
    def cool_down(self, key: ModelKey, until: float, reason: str, now: float) -> None:
        self.store.extend(items.cooldown_pk(key), items.cooldown_item(until, reason), until,
                          int(until) + COOLDOWN_MARGIN_S, now)

    def record_headers(self, key: ModelKey, info: RateLimitInfo, now: float) -> None:
        self.store.put(items.header_pk(key), items.header_item(info, now), int(snapshot_expiry(info, now)) + 1, now)

    def remember_affinity(self, pk: str, key: ModelKey, now: float) -> None:
        """The model that answered a conversation's turn, for its next turn (`items.affinity_pk`)."""
        self.store.put(pk, items.affinity_item(key, now), int(now + items.AFFINITY_TTL_S) + 1, now)

    def mark_failure(self, provider: str, kind: str, now: float) -> None:
        self.store.put(items.failure_pk(provider), items.failure_item(now, kind),
                       int(now + items.FAILURE_MEMORY_S) + 1, now)


def _merge(into: dict[str, int], more: Mapping[str, int]) -> None:
    for unit, n in more.items():
        into[unit] = into.get(unit, 0) + n


def _with_correction(add: CounterAdd, correction: Mapping[str, int] | None) -> CounterAdd:
    """One write for the new ask and an earlier correction: the condition checks the sum."""
    if not correction:
        return add
    amounts = dict(add.amounts)
    _merge(amounts, correction)
    return replace(add, amounts=amounts)


def _degraded(store: StateStore, now: float) -> bool:
    probe = getattr(store, "degraded", None)
    return bool(probe(now)) if callable(probe) else False
