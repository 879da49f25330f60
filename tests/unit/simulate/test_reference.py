"""The reference workload at CI size (a full day at a tenth of its volume, 2,000 requests) against
the seed's success metrics. Targets the gateway misses today are strict xfails naming the cause
the simulator showed, so fixing one turns its test into a failure that asks for the mark to go."""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest

from sandbox.simulate.engine import simulate
from sandbox.simulate.report import TARGETS, summarize
from sandbox.simulate.workload import load_workload

CI_REQUESTS_PER_DAY = 2_000
STORM = ("pinned to a Groq model during the scenario's 15:00-15:20 429 storm (80 % of Groq's calls refused with "
         "Retry-After: 20 s): the gateway does not call again before a provider's Retry-After, and a pinned request "
         "has nowhere else to go, so it gets the honest 429 with Retry-After; how many pinned requests the storm "
         "catches depends on the order of calls (1 before answers sent whole were read as streams, 2 after)")
KNOWN_MISSES = {
    "availability": "3 of 2,000 requests fail (99.85 %): 1 is 413, 11,000 prompt tokens pinned to a 12,000-token-"
                    "per-minute free tier; 2 are " + STORM,
    "user_rate_limit_error_rate": "2 of 2,000 (0.1 %, the target is below it) are " + STORM,
    "selection_success_rate": "42 of 2,000 requests are not served by their first choice (97.9 %): the 413 (no "
                              "call) and 41 first calls into the scenario's incidents and background failures: 29 "
                              "into Gemini's 13:00-14:00 outage, as its breaker half-opens, 10 into Groq's 429 storm, "
                              "1 timeout, 1 background 500. No long answer times out at its first provider any more: "
                              "answers sent whole are read as streams, their first chunk within the attempt's timeout",
}


@cache
def ci_summary() -> dict[str, Any]:
    return summarize(simulate(load_workload("reference").with_volume(CI_REQUESTS_PER_DAY), 1))


@pytest.mark.parametrize("key", [
    pytest.param(key, marks=pytest.mark.xfail(strict=True, reason=KNOWN_MISSES[key])) if key in KNOWN_MISSES else key
    for key, *_ in TARGETS
])
def test_reference_workload_meets_the_seed_target(key: str) -> None:
    verdict = ci_summary()["targets"][key]
    assert verdict["pass"], f"{key} = {verdict['value']} (target {verdict['target']})"


def test_unpinned_requests_never_see_a_rate_limit_error() -> None:
    assert ci_summary()["user_rate_limit_error_rate_auto"] == 0


# The missed targets' strict xfails flip only when a target is met; these hold the figures the
# reasons above name, so a miss cannot grow unnoticed.
FLOORS = {"availability": (">=", 0.9985), "selection_success_rate": (">=", 0.979),
          "user_rate_limit_error_rate": ("<=", 0.001)}


@pytest.mark.parametrize("key", sorted(FLOORS))
def test_a_missed_target_misses_by_no_more_than_its_reason_says(key: str) -> None:
    op, bound = FLOORS[key]
    value = ci_summary()[key]
    assert (value >= bound) if op == ">=" else (value <= bound), f"{key} = {value}, was {op} {bound}"
