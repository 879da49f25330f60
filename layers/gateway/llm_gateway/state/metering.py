"""Limits in units (requests, tokens, audio seconds, …) over windows, counted on shared counters.

A *limit* says "at most N of a unit per window"; a *meter* says on whose counter it is counted:
one model (`groq/llama-3.1-8b-instant`), a whole provider organisation (Mistral's free tier
allows 1 request per second across all models), or, later, a user. Provider limits, user limits
and budgets are the same mechanism: a conditional add on the counter's item (one item holds every
window of a counter: `items.py`).

Windows are fixed and epoch-aligned (every container agrees on the bucket) for lengths in
seconds, or calendar months in UTC (Cohere's trial key: 1,000 calls a month). Providers enforce
sliding windows or token buckets, so what an earlier window counted is carried into the current
one while the provider may still count it: each sliding window also counts per tenth of
the window (`tokens@3`), and a tenth is carried until a window length and the stamp's slack after
it ends (`Earlier.carry`), an upper bound of the provider's sliding count however unevenly the
window was used. (The linear two-bucket estimate alone assumed an even spread, and let Groq's
audio-seconds-per-hour limit be passed when an hour's audio came in its last minutes.) Items
written without tenths are still carried by that linear estimate. A calendar month resets at its
boundary, as the provider's does, and carries nothing.

The stamp (`last_at`, and the tenth a reservation counts in) is the moment taken before the
reservation's write. The slack covers the time from it to the provider counting the call, the
write's own time included: a write that answered later than `WRITE_SHARE` of it
(`write_allowance_s`) is stamped again as of its answer before the call goes
(`SharedState.restamp`), else another container could be admitted a window length after the
stamp yet less than a length after the provider counted the call.

Pure: no I/O, no clock; `now` is always passed in.
"""

from __future__ import annotations

import calendar
import math
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

REQUESTS = "requests"
TOKENS = "tokens"
AUDIO_SECONDS = "audio_seconds"
USD_MICROS = "usd_micros"  # budgets: a call's cost in millionths of a dollar (0 on a free tier)
UNITS = (REQUESTS, TOKENS, AUDIO_SECONDS, USD_MICROS)
MONTH = 0  # `Period.seconds` of a calendar month
# A stamp is taken just before the reservation is written, a little before the provider counts
# the request (the write's round trip, a new TLS connection, completion tokens counted at the
# answer's end): what a window counted is taken to stay in the provider's sliding window this
# fraction of a length past stamp + length, and never less than MIN_STAMP_SLACK_S (5 % of a
# 1-second window is 50 ms, less than a cold connection takes: Mistral's 1 request/s was passed by
# that).
STAMP_SLACK = 0.05
MIN_STAMP_SLACK_S = 0.25
# The stamp is taken before the reservation's write, so the write's own time is spent from that
# slack. A write that answered later than this share of it (a queued DynamoDB write, a throttled
# retry) would send the call too long after its stamp: the reservation is stamped again at the
# moment it answered, before the call (`SharedState.restamp`, `FailoverRunner._stamped`), and the
# rest of the slack is left for the call's connection.
WRITE_SHARE = 0.5
# A sliding window's item also counts what each tenth of the window took (`tokens@3`: the tokens
# reserved in its fourth tenth), so an earlier window carries what is still inside the provider's
# sliding window to a tenth of a window, however unevenly it was used.
SLOTS = 10
Amounts = Mapping[str, int]


# FAST_VALUES: the values built many times for every request (a window's usage per meter, a
# capacity verdict, a candidate and a plan step per model), and those built once or twice a
# request on its path (the preparation, the plan, the snapshot, a reservation and its writes, the
# served result, the caller's limits), are slots dataclasses that are never changed but not
# declared frozen (hashable as before where they were: `unsafe_hash`): a frozen dataclass's __init__ sets each field through
# object.__setattr__ and cost five times as much (830 ns against 170 ns for eight fields,
# measured), about a tenth of a simulated request's CPU time.
_SLOT_KEYS: dict[str, tuple[str, ...]] = {unit: tuple(f"{unit}@{i}" for i in range(SLOTS)) for unit in UNITS}


@lru_cache(maxsize=64)
def stamp_slack_s(seconds: int) -> float:
    """How long past stamp + length a sliding window's count may still be in the provider's."""
    return max(MIN_STAMP_SLACK_S, STAMP_SLACK * seconds)


def write_allowance_s(seconds: int) -> float:
    """How long a reservation's write may take (from its stamp to its answer) before the call it
    holds for is stamped again: `WRITE_SHARE` of the window's slack (0.125 s for a second, 1.5 s
    for a minute)."""
    return WRITE_SHARE * stamp_slack_s(seconds)


def slot_of(period: Period, start: int, now: float) -> int:
    """The slot (tenth) of the window starting at `start` that `now` falls in."""
    return min(SLOTS - 1, max(0, int((now - start) * SLOTS / period.seconds)))


def with_slot(amounts: Amounts, slot: int | None, units: Collection[str]) -> dict[str, int]:
    """`amounts` plus, for each of `units` (a window item's limited ones), the same amount on
    that slot's own counter (`tokens@3`): one write keeps the totals and the slots in step."""
    out = dict(amounts)
    if slot is not None:
        for unit, n in amounts.items():
            keys = _SLOT_KEYS.get(unit)
            if n and keys is not None and unit in units:
                out[keys[slot]] = n
    return out


def usd_micros(usd: float) -> int:
    """A cost in whole micro-dollars (`USD_MICROS`), rounded up: a budget never under-counts."""
    return max(0, math.ceil(usd * 1_000_000 - 1e-6))


@dataclass(frozen=True, slots=True)
class Period:
    """A window length in seconds, or a UTC calendar month (`seconds == MONTH`).

    `fixed`: the window resets at its boundary and carries nothing into the next one (a user's
    per-day limits and budgets reset at UTC midnight, as a calendar month resets at its end);
    otherwise the previous window is carried over by its overlap (providers' sliding windows)."""

    seconds: int
    fixed: bool = False

    @property
    def name(self) -> str:
        if self.seconds == MONTH:
            return "month"
        return ("day" if self.seconds == 86_400 else f"{self.seconds}f") if self.fixed else str(self.seconds)

    @property
    def label(self) -> str:
        """The window as messages name it: `60s`, `day`, `month` (`3600s fixed` for another fixed one)."""
        if self.seconds == MONTH:
            return "month"
        if self.fixed:
            return "day" if self.seconds == 86_400 else f"{self.seconds}s fixed"
        return f"{self.seconds}s"

    @property
    def sliding(self) -> bool:
        return self.seconds != MONTH and not self.fixed

    def start(self, now: float) -> int:
        if self.seconds == MONTH:
            return _month_start(int(now) // 86_400)
        return int(now) - int(now) % self.seconds

    def end(self, start: int) -> int:
        if self.seconds == MONTH:
            return _month_end(start)
        return start + self.seconds

    def previous_start(self, now: float) -> int:
        start = self.start(now)
        return self.start(start - 1) if self.seconds == MONTH else start - self.seconds

    def expires_at(self, start: int) -> int:
        """A window's count is kept one whole window past its end (plus a minute for late
        reconciles): the next window's sliding estimate reads it."""
        end = self.end(start)
        return end + (end - start) + 60


@lru_cache(maxsize=64)
def _month_start(day: int) -> int:
    """Start of the UTC calendar month holding epoch day `day` (a month starts at a midnight,
    so every instant of a day has the same month). Cached: it runs per metered model and request."""
    moment = time.gmtime(day * 86_400)
    return calendar.timegm((moment.tm_year, moment.tm_mon, 1, 0, 0, 0))


@lru_cache(maxsize=64)
def _month_end(start: int) -> int:
    moment = time.gmtime(start)
    return start + calendar.monthrange(moment.tm_year, moment.tm_mon)[1] * 86_400


SECOND, MINUTE, HOUR, DAY = Period(1), Period(60), Period(3600), Period(86_400)
CALENDAR_MONTH = Period(MONTH)
CALENDAR_DAY = Period(86_400, fixed=True)  # a UTC day: resets at midnight, carries nothing


@dataclass(frozen=True, slots=True)
class WindowLimit:
    """At most `maxima[unit]` of each unit per `period`. One item holds all units of a window,
    so one condition guards them together."""

    period: Period
    maxima: Mapping[str, int]
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Meters are hashed on every request (de-duplicated per state read): sort once, not per hash.
        object.__setattr__(self, "_hash", hash((self.period, tuple(sorted(self.maxima.items())))))

    def max_of(self, unit: str) -> int | None:
        return self.maxima.get(unit)

    def __hash__(self) -> int:
        return self._hash

    @classmethod
    def of(cls, seconds: int, **maxima: int | None) -> WindowLimit:
        """`WindowLimit.of(60, requests=30, tokens=6000)`; None values are dropped."""
        return cls(Period(seconds), {unit: n for unit, n in maxima.items() if n is not None})


PROVIDER_SCOPE = "provider"  # a provider's limit: when it binds, the request waits or fails over
CALLER_SCOPE = "caller"  # the caller's own limit or budget: when it binds, the caller is told so


@dataclass(frozen=True, slots=True)
class Meter:
    """A limit counted on `counter` (the item key's owner part: `provider#model`, `provider#*`,
    `user#{id}`). `scope` says whose limit it is (`PROVIDER_SCOPE` or `CALLER_SCOPE`): the same
    conditional write enforces both, but a refusal is answered differently."""

    counter: str
    limit: WindowLimit
    scope: str = PROVIDER_SCOPE
    _prefix: str = field(init=False, repr=False, compare=False)  # "rl#{counter}#{period}#", built once
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_prefix", f"rl#{self.counter}#{self.limit.period.name}#")
        object.__setattr__(self, "_hash", hash((self.counter, self.limit, self.scope)))

    def __hash__(self) -> int:  # meters are de-duplicated per request: hash once, not per lookup
        return self._hash

    def pk(self, start: int) -> str:
        """The key of the window starting at `start` in a snapshot (`rl#{counter}#{period}#{start}`);
        its counts are stored in the counter's item, `items.meter_pk`."""
        return f"{self._prefix}{start}"


def model_counter(provider: str, model: str) -> str:
    return f"{provider}#{model}"


def provider_counter(provider: str) -> str:
    return f"{provider}#*"


@dataclass(slots=True)  # a value, never changed; not frozen: see FAST_VALUES in metering.py
class Earlier:
    """A window before the current one, read because part of what it counted may still be inside
    the provider's sliding window: its totals, its item (for the per-slot counts; None when not
    read) and its latest reservation (`last_at`)."""

    start: int
    used: Amounts
    item: Mapping[str, Any] | None = None
    last_at: float | None = None

    def sliced(self, unit: str) -> bool:
        """Whether the item counts `unit` per slot (written by a gateway that writes slots)."""
        keys = _SLOT_KEYS.get(unit)
        item = self.item
        return bool(item and keys and any(key in item for key in keys))

    def carry(self, unit: str, seconds: int, slack: float, t: float) -> int:
        """What of `unit` may still be inside the provider's window at `t`: every slot that ended
        less than a length and the stamp's slack before `t` (an upper bound, to a slot's width);
        what the item counts without slots (written before slots were) by the linear overlap
        estimate; nothing once `t` is a length and the slack past the window's last reservation."""
        return self.carry_of(unit, self.slot_counts(unit), seconds, slack, t)

    def slot_counts(self, unit: str) -> list[int] | None:
        """What each slot (tenth) of the window counted of `unit` (None: the item has no slots
        for it, or was not read): read once where `carry` is asked at many moments."""
        keys = _SLOT_KEYS.get(unit)
        item = self.item
        if not item or keys is None:
            return None
        get = item.get
        return [get(key) or 0 for key in keys]

    def carry_of(self, unit: str, counts: list[int] | None, seconds: int, slack: float, t: float) -> int:
        """`carry` with the window's `slot_counts(unit)` already read."""
        total = self.used.get(unit, 0)
        if total <= 0 or (self.last_at is not None and t >= self.last_at + seconds + slack):
            return 0
        overlap = 2.0 - (t - self.start) / seconds  # of the window right before `t`'s
        if counts is None:
            return math.ceil(total * overlap) if overlap > 0 else 0
        gone = (t - self.start - seconds - slack) * SLOTS / seconds  # slots that ended before this are out
        first = int(gone) if gone > 0 else 0
        live = sum(counts[first:])
        unknown = total - sum(counts)
        if unknown > 0 and overlap > 0:
            live += math.ceil(unknown * overlap)
        return max(0, min(total, live))

    def expiries(self, seconds: int, slack: float) -> list[float]:
        """The moments its slots leave the provider's window (with the slack), in order."""
        width = seconds / SLOTS
        return [self.start + (index + 1) * width + seconds + slack for index in range(SLOTS)]


@dataclass(slots=True)  # a value, never changed; not frozen: see FAST_VALUES in metering.py
class WindowUsage:
    """What a meter's current window has counted, plus what earlier windows carry over."""

    meter: Meter
    start: int
    used: Amounts = field(default_factory=dict)
    carried: Amounts = field(default_factory=dict)
    last_at: float | None = None  # this window's latest reservation, when the store stamped it
    earlier: tuple[Earlier, ...] = ()  # the windows the carry comes from (the previous, and the one
    # before it in the first moments of a window)
    item: Mapping[str, Any] | None = None  # this window's item (its per-slot counts)

    def remaining(self, unit: str) -> int | None:
        """What the window can still take now (its own room less the carry-over)."""
        ceiling = self.meter.limit.maxima.get(unit)
        if ceiling is None:
            return None
        left = ceiling - self.used.get(unit, 0) - self.carried.get(unit, 0)
        return left if left > 0 else 0

    def ceilings(self) -> dict[str, int]:
        """The conditional write's ceilings: each maximum less the carry-over (the sliding
        estimate is enforced by the write itself, with no extra read)."""
        return {unit: max(0, n - self.carried.get(unit, 0)) for unit, n in self.meter.limit.maxima.items()}

    def fits(self, amounts: Amounts) -> str | None:
        """Why `amounts` does not fit now (None = it fits). Runs for every window of every
        candidate of every plan: `remaining` is inlined."""
        limit = self.meter.limit
        maxima, used, carried = limit.maxima, self.used, self.carried
        for unit, ask in amounts.items():
            if ask <= 0:
                continue
            ceiling = maxima.get(unit)
            if ceiling is None:
                continue
            if ask > ceiling:
                return f"needs {ask} {unit} > {ceiling} per {limit.period.label} window"
            left = ceiling - used.get(unit, 0) - carried.get(unit, 0)
            if left < ask:
                return (f"{max(0, left)} of {ceiling} {unit} per {limit.period.label} left on {self.meter.counter}, "
                        f"needs {ask}")
        return None

    def takes(self, amounts: Amounts) -> bool:
        """Whether `amounts` fits now: `fits(amounts) is None`, without composing the reason."""
        return self.short_of(amounts) is None

    def short_of(self, amounts: Amounts) -> str | None:
        """The first unit `amounts` does not fit in now (None = it fits); `remaining`, inlined: the
        planner asks it of every full model on every plan."""
        maxima, used, carried = self.meter.limit.maxima, self.used, self.carried
        for unit, ask in amounts.items():
            if ask <= 0:
                continue
            ceiling = maxima.get(unit)
            if ceiling is not None and ceiling - used.get(unit, 0) - carried.get(unit, 0) < ask:
                return unit
        return None

    def without(self, start: int, slot: int | None, amounts: Amounts, sliced: Collection[str],
                now: float) -> WindowUsage:
        """This window at `now` as if `amounts`, counted in the earlier window starting at `start`
        (in its tenth `slot` for the units in `sliced`), had never been counted: what the carry
        would be once they are given back (a reservation restamped into a later window gives them
        back in the same write that takes them there, so its own count must not hold it back).
        The window itself, when `start` is its own, is left as it is."""
        if not any(e.start == start for e in self.earlier):
            return self
        earlier: list[Earlier] = []
        for e in self.earlier:
            if e.start == start:
                used = {unit: max(0, n - amounts.get(unit, 0)) for unit, n in e.used.items()}
                item = None
                if e.item is not None:
                    item = dict(e.item)
                    for unit, n in amounts.items():
                        keys = _SLOT_KEYS.get(unit)
                        if slot is not None and keys is not None and unit in sliced and keys[slot] in item:
                            item[keys[slot]] = max(0, int(item[keys[slot]]) - n)
                e = Earlier(e.start, used, item, e.last_at)
            earlier.append(e)
        carried = _carried(earlier, self.meter.limit.period.seconds, now)
        return WindowUsage(self.meter, self.start, self.used, carried, self.last_at, tuple(earlier), self.item)

    def free_again_at(self, amounts: Amounts, now: float) -> float | None:
        """When this window takes `amounts` (None: never, the ask is above the limit itself).

        A window whose own count is full frees after it closes, when its own carry into the next
        window has decayed enough (a calendar month carries nothing: at its close); one held back
        only by earlier windows' carry frees as that carry decays: slot by slot where the items
        count slots, linearly where they do not.
        """
        period = self.meter.limit.period
        closes = float(period.end(self.start))
        at = now
        for unit, ask in amounts.items():
            ceiling = self.meter.limit.max_of(unit)
            if ceiling is None or ask <= 0:
                continue
            if ask > ceiling:
                return None
            room = ceiling - self.used.get(unit, 0) - ask
            carried = self.carried.get(unit, 0)
            if room < 0:  # full on its own count: it frees after it closes, once its carry into
                # the next window has decayed to what that window can take
                at = max(at, self._reopens(unit, ceiling - ask, closes) if period.sliding else closes)
            elif room < carried:
                at = max(at, min(closes, self._decays(unit, room, now)))
        return at

    def _reopens(self, unit: str, room: int, closes: float) -> float:
        """When, after this window closes, its carry (and what is left of the one before) has
        decayed to `room`. It depends on the windows' counts and stamps alone, not on the moment
        asked: a window a load decoded from an unchanged item (the same `used` and `item` objects,
        `items._view`) is worked out once, not on every plan that finds it full."""
        earlier = tuple((e.start, id(e.used), id(e.item), e.last_at) for e in self.earlier)
        key = (self.meter, self.start, unit, room, id(self.used), id(self.item), self.last_at, earlier)
        found = _REOPENS.get(key)
        if found is not None:
            return found[0]
        at = self._reopens_at(unit, room, closes)
        if len(_REOPENS) >= _REOPENS_MAX:
            _REOPENS.clear()
        # the objects named by id are kept with the answer, so no other object can take their ids
        _REOPENS[key] = (at, (self.used, self.item, *((e.used, e.item) for e in self.earlier)))
        return at

    def _reopens_at(self, unit: str, room: int, closes: float) -> float:
        seconds = self.meter.limit.period.seconds
        slack = stamp_slack_s(seconds)
        own = Earlier(self.start, self.used, self.item, self.last_at)
        if own.sliced(unit):
            sources = [(e, e.slot_counts(unit)) for e in (own, *self.earlier)]
            moments = [closes, *own.expiries(seconds, slack)]
            if self.last_at is not None:
                moments.append(self.last_at + seconds + slack)  # all gone by then
            for t in sorted(moments):
                if t >= closes and sum(e.carry_of(unit, counts, seconds, slack, t) for e, counts in sources) <= room:
                    return t
            return closes + seconds + slack
        if self.last_at is not None:
            return max(closes, self.last_at + seconds + slack)  # all gone by then
        used = self.used.get(unit, 0)
        return closes + (seconds * max(0.0, 1 - room / used) if used else 0.0)

    def _decays(self, unit: str, room: int, now: float) -> float:
        """When the earlier windows' carry has decayed to `room` (before this window closes)."""
        seconds = self.meter.limit.period.seconds
        slack = stamp_slack_s(seconds)
        if any(e.sliced(unit) for e in self.earlier):
            moments = sorted({t for e in self.earlier for t in e.expiries(seconds, slack) if t > now}
                             | {e.last_at + seconds + slack for e in self.earlier if e.last_at is not None})
            carries = [_carry(e, unit, seconds, slack) for e in self.earlier]
            for t in moments:
                if t > now and sum(c.at(t) for c in carries) <= room:
                    return t
            return float(self.meter.limit.period.end(self.start))
        carried = self.carried.get(unit, 0)
        previous_at = next((e.last_at for e in self.earlier if e.start == self.start - seconds), None)
        elapsed = (now - self.start) / seconds
        previous = carried / max(1e-9, 1.0 - elapsed)  # the previous window's count
        decayed = self.start + seconds * (1 - room / previous)
        if previous_at is not None:  # every request of it was at or before its stamp: none left after
            decayed = min(decayed, previous_at + seconds + slack)
        return decayed


class _Carry:
    """`Earlier.carry_of` of one unit at many moments (`WindowUsage._decays` asks up to twenty):
    what does not depend on the moment (the total, the cut-off, what the item counts without
    slots, what each slot onwards counts) is worked out once; the same arithmetic, in the same
    order, gives the same result."""

    __slots__ = ("counts", "cutoff", "seconds", "slack", "start", "suffix", "total", "unknown")

    def __init__(self, earlier: Earlier, unit: str, seconds: int, slack: float) -> None:
        counts = earlier.slot_counts(unit)
        self.counts = counts
        self.total = earlier.used.get(unit, 0)
        self.cutoff = None if earlier.last_at is None else earlier.last_at + seconds + slack
        self.seconds = seconds
        self.slack = slack
        self.start = earlier.start
        if counts is not None:
            suffix = [0] * (len(counts) + 1)  # suffix[i] = sum(counts[i:])
            for index in range(len(counts) - 1, -1, -1):
                suffix[index] = suffix[index + 1] + counts[index]
            self.suffix = suffix
            self.unknown = self.total - suffix[0]

    def at(self, t: float) -> int:
        """`Earlier.carry_of(unit, counts, seconds, slack, t)`."""
        total = self.total
        if total <= 0 or (self.cutoff is not None and t >= self.cutoff):
            return 0
        seconds = self.seconds
        overlap = 2.0 - (t - self.start) / seconds
        if self.counts is None:
            return math.ceil(total * overlap) if overlap > 0 else 0
        gone = (t - self.start - seconds - self.slack) * SLOTS / seconds
        first = int(gone) if gone > 0 else 0
        suffix = self.suffix
        live = suffix[first] if first < len(suffix) else 0
        if self.unknown > 0 and overlap > 0:
            live += math.ceil(self.unknown * overlap)
        return max(0, min(total, live))


_REOPENS: dict[tuple[Any, ...], tuple[float, tuple[Any, ...]]] = {}  # `WindowUsage._reopens`, by its inputs
_REOPENS_MAX = 4096


# Per meter object (by id: each entry holds its meter, so no other object can take that id): its
# current window's keys in a snapshot, and its last usage that carried nothing over. A window
# without carry-over does not depend on the moment within it, and its counts, decoded from an
# unchanged item, are the very same objects (`items._view`): such a usage is handed out again.
_KEYS: dict[int, tuple[Meter, int, str, str, str]] = {}
_PLAIN: dict[int, WindowUsage] = {}
_MEMO_MAX = 4096


def usage_of(meter: Meter, counters: Mapping[str, Amounts], now: float,
             stamps: Mapping[str, float] | None = None,
             items: Mapping[str, Mapping[str, Any]] | None = None) -> WindowUsage:
    """The meter's window at `now` from the loaded counters (current and earlier items).

    `stamps` holds each window item's latest reservation time: every request of an earlier
    window happened at or before its stamp, so once `now` is a length (and the stamp's slack)
    past it nothing of that window is left in the provider's sliding window. `items` are the raw
    window items: where they count per slot, the carry is what each slot still has inside the
    provider's window, whenever in the window it was used (the linear estimate alone assumed
    an even spread: an hour whose audio came in its last ten minutes carried 5/6 of it ten
    minutes later, when the provider still counted all of it).
    """
    period = meter.limit.period
    seconds = period.seconds
    if seconds == MONTH:
        start = period.start(now)
    else:  # `period.start(now)`, inlined: this runs for every meter of every candidate of every plan
        whole = int(now)
        start = whole - whole % seconds
    keys = _KEYS.get(id(meter))
    if keys is None or keys[0] is not meter or keys[1] != start:
        prefix = meter._prefix
        if len(_KEYS) >= _MEMO_MAX:
            _KEYS.clear()
        keys = _KEYS[id(meter)] = (meter, start, f"{prefix}{start}", f"{prefix}{start - seconds}",
                                   f"{prefix}{start - 2 * seconds}")
    current = keys[2]
    used = counters.get(current)
    last_at = stamps.get(current) if stamps else None
    item = items.get(current) if items else None
    earlier: list[Earlier] = []
    if seconds != MONTH and not period.fixed:  # `period.sliding`
        for back, pk in ((1, keys[3]), (2, keys[4])):  # the one before the previous: only in a window's first moments
            stamp = stamps.get(pk) if stamps else None
            before = counters.get(pk)
            if before:
                earlier.append(Earlier(start - back * seconds, before, items.get(pk) if items else None, stamp))
    if not earlier:
        if used is None:
            return WindowUsage(meter, start, {}, {}, last_at, (), item)
        known = _PLAIN.get(id(meter))
        if known is not None and known.start == start and known.used is used and known.item is item \
                and known.last_at == last_at:
            return known  # nothing carried: the same counts make the same (never changed) usage
        if len(_PLAIN) >= _MEMO_MAX:
            _PLAIN.clear()
        known = _PLAIN[id(meter)] = WindowUsage(meter, start, used, {}, last_at, (), item)
        return known
    return WindowUsage(meter, start, {} if used is None else used, _carried(earlier, seconds, now), last_at,
                       tuple(earlier), item)


def _carried(earlier: list[Earlier], seconds: int, now: float) -> dict[str, int]:
    """What the earlier windows still carry into the current one at `now`, per unit (none: left out)."""
    slack = stamp_slack_s(seconds)
    carried: dict[str, int] = {}
    for unit in {unit for e in earlier for unit in e.used}:
        n = sum([_carry(e, unit, seconds, slack).at(now) for e in earlier])
        if n > 0:
            carried[unit] = n
    return carried


def _carry(earlier: Earlier, unit: str, seconds: int, slack: float) -> _Carry:
    """`earlier.carry(unit, seconds, slack, t)` at any `t`, as a `_Carry` (the same arithmetic).
    An earlier window decoded from an unchanged item has the very same `used` and `item` objects
    on every load (`items._view`), and every plan of every request asks its carry at a new moment:
    what does not depend on the moment (its slots read from the item, their sums) is worked out
    once per window, not per usage. Keyed like `_reopens`: by those objects' ids, kept with the
    answer so no other object can take their ids, and by the rest of what the carry reads."""
    key = (id(earlier.used), id(earlier.item), earlier.last_at, earlier.start, unit, seconds, slack)
    found = _CARRIES.get(key)
    if found is None:
        if len(_CARRIES) >= _CARRIES_MAX:
            _CARRIES.clear()
        found = _CARRIES[key] = (_Carry(earlier, unit, seconds, slack), earlier.used, earlier.item)
    return found[0]


_CARRIES: dict[tuple[Any, ...], tuple[_Carry, Amounts, Mapping[str, Any] | None]] = {}
_CARRIES_MAX = 4096


def window_starts(period: Period, now: float) -> tuple[int, ...]:
    """The windows a load consults at `now`, newest first: the current one, and the previous one
    when it carries over; in a sliding window's first moments (within the stamp's slack of its
    start) also the one before, whose last requests the provider may still count."""
    start = period.start(now)
    if period.fixed:  # nothing carries over: the previous window is never read
        return (start,)
    if period.seconds == MONTH:
        return start, period.start(start - 1)
    previous = start - period.seconds
    if now - start < stamp_slack_s(period.seconds):
        return start, previous, previous - period.seconds
    return start, previous


def counter_pks(meter: Meter, now: float) -> tuple[str, ...]:
    """The keys of the windows a load consults for a meter (`window_starts`): what a snapshot's
    counters are keyed by (`Meter.pk`; the item that holds them is `items.meter_pk`)."""
    return tuple(f"{meter._prefix}{start}" for start in window_starts(meter.limit.period, now))


def share_of(amount: int, fraction: float) -> int:
    """One container's share of a limit while it cannot see the others (degraded mode), rounded
    down: N containers with a share of 1/N each never admit more than the limit together, and a
    limit too small to share (1 request/s across 20 containers) is not used at all until the
    shared table answers again."""
    return max(0, int(amount * fraction))


def scale_limit(limit: WindowLimit, fraction: float) -> WindowLimit:
    """A container's share of every maximum of a limit (see `share_of`)."""
    return WindowLimit(limit.period, {u: share_of(n, fraction) for u, n in limit.maxima.items()})


_SCALED: dict[tuple[Meter, float], Meter] = {}
_SCALED_MAX = 4096


def scaled_meter(meter: Meter, fraction: float) -> Meter:
    """The meter with a container's share of its limit (while degraded), with its scope: the same
    object for the same meter and share, so the per-meter caches below keep hitting while the
    store is down (a new Meter per check filled and cleared them on every request)."""
    key = (meter, fraction)
    found = _SCALED.get(key)
    if found is None:
        if len(_SCALED) >= _SCALED_MAX:
            _SCALED.clear()
        found = _SCALED[key] = Meter(meter.counter, scale_limit(meter.limit, fraction), meter.scope)
    return found
