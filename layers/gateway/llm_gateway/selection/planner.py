"""Capability-agnostic planning: an ordered plan (primary + fallbacks) for one request. Pure.

Two phases because one DynamoDB read sits between them. A capability's *preparation* (chat:
`selector.ChatPreparer`; transcription: its own) works from the request and the catalog alone:
it resolves `model`, drops models that could never serve the request (with reasons), and says
what a call would consume (`amounts`: requests, tokens, audio seconds) and how each candidate
ranks statically. `Planner.plan` then ranks what is left against the loaded state.

Ranking, in order:
1. **No recent failure** first: a provider that just failed (5xx, timeout, reset, 429) in any
   container goes behind every provider that did not, until its mark's memory ends
   (`FailureMark.until`: 30 s, doubled for each failure right after the last one's memory ended).
2. **Free tier with capacity** before any paid model (paid models follow as fallbacks).
3. **The preferred model** the preparation names through a state item (chat: the model that
   served the previous turn of the same conversation), so a conversation stays on one model
   while it can serve; when it cannot (dropped below, or behind 1. and 2.) ranking goes on as usual.
4. The capability's own static order (chat: category distance), then estimated cost.
5. **Balance among equals**: each group of equal rank is reordered by the tie-breaker (the
   router's capacity-weighted balancer) or rotated by a counter.

Dropped with a reason (never chosen): blocked by the router (breaker, bad key), cooling down, a
window (the model's own or its provider's) or the provider's headers out of capacity, or the
caller's own limit or budget (a meter of `CALLER_SCOPE`: checked first, and recorded apart as a
`CallerRefusal`, so that the caller is told "your limit" rather than "no capacity").
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from llm_gateway.api.errors import InvalidRequest, ModelNotFound
from llm_gateway.selection.catalog import ENDPOINTS, Catalog, ModelEntry
from llm_gateway.state.items import FailureMark, StateSnapshot, pks_for
from llm_gateway.state.metering import (
    CALLER_SCOPE,
    USD_MICROS,
    Amounts,
    Meter,
    WindowUsage,
    scaled_meter,
)
from llm_gateway.state.rate_limits import capacity, free_again_in, window_free_at
from llm_gateway.state.store import ModelKey

# State is loaded only for as many of the best candidates as one BatchGetItem can read, so one
# round trip covers a request however large the catalog grows. A request never calls more than a
# few models, and the best ones by static rank are the ones it would call.
LOAD_ITEM_BUDGET = 100
# Items are counted as a load reads them at this moment: past the first moments of every window of
# a minute or longer (when a sliding window also reads the one before its previous: 5 % of the
# time, and a load then past 100 items takes a second read), inside those of a 1-second window
# (a quarter of the time, so they are always counted).
USUAL_MOMENT = 45_030.1
MIN_LOADED_PAID = 4  # paid fallbacks always loaded, so exhausted free tiers never leave nothing
Dropped = tuple[ModelKey, str]
StaticRank = tuple[Any, ...]  # the capability's own order, then cost; ends with (provider, model)


@dataclass(slots=True)  # a value, never changed; not frozen: see FAST_VALUES in metering.py
class Candidate:
    """A model that could serve the request, and what a call to it would consume."""

    entry: ModelEntry
    amounts: Amounts
    rank: StaticRank
    est_cost_usd: float
    reason: str  # the static part of the plan step's reason
    slow_by_request: bool = False  # the request itself may take long (a very long answer)
    # The most the call can cost (chat: output at max_tokens or the model's output cap), reserved
    # against a caller's budget before the call; None = `est_cost_usd` is already an upper bound.
    max_cost_usd: float | None = None
    # The reason goes on with the estimated cost (`est. $0.000123; `), formatted only when a plan
    # step's reason is read (`PlanStep.reason`): a request reads none, and formatting a float for
    # each candidate of each request cost more than the rest of its reason.
    reason_cost: bool = False

    @property
    def key(self) -> ModelKey:
        return self.entry.key


@dataclass(slots=True, unsafe_hash=True)  # a value, never changed; not frozen: see FAST_VALUES in metering.py
class Preparation:
    """Everything decidable before state is loaded."""

    label: str  # what the capability calls the request's kind (chat: its category)
    candidates: tuple[Candidate, ...]  # in static rank order, bounded to one state read
    dropped: tuple[Dropped, ...]
    meters: Mapping[ModelKey, tuple[Meter, ...]]
    pinned: ModelKey | None = None
    detail: Any = None  # the capability's own analysis (chat: `Analysis`, prompt tokens)
    # A state item naming a model to prefer, read in the same load (chat: the `aff#` item of the
    # conversation this request continues). Ranked after "no recent failure" and "free first".
    prefer: str | None = None
    # Candidates ranked below the ones one state read holds (listed in `dropped` as not loaded), so
    # a later step that narrows `candidates` (a key's allow-list) can bound the rest again.
    rest: tuple[Candidate, ...] = ()

    @property
    def keys(self) -> tuple[ModelKey, ...]:
        return tuple([c.entry.key for c in self.candidates])  # a list first: no generator resumed per item

    @property
    def state_pks(self) -> tuple[str, ...]:
        """Items to read besides the candidates' own (one BatchGetItem holds them all)."""
        return (self.prefer,) if self.prefer is not None else ()

    def all_meters(self) -> list[Meter]:
        meters = self.meters
        return list(dict.fromkeys([m for c in self.candidates for m in meters[c.entry.key]]))


@dataclass(slots=True)  # a value, never changed; not frozen: see FAST_VALUES in metering.py
class PlanStep:
    """One model to try, with what it would use and the windows a reservation for it writes."""

    key: ModelKey
    free: bool
    entry: ModelEntry
    amounts: Amounts
    usages: tuple[WindowUsage, ...]  # the windows a reservation writes, with their ceilings
    reason_head: str  # the reason, or its static part when `tail` is given
    est_cost_usd: float = 0.0
    slow_by_request: bool = False  # a timeout is the request's doing: full budget, no penalty
    # The moment the plan found `capacity(usages, ...)` ok against its snapshot (None: not checked
    # on these usages, e.g. a degraded container checks scaled ones), so the tie-breaker, handed
    # the same snapshot and moment, need not check it again.
    room_at: float | None = None
    # The rest of the reason, formatted only when it is read (`llm-gateway plan`; a request uses
    # one step of many and never reads one): (requests left, tokens left, failed recently, the
    # conversation's previous model).
    tail: tuple[int | None, int | None, bool, bool] | None = None
    reason_cost: bool = False  # `reason_head` goes on with `est_cost_usd` (`Candidate.reason_cost`)

    @property
    def reason(self) -> str:
        """Why the step is where it is: its static reason, what is left, recent failure, affinity."""
        head = (self.reason_head + f"est. ${self.est_cost_usd:.6f}; ") if self.reason_cost else self.reason_head
        tail = self.tail
        if tail is None:
            return head
        requests, tokens, failed, kept = tail
        return (head + _describe_left(requests, tokens)
                + ("; provider failed recently" if failed else "")
                + ("; served this conversation's previous turn" if kept else ""))


USER_RATE_LIMITED = "user_rate_limited"
BUDGET_EXCEEDED = "budget_exceeded"


@dataclass(frozen=True, slots=True)
class CallerRefusal:
    """A candidate the caller's own limit stopped: `code` is `USER_RATE_LIMITED` (requests,
    tokens, audio seconds) or `BUDGET_EXCEEDED` (a budget in `USD_MICROS`)."""

    code: str
    reason: str
    counter: str
    period: str  # the window's name: "60", "day", "month"
    free_again_in_s: float | None  # None: never (one call costs more than the whole budget)
    left: int | None = None  # what the window had left of the unit it was short of, and what the call asked
    needs: int | None = None


@dataclass(slots=True, unsafe_hash=True)  # a value, never changed; not frozen: see FAST_VALUES in metering.py
class Plan:
    """The models to try in order, and why every other candidate was dropped."""

    label: str
    steps: tuple[PlanStep, ...]
    dropped: tuple[Dropped, ...]
    pinned: ModelKey | None = None
    free_again_in_s: float | None = None  # an empty plan's capacity-only refusals: when the first one frees
    capacity_only: bool = False  # every drop after preparation was for capacity (429, not 503)
    refused: tuple[CallerRefusal, ...] = ()  # candidates the caller's own limits stopped
    # candidates dropped for capacity: when they fit again (all of them when the plan is empty; else
    # not those only a 1-second window stopped: working it out costs, and they free within a second)
    frees_at: tuple[tuple[ModelKey, float], ...] = ()
    # those of the same candidates that still take a small request: (model, unit, ask, until), it
    # takes no ask of at least `ask` of `unit` before `until`, as far as the windows' counts go
    # (the window that stops this request, worked out for this request's ask of the unit it is
    # short of: a later request that asks as much waits as long, unless counts are given back)
    full_for: tuple[tuple[ModelKey, str, int, float], ...] = ()
    # every drop after preparation asked more than one of the model's limits allows at all: no
    # wait makes it fit (413, not 429)
    too_large: bool = False
    # a plan that starts with a paid model while a free tier is full only for now: when the first
    # such free tier takes this request again (the runner may wait for it rather than pay)
    free_tier_in_s: float | None = None


TieBreaker = Callable[[list[PlanStep], StateSnapshot, float], list[PlanStep]]


def resolve(model: str, pool: Sequence[ModelEntry], catalog: Catalog, available: Collection[ModelKey],
            is_alias: Callable[[str], bool], capability: str) -> tuple[ModelKey | None, list[ModelEntry]]:
    """(pinned key or None, entries to consider) for the request's `model` field.

    Pinned models are `provider/model`, or a bare id exactly one configured provider serves; a
    bare id several serve ranks among those providers.
    """
    if is_alias(model):
        entries = [e for e in pool if e.key in available]
        if not entries:
            raise ModelNotFound(model, "No configured provider serves any catalog model.")
        return None, entries
    if "/" in model:
        provider, name = model.split("/", 1)
        entry = catalog.get(ModelKey(provider, name))
        if entry is not None and capability in entry.serves:
            if entry.key not in available:
                raise ModelNotFound(model, f"Provider '{provider}' is not configured.")
            return entry.key, [entry]
    matches = [e for e in catalog.by_model_id(model) if e.key in available and capability in e.serves]
    if not matches:
        raise _served_elsewhere(model, catalog, capability, available) or ModelNotFound(
            model, "Use 'auto' or 'provider/model' (GET /v1/models lists them).")
    return (matches[0].key if len(matches) == 1 else None), matches


def _served_elsewhere(model: str, catalog: Catalog, capability: str,
                      available: Collection[ModelKey]) -> ModelNotFound | None:
    """The error for a model the catalog has that serves only other endpoints (`/v1/models`
    lists chat and speech models together, so a caller may send one to the wrong endpoint),
    naming the endpoint that serves it, and saying so when its provider is not configured (the
    other endpoint would only refuse it for that); None when the catalog has no such model.
    `available` holds this capability's models only: a provider counts as not configured when
    it serves this capability too and none of its models here is available."""
    provider, _, name = model.partition("/")
    entry = catalog.get(ModelKey(provider, name)) if name else None
    entries = [entry] if entry is not None else catalog.by_model_id(model)
    if not entries or any(capability in e.serves for e in entries):
        return None
    other = entries[0].serves[0]
    message = f"The model '{model}' is a {other} model, not a {capability} model: send it to {ENDPOINTS[other]}."
    configured = {key.provider for key in available}
    serving_here = {e.provider for e in catalog.for_capability(capability)}
    unconfigured = sorted({e.provider for e in entries if e.provider in serving_here} - configured)
    if unconfigured and len(unconfigured) == len({e.provider for e in entries}):
        names = ", ".join(f"'{p}'" for p in unconfigured)
        message += f" Its provider ({names}) is not configured on this gateway."
    return ModelNotFound(model, message=message)


def bounded(ranked: Sequence[Candidate], meters: Mapping[ModelKey, tuple[Meter, ...]],
            extra: Sequence[str] = ()) -> tuple[list[Candidate], list[Candidate]]:
    """The best candidates, in rank order, whose state fits one read beside the `extra` items;
    the cheapest paid ones always fit."""
    # Runs on every request, so candidates are told apart by identity (their dataclass `__eq__`
    # compares catalog entries field by field) and each model's item keys come from a cache.
    # The choice depends only on the candidates' keys, their meters (compared by identity: the
    # catalog's tuples) and how many extra items there are, and few such lists recur: cached.
    keys = tuple([c.entry.key for c in ranked])  # `c.key`, without a property call or a generator resumed each
    tuples = tuple([meters[key] for key in keys])
    sized = (len(extra), len(set(extra)))
    cached = _BOUNDED.get((sized, keys))
    if cached is not None and all(map(operator.is_, cached[0], tuples)):  # same keys: same length
        chosen_at = cached[1]
    else:
        chosen_at = _choose(ranked, tuples, *sized)
        if len(_BOUNDED) >= _BOUNDED_MAX:
            _BOUNDED.clear()
        _BOUNDED[(sized, keys)] = (tuples, chosen_at)
    if len(chosen_at) == len(ranked):
        return list(ranked), []
    return ([c for i, c in enumerate(ranked) if i in chosen_at],
            [c for i, c in enumerate(ranked) if i not in chosen_at])


_BOUNDED: dict[tuple[tuple[int, int], tuple[ModelKey, ...]], tuple[tuple[tuple[Meter, ...], ...], frozenset[int]]] = {}
_BOUNDED_MAX = 4096


def _choose(ranked: Sequence[Candidate], meters: Sequence[tuple[Meter, ...]], extra: int,
            distinct_extra: int) -> frozenset[int]:
    """`bounded`'s choice, as positions in `ranked`."""
    sizes = extra + sum(len(_item_keys(c.key, m)) for c, m in zip(ranked, meters, strict=True))
    if sizes <= LOAD_ITEM_BUDGET:  # even counted apart, every candidate's items fit: all of them load
        return frozenset(range(len(ranked)))
    chosen: set[int] = set()
    count = distinct_extra  # extra items (an affinity item, a caller's windows) are never a candidate's
    pks: set[str] = set()
    paid_first = [i for i, c in enumerate(ranked) if not c.entry.is_free][:MIN_LOADED_PAID]
    first = set(paid_first)
    for index in paid_first + [i for i in range(len(ranked)) if i not in first]:
        more = _item_keys(ranked[index].key, meters[index]) - pks
        if count + len(pks) + len(more) <= LOAD_ITEM_BUDGET:
            chosen.add(index)
            pks |= more
    return frozenset(chosen)


_ITEM_KEYS: dict[ModelKey, tuple[tuple[Meter, ...], frozenset[str]]] = {}
_ITEM_KEYS_MAX = 4096


def _item_keys(key: ModelKey, meters: tuple[Meter, ...]) -> frozenset[str]:
    """Every item one candidate's state needs, as counted by `bounded` (at one fixed moment, so
    the keys never depend on time: only their number matters there). Cached per model for as
    long as it is asked with the very same meters tuple (the catalog's, built once per container)."""
    cached = _ITEM_KEYS.get(key)
    if cached is not None and cached[0] is meters:
        return cached[1]
    keys = frozenset(pks_for(meters, (key,), USUAL_MOMENT))
    if len(_ITEM_KEYS) >= _ITEM_KEYS_MAX:
        _ITEM_KEYS.clear()
    _ITEM_KEYS[key] = (meters, keys)
    return keys


def nothing_fits(dropped: Sequence[Dropped]) -> InvalidRequest:
    reasons = "; ".join(f"{key}: {why}" for key, why in dropped[:5])
    return InvalidRequest(f"No model can serve this request ({reasons}).", param="model", code="no_model_fits")


def recently_failed(provider: str, failures: Mapping[str, FailureMark], now: float) -> bool:
    mark = failures.get(provider)
    return mark is not None and now < mark.until


def _failing(failures: Mapping[str, FailureMark], now: float) -> frozenset[str]:
    """The providers `recently_failed` at `now`: worked out once a plan, not per candidate (a mark
    is kept per provider, answered ones too, and its `until` is computed on each read)."""
    return frozenset([provider for provider, mark in failures.items() if now < mark.until]) if failures else frozenset()


class Planner:
    """Holds the round-robin counter (per container); everything else is passed in."""

    def __init__(self) -> None:
        self._turn = itertools.count()

    def plan(
        self,
        prep: Preparation,
        snapshot: StateSnapshot,
        now: float,
        *,
        blocked: Mapping[ModelKey, str] | None = None,
        failures: Mapping[str, FailureMark] | None = None,
        tie_breaker: TieBreaker | None = None,
    ) -> Plan:
        """Order the prepared candidates that can serve now; the rest are dropped with reasons."""
        blocked = blocked or {}
        failures = failures if failures is not None else snapshot.failures
        dropped = list(prep.dropped)
        ranked: list[tuple[tuple[Any, ...], PlanStep]] = []
        full: list[tuple[ModelKey, tuple[WindowUsage, ...], Any, Amounts, bool]] = []  # dropped for capacity (free?)
        capacity_only = True
        too_large = True
        preferred = snapshot.affinities.get(prep.prefer) if prep.prefer is not None else None
        failing = _failing(failures, now)
        windows: dict[int, WindowUsage] = {}  # by meter identity: a provider's shared meters are one object
        refused: list[CallerRefusal] = []
        meters_of = prep.meters
        scale = snapshot.limit_scale
        models = snapshot.models
        for candidate in prep.candidates:
            entry = candidate.entry
            key = entry.key
            if key in blocked:
                dropped.append((key, f"blocked: {blocked[key]}"))
                capacity_only = too_large = False
                continue
            meters = meters_of[key]
            seen: list[WindowUsage] = []
            for meter in meters:
                usage = windows.get(id(meter))
                if usage is None:
                    usage = windows[id(meter)] = snapshot.usage(meter, now)
                seen.append(usage)
            usages = tuple(seen)
            state = models.get(key)
            # While degraded, this container may use only its share of each limit; the write
            # scales its ceilings itself, so the step keeps the unscaled usages.
            checked = usages if scale >= 1.0 else tuple(
                snapshot.usage(m, now, scaled_meter(m, scale)) for m in meters)
            amounts = candidate.amounts
            own = caller_refusal(checked, amounts, now) if checked else None
            if own is not None:
                dropped.append((key, f"your limit: {own.reason}"))
                refused.append(own)
                if own.code != BUDGET_EXCEEDED:  # a budget stops paid models only: free tiers may still wait
                    capacity_only = False
                too_large = False
                continue
            room = capacity(checked, state, amounts, now)
            free = entry.is_free
            if not room.ok:
                above = _above_a_limit(meters, amounts)
                dropped.append((key, above or room.reason))
                too_large = too_large and above is not None
                full.append((key, checked, state, amounts, free))
                continue
            failed = key.provider in failing
            kept = key == preferred
            step = PlanStep(key, free, entry, amounts, usages, candidate.reason, candidate.est_cost_usd,
                            candidate.slow_by_request, now if checked is usages else None,
                            (room.remaining_requests, room.remaining_tokens, failed, kept), candidate.reason_cost)
            ranked.append(((failed, not free, not kept, *candidate.rank), step))
        ranked.sort(key=operator.itemgetter(0))
        steps = self._break_ties(ranked, snapshot, now, tie_breaker)
        nothing = not steps and bool(prep.candidates)
        frees: list[tuple[ModelKey, float]] = []
        full_for: list[tuple[ModelKey, str, int, float]] = []
        waits: list[float] = []
        free_waits: list[float] = []
        paid_first = bool(steps) and not steps[0].free
        # each window's answer, once a plan: a provider's shared window (Mistral's second) fills all its models
        again: dict[tuple[Any, ...], float | None] = {}
        for key, checked, state, amounts, free in full:
            if (paid_first and free and key.provider not in failing
                    and (wait := free_again_in(checked, state, amounts, now, again)) is not None):
                free_waits.append(wait)
            if steps and state is None and all(u.meter.limit.period.seconds == 1 or u.takes(amounts) for u in checked):
                continue  # only a 1-second window stops it: it frees within a second or so
            if not steps:  # when the first capacity frees matters only to an empty plan
                wait = free_again_in(checked, state, amounts, now, again)
                if wait is not None:
                    waits.append(wait)
            # When the model takes *any* request again, not this caller's: `frees_at` is what the
            # container remembers as used up for everyone, and one large ask must not set it (a
            # window that takes a small request but not this one's ask: `full_for`, for as large asks).
            smallest = free_again_in(checked, state, {unit: 1 for unit, n in amounts.items() if n > 0}, now, again)
            if smallest:
                frees.append((key, now + smallest))
            elif smallest is not None and (short := _short_until(checked, amounts, now, again)) is not None:
                full_for.append((key, *short))
        return Plan(prep.label, tuple(steps), tuple(dropped), prep.pinned,
                    min(waits) if waits and not steps else None, capacity_only and not steps,
                    tuple(refused), too_large=too_large and nothing and not _any_fits(prep.rest, prep.meters),
                    frees_at=tuple(frees), free_tier_in_s=min(free_waits) if free_waits else None,
                    full_for=tuple(full_for))

    def _break_ties(
        self, ranked: list[tuple[tuple[Any, ...], PlanStep]], snapshot: StateSnapshot, now: float,
        tie_breaker: TieBreaker | None,
    ) -> list[PlanStep]:
        """Reorder each group of equal rank (tie_breaker or rotation); groups keep their order."""
        turn = next(self._turn)
        heads = [rank[:-2] for rank, _ in ranked]  # all but provider/model
        if len(set(heads)) == len(heads):  # no two equal (the usual case: paid models differ in cost)
            return [step for _, step in ranked]
        steps: list[PlanStep] = []
        group: list[PlanStep] = []
        tied: tuple[Any, ...] | None = None
        # groups of consecutive steps equal in all of their rank but provider/model (`itertools.groupby`,
        # written out: no key function called per step)
        for head, (_, step) in zip(heads, ranked, strict=True):
            if head != tied:
                steps += self._reordered(group, turn, snapshot, now, tie_breaker)
                group, tied = [step], head
            else:
                group.append(step)
        steps += self._reordered(group, turn, snapshot, now, tie_breaker)
        return steps

    @staticmethod
    def _reordered(group: list[PlanStep], turn: int, snapshot: StateSnapshot, now: float,
                   tie_breaker: TieBreaker | None) -> list[PlanStep]:
        """One group of equal rank in its turn's order (the tie-breaker's, or rotated)."""
        if len(group) < 2:
            return group
        if tie_breaker is not None:
            return list(tie_breaker(group, snapshot, now))
        offset = turn % len(group)
        return group[offset:] + group[:offset]


def _short_until(usages: Sequence[WindowUsage], amounts: Amounts, now: float,
                 memo: dict[tuple[Any, ...], float | None]) -> tuple[str, int, float] | None:
    """(unit, ask, until) of the window that stops `amounts` longest: it takes no ask of at least
    `ask` of `unit` before `until` while its counts only grow (None: no window stops it, or one
    never takes it)."""
    latest: tuple[str, int, float] | None = None
    for usage in usages:
        unit = usage.short_of(amounts)
        if unit is None:
            continue
        ask = amounts[unit]
        at = window_free_at(usage, {unit: ask}, now, memo)  # the memo `free_again_in` shares
        if at is None:
            return None
        if latest is None or at > latest[2]:
            latest = (unit, ask, at)
    return latest


def _above_a_limit(meters: tuple[Meter, ...], amounts: Amounts) -> str | None:
    """Why `amounts` can never fit one of the model's own (provider) limits, whatever is used.
    Every plan asks it of each model it finds full: an ask within the lowest ceiling of each unit
    (worked out once per set of meters) fits them all, and only one above looks for which."""
    ceilings = _LOWEST.get(meters)
    if ceilings is None:
        # keyed by the model's own meters: a caller's meter never counts here, and per-end-user
        # keys (a meter per `user` id) must not let one caller grow and clear it for everyone
        own = tuple(m for m in meters if m.scope != CALLER_SCOPE)
        ceilings = _LOWEST.get(own)
        if ceilings is None:
            if len(_LOWEST) >= _LOWEST_MAX:
                _LOWEST.clear()
            ceilings = _LOWEST[own] = _lowest_ceilings(own)
    for unit, ask in amounts.items():
        ceiling = ceilings.get(unit)
        if ceiling is not None and ask > ceiling:
            return _above(meters, amounts)
    return None


# a model's own (provider-scope) meters → each unit's lowest ceiling among them
_LOWEST: dict[tuple[Meter, ...], dict[str, int]] = {}
_LOWEST_MAX = 4096


def _lowest_ceilings(meters: Sequence[Meter]) -> dict[str, int]:
    lowest: dict[str, int] = {}
    for meter in meters:  # the model's own: `_above_a_limit` leaves the caller's out
        for unit, ceiling in meter.limit.maxima.items():
            if unit not in lowest or ceiling < lowest[unit]:
                lowest[unit] = ceiling
    return lowest


def _above(meters: Sequence[Meter], amounts: Amounts) -> str | None:
    """`_above_a_limit`'s reason: the first of the model's own limits the ask is above."""
    for meter in meters:
        if meter.scope == CALLER_SCOPE:
            continue
        limit = meter.limit
        for unit, ask in amounts.items():
            ceiling = limit.max_of(unit)
            if ceiling is not None and ask > ceiling:
                return (f"needs {ask} {unit}, more than its limit of {ceiling} per {limit.period.label} window "
                        f"on {meter.counter} allows at all")
    return None


def _any_fits(candidates: Sequence[Candidate], meters: Mapping[ModelKey, tuple[Meter, ...]]) -> bool:
    """Whether a candidate the state read did not hold has limits that could take its ask at all
    (so the request is not too large for every model, only for those read)."""
    return any(_above_a_limit(meters.get(c.key, ()), c.amounts) is None for c in candidates)


def caller_refusal(usages: Sequence[WindowUsage], amounts: Amounts, now: float) -> CallerRefusal | None:
    """The first of the caller's own windows (`CALLER_SCOPE`) that `amounts` does not fit."""
    for usage in usages:
        if usage.meter.scope != CALLER_SCOPE:
            continue
        unit = usage.short_of(amounts)
        if unit is None:
            continue
        at = usage.free_again_at(amounts, now)
        code = BUDGET_EXCEEDED if unit == USD_MICROS else USER_RATE_LIMITED
        return CallerRefusal(code, usage.fits(amounts) or f"{unit} limit reached", usage.meter.counter,
                             usage.meter.limit.period.name, None if at is None else max(0.0, at - now),
                             usage.remaining(unit), amounts[unit])
    return None


def _describe_left(requests: int | None, tokens: int | None) -> str:
    if requests is None and tokens is None:
        return "no known limit"
    parts = []
    if requests is not None:
        parts.append(f"{requests} request{'' if requests == 1 else 's'} left")
    if tokens is not None:
        parts.append(f"{tokens} token{'' if tokens == 1 else 's'} left")
    return ", ".join(parts)

