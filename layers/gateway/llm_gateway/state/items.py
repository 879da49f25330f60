"""Every item kind of the state table: its key, what it holds, how it is encoded and decoded.

One owner, so a new kind (user windows, usage, jobs) is added here and nowhere else knows a
key format. Items travel as plain Python values (`store.Item`); the DynamoDB store converts at
its edge. A request's items are decoded once, into a `StateSnapshot`, by `decode_snapshot`.

| pk | holds | expires |
|---|---|---|
| `rl#{counter}` | every window of a counter (a model, a provider organisation, a user): per window `{period}:{index}:` a number per unit, per unit and tenth of a sliding window (`t3`), its latest reservation (`l`); see "meter items" | `METER_KEEP_S` past its last write |
| `hdr#{provider}#{model}` | the provider's last rate-limit headers | their reset |
| `cd#{provider}#{model}` | a cooldown: `until`, `reason` | `until` |
| `fail#{provider}` | the provider's latest failure: `at`, `kind`, `streak` | `FAILURE_MEMORY_MAX_S` past its memory's end (`FailureMark.until`) |
| `cb#{provider}` / `cb#{provider}#{model}` | a Powertools circuit-breaker record: `state`, `failure_count`, `opened_at`, `half_open_owner`, `probe_lease_expiry` | Powertools' |
| `health#{provider}` | the scheduled check's verdict (`routing/health.py`): `available`, `reason`, `fingerprint`, `checked_at`, `error_class` | `HEALTH_TTL_S` |
| `aff#{sha256}` | the model that answered a conversation's last turn: `provider`, `model`, `at` | `at` + `AFFINITY_TTL_S` |
| `rl#user#{user}[#eu#{hash}]` | a user's (or end user's) windows: requests, tokens, audio seconds, `usd_micros` | as `rl#` |
| `rl#gateway#spend` | the gateway-wide daily spend (`usd_micros`), when a cap is set | as `rl#` |
| `key#{sha256}` | a gateway key: `id`, `user`, `name`, `policy` (JSON), `created_at`, `revoked_at` (never the key) | never |
| `keys#index` | one attribute per key: its id → its sha256 (the admin list; no Scan) | never |
| `keys#index#{0-f}` | the same, for keys made once `keys#index` was full (DynamoDB's 400 KB: about 4,800 keys), by the id's first hex digit | never |
| `usage#{user}#{YYYY-MM-DD}` | a user's day: totals and `{field}@{provider}/{model}` counters (`tenancy/usage.py`) | `USAGE_KEEP_S` |
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from llm_gateway.lazy_packages import defer_package_init
from llm_gateway.providers.base import RateLimitInfo
from llm_gateway.state.metering import (
    AUDIO_SECONDS,
    CALENDAR_DAY,
    CALENDAR_MONTH,
    MONTH,
    REQUESTS,
    SLOTS,
    TOKENS,
    USD_MICROS,
    Amounts,
    Meter,
    Period,
    WindowUsage,
    usage_of,
    window_starts,
)
from llm_gateway.state.store import FrozenItem, Item, ModelKey

# Powertools' breaker `persistence/__init__.py` imports its DynamoDB layer (boto3); the record
# and its states are all the codec needs (see `lazy_packages.py`).
defer_package_init("aws_lambda_powertools.utilities.circuit_breaker.persistence")

from aws_lambda_powertools.utilities.circuit_breaker.persistence.record import CircuitStateRecord  # noqa: E402
from aws_lambda_powertools.utilities.circuit_breaker.states import CircuitState  # noqa: E402

PK = "pk"  # the table's partition key
EXPIRES = "expires_at"
FAILURE_MEMORY_S = 30.0  # how long a provider that just failed ranks behind the others
# A provider that fails again once its memory ends (a probe into an outage or a 429 storm) is
# remembered twice as long each time, up to this (Envoy's outlier detection lengthens an ejection
# with each one too, linearly, to the same 300 s default cap).
FAILURE_MEMORY_MAX_S = 300.0
# A failure of a call begun this long after the last mark ran out still continues its streak: a
# quiet provider is not probed at once, and sparse traffic must not start an outage over at 30 s.
STREAK_GRACE_S = 300.0
ANSWERED = "answered"  # the kind of a mark that ends a streak: the provider answered again
# How long a conversation's next turn prefers the model that answered it: long enough for a tool
# to run or a user to type, short enough that the table holds only conversations in progress.
AFFINITY_TTL_S = 900.0
_HDR_FIELDS = ("limit_requests", "remaining_requests", "reset_requests_s", "limit_tokens",
               "remaining_tokens", "reset_tokens_s", "retry_after_s", "requests_window_s", "tokens_window_s")
_HDR_INTS = frozenset({"limit_requests", "remaining_requests", "limit_tokens", "remaining_tokens",
                       "requests_window_s", "tokens_window_s"})


# --- keys ----------------------------------------------------------------------------------------
def header_pk(key: ModelKey) -> str:
    return f"hdr#{key.provider}#{key.model}"


def cooldown_pk(key: ModelKey) -> str:
    return f"cd#{key.provider}#{key.model}"


def failure_pk(provider: str) -> str:
    return f"fail#{provider}"


def provider_circuit(provider: str) -> str:
    return f"cb#{provider}"


def model_circuit(key: ModelKey) -> str:
    return f"cb#{key.provider}#{key.model}"


def circuit_ids(keys: Iterable[ModelKey]) -> list[str]:
    """Each model's provider and model circuits, in order (worked out once per set of models:
    this runs on every request, `_candidate_items`)."""
    return list(_candidate_items(tuple(keys)).circuits)


def health_pk(provider: str) -> str:
    return f"health#{provider}"


HEALTH_TTL_S = 7 * 86_400  # a verdict is kept a week (the check runs every five minutes)


KEY_INDEX_PK = "keys#index"
KEY_INDEX_SHARD_PKS = tuple(f"{KEY_INDEX_PK}#{digit}" for digit in "0123456789abcdef")
USAGE_KEEP_S = 400 * 86_400  # a user's daily usage is kept 400 days (this month against last year's)


def key_index_shard_pk(key_id: str) -> str:
    """The index item a key goes to once `keys#index` is full: by its id's first hex digit
    (`key_` and 16 random ones), so each of the 16 holds about as many as `keys#index` did."""
    return f"{KEY_INDEX_PK}#{key_id[4]}"


def key_pk(digest: str) -> str:
    """The item of a gateway key, by the SHA-256 (hex) of the key: the key itself is never stored."""
    return f"key#{digest}"


def usage_pk(user: str, day: str) -> str:
    """A user's usage on one UTC day (`YYYY-MM-DD`)."""
    return f"usage#{user}#{day}"


def is_usage_pk(pk: str) -> bool:
    """The usage ledger's items: records that must never be lost (`resilient.py` defers their
    writes through an outage)."""
    return pk.startswith("usage#")


def affinity_pk(digest: str) -> str:
    """The item of one conversation turn, keyed by its hash (`selection/conversation.py`)."""
    return f"aff#{digest}"


# --- meter items -------------------------------------------------------------------------------------
# One item per counter, `rl#{counter}`, holds every window of it: a reservation on a counter is one
# conditional UpdateItem, however many windows (second … calendar month) its limits have. A
# window's attributes are named `{period}:{index}:{code}`: the period (`Period.name`), the
# window's index (its start over its length; a calendar month's, over a day) and a short code
# (`r` requests, `t` tokens, `a` audio seconds, `u` usd_micros, `t3` the tokens of the fourth
# tenth, `l` the latest reservation's time). Short, because an UpdateItem costs a write unit per
# KB of the item. A snapshot sees each window as before, keyed by `Meter.pk(start)`
# (`rl#{counter}#{period}#{start}`, the item's pk plus `#{period}#{start}`) with the long names
# (`tokens@3`, `last_at`) that `metering.py` reads. Windows no load reads any more
# (`stale_names`) are removed by the reservation that opens a window in the item (at a roll-over)
# or finds one of them, so an item holds the windows a load reads: two per period, three in a
# sliding window's first moments (and `CLOCK_SKEW_S` more for clock skew).
LAST_AT = "last_at"
_CODES = {REQUESTS: "r", TOKENS: "t", AUDIO_SECONDS: "a", USD_MICROS: "u"}
_SHORT: dict[str, str] = {LAST_AT: "l"}
for _unit, _code in _CODES.items():
    _SHORT[_unit] = _code
    _SHORT.update({f"{_unit}@{_i}": f"{_code}{_i}" for _i in range(SLOTS)})
_LONG = {short: name for name, short in _SHORT.items()}
# A window is removed only once a container whose clock is this far behind would not read it either
# (Lambda's clocks are NTP-synced to well under this; a few seconds cost only a larger item briefly).
CLOCK_SKEW_S = 5.0
# Every write sets a meter item's TTL this far ahead: past any window's own need (a calendar
# month is read until its end and kept a month after it), so a write that touches only some of
# an item's windows never shortens the others'.
METER_KEEP_S = 63 * 86_400


def meter_pk(counter: str) -> str:
    """The item of a counter (every window of it)."""
    return f"rl#{counter}"


def meter_expires(now: float) -> int:
    return int(now) + METER_KEEP_S


def _index_width(period: Period) -> int:
    return period.seconds if period.seconds != MONTH else 86_400


@dataclass(frozen=True, slots=True)
class WindowRef:
    """Where one window of a meter is counted: `key` names it in a snapshot (`Meter.pk`), `item`
    is its counter's item and `prefix` starts its attributes' names there."""

    key: str
    item: str
    prefix: str
    period: Period
    start: int

    def attrs(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """`values` (unit / `tokens@3` / `last_at` → value) under this window's attribute names."""
        prefix = self.prefix
        return {prefix + _SHORT.get(name, name): value for name, value in values.items()}

    def read(self, now: float) -> bool:
        """Whether a load at `now` (or `CLOCK_SKEW_S` earlier) still reads this window."""
        return _read(self.period, self.start, now)


def window_ref(meter: Meter, start: int) -> WindowRef:
    period = meter.limit.period
    return WindowRef(meter.pk(start), meter_pk(meter.counter), f"{period.name}:{start // _index_width(period)}:",
                     period, start)


def _read(period: Period, start: int, now: float) -> bool:
    return start in window_starts(period, now) or start in window_starts(period, now - CLOCK_SKEW_S)


def _period_named(name: str) -> Period | None:
    if name == "month":
        return CALENDAR_MONTH
    if name == "day":
        return CALENDAR_DAY
    fixed = name.endswith("f")
    digits = name[:-1] if fixed else name
    return Period(int(digits), fixed) if digits.isdigit() and int(digits) > 0 else None


@lru_cache(maxsize=4096)
def _window_of(prefix: str) -> tuple[Period, int, str] | None:
    """A window's period, start and `#{period}#{start}` key tail, from its attributes' prefix."""
    name, _, index = prefix[:-1].partition(":")
    period = _period_named(name)
    if period is None or not index.lstrip("-").isdigit():
        return None
    start = int(index) * _index_width(period)
    return period, start, f"#{period.name}#{start}"


def split_meter_item(pk: str, item: Item) -> dict[str, dict[str, Any]]:
    """Every window of a meter item by window key (`Meter.pk(start)`), each with its long names
    (reports and tests; a request looks its windows up by name instead)."""
    groups: dict[str, dict[str, Any]] = {}
    for name, prefix, code in _window_names(item):
        group = groups.get(prefix)
        if group is None:
            group = groups[prefix] = {}
        group[_LONG.get(code, code)] = item[name]
    return {pk + window[2]: group for prefix, group in groups.items() if (window := _window_of(prefix)) is not None}


def stale_names(item: Item, now: float) -> list[str]:
    """The attributes of a meter item's windows that no load reads any more at `now`: what a
    reservation removes. Scans the item: run when a reservation opens a window in it or finds one
    of the windows before its own unread (`holds_unread`), not on every write."""
    verdicts: dict[str, bool] = {}
    out = []
    for name, prefix, _code in _window_names(item):
        stale = verdicts.get(prefix)
        if stale is None:
            window = _window_of(prefix)
            stale = verdicts[prefix] = window is not None and not _read(window[0], window[1], now)
        if stale:
            out.append(name)
    return out


def _window_names(item: Item) -> Iterator[tuple[str, str, str]]:
    """(name, window prefix, code) of each window attribute of a meter item (`m:29616:t3`)."""
    for name in item:
        cut = name.rfind(":")
        if cut >= 0:
            yield name, name[: cut + 1], name[cut + 1 :]


def has_window(item: Item, prefix: str) -> bool:
    """Whether the item holds anything of the window whose attributes start with `prefix`."""
    return any(prefix + code in item for code in _PRESENCE)


_PRESENCE = ("l", *_CODES.values())  # a window's stamp, or one of its totals


def holds_unread(item: Item, window: WindowRef, now: float) -> bool:
    """Whether the item holds one of the three windows before `window` (same period) that no
    load reads any more at `now`: a cheap look, by name, for when to scan (`stale_names`)."""
    period, start = window.period, window.start
    width = _index_width(period)
    for _ in range(3):
        start = period.start(start - 1)
        if not _read(period, start, now) and has_window(item, f"{period.name}:{start // width}:"):
            return True
    return False


# per unit: (unit, its code, its tenths' (long name, short name)): what `_full_names` puts a prefix before
_UNIT_NAMES = tuple((unit, code, tuple((f"{unit}@{i}", f"{code}{i}") for i in range(SLOTS))) for unit, code in _CODES.items())


Names = tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...]
_NAMES: dict[str, Names] = {}  # `_full_names`, by prefix
_NAMES_MAX = 4096


def _full_names(prefix: str) -> Names:
    """A window's attributes per unit: (unit, its total's name in the item, its tenths' (long
    name, name in the item)); the stamp's is `prefix + "l"`. A 1-second window has a new prefix
    every second (most requests ask for one), so the names are joined, not formatted anew."""
    if len(_NAMES) >= _NAMES_MAX:
        _NAMES.clear()
    names = _NAMES[prefix] = tuple([(unit, prefix + code, tuple([(name, prefix + short) for name, short in slots]))
                                    for unit, code, slots in _UNIT_NAMES])
    return names


def _window_in(item: Item, prefix: str) -> dict[str, Any]:
    """One window of an item under its long names (`tokens`, `tokens@3`, `last_at`): what
    `metering.py` reads; looked up by name (a unit's tenths only where it has a total), never by
    scanning the item. A window the item holds nothing of (a total or a stamp: `has_window`) is
    empty: a load reads the current second, and often the one before, before anyone reserved
    in them, and their names are not built for that."""
    names = _NAMES.get(prefix)
    if names is None:
        if not has_window(item, prefix):
            return {}
        names = _full_names(prefix)
    get = item.get
    window: dict[str, Any] = {}
    for unit, total, slots in names:
        value = get(total)
        if value is not None:
            window[unit] = value
            if value <= 0:  # nothing of it to carry: its tenths are never read (`Earlier.carry`)
                continue
            for name, full in slots:
                if (value := get(full)) is not None:
                    window[name] = value
    stamp = get(prefix + "l")
    if stamp is not None:
        window[LAST_AT] = stamp
    return window


Decoded = tuple[dict[str, Any], dict[str, int], float | None]  # a window: long names, totals, stamp
Windows = dict[str, Decoded | None]  # an item's windows decoded so far, by prefix
_VIEWS: dict[str, tuple[Item, Windows, Windows]] = {}  # item pk → (the item, its windows, those of the item before)
_VIEWS_MAX = 1024


def _view(pk: str, item: Item) -> tuple[Windows, Windows]:
    """The windows decoded so far from the meter item `pk` while it is equal to `item`: most items
    a request reads have not changed since the last load (free tiers used up, models ranked below
    the one that served), and comparing an item (in C) costs a fraction of decoding its windows
    again. A copy of the item is kept, so no later change to the loaded one can go unseen (a
    `FrozenItem` itself: it never changes, and the same one again is told unchanged at once). With
    them, those decoded from the item as it was before its last change (`_decode` hands out the
    same objects again for a window that change left as it was)."""
    cached = _VIEWS.get(pk)
    if cached is not None and (cached[0] is item or cached[0] == item):
        return cached[1], cached[2]
    if len(_VIEWS) >= _VIEWS_MAX:
        _VIEWS.clear()
    decoded: Windows = {}
    before = cached[1] if cached is not None else {}
    _VIEWS[pk] = (item if isinstance(item, FrozenItem) else dict(item), decoded, before)
    return decoded, before


def _decode(item: Item, prefix: str, before: Decoded | None = None) -> Decoded | None:
    """One window of a meter item (None: it holds nothing of it). `before`: the same window as
    decoded from the item before its last change, handed out again when the window is equal: a
    write changes an item's current windows, rarely the earlier ones, and a window decoded into
    the very same objects keeps the caches keyed on them hitting (`metering._carry`, `_reopens`,
    `usage_of`'s plain usages)."""
    window = _window_in(item, prefix)
    if not window:
        return None
    if before is not None and before[0] == window:
        return before
    stamp = window.get(LAST_AT)
    return (window, {unit: int(window[unit]) for unit in _CODES if unit in window},
            None if stamp is None else float(stamp))


_READ: dict[tuple[Meter, tuple[int, ...]], tuple[tuple[str, tuple[str, str]], ...]] = {}


def _windows_read(meter: Meter, starts: tuple[int, ...]) -> tuple[tuple[str, tuple[str, str]], ...]:
    """(window key, (its item, its prefix)) of each of the meter's windows starting at `starts`: the same
    until a window rolls over, for every request of every model that counts on the meter."""
    found = _READ.get((meter, starts))
    if found is None:
        if len(_READ) >= 8192:
            _READ.clear()
        found = _READ[(meter, starts)] = tuple([(meter.pk(start), _where(meter, start)) for start in starts])
    return found


def _where(meter: Meter, start: int) -> tuple[str, str]:
    """The item and attribute prefix of the meter's window starting at `start` (`window_ref`'s,
    without building one: a 1-second window asks this for a new start every second)."""
    period = meter.limit.period
    return _counter_pk(meter.counter), f"{period.name}:{start // _index_width(period)}:"


def _fill(meter_items: Mapping[str, Item], meters: Iterable[Meter], now: float, counters: dict[str, Amounts],
          stamps: dict[str, float], windows: dict[str, Item]) -> None:
    """Decode, from their counters' items, the windows the meters read at `now` (by name: the
    items are never scanned; a window decoded from an equal item before is reused, `_view`) into
    a snapshot's window-keyed maps. The decoded values are shared between snapshots: read only."""
    views: dict[str, tuple[Windows, Windows]] = {}
    for meter in meters:
        for key, (pk, prefix) in _windows_read(meter, window_starts(meter.limit.period, now)):
            if key in windows:
                continue
            item = meter_items.get(pk)
            if item is None:
                break  # no item for the counter: none of its windows
            view = views.get(pk)
            if view is None:
                view = views[pk] = _view(pk, item)
            decoded, before = view
            if prefix in decoded:
                found = decoded[prefix]
            else:
                found = decoded[prefix] = _decode(item, prefix, before.get(prefix))
            if found is not None:
                windows[key], counters[key], stamp = found
                if stamp is not None:
                    stamps[key] = stamp


def windows_of(items: Mapping[str, Item]) -> dict[str, dict[str, Any]]:
    """Every window the meter items among `items` hold, by window key (for reports and tests)."""
    out: dict[str, dict[str, Any]] = {}
    for pk, item in items.items():
        if pk.startswith("rl#"):
            out.update(split_meter_item(pk, item))
    return out


def legacy_window(pk: str, item: Item, now: float) -> tuple[str, dict[str, int], dict[str, float]] | None:
    """An item of the layout before one item per counter (`rl#{counter}#{period}#{start}`, one
    window) as (its counter's item, its counts and its stamp under that item's names), while a load
    at `now` still reads the window; None for anything else (`llm-gateway fold-windows`)."""
    head, _, tail = pk.rpartition("#")
    counter_pk, _, name = head.rpartition("#")
    period = _period_named(name)
    if not counter_pk.startswith("rl#") or period is None or not tail.isdigit():
        return None
    start = int(tail)
    if start % _index_width(period) or not _read(period, start, now):
        return None
    prefix = f"{period.name}:{start // _index_width(period)}:"
    counts = {prefix + _SHORT[attr]: int(value) for attr, value in item.items()
              if attr in _SHORT and attr != LAST_AT and int(value)}
    stamps = {prefix + _SHORT[LAST_AT]: float(item[LAST_AT])} if LAST_AT in item else {}
    return counter_pk, counts, stamps


# --- typed values ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Cooldown:
    """A model kept out of selection until `until` (time.time), and why."""

    until: float
    reason: str


@dataclass(frozen=True, slots=True)
class HeaderSnapshot:
    """A provider's last rate-limit headers for a model, and when they were seen."""

    info: RateLimitInfo
    observed_at: float


@dataclass(frozen=True, slots=True)
class FailureMark:
    """A provider's latest failure (5xx, timeout, reset, 429), shared by every container; or,
    with streak 0, that it answered again after a streak (so every container starts over)."""

    provider: str
    at: float
    kind: str
    streak: int = 1  # failures in a row, each of a call begun after the previous one's memory ended

    @property
    def answered(self) -> bool:
        return self.streak == 0

    @property
    def until(self) -> float:
        """When the provider stops ranking behind the others: the memory doubles per streak."""
        if self.streak == 0:
            return self.at
        return self.at + min(FAILURE_MEMORY_MAX_S, FAILURE_MEMORY_S * 2.0 ** min(self.streak - 1, 16))


def standing_mark(a: FailureMark, b: FailureMark) -> FailureMark:
    """Which of two marks of one provider stands: the later, if either says it answered; else the
    one that holds longer (an older mark of a longer streak outlasts a new first failure)."""
    if a.answered or b.answered:
        return a if a.at >= b.at else b
    return a if a.until >= b.until else b


@dataclass(frozen=True, slots=True)
class HealthRecord:
    """The scheduled check's verdict on a provider, and a fingerprint of the key it judged."""

    provider: str
    available: bool
    reason: str
    fingerprint: str
    checked_at: float
    error_class: str | None = None


@dataclass(frozen=True, slots=True)
class ModelState:
    """What is known about one candidate model besides its counters."""

    key: ModelKey
    cooldown: Cooldown | None = None
    headers: HeaderSnapshot | None = None

    def cooling(self, now: float) -> bool:
        return self.cooldown is not None and self.cooldown.until > now


@dataclass(slots=True, unsafe_hash=True)  # a value, never changed; not frozen: see FAST_VALUES in metering.py
class StateSnapshot:
    """One load, decoded: window counters by window key (`Meter.pk`), model states, breaker
    records and failures."""

    counters: Mapping[str, Amounts] = field(default_factory=dict)  # window key (`Meter.pk`) → its totals
    stamps: Mapping[str, float] = field(default_factory=dict)  # window key → its latest reservation time
    models: Mapping[ModelKey, ModelState] = field(default_factory=dict)
    breakers: Mapping[str, Item] = field(default_factory=dict)
    failures: Mapping[str, FailureMark] = field(default_factory=dict)
    degraded: bool = False  # True when the shared store failed and in-container state answered
    limit_scale: float = 1.0  # the share of each limit this container may use (below 1 while degraded)
    affinities: Mapping[str, ModelKey] = field(default_factory=dict)  # aff# pk → the model it names
    windows: Mapping[str, Item] = field(default_factory=dict)  # window key → its counts (per-slot too)
    meter_items: Mapping[str, Item] = field(default_factory=dict)  # counter item pk → the item as loaded
    decoded: set[tuple[Meter, float]] = field(default_factory=set, repr=False, compare=False)  # (meter, now)
    # pairs whose windows are in `counters`, `stamps` and `windows`

    def usage(self, meter: Meter, now: float, scaled: Meter | None = None) -> WindowUsage:
        """The meter's window at `now` as this load saw it (carry-over included); `scaled`, when
        given, is the meter with a degraded container's share of its limit (`scaled_meter`)."""
        if self.meter_items and (meter, now) not in self.decoded:  # a meter the load was not told of
            assert isinstance(self.counters, dict) and isinstance(self.stamps, dict) and isinstance(self.windows, dict)
            _fill(self.meter_items, (meter,), now, self.counters, self.stamps, self.windows)
            self.decoded.add((meter, now))
        return usage_of(scaled or meter, self.counters, now, self.stamps, self.windows)


# --- what to read ------------------------------------------------------------------------------------
def pks_for(meters: Iterable[Meter], keys: Collection[ModelKey], now: float, extra: Iterable[str] = ()) -> list[str]:
    """Every item one request consults, in one list for one BatchGetItem; `extra` are items a
    capability asks for besides (chat: the conversation's affinity item)."""
    pks: dict[str, None] = dict.fromkeys(extra)
    for meter in meters:  # one item per counter, however many windows its meters have
        pks[_counter_pk(meter.counter)] = None
    pks.update(_candidate_items(tuple(keys)).pks)  # the models' items, listed once per set of models
    return list(pks)


def _models_pks(keys: Collection[ModelKey]) -> dict[str, None]:
    """The items of these models, in `pks_for`'s order: each one's header and cooldown, each
    one's circuits (`circuit_ids`' order), each provider's failure mark."""
    pks: dict[str, None] = {}
    named = [_model_pks(key) for key in keys]  # per model, built once: this runs on every request
    for header, cooldown, _, _ in named:
        pks[header] = None
        pks[cooldown] = None
    for _, _, provider_cb, model_cb in named:  # `circuit_ids`' order
        pks[provider_cb] = None
        pks[model_cb] = None
    for provider in {key.provider for key in keys}:
        pks[failure_pk(provider)] = None
    return pks


@dataclass(frozen=True, slots=True)
class _CandidateItems:
    """What one set of candidates reads and decodes on every request, worked out once per set."""

    pks: dict[str, None]  # `_models_pks` (never changed once made)
    circuits: tuple[str, ...]  # `circuit_ids`
    states: tuple[tuple[ModelKey, str, str], ...]  # each model with its header and cooldown items


def _candidate_items(keys: tuple[ModelKey, ...]) -> _CandidateItems:
    """Per set of models (few recur: the catalog's models a request shape can use, less those a
    key's allow-list excludes; one model, for the planner's item counts), cached by the tuple, at
    most `_CANDIDATES_MAX`."""
    found = _CANDIDATES.get(keys)
    if found is None:
        if len(_CANDIDATES) >= _CANDIDATES_MAX:
            _CANDIDATES.clear()
        named = [(key, *_model_pks(key)) for key in keys]
        circuits = dict.fromkeys(pk for _, _, _, provider_cb, model_cb in named for pk in (provider_cb, model_cb))
        found = _CANDIDATES[keys] = _CandidateItems(_models_pks(keys), tuple(circuits),
                                                    tuple((key, header, cooling) for key, header, cooling, _, _ in named))
    return found


_CANDIDATES: dict[tuple[ModelKey, ...], _CandidateItems] = {}
_CANDIDATES_MAX = 1024


_COUNTER_PKS: dict[str, str] = {}  # counter → its item's pk (`meter_pk`), formatted once


def _counter_pk(counter: str) -> str:
    pk = _COUNTER_PKS.get(counter)
    if pk is None:
        if len(_COUNTER_PKS) >= 4096:
            _COUNTER_PKS.clear()
        pk = _COUNTER_PKS[counter] = meter_pk(counter)
    return pk
_MODEL_PKS: dict[ModelKey, tuple[str, str, str, str]] = {}


def _model_pks(key: ModelKey) -> tuple[str, str, str, str]:
    """A model's header, cooldown, provider-breaker and model-breaker items."""
    found = _MODEL_PKS.get(key)
    if found is None:
        if len(_MODEL_PKS) >= 4096:
            _MODEL_PKS.clear()
        found = _MODEL_PKS[key] = (header_pk(key), cooldown_pk(key), provider_circuit(key.provider), model_circuit(key))
    return found


# --- decoding ----------------------------------------------------------------------------------------
def decode_snapshot(items: Mapping[str, Item], keys: Collection[ModelKey], now: float, meters: Iterable[Meter] = (),
                    *, degraded: bool = False, limit_scale: float = 1.0) -> StateSnapshot:
    """Turn a load's raw items into typed state, once per request: of the counters' items, the
    windows `meters` read at `now` (another meter's are decoded when `StateSnapshot.usage` is
    first asked for it)."""
    breakers: dict[str, Item] = {}
    failures: dict[str, FailureMark] = {}
    affinities: dict[str, ModelKey] = {}
    meter_items: dict[str, Item] = {}
    for pk, item in items.items():
        if pk.startswith("rl#"):
            meter_items[pk] = item
        elif pk.startswith("cb#"):
            breakers[pk] = item
        elif pk.startswith("fail#"):
            failures[pk[5:]] = FailureMark(pk[5:], float(item["at"]), str(item.get("kind", "")),
                                           int(item.get("streak", 1)))
        elif pk.startswith("aff#") and (preferred := decode_affinity(item, now)) is not None:
            affinities[pk] = preferred
    models = {}
    # nothing found: no model has a cooldown or headers on record, nothing to look up
    named = _candidate_items(tuple(keys)).states if items else ()
    for key, header, cooling in named:
        cooling_raw, header_raw = items.get(cooling), items.get(header)
        if cooling_raw is None and header_raw is None:  # most models, most requests: nothing to decode
            continue
        cooldown = decode_cooldown(cooling_raw, now)
        headers = _headers(header, header_raw, now)
        if cooldown is not None or headers is not None:
            models[key] = ModelState(key, cooldown, headers)
    counters: dict[str, Amounts] = {}
    stamps: dict[str, float] = {}
    windows: dict[str, Item] = {}
    decoded: set[tuple[Meter, float]] = set()
    if meter_items:
        meters = set(meters)
        _fill(meter_items, meters, now, counters, stamps, windows)
        decoded = {(meter, now) for meter in meters}
    return StateSnapshot(counters=counters, stamps=stamps, models=models, breakers=breakers, failures=failures,
                         degraded=degraded, limit_scale=limit_scale, affinities=affinities, windows=windows,
                         meter_items=meter_items, decoded=decoded)


_HEADERS: dict[str, tuple[Item, HeaderSnapshot]] = {}  # hdr# pk → (the item, as decoded)


def _headers(pk: str, item: Item | None, now: float) -> HeaderSnapshot | None:
    """`decode_headers`, reused while the item is unchanged (a snapshot is replaced only when a
    response's headers are worth recording: most loads read the same one again)."""
    if item is None:
        return None
    cached = _HEADERS.get(pk)
    if cached is not None and cached[0] == item and "observed_at" in item:  # else it depends on `now`
        return cached[1]
    decoded = decode_headers(item, now)
    assert decoded is not None
    if len(_HEADERS) >= _VIEWS_MAX:
        _HEADERS.clear()
    _HEADERS[pk] = (dict(item), decoded)
    return decoded


def decode_cooldown(item: Item | None, now: float) -> Cooldown | None:
    if item is None or float(item.get("until", 0)) <= now:
        return None
    return Cooldown(float(item["until"]), str(item.get("reason", "")))


def decode_affinity(item: Item, now: float) -> ModelKey | None:
    """The model an affinity item names, while it is fresh (TTL deletion is lazy)."""
    if float(item.get("at", 0)) + AFFINITY_TTL_S <= now or not item.get("provider") or not item.get("model"):
        return None
    return ModelKey(str(item["provider"]), str(item["model"]))


def decode_health(item: Item) -> HealthRecord:
    return HealthRecord(provider=str(item["provider"]), available=bool(item["available"]), reason=str(item["reason"]),
                        fingerprint=str(item["fingerprint"]), checked_at=float(item["checked_at"]),
                        error_class=None if item.get("error_class") is None else str(item["error_class"]))


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def decode_breaker(item: Item) -> CircuitStateRecord | None:
    """A Powertools breaker record from its item (with its `pk`); None if it is not one."""
    try:
        state = CircuitState(str(item["state"]))
        name = str(item[PK])
    except (KeyError, ValueError):
        return None
    return CircuitStateRecord(
        name=name,
        state=state,
        failure_count=int(item.get("failure_count") or 0),
        opened_at=_int_or_none(item.get("opened_at")),
        half_open_owner=item.get("half_open_owner"),
        probe_lease_expiry=_int_or_none(item.get("probe_lease_expiry")),
        expiry_timestamp=_int_or_none(item.get(EXPIRES)),
    )


def decode_headers(item: Item | None, now: float) -> HeaderSnapshot | None:
    if item is None:
        return None
    fields: dict[str, Any] = {}
    for name in _HDR_FIELDS:
        value = item.get(name)
        if value is not None:
            fields[name] = int(value) if name in _HDR_INTS else float(value)
    return HeaderSnapshot(RateLimitInfo(**fields), float(item.get("observed_at", now)))


# --- encoding ----------------------------------------------------------------------------------------
def cooldown_item(until: float, reason: str) -> dict[str, Any]:
    return {"until": float(until), "reason": reason[:500]}


def header_item(info: RateLimitInfo, now: float) -> dict[str, Any]:
    item: dict[str, Any] = {"observed_at": float(now)}
    for name in _HDR_FIELDS:
        value = getattr(info, name)
        if value is not None and math.isfinite(value):
            item[name] = value
    return item


def failure_item(mark: FailureMark) -> dict[str, Any]:
    return {"at": float(mark.at), "kind": mark.kind, "streak": mark.streak}


def affinity_item(key: ModelKey, now: float) -> dict[str, Any]:
    return {"provider": key.provider, "model": key.model, "at": float(now)}


def health_item(record: HealthRecord) -> dict[str, Any]:
    item: dict[str, Any] = {"provider": record.provider, "available": record.available, "reason": record.reason,
                            "fingerprint": record.fingerprint, "checked_at": float(record.checked_at)}
    if record.error_class:
        item["error_class"] = record.error_class
    return item


def breaker_item(record: CircuitStateRecord) -> dict[str, Any]:
    """A breaker record as its item (with its `pk`; what both breaker layers store and expose)."""
    item: dict[str, Any] = {PK: record.name, "state": str(record.state), "failure_count": record.failure_count}
    for attr, value in (
        ("opened_at", record.opened_at),
        ("half_open_owner", record.half_open_owner),
        ("probe_lease_expiry", record.probe_lease_expiry),
        (EXPIRES, record.expiry_timestamp),
    ):
        if value is not None:
            item[attr] = value
    return item
