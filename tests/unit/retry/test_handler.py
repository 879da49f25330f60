"""The attempt loop on a fake clock: attempt cap, deadline, shrinking timeouts, waits only when asked."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_gateway.api.errors import AllProvidersFailed
from llm_gateway.retry.aggregate import aggregate_error
from llm_gateway.retry.handler import AttemptFailed, DeadlineExhausted, RetryHandler, RetrySettings


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def make(**kw):
    t = FakeTime()
    return t, RetryHandler(RetrySettings(**kw), clock=t.clock, sleep=t.sleep)


def test_stops_after_max_attempts() -> None:
    t, handler = make(max_attempts=3, deadline_s=100)
    calls = []

    def attempt(ctx):
        calls.append(ctx.number)
        raise AttemptFailed(RuntimeError("boom"), retry=True)

    with pytest.raises(AttemptFailed):
        handler.run(attempt, handler.deadline())
    assert calls == [1, 2, 3]
    assert t.sleeps == []  # switching models never waits


def test_returns_first_success_and_does_not_retry_return_actions() -> None:
    _, handler = make()
    assert handler.run(lambda ctx: f"ok{ctx.number}", handler.deadline()) == "ok1"
    calls = []

    def attempt(ctx):
        calls.append(ctx.number)
        raise AttemptFailed(ValueError("bad request"), retry=False)

    with pytest.raises(AttemptFailed):
        handler.run(attempt, handler.deadline())
    assert calls == [1]


def test_waits_only_what_the_attempt_asked() -> None:
    t, handler = make(max_attempts=3, deadline_s=100)
    waits = iter([0.5, 0.0])

    def attempt(ctx):
        if ctx.number == 3:
            return "done"
        raise AttemptFailed(RuntimeError("reset"), retry=True, wait_s=next(waits))

    assert handler.run(attempt, handler.deadline()) == "done"
    assert t.sleeps == [0.5]


def test_no_attempt_starts_without_enough_time() -> None:
    t, handler = make(max_attempts=10, deadline_s=3, attempt_timeout_s=20, safety_margin_s=0.25, min_attempt_s=0.5)
    timeouts = []

    def attempt(ctx):
        timeouts.append(ctx.timeout_s)
        t.now += 1.0  # each attempt burns a second
        raise AttemptFailed(RuntimeError("slow"), retry=True)

    deadline = handler.deadline()
    with pytest.raises(AttemptFailed):
        handler.run(attempt, deadline)
    assert timeouts == [2.75, 1.75, 0.75]  # per-attempt timeouts shrink with what is left
    assert t.now <= deadline.at


def test_deadline_already_gone() -> None:
    _t, handler = make(deadline_s=0.3)
    with pytest.raises(DeadlineExhausted):
        handler.run(lambda ctx: "never", handler.deadline())


@settings(max_examples=200)
@given(
    deadline=st.floats(min_value=0.0, max_value=30),
    attempt_timeout=st.floats(min_value=0.1, max_value=20),
    durations=st.lists(st.floats(min_value=0, max_value=40), min_size=1, max_size=6),
    waits=st.lists(st.floats(min_value=0, max_value=5), min_size=6, max_size=6),
    max_attempts=st.integers(min_value=1, max_value=6),
)
def test_never_past_the_deadline(deadline, attempt_timeout, durations, waits, max_attempts) -> None:
    """An attempt that honours its timeout can never push the request past its deadline."""
    t, handler = make(max_attempts=max_attempts, deadline_s=deadline, attempt_timeout_s=attempt_timeout)
    d = handler.deadline()
    n = [0]

    def attempt(ctx):
        assert ctx.timeout_s <= attempt_timeout
        assert ctx.timeout_s <= d.remaining()
        t.now += min(ctx.timeout_s, durations[n[0] % len(durations)])
        n[0] += 1
        raise AttemptFailed(RuntimeError("x"), retry=True, wait_s=min(waits[n[0] - 1], handler.wait_budget(d)))

    with pytest.raises((AttemptFailed, DeadlineExhausted)):
        handler.run(attempt, d)
    assert n[0] <= max_attempts
    assert t.now <= d.at + 1e-9


class A:
    def __init__(self, provider, model, error_class, status):
        self.provider, self.model, self.error_class, self.status = provider, model, error_class, status

    def public(self):
        return {"provider": self.provider, "model": self.model, "error_class": self.error_class, "status": self.status}


def test_aggregated_error_shapes() -> None:
    limited = aggregate_error([A("groq", "m1", "rate_limited", 429), A("gemini", "m2", "rate_limited", 429)],
                              retry_after_s=2.2)
    assert isinstance(limited, AllProvidersFailed)
    assert limited.status == 429 and limited.headers == {"Retry-After": "3"}
    body = limited.body()["error"]
    assert body["type"] == "rate_limit_error"
    assert body["attempts"] == [
        {"provider": "groq", "model": "m1", "error_class": "rate_limited", "status": 429},
        {"provider": "gemini", "model": "m2", "error_class": "rate_limited", "status": 429},
    ]
    mixed = aggregate_error([A("groq", "m1", "rate_limited", 429), A("openai", "m", "server_error", 500)])
    assert mixed.status == 503 and "Retry-After" not in mixed.headers
    assert aggregate_error([], skipped_for_rate_limits=True, retry_after_s=5).status == 429
    assert aggregate_error([]).status == 503
