"""Duration and Retry-After parsing shared by the OpenAI-family adapters (providers.md §2.1, §2.2)."""

from __future__ import annotations

import math
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


# --- numbers a provider (or anything between it and us) can send that are not numbers ------------
NASTY = ["1e999", "-1e999", "inf", "-inf", "Infinity", "nan", "NaN", "9" * 400, "1e308", "-5", "1" * 30,
         "99999999999999999999999h", "9" * 400 + "s", "1e999ms", "0x10", "٣", " 12 "]


@pytest.mark.parametrize("value", NASTY)
def test_non_finite_or_absurd_values_are_absent(value: str) -> None:
    for parsed in (parse_duration(value), parse_retry_after({"retry-after": value}),
                   parse_retry_after({"retry-after-ms": value}), header_int({"x": value}, "x")):
        assert parsed is None or (math.isfinite(parsed) and 0 <= parsed <= 10**12), (value, parsed)


@pytest.mark.parametrize("kind", ["openai", "groq", "mistral", "cohere", "gemini"])
@pytest.mark.parametrize("value", NASTY)
def test_no_adapter_stores_a_non_finite_limit(kind: str, value: str) -> None:
    from tests.unit.providers.helpers import adapter

    names = ["retry-after", "retry-after-ms", "x-ratelimit-limit-requests", "x-ratelimit-remaining-requests",
             "x-ratelimit-reset-requests", "x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens",
             "x-ratelimit-reset-tokens", "x-ratelimit-limit-req-minute", "x-ratelimit-remaining-req-minute",
             "x-ratelimit-limit-tokens-minute", "x-ratelimit-remaining-tokens-minute",
             "x-ratelimit-remaining-tokens-month", "x-ratelimit-limit-tokens-month",
             "x-trial-endpoint-call-limit", "x-trial-endpoint-call-remaining"]
    if not value.isascii():
        return  # header values arrive as ASCII/latin-1 bytes; the parsers above cover the rest
    info = adapter(kind).parse_rate_limits(httpx.Headers({name: value for name in names}))
    if info is None:
        return
    for field in ("limit_requests", "remaining_requests", "reset_requests_s", "limit_tokens", "remaining_tokens",
                  "reset_tokens_s", "retry_after_s"):
        number = getattr(info, field)
        assert number is None or (math.isfinite(number) and 0 <= number <= 10**12), (field, number)
    hint = info.cooldown_s()
    assert hint is None or math.isfinite(hint)


def test_gemini_retry_delay_of_absurd_length_is_absent() -> None:
    from tests.unit.providers.helpers import adapter

    body = {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "Please retry in " + "9" * 400 + "s.",
                      "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "9" * 400 + "s"},
                                  {"@type": "type.googleapis.com/google.rpc.QuotaFailure",
                                   "violations": [{"quotaId": "GenerateRequestsPerDay", "quotaValue": "9" * 400}]}]}}
    import json

    error = adapter("gemini").parse_error(429, {}, json.dumps(body).encode(), "gemini-2.5-flash")
    info = error.rate_limit
    assert info is None or info.retry_after_s is None or math.isfinite(info.retry_after_s)
    assert info is None or info.limit_requests is None or info.limit_requests <= 10**12


def test_folded_headers_answer_every_lookup_as_httpx_headers_do():
    """What the engine hands the adapters (read once) reads as the response's own headers:
    any case, a repeated header's values joined, an absent one None; and so every adapter's
    rate limits parse the same from either."""
    from llm_gateway.config import load_settings
    from llm_gateway.providers.base import CHAT, TRANSCRIPTION
    from llm_gateway.providers.factory import build_adapters
    from llm_gateway.providers.headers import FoldedHeaders

    raw = httpx.Headers([("X-RateLimit-Limit-Requests", "500"), ("x-ratelimit-remaining-requests", "499"),
                         ("Retry-After", "7"), ("Set-Cookie", "a=1"), ("set-cookie", "b=2"),
                         ("x-ratelimit-reset-requests", "1m2.5s"), ("RateLimit-Remaining", "3")])
    folded = FoldedHeaders.of(raw)
    for name in ("x-ratelimit-limit-requests", "X-RATELIMIT-LIMIT-REQUESTS", "retry-after", "set-cookie",
                 "Set-Cookie", "x-ratelimit-reset-requests", "ratelimit-remaining", "absent", "x-ratelimit-limit-tokens"):
        assert header(folded, name) == header(raw, name)
    assert header(folded, "set-cookie") == "a=1, b=2"
    names = ("OPENAI", "GROQ", "GEMINI", "COHERE", "MISTRAL", "REPLICATE")
    settings = load_settings({f"{name}_API_KEY": "k" for name in names} | {"LLM_GATEWAY_API_KEYS": "c" * 32})
    adapters = [*build_adapters(settings.providers, CHAT).values(), *build_adapters(settings.providers, TRANSCRIPTION).values()]
    assert len(adapters) >= 6
    for adapter in adapters:
        assert adapter.parse_rate_limits(folded) == adapter.parse_rate_limits(raw)
        assert adapter.parse_rate_limits(folded) is not None or adapter.name == "replicate"
