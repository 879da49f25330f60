"""Users, as the façades see them: keys, the limits of one request, the ledger, `/v1/usage`.

Built once per container by the composition root (`compose.build_core`) and shared by every
capability's façade: `limits_for` gives the runner the caller's `UserLimits`, `record` writes a
served request to the ledger (and the request's summary log line), `usage` answers `/v1/usage`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from llm_gateway.api.errors import InvalidRequest, PermissionDenied
from llm_gateway.state.items import StateSnapshot, decode_snapshot, pks_for
from llm_gateway.state.metering import (
    CALENDAR_MONTH,
    USD_MICROS,
    Meter,
)
from llm_gateway.state.store import StateStore
from llm_gateway.tenancy.admin import USER_ID, KeyAdmin
from llm_gateway.tenancy.keys import KeyDirectory, KeyStore
from llm_gateway.tenancy.limits import GLOBAL_SPEND_COUNTER, UserLimits, caller_meters, user_counter
from llm_gateway.tenancy.policy import Policy
from llm_gateway.tenancy.usage import ServedRequest, UsageLedger, day_of, summarize

MAX_DAYS = 92
STATIC_USERS = ("static",)  # the users static keys authenticate as (`api.auth.STATIC_USER`)
_WINDOW_NAMES = {"60": "minute", "day": "day", "month": "month"}


@dataclass
class Tenancy:
    """Users, keys and usage: the stores and services behind per-user limits and the admin API."""

    keys: KeyStore
    directory: KeyDirectory
    admin: KeyAdmin
    ledger: UsageLedger
    store: StateStore
    cap_micros: int | None = None
    wall: Callable[[], float] = time.time

    def limits_for(self, user: str, policy: Policy, end_user: str | None) -> UserLimits:
        """The runner's view of this request's caller: its rate windows per end user when the
        policy says so and the request names one; its budgets always the user's."""
        per_end_user = end_user if policy.per_end_user and end_user else None
        if per_end_user is None:
            return UserLimits(policy, user_counter(user), self.cap_micros)
        return UserLimits(policy, user_counter(user, per_end_user), self.cap_micros,
                          budget_counter=user_counter(user))

    def record(self, served: ServedRequest) -> None:
        self.ledger.record(served, self.wall())

    # --- GET /v1/usage ------------------------------------------------------------------------------
    def usage(self, *, user: str, policy: Policy, admin: bool, query: Mapping[str, str]) -> dict[str, Any]:
        """The caller's own usage today and this month, with its limits and what is left; an
        admin may ask for any user (`user=U`), every user (`user=*`) and a range (`days=N`)."""
        now = self.wall()
        wanted = query.get("user") or user
        if wanted != user and not admin:
            raise PermissionDenied("Only admin keys may read another user's usage.", param="user",
                                   code="admin_key_required")
        if wanted != user and wanted != "*" and not USER_ID.fullmatch(wanted):  # read as part of state keys
            raise InvalidRequest("Invalid value for 'user' (a user id: letters, digits and . _ @ + -, up to 128; "
                                 "or * for every user).", param="user", code="invalid_value")
        days = _days(query.get("days"))
        users = self._all_users() if wanted == "*" else [wanted]
        today = day_of(now)
        month_start = CALENDAR_MONTH.start(now)
        month_days = [day_of(month_start + 86_400 * i) for i in range(int((now - month_start) // 86_400) + 1)]
        ranged = [day_of(now - 86_400 * i) for i in range(days or 0)][::-1]
        items = self.ledger.read(users, sorted(set(month_days) | set(ranged)), now)
        answer: dict[str, Any] = {
            "object": "usage", "user": wanted,
            "today": {"date": today, **summarize(v for (_, d), v in items.items() if d == today)},
            "month": {"month": today[:7], **summarize(v for (_, d), v in items.items() if d in month_days)},
        }
        if days:
            answer["days"] = [{"date": d, "user": u, **summarize([items[(u, d)]])}
                              for d in ranged for u in users if (u, d) in items]
        if wanted == user:
            answer["limits"] = self._limits(user, policy, admin, now)
        return answer

    def _all_users(self) -> list[str]:
        return sorted({*STATIC_USERS, *self.admin.users()})

    def _limits(self, user: str, policy: Policy, admin: bool, now: float) -> list[dict[str, Any]]:
        meters = [m for m in caller_meters(user_counter(user), policy, self.cap_micros)
                  if admin or m.counter != GLOBAL_SPEND_COUNTER]
        pks = pks_for(meters, (), now)
        snapshot = decode_snapshot(self.store.load(pks, now) if pks else {}, (), now, meters)
        return [row for m in meters for row in _limit_rows(m, snapshot, now)]


def _limit_rows(meter: Meter, snapshot: StateSnapshot, now: float) -> list[dict[str, Any]]:
    window = snapshot.usage(meter, now)
    period = meter.limit.period
    rows = []
    for unit, maximum in sorted(meter.limit.maxima.items()):
        remaining = window.remaining(unit) or 0
        # What the window counted, not limit - remaining: that stops at the limit, and a window
        # can hold more (a limit lowered below today's use, a budget's bounded overshoot).
        used = max(0, window.used.get(unit, 0) + window.carried.get(unit, 0))
        row: dict[str, Any] = {
            "window": _WINDOW_NAMES.get(period.name, period.name), "unit": unit, "limit": maximum,
            "used": used, "remaining": remaining,
            "resets_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(period.end(window.start))),
        }
        if unit == USD_MICROS:
            row.update(unit="usd", limit=maximum / 1e6, used=used / 1e6, remaining=remaining / 1e6)
        if meter.counter == GLOBAL_SPEND_COUNTER:
            row["scope"] = "gateway"
        rows.append(row)
    return rows


def _days(raw: str | None) -> int | None:
    if raw in (None, ""):
        return None
    try:
        days = int(raw)
    except ValueError:
        days = 0
    if not 1 <= days <= MAX_DAYS:
        raise InvalidRequest(f"'days' must be a whole number from 1 to {MAX_DAYS}.", param="days", code="invalid_value")
    return days
