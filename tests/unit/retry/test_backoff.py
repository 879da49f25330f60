"""Backoff bounds as properties: 0 ≤ delay ≤ cap, hints honoured, never past the deadline."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from llm_gateway.providers.base import ProviderError, RateLimitInfo
from llm_gateway.retry.backoff import BackoffPolicy, cooldown_s, full_jitter, retry_delay, retry_hint_s
from llm_gateway.retry.classifier import ErrorClass

policies = st.builds(
    BackoffPolicy,
    base_s=st.floats(min_value=0.001, max_value=5),
    cap_s=st.floats(min_value=0.01, max_value=30),
)
rands = st.floats(min_value=0.0, max_value=0.999999)


@given(st.integers(min_value=0, max_value=200), policies, rands)
def test_full_jitter_within_zero_and_cap(attempt, policy, r) -> None:
    delay = full_jitter(attempt, policy, lambda: r)
    assert 0.0 <= delay <= policy.cap_s
    assert delay <= policy.base_s * 2 ** min(attempt, 32) + 1e-9


@given(st.integers(min_value=0, max_value=50), policies, rands,
       st.floats(min_value=-5, max_value=60), st.one_of(st.none(), st.floats(min_value=0.0, max_value=60)))
def test_retry_delay_bounds(attempt, policy, r, remaining, hint) -> None:
    delay = retry_delay(attempt, policy=policy, remaining_s=remaining, hint_s=hint, rand=lambda: r)
    if delay is None:
        return
    assert 0.0 <= delay <= policy.cap_s
    assert delay <= remaining  # never waits past the deadline
    if hint is not None and hint > 0:
        assert delay >= hint  # honours Retry-After


@given(policies, st.floats(min_value=0.01, max_value=100))
def test_hint_longer_than_cap_means_switch_models(policy, hint) -> None:
    delay = retry_delay(0, policy=policy, remaining_s=1000, hint_s=hint, rand=lambda: 0.5)
    assert (delay is None) == (hint > policy.cap_s)


def test_jitter_grows_exponentially_until_cap() -> None:
    policy = BackoffPolicy(base_s=0.1, cap_s=1.0)
    assert [full_jitter(n, policy, lambda: 0.999999) for n in range(6)] == \
        [0.0999999, 0.1999998, 0.3999996, 0.7999992, 0.999999, 0.999999]


def test_retry_hints_from_headers_and_messages() -> None:
    header = ProviderError("x", provider="p", rate_limit=RateLimitInfo(retry_after_s=3.0))
    assert retry_hint_s(header) == 3.0
    reset = ProviderError("x", provider="p", rate_limit=RateLimitInfo(remaining_requests=0, reset_requests_s=7.66))
    assert retry_hint_s(reset) == 7.66
    gemini = ProviderError("x", provider="p", provider_message="Quota exceeded. Please retry in 34.07s.")
    assert retry_hint_s(gemini) == 34.07
    openai = ProviderError("x", provider="p", provider_message="Please try again in 1m2.5s. Visit ...")
    assert retry_hint_s(openai) == 62.5
    assert retry_hint_s(ProviderError("x", provider="p")) is None


def test_cooldowns() -> None:
    policy = BackoffPolicy(default_rate_limit_cooldown_s=20, quota_cooldown_s=3600)
    hinted = ProviderError("x", provider="p", rate_limit=RateLimitInfo(retry_after_s=5))
    assert cooldown_s(hinted, ErrorClass.RATE_LIMITED, policy) == 5
    assert cooldown_s(ProviderError("x", provider="p"), ErrorClass.RATE_LIMITED, policy) == 20
    assert cooldown_s(hinted, ErrorClass.QUOTA_EXHAUSTED, policy) == 3600
    assert cooldown_s(hinted, ErrorClass.SERVER_ERROR, policy) is None
