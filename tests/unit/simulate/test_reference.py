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
KNOWN_MISSES = {
    "availability": "19 of 2,000 requests end 503 all_providers_failed at CI size (50 before attempt timeouts "
                    "scaled with what a call may use); the rest of the cause is not analysed yet",
    "selection_success_rate": "the same: 96 % of first choices served (90 % before timeouts scaled with size)",
    "user_rate_limit_error_rate": "requests pinned to groq/llama-3.3-70b-versatile get 429 once its free tier "
                                  "is used up (pinned requests never move); unpinned requests get none",
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
