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
    "availability": "5 of 2,000 requests fail (99.75 %): 3 are non-streamed answers of 3,400 to 4,000 tokens that "
                    "set no max_tokens, so nothing tells the gateway they are long before they come; at the simulated "
                    "speeds of the free tiers they need 25 to 48 s, past the 25 s a buffered answer may take (API "
                    "Gateway), and after the first provider's timeout the fastest one left has too little time left "
                    "(one is pinned to openai/gpt-4o-mini, 48 s for 4,000 tokens: no provider could); 1 is 413, "
                    "11,000 prompt tokens pinned to a 12,000-token-per-minute free tier; 1 is a pinned request "
                    "answered 429 by Groq's own 429 storm (15:00-15:20)",
    "selection_success_rate": "65 of 2,000 first choices fail (96.65 %): 34 meet the scenario's incidents (25 calls "
                              "into Gemini's 13:00-14:00 outage, as its breaker half-opens; 9 into Groq's 20-minute "
                              "429 storm) "
                              "and 31 timeouts of long answers (no max_tokens) at the first provider: a "
                              "non-streamed answer's length is unknown until it ends",
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
