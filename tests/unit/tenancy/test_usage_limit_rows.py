"""`/v1/usage`'s limit rows: what a window has counted, even past its limit.

A window can hold more than its limit: an admin lowers a key's budget or `rpm` below what was
already used today, or a budget is passed by the bounded overshoot (prompts under-estimated).
The rows said `used` = the limit then (`used` was worked out as limit - remaining, and
remaining stops at 0), so a user who had spent $0.0164 under a budget lowered to $0.001 was
told they had used $0.001, below the day's `cost_usd`, which the README says a budget row's
`used` never is.
"""

from __future__ import annotations

import pytest

from llm_gateway.tenancy.limits import UserLimits, user_counter
from llm_gateway.tenancy.policy import Policy
from tests.unit.routing.harness import answer, pinned, rig


def _rows(r, policy: Policy) -> dict[tuple[str, str], dict]:
    usage = r.core.tenancy.usage(user="alice", policy=policy, admin=False, query={})
    return {(row["window"], row["unit"]): row for row in usage["limits"]}


def test_a_limit_lowered_below_what_was_used_shows_what_was_used() -> None:
    r = rig(providers=("openai",), paid=("openai",))
    r.fleet.set("openai", answer())
    r.core.tenancy.wall = r.clock.wall
    rich = Policy(rpm=10, daily_budget_usd=5.0)
    spent = 0.0
    for _ in range(3):
        routed = r.router.complete(pinned("openai"), limits=UserLimits(rich, user_counter("alice"), wall=r.clock.wall()))
        r.core.tenancy.record(_served(routed))
        spent += routed.cost_usd
    before = _rows(r, rich)
    assert before[("minute", "requests")]["used"] == 3
    used_usd = before[("day", "usd")]["used"]
    assert used_usd >= spent - 1e-9
    lowered = Policy(rpm=1, daily_budget_usd=0.000001)  # an admin lowers both below what was used today
    after = _rows(r, lowered)
    assert after[("minute", "requests")]["used"] == 3 and after[("minute", "requests")]["remaining"] == 0
    assert after[("day", "usd")]["used"] == pytest.approx(used_usd) and after[("day", "usd")]["remaining"] == 0
    today = r.core.tenancy.usage(user="alice", policy=lowered, admin=False, query={})["today"]
    assert after[("day", "usd")]["used"] >= today["cost_usd"]  # never below the day's cost


def _served(routed):
    from llm_gateway.tenancy.usage import ServedRequest

    return ServedRequest("alice", routed.provider, routed.model, routed.free, routed.cost_usd)
