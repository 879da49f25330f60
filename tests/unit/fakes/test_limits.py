"""The fakes' rate limits count like the real providers: sliding windows, not epoch-aligned blocks;
limits per model and for the whole organisation; calendar months for monthly quotas."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sandbox.fakes.limits import MODEL, ORG, RateLimiter, WindowState, parse_dimensions, parse_model_limits


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def limiter(limits: dict | None = None, org: dict | None = None, clock: Clock | None = None) -> RateLimiter:
    return RateLimiter(parse_model_limits(limits), parse_dimensions(org, "org_limits"), clock or Clock())


def test_no_burst_across_a_window_boundary() -> None:
    """Two per minute means two in ANY 60 s: a fixed window opened at t=0 would have let two more
    through at t=61 and t=62, four requests in four seconds."""
    clock = Clock(0.0)
    rl = limiter({"default": {"rpm": 2}}, clock=clock)
    assert not rl.admit("m", 1).exceeded
    clock.now = 59.0
    assert not rl.admit("m", 1).exceeded
    clock.now = 61.0
    assert not rl.admit("m", 1).exceeded  # the t=0 request has left the window
    clock.now = 62.0
    refused = rl.admit("m", 1).exceeded
    assert refused is not None and refused.dimension.key == "rpm" and refused.scope == MODEL
    assert refused.retry_after == pytest.approx(57.0)  # when the t=59 request leaves the window
    assert (refused.limit, refused.used, refused.requested) == (2, 2, 1)


def test_headers_count_down_and_reset_when_the_window_is_empty() -> None:
    clock = Clock(100.0)
    rl = limiter({"default": {"rpm": 3, "tpm": 1000}}, clock=clock)
    rl.admit("m", 10)
    clock.now = 110.0
    snap = rl.add_tokens("m", 5)
    rpm, tpm = snap.get("rpm"), snap.get("tpm")
    assert rpm is not None and (rpm.limit, rpm.remaining) == (3, 2)
    assert rpm.reset_s == pytest.approx(50.0)  # back to full when the only request leaves
    assert tpm is not None and tpm.remaining == 985 and tpm.reset_s == pytest.approx(60.0)
    clock.now = 171.0
    assert rl.peek("m").get("rpm") == WindowState(3, 3, 0.0)


def test_completion_tokens_may_overrun_and_the_wait_covers_the_excess() -> None:
    clock = Clock(0.0)
    rl = limiter({"default": {"tpm": 100}}, clock=clock)
    assert not rl.admit("m", 40).exceeded
    rl.add_tokens("m", 80)  # 120 used of 100, as OpenAI's "Used" can exceed the limit
    clock.now = 10.0
    refused = rl.admit("m", 30).exceeded
    assert refused is not None and refused.dimension.unit == "tokens" and refused.used == 120
    assert refused.retry_after == pytest.approx(50.0)  # both t=0 entries must leave
    clock.now = 60.0
    assert not rl.admit("m", 30).exceeded


def test_a_request_larger_than_the_limit_waits_the_whole_window() -> None:
    rl = limiter({"default": {"tpm": 10}})
    refused = rl.admit("m", 11).exceeded
    assert refused is not None and refused.retry_after == 60.0


def test_organisation_limit_spans_all_models() -> None:
    """Mistral's free tier: 1 request per second for the whole organisation, whatever the model."""
    clock = Clock(0.0)
    rl = limiter(org={"rps": 1}, clock=clock)
    assert not rl.admit("mistral-small-latest", 5).exceeded
    clock.now = 0.4
    refused = rl.admit("mistral-large-latest", 5).exceeded
    assert refused is not None and (refused.scope, refused.dimension.key) == (ORG, "rps")
    assert refused.retry_after == pytest.approx(0.6)
    clock.now = 1.0
    assert not rl.admit("mistral-large-latest", 5).exceeded
    assert rl.describe()["usage"]["org"]["rps"] == {"limit": 1, "used": 1, "remaining": 0, "reset_s": 1.0}


def test_snapshot_reports_the_binding_scope() -> None:
    rl = limiter({"default": {"rpm": 100}}, org={"rpm": 3})
    rl.admit("a", 1)
    rl.admit("b", 1)
    rpm = rl.admit("a", 1).get("rpm")
    assert rpm is not None and (rpm.limit, rpm.remaining) == (3, 0)  # the organisation's, not a's 98


def test_refusal_reports_the_longest_wait() -> None:
    clock = Clock(0.0)
    rl = limiter({"default": {"rpm": 1}}, org={"rps": 1}, clock=clock)
    rl.admit("m", 1)
    refused = rl.admit("m", 1).exceeded
    assert refused is not None and refused.dimension.key == "rpm" and refused.retry_after == pytest.approx(60.0)


def test_calendar_month_resets_on_the_first_utc() -> None:
    """Cohere's trial key: 1,000 calls per calendar month, not per rolling 30 days."""
    clock = Clock(datetime(2026, 1, 31, 23, 59, 58, tzinfo=UTC).timestamp())
    rl = limiter(org={"rpmonth": 2}, clock=clock)
    assert not rl.admit("command-a-03-2025", 1).exceeded
    assert not rl.admit("command-r-08-2024", 1).exceeded
    refused = rl.admit("command-a-03-2025", 1).exceeded
    assert refused is not None and (refused.dimension.key, refused.dimension.period) == ("rpmonth", "month")
    assert refused.retry_after == pytest.approx(2.0)
    assert rl.peek("x").get("rpmonth").reset_s == pytest.approx(2.0)  # type: ignore[union-attr]
    clock.now = datetime(2026, 2, 1, tzinfo=UTC).timestamp()
    assert not rl.admit("command-a-03-2025", 1).exceeded
    assert rl.peek("x").get("rpmonth").remaining == 1  # type: ignore[union-attr]


def test_monthly_tokens_across_december() -> None:
    clock = Clock(datetime(2026, 12, 31, 12, tzinfo=UTC).timestamp())
    rl = limiter(org={"tpmonth": 100}, clock=clock)
    rl.admit("m", 60)
    rl.add_tokens("m", 50)
    refused = rl.admit("m", 1).exceeded
    assert refused is not None and refused.retry_after == pytest.approx(12 * 3600)


def test_injected_429_reads_as_exhausted() -> None:
    rl = limiter({"default": {"rpm": 50, "rpd": 500}})
    snap = rl.exhausted("m", retry_after=7)
    assert snap.get("rpm").remaining == 0 and snap.get("rpd").remaining == 0  # type: ignore[union-attr]
    assert snap.get("rpm").reset_s == 7 and snap.get("tpm").remaining > 0  # type: ignore[union-attr]
    assert snap.exceeded is not None and snap.exceeded.retry_after == 7 and snap.exceeded.limit == 50
    assert rl.exhausted(None, None).exceeded.retry_after == 1.0  # type: ignore[union-attr]


def test_configure_replaces_limits_and_reset_restores_the_startup_ones() -> None:
    rl = limiter({"default": {"rpm": 5}})
    rl.admit("m", 1)
    rl.configure(org_limits={"rps": 1})
    assert rl.describe()["org_limits"] == {"rps": 1} and rl.describe()["usage"]["models"] == {}
    assert rl.describe()["limits"]["default"] == {"rpm": 5}
    rl.reset()
    assert rl.describe()["org_limits"] == {}


@pytest.mark.parametrize("bad", [{"rpmm": 1}, {"rpm": -1}, {"rpm": "many"}, {"rpm": True}, [1]])
def test_limit_typos_are_errors_not_unlimited(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_dimensions(bad, "org_limits")
    with pytest.raises(ValueError):
        parse_model_limits({"default": bad})


def test_calendar_month_window_at_its_edges_and_with_time_going_back() -> None:
    """The window keeps its month's bounds (`CalendarMonth._roll`): the month is still worked out
    from the time at either edge, and a time before the month kept is a month of its own again."""
    from sandbox.fakes.limits import CalendarMonth

    december = datetime(2026, 12, 1, tzinfo=UTC).timestamp()
    window = CalendarMonth(100)
    window.add(40, december - 10.0)
    assert window.remaining(december - 10.0) == 60 and window.reset_in(december - 10.0) == 10.0
    assert window.fits_in(70, december - 1e-3) == pytest.approx(1e-3, abs=1e-6)  # still November: wait for the 1st
    assert window.fits_in(70, december - 1e-7) == 0.0  # rounds to the 1st (microseconds), as a datetime does
    assert window.remaining(december) == 100  # the 1st, 00:00: everything freed
    window.add(30, december + 5.0)
    assert window.reset_in(december + 5.0) == datetime(2027, 1, 1, tzinfo=UTC).timestamp() - (december + 5.0)
    assert window.remaining(december - 3600.0) == 100  # back in November: its count starts again
    assert window.remaining(december + 5.0) == 100
