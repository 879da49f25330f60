"""A caller's limits and budgets as more meters on the shared machinery. Pure.

Nothing here is a second rate limiter: a user's windows are `Meter`s of `CALLER_SCOPE` on a
counter `user#{id}` (its rate windows on `user#{id}#eu#{hash}` per end user; budgets stay on the
user's), and the runner reserves them with
the same conditional write on the counter's item as a provider's. `UserLimits.apply` is the one step
between a capability's preparation and planning:

- candidates outside the key's allow-list (`models`, `free_only`) are dropped; a pinned model the
  key may not use, or nothing it may use, is a 403 `model_not_allowed`;
- each paid candidate's `amounts` gain its *maximum* cost in micro-dollars (`USD_MICROS`) when a
  budget applies, so a user at budget is left with free tiers, and one paid call can pass a
  budget only by what its prompt was under-estimated by (output is reserved at its cap);
- the caller's meters are added to each candidate they concern (a window is added only where
  the candidate asks a positive amount of one of its units: a budget never costs a free call a
  write), including the gateway-wide daily spend cap, which makes every caller free-tier-only
  once it is reached.

`UserLimits.refusal` turns the planner's `CallerRefusal`s into the caller's 429:
`user_rate_limited` (with `Retry-After`) or `budget_exceeded` (with `resets_at`).
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass, replace
from functools import lru_cache

from llm_gateway.api.errors import CallerLimited, GatewayError, PermissionDenied
from llm_gateway.selection.planner import (
    BUDGET_EXCEEDED,
    USER_RATE_LIMITED,
    CallerRefusal,
    Candidate,
    Plan,
    Preparation,
    bounded,
)
from llm_gateway.state.items import pks_for
from llm_gateway.state.metering import (
    AUDIO_SECONDS,
    CALENDAR_DAY,
    CALENDAR_MONTH,
    CALLER_SCOPE,
    MINUTE,
    REQUESTS,
    TOKENS,
    USD_MICROS,
    Amounts,
    Meter,
    Period,
    WindowLimit,
    usd_micros,
)
from llm_gateway.state.store import ModelKey
from llm_gateway.tenancy.policy import Policy

USER_PREFIX = "user#"
GLOBAL_SPEND_COUNTER = "gateway#spend"  # the gateway-wide daily spend cap's counter
MODEL_NOT_ALLOWED = "model_not_allowed"  # the 403 code when the key's policy allows none of the models
MICROS = 1_000_000


def micros(usd: float | None) -> int | None:
    return None if usd is None else round(usd * MICROS)


def user_counter(user: str, end_user: str | None = None) -> str:
    """The counter a user's windows are kept on; per end user, the end user's id is hashed (it is
    the caller's free text: it must not shape or bloat the table's keys)."""
    if end_user is None:
        return f"{USER_PREFIX}{user}"
    return f"{USER_PREFIX}{user}#eu#{hashlib.sha256(end_user.encode()).hexdigest()[:24]}"


@lru_cache(maxsize=4096)
def caller_meters(counter: str, policy: Policy, cap_micros: int | None,
                  budget_counter: str | None = None) -> tuple[Meter, ...]:
    """The policy's windows on `counter`, plus the gateway-wide cap. Cached: the same objects for
    the same key, so the planner reads each window once per request.

    `budget_counter`: where the budgets are kept when that is not `counter`. A `per_end_user`
    key's rate windows are each end user's, but its budgets are its user's: the end user is the
    request's free text, so budgets kept per end user capped nothing (a new `user` value, a new
    budget)."""
    budgets = budget_counter or counter
    windows: tuple[tuple[str, Period, dict[str, int | None]], ...] = (
        (counter, MINUTE, {REQUESTS: policy.rpm, TOKENS: policy.tpm}),
        (counter, CALENDAR_DAY, {REQUESTS: policy.rpd, AUDIO_SECONDS: policy.audio_seconds_per_day}),
        (budgets, CALENDAR_DAY, {USD_MICROS: micros(policy.daily_budget_usd)}),
        (budgets, CALENDAR_MONTH, {USD_MICROS: micros(policy.monthly_budget_usd)}),
    )
    meters = []
    for on, period, maxima in windows:
        kept = {unit: n for unit, n in maxima.items() if n is not None}
        if kept:
            meters.append(Meter(on, WindowLimit(period, kept), CALLER_SCOPE))
    if cap_micros is not None:
        meters.append(Meter(GLOBAL_SPEND_COUNTER, WindowLimit(CALENDAR_DAY, {USD_MICROS: cap_micros}), CALLER_SCOPE))
    return tuple(meters)


def _concerns(meter: Meter, amounts: Amounts) -> bool:
    return any(amounts.get(unit, 0) > 0 for unit in meter.limit.maxima)


def _rank(candidate: Candidate) -> tuple[object, ...]:
    return (not candidate.entry.is_free, *candidate.rank)  # the preparers' order


@dataclass(slots=True, unsafe_hash=True)  # a value, never changed; not frozen: see FAST_VALUES in metering.py
class UserLimits:
    """One request's caller: its policy, the counter its windows are kept on, and the
    gateway-wide daily spend cap (micro-dollars, None = none)."""

    policy: Policy
    counter: str
    cap_micros: int | None = None
    wall: float | None = None  # the time refusals are reported against (tests); None = now
    budget_counter: str | None = None  # the budgets' counter when not `counter` (per end user: the user's)

    @property
    def meters(self) -> tuple[Meter, ...]:
        return caller_meters(self.counter, self.policy, self.cap_micros, self.budget_counter)

    def apply(self, prep: Preparation) -> Preparation:
        pool = (*prep.candidates, *prep.rest)
        policy = self.policy
        allowed = [c for c in pool if policy.allows(c.entry)] if policy.restricts else list(pool)
        if not allowed:
            raise self._not_allowed(prep)
        meters = self.meters
        if not meters and len(allowed) == len(pool):
            return prep  # nothing to narrow, nothing to add: the request costs nothing more
        budgeted = any(USD_MICROS in m.limit.maxima for m in meters)
        priced = sorted((self._priced(c) if budgeted else c for c in allowed), key=_rank)
        extra = [*prep.state_pks, *pks_for(meters, (), 0.0)]
        loaded, beyond = bounded(priced, prep.meters, extra)
        refused = {c.key for c in pool} - {c.key for c in allowed}
        moved = {c.key for c in prep.rest}
        dropped = [d for d in prep.dropped if d[0] not in moved]
        dropped += [(key, "not allowed for this key") for key in sorted(refused)]
        dropped += [(c.key, "not loaded: ranked below the best candidates") for c in beyond]
        return replace(
            prep, candidates=tuple(loaded), rest=tuple(beyond), dropped=tuple(dropped),
            meters={c.key: prep.meters[c.key] + tuple(m for m in meters if _concerns(m, c.amounts)) for c in loaded},
        )

    @staticmethod
    def _priced(candidate: Candidate) -> Candidate:
        if candidate.entry.is_free:
            return candidate
        most = candidate.max_cost_usd if candidate.max_cost_usd is not None else candidate.est_cost_usd
        return replace(candidate, amounts={**candidate.amounts, USD_MICROS: usd_micros(most)})

    def _not_allowed(self, prep: Preparation) -> GatewayError:
        return model_not_allowed(self.policy, prep.pinned)

    def refusal(self, plan: Plan) -> GatewayError | None:
        if not plan.refused:
            return None
        now = self.wall if self.wall is not None else time.time()
        rate = [r for r in plan.refused if r.code == USER_RATE_LIMITED]
        if rate:
            first = min(rate, key=lambda r: math.inf if r.free_again_in_s is None else r.free_again_in_s)
            return self._rate_limited(first)
        budget = [r for r in plan.refused if r.code == BUDGET_EXCEEDED]
        first = min(budget, key=lambda r: math.inf if r.free_again_in_s is None else r.free_again_in_s)
        return self._over_budget(first, plan, now)

    def _rate_limited(self, refusal: CallerRefusal) -> GatewayError:
        wait = refusal.free_again_in_s
        headers = {"Retry-After": str(max(1, math.ceil(wait)))} if wait is not None else {}
        extra = {"retry_after_s": round(wait, 3)} if wait is not None else {}
        when = f" Retry after {math.ceil(wait)}s." if wait is not None else " This request is above the limit itself."
        return CallerLimited(f"Your key's rate limit is reached ({_plain(refusal.reason)}).{when}",
                             code=USER_RATE_LIMITED, headers=headers, extra=extra)

    def _over_budget(self, refusal: CallerRefusal, plan: Plan, now: float) -> GatewayError:
        resets_in = refusal.free_again_in_s
        if resets_in is None:  # the most this call may cost is above the whole budget: a reset does not help
            return self._above_budget(refusal, plan)
        budget = self._budget_named(refusal)
        waits = [resets_in] + ([plan.free_again_in_s] if plan.free_again_in_s is not None else [])
        retry = max(1, math.ceil(min(waits)))
        resets_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + resets_in))
        left, needs = refusal.left, refusal.needs
        if left and needs:  # not used up: the most this call may cost is more than what is left
            whose = "The gateway's daily spend cap" if budget is None else f"Your {budget[0]} (${budget[1]:g})"
            fit = ("Send shorter audio (its duration sets the cost)" if _is_audio(plan) else
                   "Set max_tokens lower to fit what is left (what a request may cost is worked out from it, or from "
                   "the model's longest answer when it is unset)")
            message = (f"{whose} has ${_usd(left)} left, less than the most this request may cost (${_usd(needs)}), "
                       f"and no free tier can serve it now. {fit}, use a free model, or wait: the budget resets "
                       f"at {resets_at}.")
        else:
            what = ("The gateway's daily spend cap is reached: only free tiers serve until 00:00 UTC" if budget is None
                    else f"Your {budget[0]} (${budget[1]:g}) is spent")
            message = f"{what}, and no free tier can serve this request now. The budget resets at {resets_at}."
        return CallerLimited(message, code=BUDGET_EXCEEDED, error_type="insufficient_quota",
                             headers={"Retry-After": str(retry)}, extra={"resets_at": resets_at})

    def _above_budget(self, refusal: CallerRefusal, plan: Plan) -> GatewayError:
        """The most this request may cost (its `max_tokens`, or the model's longest answer when
        unset) is above the whole budget, spent or not: no reset makes it fit, so no reset time is
        given; a `Retry-After` only when a free tier that could serve it frees soon."""
        budget = self._budget_named(refusal)
        what = ("The most this request may cost is above the gateway's whole daily spend cap" if budget is None
                else f"The most this request may cost is above your whole {budget[0]} (${budget[1]:g})")
        if budget is not None and not budget[1]:  # a budget of 0: no max_tokens helps
            advice = "This key has no budget for paid models: use a free model."
        elif _is_audio(plan):  # no max_tokens: the audio's duration sets the cost
            advice = "Send shorter audio (its duration sets the cost), or use a free model."
        else:
            advice = ("Set max_tokens lower (what a request may cost is worked out from it, or from the model's "
                      "longest answer when it is unset), or use a free model.")
        wait = plan.free_again_in_s
        headers = {"Retry-After": str(max(1, math.ceil(wait)))} if wait is not None else {}
        return CallerLimited(f"{what}, and no free tier can serve it now. {advice}",
                             code=BUDGET_EXCEEDED, error_type="insufficient_quota", headers=headers)

    def _budget_named(self, refusal: CallerRefusal) -> tuple[str, float] | None:
        """The caller's budget that refused, as its name and amount (None: the gateway's spend cap)."""
        if refusal.counter == GLOBAL_SPEND_COUNTER:
            return None
        if refusal.period == "month":
            return "monthly budget", self.policy.monthly_budget_usd or 0.0
        return "daily budget", self.policy.daily_budget_usd or 0.0


def model_not_allowed(policy: Policy, pinned: ModelKey | None) -> GatewayError:
    """403 for a request none of whose models the key's policy allows."""
    if pinned is not None:
        message = f"The model '{pinned}' is not allowed for this key."
    else:
        message = "None of the models that could serve this request is allowed for this key."
    rules = ("free tiers only" if policy.free_only else "") + (
        f"{'; ' if policy.free_only else ''}allowed: {', '.join(policy.models)}" if policy.models else "")
    return PermissionDenied(f"{message} ({rules})." if rules else message, param="model", code=MODEL_NOT_ALLOWED)


def _is_audio(plan: Plan) -> bool:
    """A transcription or translation plan (`selection/transcription.py`'s labels): its cost is
    set by the audio's duration, not by a `max_tokens`."""
    return plan.label in ("transcription", "translation")


def _usd(micros: int) -> str:
    """Micro-dollars as dollars, to the micro-dollar, without trailing zeros: 1500 → 0.0015."""
    return f"{micros / 1_000_000:.6f}".rstrip("0").rstrip(".")


def _plain(reason: str) -> str:
    """The planner's reason, in the caller's terms (the counter is the caller's own)."""
    return reason.split(" left on ")[0] + " left" if " left on " in reason else reason
