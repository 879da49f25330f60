"""Duration and Retry-After parsing shared by the OpenAI-family adapters (providers.md §2.1, §2.2)."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import httpx
import pytest

from llm_gateway.providers.headers import header, header_int, parse_duration, parse_retry_after


@pytest.mark.parametrize(("text", "seconds"), [
    ("6m0s", 360.0), ("2m59.56s", 179.56), ("12ms", 0.012), ("14h29m11.04s", 52151.04), ("1.5", 1.5),
    ("7.66s", 7.66), ("1s", 1.0), ("20ms", 0.02), ("1h", 3600.0), ("0s", 0.0),
])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("junk", [None, "", "   ", "soon", "5 minutes", "1d", "m", "12msx", "s5"])
def test_junk_durations_are_none(junk: str | None) -> None:
    assert parse_duration(junk) is None


def test_retry_after_seconds_and_ms_prefers_ms() -> None:
    assert parse_retry_after({"retry-after": "20"}) == 20
    assert parse_retry_after({"Retry-After": "1.5"}) == 1.5
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "20"}) == pytest.approx(0.25)
    assert parse_retry_after({"retry-after-ms": "nonsense", "retry-after": "3"}) == 3


def test_retry_after_http_date() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC).timestamp()
    date = format_datetime(datetime(2026, 1, 1, 12, 0, 30, tzinfo=UTC), usegmt=True)
    assert parse_retry_after({"retry-after": date}, now=now) == pytest.approx(30)
    past = format_datetime(datetime(2025, 1, 1, tzinfo=UTC), usegmt=True)
    assert parse_retry_after({"retry-after": past}, now=now) == 0


def test_retry_after_absent_or_junk() -> None:
    assert parse_retry_after({}) is None
    assert parse_retry_after({"retry-after": "later please"}) is None


def test_header_lookup_is_case_insensitive_on_dicts_and_httpx() -> None:
    assert header({"X-RateLimit-Limit-Requests": "60"}, "x-ratelimit-limit-requests") == "60"
    assert header(httpx.Headers({"X-Foo": "1"}), "x-foo") == "1"
    assert header_int({"a": "59.0"}, "a") == 59
    assert header_int({"a": "x"}, "a") is None
    assert header_int({}, "a") is None
