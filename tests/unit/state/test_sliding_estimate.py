"""The sliding estimate against what a provider's exact sliding window counts.

Providers count sliding windows: what was used in the last N seconds. The gateway counts in fixed,
epoch-aligned window items and carries earlier items into the current one. For "never passes a
provider's limit" the estimate must never be *below* the provider's count, however the traffic
fell inside the windows. Each reservation below is written through `SharedState` into a
`MemoryStore` and read back as the planner reads it (`decode_snapshot`, `StateSnapshot.usage`),
and compared with the provider's worst case: every reservation counted from its stamp to a
length plus the stamp's slack later (the provider receives it a little after the write).

Found by `llm-gateway simulate`: Groq's audio-seconds-per-hour window was passed 9 times in the
reference day, because an hour whose audio came in its last minutes carried only the linear share
of it (5/6 ten minutes later) while the provider still counted all of it.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_gateway.state.memory import MemoryStore
from llm_gateway.state.metering import (
    AUDIO_SECONDS,
    REQUESTS,
    Meter,
    WindowLimit,
    counter_pks,
    model_counter,
    provider_counter,
    stamp_slack_s,
)
from llm_gateway.state.shared import SharedState

HOUR_START = 1_700_002_800  # an epoch-aligned hour (and second)


def _estimate(state: SharedState, meter: Meter, t: float) -> dict[str, int]:
    """used + carried per unit, as the planner would see it at `t`."""
    snapshot = state.load([meter], (), t)
    usage = snapshot.usage(meter, t)
    return {unit: usage.used.get(unit, 0) + usage.carried.get(unit, 0) for unit in meter.limit.maxima}


def _provider_worst(reserved: list[tuple[float, dict[str, int]]], seconds: int, t: float) -> dict[str, int]:
    """What the provider may count at `t`: every reservation stamped in (t - length - slack, t]."""
    slack = stamp_slack_s(seconds)
    out: dict[str, int] = {}
    for at, amounts in reserved:
        if t - seconds - slack < at <= t:
            for unit, n in amounts.items():
                out[unit] = out.get(unit, 0) + n
    return out


def test_an_hour_used_late_carries_all_of_it_while_the_provider_counts_it() -> None:
    """7,000 audio seconds in the last ten minutes of an hour: ten minutes into the next hour the
    provider still counts every one of them (its window reaches back 60 minutes)."""
    meter = Meter(model_counter("groq", "whisper-large-v3"), WindowLimit.of(3600, requests=20_000,
                                                                           audio_seconds=7_200))
    state = SharedState(MemoryStore(), fold_reconcile=False)
    for i in range(14):
        at = HOUR_START - 600 + i * 40
        assert state.reserve([state.load([meter], (), at).usage(meter, at)], {REQUESTS: 1, AUDIO_SECONDS: 500}, at)
    later = HOUR_START + 600
    assert _estimate(state, meter, later)[AUDIO_SECONDS] >= 7_000
    usage = state.load([meter], (), later).usage(meter, later)
    assert usage.fits({REQUESTS: 1, AUDIO_SECONDS: 300}) is not None  # 7,000 + 300 > 7,200: refused
    # and it frees once the provider's window has let go of enough of them
    at = usage.free_again_at({REQUESTS: 1, AUDIO_SECONDS: 300}, later)
    assert at is not None
    assert not _provider_worst([(HOUR_START - 600 + i * 40, {AUDIO_SECONDS: 500}) for i in range(14)], 3600, at)[
        AUDIO_SECONDS] + 300 > 7_200


def test_a_request_at_the_end_of_a_second_is_counted_through_the_next_boundary() -> None:
    """1 request/s (Mistral, organisation-wide): a request stamped at .99 may reach the provider up
    to the slack later, so it still counts right after the *next* boundary, two windows on, when
    the item it is in is no longer the previous one (the load then reads it as well)."""
    meter = Meter(provider_counter("mistral"), WindowLimit.of(1, requests=1))
    state = SharedState(MemoryStore(), fold_reconcile=False)
    first = HOUR_START + 0.99
    assert state.reserve([state.load([meter], (), first).usage(meter, first)], {REQUESTS: 1}, first)
    two_on = HOUR_START + 2.0
    assert len(counter_pks(meter, two_on)) == 3  # the first moments of a window read one more item
    assert state.load([meter], (), two_on).usage(meter, two_on).fits({REQUESTS: 1}) is not None
    assert state.load([meter], (), HOUR_START + 2.3).usage(meter, HOUR_START + 2.3).fits({REQUESTS: 1}) is None


@pytest.mark.parametrize("seconds", [1, 60, 3600])
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_the_estimate_never_falls_below_the_providers_sliding_count(seconds: int, data: st.DataObject) -> None:
    """Reservations at any moments over three windows, of any sizes; at any later moment the
    estimate is at least what the provider's sliding window may hold."""
    meter = Meter(model_counter("p", "m"), WindowLimit.of(seconds, requests=10**9, audio_seconds=10**12))
    state = SharedState(MemoryStore(), fold_reconcile=False)
    offsets = sorted(data.draw(st.lists(st.floats(0, 3 * seconds, allow_nan=False), min_size=1, max_size=30)))
    reserved: list[tuple[float, dict[str, int]]] = []
    for offset in offsets:
        at = HOUR_START + offset
        amounts = {REQUESTS: 1, AUDIO_SECONDS: data.draw(st.integers(1, 1000))}
        assert state.reserve([state.load([meter], (), at).usage(meter, at)], amounts, at) is not None
        reserved.append((at, amounts))
    probe = HOUR_START + offsets[-1] + data.draw(st.floats(0, 2 * seconds, allow_nan=False))
    estimate = _estimate(state, meter, probe)
    worst = _provider_worst(reserved, seconds, probe)
    for unit, n in worst.items():
        assert estimate[unit] >= n, (unit, estimate, worst)
