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
    "selection_success_rate": "62 of 2,000 first choices fail (96.9 %): 35 meet the scenario's incidents (24 calls "
                              "into Gemini's 13:00-14:00 outage, as its breaker half-opens; 11 into Groq's 20-minute "
                              "429 storm), 1 a 500, and 26 timeouts of long answers (no max_tokens) at the first "
                              "provider: a non-streamed answer's length is unknown until it ends",
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
