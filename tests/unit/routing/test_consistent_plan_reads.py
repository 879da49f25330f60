"""A plan reads the windows strongly consistent: what an earlier window carries must count every
reservation another container's write has already made.

A reservation's conditional write checks the window it writes against the ceiling the plan
worked out, and that ceiling leaves room for what earlier windows carry (a provider still counts
a call of the previous second for a second after it). The earlier windows are only read, not
checked by the write: read from a DynamoDB replica that has not yet applied another container's
reservation of a moment ago (an eventually consistent read), the carry came out one call short
and the plan let a second call into Mistral's 1 request/s a tenth of a second after the first.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from llm_gateway.routing.circuit_breaker import reset_local_counters
from tests.unit.routing.harness import FakeClock, OneWriteBehind, rig, served_or_refused


@pytest.fixture(autouse=True)
def _fresh_breakers() -> Iterator[None]:
    reset_local_counters()
    yield
    reset_local_counters()


@pytest.mark.parametrize("second_at", [1.05, 1.5, 1.9])
def test_a_call_made_just_before_a_window_ends_is_carried_by_every_container(second_at: float) -> None:
    """Container b calls Mistral at 0.95 s; container a asks at `second_at`, in the next second,
    while the table's replicas have not yet applied b's reservation. The provider counts one
    request per second, sliding: a must not call before 1.95 s (it waits for it, or is refused)."""
    clock = FakeClock()
    store = OneWriteBehind()
    a, b = (rig(providers=("mistral",), mistral_rps=1, store=store, clock=clock) for _ in range(2))
    clock.now = 0.95
    assert served_or_refused(b) == "mistral"
    clock.now = second_at
    served_or_refused(a)
    calls = sorted(call.at for r in (a, b) for call in r.fleet.calls if call.provider == "mistral")
    assert all(later - earlier >= 1.0 for earlier, later in itertools.pairwise(calls)), calls
