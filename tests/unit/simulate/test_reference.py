"""The reference workload at CI size (a full day at a tenth of its volume, 2,000 requests) against
the seed's success metrics, one test per target (a missed target is a failure, not an xfail: the
last three misses were closed by failure streaks and by not reserving output nobody asked for)."""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest

from sandbox.simulate.engine import simulate
from sandbox.simulate.report import TARGETS, summarize
from sandbox.simulate.workload import load_workload

CI_REQUESTS_PER_DAY = 2_000
# Every target is met at CI size with seed 1. The thinnest margin is selection success: 18 of
# 2,000 requests are not served by their first choice (above 99 % needs fewer than 20), 11 of them
# calls into Gemini's 13:00-14:00 outage (one each time its failure mark runs out: 30, 60, 120,
# 240 s, then every 300 s) and 7 into Groq's 429 storm. Seeds 2-5 give 98.85-99.2 % (the README
# says so): a change that costs a few first choices shows here first.


@cache
def ci_summary() -> dict[str, Any]:
    return summarize(simulate(load_workload("reference").with_volume(CI_REQUESTS_PER_DAY), 1))


@pytest.mark.parametrize("key", [key for key, *_ in TARGETS])
def test_reference_workload_meets_the_seed_target(key: str) -> None:
    verdict = ci_summary()["targets"][key]
    assert verdict["pass"], f"{key} = {verdict['value']} (target {verdict['target']})"


def test_unpinned_requests_never_see_a_rate_limit_error() -> None:
    assert ci_summary()["user_rate_limit_error_rate_auto"] == 0
