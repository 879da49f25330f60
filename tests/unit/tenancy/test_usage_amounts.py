"""The ledger's counters for one served request, and the UTC day it is counted in."""

from __future__ import annotations

import itertools
import time

from llm_gateway.tenancy.usage import ServedRequest, cost_e8, day_of


def _reference_amounts(served: ServedRequest) -> dict[str, int]:
    """The counters as first written: every field, zeros dropped, then the same per model."""
    values = {
        "requests": 1, "free_requests": int(served.free), "paid_requests": int(not served.free),
        "tokens_in": max(0, served.tokens_in), "tokens_out": max(0, served.tokens_out),
        "audio_ms": max(0, round(served.audio_seconds * 1000)), "cost_e8": cost_e8(served.cost_usd),
    }
    values = {name: n for name, n in values.items() if n}
    model = f"{served.provider}/{served.model}"
    return {**values, **{f"{name}@{model}": n for name, n in values.items()}}


def test_amounts_are_the_counters_as_first_written_in_the_same_order() -> None:
    grid = itertools.product((True, False), (0.0, 5.1e-06, 0.004, -1.0), (0, 19, -3), (0, 8), (0.0, 0.0004, 12.3456))
    for free, cost, tokens_in, tokens_out, audio in grid:
        for provider, model in (("openai", "gpt-4o-mini"), ("groq", "whisper-large-v3"), ("openai", "gpt-4o-mini")):
            served = ServedRequest("u", provider, model, free, cost, tokens_in, tokens_out, audio)
            assert list(served.amounts().items()) == list(_reference_amounts(served).items())


def test_day_of_is_the_utc_date_at_every_moment_around_midnight() -> None:
    midnight = 1_790_035_200.0  # a UTC midnight
    assert midnight % 86_400 == 0
    for now in (midnight - 86_400.5, midnight - 0.001, midnight, midnight + 0.001, midnight - 1e-6, midnight + 86_399.9,
                midnight + 86_400, 0.0, 1.5, midnight - 0.5, midnight + 3 * 86_400 + 7):
        assert day_of(now) == time.strftime("%Y-%m-%d", time.gmtime(now)), now


def test_a_served_request_is_an_immutable_value() -> None:
    """What the ledger and the log read of it: its fields (with their defaults), none of which can
    be set once made; equal and hashed by its fields, as the frozen dataclass it was."""
    import pytest

    served = ServedRequest("u", "openai", "gpt-4o-mini", False, 0.5, 3)
    assert (served.user, served.provider, served.model, served.free, served.cost_usd, served.tokens_in,
            served.tokens_out, served.audio_seconds) == ("u", "openai", "gpt-4o-mini", False, 0.5, 3, 0, 0.0)
    for name in ("user", "cost_usd", "tokens_in", "audio_seconds"):
        with pytest.raises(AttributeError):
            setattr(served, name, None)
    with pytest.raises(AttributeError):
        served.other = 1  # type: ignore[attr-defined]
    same = ServedRequest(user="u", provider="openai", model="gpt-4o-mini", free=False, cost_usd=0.5, tokens_in=3)
    assert served == same and hash(served) == hash(same) and served != served._replace(tokens_out=1)
    assert repr(served) == ("ServedRequest(user='u', provider='openai', model='gpt-4o-mini', free=False, "
                            "cost_usd=0.5, tokens_in=3, tokens_out=0, audio_seconds=0.0)")
