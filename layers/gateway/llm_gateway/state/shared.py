"""The request path's view of shared state, in domain terms: load, reserve, reconcile, remember.

Built on a `StateStore` (items) with `items.py` (what each item means) and `metering.py` (the
arithmetic of windows). Every attempt costs one conditional write per meter item before its
provider call: one item holds every window of a counter (`items.py`, "meter items"), so a model
with its own minute and day limits is one UpdateItem whose condition checks both; a model that
counts on its own and its provider organisation's counters (Cohere: the model's minute, the
organisation's month) or a caller with limits of its own writes one item per counter. The load is one read per request. The reservation that opens a window in an
item (the first of a new minute, day, …) also removes, in the same write, the item's windows that
no load reads any more, as this container's load saw them.

Reconciliation adds no round trip the caller waits for in the usual case. When the store is
remote, an *over*-estimate (the usual case: output is estimated at its cap) is kept in this
container and folded into the next reservation on the same meter item (one UpdateItem carries
both the new ask and the correction, into the window and tenth the estimate was counted in, with
the condition adjusted to match). A correction whose
window closes before this container reserves on it again is dropped: what is lost is an
over-count, capacity left unused, never a limit passed. An *under*-estimate (the model wrote more
than expected) is written at once, unconditionally, so other containers see the true count: one
write, only when the estimate was too low. Within a memory store every correction is applied at
once, since it costs nothing. Budgets (`USD_MICROS`) are the exception: a paid call reserves its
*maximum* cost, so the over-estimate is given back at once, in one write after a paid call.

A count that moves from one reservation to the next (a caller's request, counted once on its
latest attempt's windows: `Outcomes.attempt_made`) rides on the next reservation's write too
(`reserve`'s `moved`): given back in the same conditional UpdateItem on the caller's item, so a
failover costs no write of its own, the condition checks the sum (a caller at its last request
can fail over), and the count is never given back without being taken again. A reservation
released without its call takes it back in the release's own write.

A reservation is stamped with the moment taken before its write, and other containers carry what
it counted until a window length and the stamp's slack past that stamp (`metering.py`). A write
that answered later than the slack allows (`Reservation.late`, checked by the runner with its
clock) is moved, before its call, to the moment it answered (`restamp`): the same `moved`
mechanism gives its counts back from where they were and takes them in the tenth and window of
that moment, with that stamp, in one conditional write per item. One more write, only after a
late one; refused, nothing moved and the runner releases the reservation.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace

from llm_gateway.providers.base import RateLimitInfo
from llm_gateway.state import items
from llm_gateway.state.metering import (
    MIN_STAMP_SLACK_S,
    USD_MICROS,
    WRITE_SHARE,
    Amounts,
    Meter,
    WindowUsage,
    slot_of,
    with_slot,
    write_allowance_s,
)
from llm_gateway.state.rate_limits import snapshot_expiry
from llm_gateway.state.store import CounterAdd, Item, ModelKey, StateStore

COOLDOWN_MARGIN_S = 60
LOADED_KEPT = 4096  # counter items remembered from the last load (the roll-over's removal reads them)
SETTLED_AT_ONCE = frozenset({USD_MICROS})  # units whose over-estimates are never folded


@dataclass(frozen=True, slots=True)
class Held:
    """One window a reservation counted on: where (`items.WindowRef`), in which tenth (None: not a
    sliding window), for which units per tenth (the limited ones), and when it closes (no
    reservation writes to it after that, so a correction kept for it is dropped then)."""

    window: items.WindowRef
    limited: tuple[str, ...]
    slot: int | None
    closes: int

    def counted(self, amounts: Amounts) -> dict[str, int]:
        """`amounts` under this window's attribute names: its totals and the reservation's own
        tenth (a correction lands where the reservation was counted)."""
        return self.window.attrs(with_slot(amounts, self.slot, self.limited))


@dataclass(slots=True, unsafe_hash=True)  # a value, never changed; not frozen: see FAST_VALUES in metering.py
class Reservation:
    """Capacity held for one attempt: the writes made (one per meter item) and its windows;
    `moved`, what it took over from an earlier reservation (`SharedState.reserve`)."""

    adds: tuple[CounterAdd, ...]
    amounts: Amounts
    windows: tuple[Held, ...] = ()
    moved: Reservation | None = None

    def writes(self, amounts: Amounts, now: float) -> list[CounterAdd]:
        """`amounts` on every window of the reservation a load still reads: one unconditional add
        per meter item (a window nobody reads is left alone: its attributes are being removed)."""
        by_item: dict[str, dict[str, int]] = {}
        for held in self.windows:
            if held.window.read(now):
                by_item.setdefault(held.window.item, {}).update(held.counted(amounts))
        return [CounterAdd(pk, attrs, items.meter_expires(now)) for pk, attrs in by_item.items()]

    def late(self, stamped: float, answered: float) -> bool:
        """Whether its write, stamped at `stamped` and answered at `answered`, took longer than one
        of its sliding windows allows (`metering.write_allowance_s`): the call would reach the
        provider too long after the stamp that other containers' carry goes by."""
        took = answered - stamped
        if took <= WRITE_SHARE * MIN_STAMP_SLACK_S:  # the usual case: below every window's allowance
            return False
        return any(held.slot is not None and took > write_allowance_s(held.window.period.seconds)
                   for held in self.windows)


class SharedState:
    def __init__(self, store: StateStore, *, fold_reconcile: bool) -> None:
        self.store = store
        self._fold = fold_reconcile
        # meter item → window key → (attribute → correction, when the window closes)
        self._pending: dict[str, dict[str, tuple[dict[str, int], int]]] = {}
        self._loaded: dict[str, Item] = {}  # counter item → as this container's last load saw it
        self._lock = threading.Lock()

    # --- reads ---------------------------------------------------------------------------------------
    def load(self, meters: Collection[Meter], keys: Collection[ModelKey], now: float,
             extra_pks: Collection[str] = ()) -> items.StateSnapshot:
        """Read strongly consistent (`StateStore.load`): a reservation's conditional write checks
        only the window it writes, against a ceiling that leaves room for what the earlier
        windows carry as this read saw them, so a read that missed another container's write of
        a moment ago (DynamoDB's eventually consistent read, from a replica behind it) let one
        call too many into a 1-second window (tests/unit/routing/test_consistent_plan_reads.py).
        It doubles the read's capacity units (one an item of up to 4 KB, not half), small beside
        what one call costs; a restamp's read must show its own write anyway."""
        pks = items.pks_for(meters, keys, now, extra_pks)
        raw = self.store.load(pks, now, consistent=True)
        degraded = _degraded(self.store, now)
        scale = float(getattr(self.store, "fraction", 1.0)) if degraded else 1.0
        snapshot = items.decode_snapshot(raw, keys, now, meters, degraded=degraded, limit_scale=scale)
        if snapshot.meter_items:
            with self._lock:
                if len(self._loaded) >= LOADED_KEPT:
                    self._loaded.clear()
                self._loaded.update(snapshot.meter_items)
        return snapshot

    # --- counters ------------------------------------------------------------------------------------
    def reserve(self, usages: Sequence[WindowUsage], amounts: Amounts, now: float,
                moved: Reservation | None = None) -> Reservation | None:
        """Take `amounts` in every window or none (None: a window would pass its limit): one
        conditional write per meter item, its condition checking every window's ceiling.

        `moved` (amounts on some windows of an earlier reservation, `Outcomes.attempt_made`) goes
        back from its windows in the same writes, all or nothing with the new ask: on an item this
        reservation writes, inside its conditional UpdateItem (the condition checks the sum, so
        what goes back makes room for what is taken); on another item, in an unconditional one
        of the same all-or-nothing `add`. Refused, nothing of it went back."""
        return self._reserve(usages, amounts, now, moved)

    def restamp(self, reservation: Reservation, usages: Sequence[WindowUsage], now: float) -> Reservation | None:
        """`reservation` counted again as of `now` (its write answered too late for its stamp,
        `Reservation.late`): its amounts taken in the windows of `now` (`usages`), in the tenth of
        `now` and with `now` as their stamp, and given back where they were counted, in the same
        conditional write per item (`reserve`'s `moved`). A window that the move does not raise
        (the same window: a tenth moves, the total stays) is not checked again: the reservation
        already holds its place there. A window it raises (the move crosses into the next one) is
        checked as any reservation is, with the reservation's own count left out of the carry
        (`WindowUsage.without`): it goes back in this write. The windows it leaves keep a stamp no
        earlier than `now` (or their end): a remote stamp is the last writer's, and a write that
        answered late may have put an earlier one over another container's later one.

        The result takes over what `reservation` had taken over (its `moved`): releasing it gives
        that back as releasing `reservation` would have. Refused (None), nothing was written and
        `reservation` stands as it was: release it, or keep it. (Behind `ResilientStore`, a
        restamp whose remote write failed as an outage is made on the local fallback instead,
        which never held the original count: the table keeps it with its old stamp, an
        over-count there, and the fallback counts the reservation short while it serves, the
        bounded gap any release after a flip to degraded has.)"""
        held = {h.window.key: h for h in reservation.windows}
        own: list[WindowUsage] = []
        for u in usages:
            for e in u.earlier:
                h = held.get(u.meter.pk(e.start))
                if h is not None:
                    u = u.without(e.start, h.slot, reservation.amounts, h.limited, now)
            own.append(u)
        again = self._reserve(own, reservation.amounts, now, replace(reservation, moved=None), restamp=True)
        return None if again is None else replace(again, moved=reservation.moved)

    def _reserve(self, usages: Sequence[WindowUsage], amounts: Amounts, now: float, moved: Reservation | None,
                 *, restamp: bool = False) -> Reservation | None:
        held: dict[str, Held] = {}
        ceilings: dict[str, dict[str, int]] = {}
        for u in usages:
            own = u.ceilings()
            for unit, ask in amounts.items():
                ceiling = own.get(unit)
                if ceiling is not None and ask > ceiling:
                    return None  # can never fit: do not spend a write finding out
            ref = items.window_ref(u.meter, u.start)
            known = ceilings.get(ref.key)
            if known is not None:  # two limits of one counter and period count on one window
                for unit, ceiling in own.items():
                    known[unit] = min(ceiling, known.get(unit, ceiling))
                own = known
            period = u.meter.limit.period
            slot = slot_of(period, u.start, now) if period.sliding else None
            ceilings[ref.key] = own
            held[ref.key] = Held(ref, tuple(own), slot, period.end(u.start))
        windows = tuple(held.values())
        back = moved.writes({unit: -n for unit, n in moved.amounts.items()}, now) if moved is not None else []
        if not windows and not back:
            return Reservation((), dict(amounts))
        adds: dict[str, CounterAdd] = {}
        for one in windows:
            ref = one.window
            add = adds.get(ref.item) or CounterAdd(ref.item, {}, items.meter_expires(now), {}, {})
            adds[ref.item] = replace(add, amounts={**add.amounts, **one.counted(amounts)},
                                     ceilings={**add.ceilings, **ref.attrs(ceilings[ref.key])},
                                     stamps={**add.stamps, **ref.attrs({items.LAST_AT: now})})
        with self._lock:
            self._prune(now)
            folded = {pk: self._pending.pop(pk) for pk in adds if pk in self._pending}
            loaded = {pk: self._loaded.get(pk) for pk in adds}
        if restamp and moved is not None:  # the windows it leaves: a stamp no earlier than their latest
            back = [*back, *_restamps(moved, held, now)]
        writes = _merged([*(_with_correction(add, folded.get(add.pk), _stale(loaded[add.pk], windows, add.pk, now))
                            for add in adds.values()), *back])
        if restamp:  # a window the move does not raise is not checked again (its place is held)
            writes = [replace(add, ceilings={name: n for name, n in add.ceilings.items() if add.amounts.get(name, 0) > 0})
                      for add in writes]
        # Refused: nothing was written, so the corrections are kept for the next reservation. An
        # error: they may have been written (a timeout after DynamoDB applied the update, a give-
        # back that failed), and delivering them twice would under-count: they are dropped, an
        # over-count at worst (capacity left unused, never a limit passed). A resilient store turns
        # such an error into the fallback's answer: a refusal that came with the store turning
        # degraded is that error, not a clean refusal.
        degraded = _degraded(self.store, now)
        written = self.store.add(writes, now)
        if not written and _degraded(self.store, now) == degraded:
            with self._lock:
                for pk, kept in folded.items():
                    for key, (correction, closes) in kept.items():
                        self._keep(pk, key, correction, closes)
        return Reservation(tuple(adds.values()), dict(amounts), windows, moved) if written else None

    def reconcile(self, reservation: Reservation, actual: Amounts, now: float) -> None:
        """Replace the estimate with what was really used (see the module docstring for when)."""
        if not reservation.windows:  # no window counted it (a model without limits): nothing to correct
            return
        delta = {unit: actual.get(unit, 0) - asked for unit, asked in reservation.amounts.items()}
        delta = {unit: n for unit, n in delta.items() if n}
        if not delta:
            return
        # Money given back is written at once too: a budget's over-estimate is large (the call's
        # maximum cost was reserved) and other containers must not refuse a user on it.
        less = {unit: n for unit, n in delta.items() if n < 0 and self._fold and unit not in SETTLED_AT_ONCE}
        now_written = {unit: n for unit, n in delta.items() if unit not in less}
        if now_written and (writes := reservation.writes(now_written, now)):
            self.store.add(writes, now)
        if less:
            with self._lock:
                for held in reservation.windows:
                    self._keep(held.window.item, held.window.key, held.counted(less), held.closes)

    def _keep(self, pk: str, key: str, correction: Mapping[str, int], closes: int) -> None:
        held, _ = self._pending.setdefault(pk, {}).get(key, ({}, closes))
        _merge(held, correction)
        self._pending[pk][key] = (held, closes)

    def _prune(self, now: float) -> None:
        """Forget corrections of windows that have closed: no reservation will carry them."""
        for pk, kept in list(self._pending.items()):
            for key in [key for key, (_, closes) in kept.items() if closes <= now]:
                del kept[key]
            if not kept:
                del self._pending[pk]

    def release(self, reservation: Reservation, now: float, *, late: bool = False) -> None:
        """The call was never made: give back everything the reservation took, at once and to
        every container (folding it would keep a small window full for the others until this
        container reserves on it again), and take back what it took over (`moved`) in the same
        writes: the earlier reservation counts it again. `late`: its write answered late
        (`Reservation.late`), and its stamp, older than the moment it landed, may have been put
        over a later one (remotely the last writer's stamp stays): its sliding windows get a
        stamp no earlier than `now` (or their end) in the same writes, as a restamp's do."""
        writes = reservation.writes({unit: -asked for unit, asked in reservation.amounts.items() if asked}, now)
        if reservation.moved is not None:
            writes = _merged([*writes, *reservation.moved.writes(reservation.moved.amounts, now)])
        if late:
            writes = _merged([*writes, *_restamps(reservation, {}, now)])
        if writes:
            self.store.add(writes, now)

    # --- what the selector should know -----------------------------------------------------------------
    def cool_down(self, key: ModelKey, until: float, reason: str, now: float) -> None:
        self.store.extend(items.cooldown_pk(key), items.cooldown_item(until, reason), until,
                          int(until) + COOLDOWN_MARGIN_S, now)

    def record_headers(self, key: ModelKey, info: RateLimitInfo, now: float) -> None:
        self.store.put(items.header_pk(key), items.header_item(info, now), int(snapshot_expiry(info, now)) + 1, now)

    def remember_affinity(self, pk: str, key: ModelKey, now: float) -> None:
        """The model that answered a conversation's turn, for its next turn (`items.affinity_pk`)."""
        self.store.put(pk, items.affinity_item(key, now), int(now + items.AFFINITY_TTL_S) + 1, now)

    def mark_failure(self, mark: items.FailureMark, now: float) -> None:
        """Kept past its memory's end, so a container that fails the provider soon after continues
        the streak (`FailureMemory.record`) even if it never saw the mark while it held."""
        self.store.put(items.failure_pk(mark.provider), items.failure_item(mark),
                       int(mark.until + items.FAILURE_MEMORY_MAX_S) + 1, now)


def _merge(into: dict[str, int], more: Mapping[str, int]) -> None:
    for unit, n in more.items():
        into[unit] = into.get(unit, 0) + n


def _merged(writes: Sequence[CounterAdd]) -> list[CounterAdd]:
    """One write per item (`CounterAdd.plus`)."""
    by_pk: dict[str, CounterAdd] = {}
    for add in writes:
        known = by_pk.get(add.pk)
        by_pk[add.pk] = add if known is None else known.plus(add)
    return list(by_pk.values())


def _with_correction(add: CounterAdd, kept: Mapping[str, tuple[dict[str, int], int]] | None,
                     stale: Sequence[str]) -> CounterAdd:
    """One write for the new ask, the earlier corrections of the item's windows (the condition
    checks the sum) and the removal of its windows no load reads any more."""
    if not kept and not stale:
        return add
    amounts = dict(add.amounts)
    for correction, _ in (kept or {}).values():
        _merge(amounts, correction)
    removes = tuple(name for name in stale if name not in amounts and name not in add.stamps)
    return replace(add, amounts=amounts, removes=removes)


def _restamps(moved: Reservation, held: Mapping[str, Held], now: float) -> list[CounterAdd]:
    """Stamps for the sliding windows a restamped reservation leaves (`SharedState.restamp`), the
    ones a load still reads: `now`, or the window's end if `now` is past it (no request of it came
    later), never before any stamp it held when the late write landed."""
    by_item: dict[str, dict[str, float]] = {}
    for one in moved.windows:
        ref = one.window
        if one.slot is not None and ref.key not in held and ref.read(now):
            by_item.setdefault(ref.item, {}).update(ref.attrs({items.LAST_AT: min(now, float(one.closes))}))
    return [CounterAdd(pk, {}, items.meter_expires(now), {}, stamps) for pk, stamps in by_item.items()]


def _stale(loaded: Item | None, windows: Sequence[Held], pk: str, now: float) -> Sequence[str]:
    """What a reservation on item `pk` removes: the windows no load reads any more, as this
    container's load saw the item, when the reservation opens a window (a roll-over) or one of the
    windows before its own is no longer read; the item is scanned only then."""
    if loaded is None:
        return ()
    mine = [h.window for h in windows if h.window.item == pk]
    if any(not items.has_window(loaded, w.prefix) or items.holds_unread(loaded, w, now) for w in mine):
        return items.stale_names(loaded, now)
    return ()


def _degraded(store: StateStore, now: float) -> bool:
    probe = getattr(store, "degraded", None)
    return bool(probe(now)) if callable(probe) else False
