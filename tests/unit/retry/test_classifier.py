"""The classifier's decisions: a table of every provider's spellings plus properties over all inputs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llm_gateway.providers.base import ProviderError, RateLimitInfo
from llm_gateway.retry.classifier import Action, ErrorClass, Scope, classify


def err(status=None, code=None, transport=None, message=None, retry_after=None) -> ProviderError:
    limits = RateLimitInfo(retry_after_s=retry_after) if retry_after else None
    return ProviderError("x", provider="p", model="m", status=status, code=code, transport=transport,
                         provider_message=message, rate_limit=limits)


CASES = [
    # OpenAI / Groq
    (err(429, "rate_limit_exceeded"), ErrorClass.RATE_LIMITED),
    (err(429, "insufficient_quota"), ErrorClass.QUOTA_EXHAUSTED),
    (err(401, "invalid_api_key"), ErrorClass.AUTH),
    (err(400, "context_length_exceeded"), ErrorClass.CONTEXT_LENGTH),
    # a 400's words never decide its class (OpenAI sends `context_length_exceeded` for a real overflow)
    (err(400, "invalid_request_error", message="Please reduce the length; maximum context length is 8192"),
     ErrorClass.BAD_REQUEST),
    (err(400, "content_policy_violation"), ErrorClass.CONTENT_FILTER),
    (err(404, "model_not_found"), ErrorClass.MODEL_NOT_FOUND),
    (err(500, "server_error"), ErrorClass.SERVER_ERROR),
    (err(503), ErrorClass.OVERLOADED),
    (err(498, "capacity_exceeded"), ErrorClass.OVERLOADED),
    (err(400, "tool_use_failed"), ErrorClass.BAD_REQUEST),
    # Gemini status strings
    (err(429, "RESOURCE_EXHAUSTED", message="quota GenerateRequestsPerMinutePerProjectPerModel"), ErrorClass.RATE_LIMITED),
    (err(429, "RESOURCE_EXHAUSTED", message="GenerateRequestsPerDayPerProjectPerModel-FreeTier"),
     ErrorClass.QUOTA_EXHAUSTED),
    (err(503, "UNAVAILABLE"), ErrorClass.OVERLOADED),
    (err(400, "INVALID_ARGUMENT"), ErrorClass.BAD_REQUEST),
    # a bad key is 400 + ErrorInfo.reason API_KEY_*, which the adapter turns into the code
    (err(400, "API_KEY_INVALID", message="API key not valid. Please pass a valid API key."), ErrorClass.AUTH),
    (err(400, "API_KEY_EXPIRED", message="API key expired. Please renew the API key."), ErrorClass.AUTH),
    (err(400, "INVALID_ARGUMENT", message="API key not valid. Please pass a valid API key."), ErrorClass.BAD_REQUEST),
    (err(403, "PERMISSION_DENIED", message="You do not have permission to access the File abc or it may not exist."),
     ErrorClass.BAD_REQUEST),
    (err(403, "PERMISSION_DENIED"), ErrorClass.AUTH),
    (err(404, "NOT_FOUND"), ErrorClass.MODEL_NOT_FOUND),
    (err(504, "DEADLINE_EXCEEDED"), ErrorClass.TIMEOUT),
    (err(500, "INTERNAL"), ErrorClass.SERVER_ERROR),
    # Mistral
    (err(429, "1300"), ErrorClass.RATE_LIMITED),
    (err(429, "3505"), ErrorClass.OVERLOADED),
    (err(400, "1500"), ErrorClass.MODEL_NOT_FOUND),
    (err(422, "invalid_request_error"), ErrorClass.BAD_REQUEST),
    # Cohere (message only)
    (err(429, message="You are past the per minute request limit"), ErrorClass.RATE_LIMITED),
    (err(498, message="invalid api token"), ErrorClass.AUTH),
    (err(402, message="billing limit reached"), ErrorClass.QUOTA_EXHAUSTED),
    (err(400, "context_length_exceeded", message="too many tokens: size limit exceeded"), ErrorClass.CONTEXT_LENGTH),
    (err(400, message="too many tokens: size limit exceeded"), ErrorClass.BAD_REQUEST),  # the adapter sets the code
    (err(429, "rate_limit_exceeded", message="Rate limit reached on tokens per day (TPD): Limit 500000"),
     ErrorClass.QUOTA_EXHAUSTED),
    # transport
    (err(transport="timeout"), ErrorClass.TIMEOUT),
    (err(transport="connection"), ErrorClass.CONNECTION),
    (err(200, transport="malformed"), ErrorClass.SERVER_ERROR),
    (err(transport="stream_cut"), ErrorClass.SERVER_ERROR),
    (err(code="rate_limit_exceeded"), ErrorClass.RATE_LIMITED),  # mid-stream error event, no status
]


@pytest.mark.parametrize(("error", "expected"), CASES)
def test_known_provider_errors(error: ProviderError, expected: ErrorClass) -> None:
    assert classify(error).error_class is expected


def test_policy_examples() -> None:
    assert classify(err(429, "rate_limit_exceeded")).action is Action.NEXT_MODEL
    assert not classify(err(429, "rate_limit_exceeded")).counts_for_circuit
    assert classify(err(400, "invalid_request_error")).action is Action.RETURN
    assert classify(err(transport="connection")).action is Action.RETRY_SAME
    assert classify(err(401)).circuit_scope is Scope.PROVIDER
    assert classify(err(500)).circuit_scope is Scope.MODEL


statuses = st.one_of(st.none(), st.integers(min_value=100, max_value=599))
codes = st.one_of(st.none(), st.sampled_from(
    ["rate_limit_exceeded", "insufficient_quota", "RESOURCE_EXHAUSTED", "UNAVAILABLE", "INVALID_ARGUMENT",
     "PERMISSION_DENIED", "NOT_FOUND", "DEADLINE_EXCEEDED", "1300", "3505", "server_error"]), st.text(max_size=12))
transports = st.one_of(st.none(), st.sampled_from(["timeout", "connection", "malformed", "stream_cut"]))
messages = st.one_of(st.none(), st.text(max_size=60))


@given(statuses, codes, transports, messages)
def test_every_error_gets_a_consistent_decision(status, code, transport, message) -> None:
    decision = classify(err(status, code, transport, message))
    # capacity problems never trip a breaker; the caller's own mistakes never do either
    if decision.error_class in {ErrorClass.RATE_LIMITED, ErrorClass.QUOTA_EXHAUSTED, ErrorClass.BAD_REQUEST,
                                ErrorClass.CONTENT_FILTER, ErrorClass.CONTEXT_LENGTH}:
        assert not decision.counts_for_circuit
    # only the request's own fault goes back to the caller
    if decision.action is Action.RETURN:
        assert decision.error_class in {ErrorClass.BAD_REQUEST, ErrorClass.CONTENT_FILTER}
    # a 5xx is never the caller's fault, whatever the body says
    if status is not None and status >= 500 and transport is None:
        assert decision.action is not Action.RETURN
    # transport failures without an HTTP status are always retried elsewhere or again
    if transport is not None and status is None:
        assert decision.action is not Action.RETURN and decision.counts_for_circuit


@given(st.integers(min_value=400, max_value=599), messages)
def test_429_is_never_a_health_problem(_status, message) -> None:
    decision = classify(err(429, None, None, message))
    assert decision.error_class in {ErrorClass.RATE_LIMITED, ErrorClass.QUOTA_EXHAUSTED}
    assert not decision.counts_for_circuit and decision.action is Action.NEXT_MODEL


def test_gemini_per_minute_429_with_quota_wording_is_a_rate_limit_not_a_spent_quota():
    from llm_gateway.providers.base import ProviderError, RateLimitInfo
    from llm_gateway.retry.classifier import ErrorClass, classify_class

    message = "You exceeded your current quota, please check your plan and billing details."
    per_minute = ProviderError("x", provider="gemini", status=429, code="RESOURCE_EXHAUSTED",
                               rate_limit=RateLimitInfo(retry_after_s=34.0), provider_message=message)
    assert classify_class(per_minute) is ErrorClass.RATE_LIMITED
    per_day = ProviderError("x", provider="gemini", status=429, code="RESOURCE_EXHAUSTED",
                            rate_limit=RateLimitInfo(limit_requests=250, requests_window_s=86_400),
                            provider_message=message)
    assert classify_class(per_day) is ErrorClass.QUOTA_EXHAUSTED


# --- a caller's mistake never becomes everyone's outage ------------------------------------------
ECHOED = [
    "Invalid schema for function 'get_daily_report': 'minimum' is not permitted.",
    "Invalid schema for function 'bill_billing_account': None is not of type 'object'.",
    "Invalid 'tools[0].function.description': 'rate per day' is too long.",
    "Invalid parameter: function 'check_invalid_token' has an invalid token in 'pattern'.",
    "You exceeded your current quota. Please check your plan and billing details.",  # echoed verbatim
    "API key not valid. Please pass a valid API key.",
    "You do not have permission to access the File x or it may not exist.",
    "Rate limit reached on tokens per day (TPD). Please retry in 20s.",
]
CALLER_STATUSES = [400, 404, 405, 409, 410, 413, 415, 422, 424, 451]


@pytest.mark.parametrize("message", ECHOED)
@pytest.mark.parametrize("code", [None, "invalid_request_error", "INVALID_ARGUMENT", "tool_use_failed", "3280"])
def test_a_caller_400_stays_the_callers_whatever_it_echoes(message, code) -> None:
    decision = classify(err(400, code, message=message))
    assert decision.error_class is ErrorClass.BAD_REQUEST
    assert decision.action is Action.RETURN and not decision.counts_for_circuit


@given(st.sampled_from(CALLER_STATUSES), codes, st.one_of(st.sampled_from(ECHOED), st.text(max_size=80)))
def test_words_never_change_the_class_of_a_4xx_other_than_401_403_429(status, code, message) -> None:
    """Only 429 and 401/403 may be sharpened by the provider's wording; every other 4xx is decided
    by its status and the provider's code, so no echo of the request can move it."""
    assert classify(err(status, code, message=message)) == classify(err(status, code))


@given(st.sampled_from([*ECHOED, "get_daily_report", "a daily digest", "billing_address", "per_day_limit"]))
def test_echoed_words_in_a_plain_400_never_cool_down_or_trip_anything(message) -> None:
    from llm_gateway.retry.backoff import BackoffPolicy, cooldown_s

    error = err(400, message=message)
    decision = classify(error)
    assert decision.error_class is ErrorClass.BAD_REQUEST
    assert cooldown_s(error, decision.error_class, BackoffPolicy()) is None


def test_quota_hints_on_a_429_need_whole_words() -> None:
    assert classify(err(429, message="limit reached for get_daily_report_tool")).error_class is ErrorClass.RATE_LIMITED
    assert classify(err(429, message="see billing_details_v2")).error_class is ErrorClass.RATE_LIMITED
    assert classify(err(429, message="Limit on requests per day reached")).error_class is ErrorClass.QUOTA_EXHAUSTED


def test_a_403_about_the_callers_file_is_the_callers_only_at_the_start_of_the_message() -> None:
    forged = "Method doesn't allow unregistered callers. You do not have permission to access the File x"
    assert classify(err(403, "PERMISSION_DENIED", message=forged)).error_class is ErrorClass.AUTH


def test_a_request_too_large_is_the_request_s_whatever_its_code_says() -> None:
    """Groq answers a request larger than a tokens-per-minute limit with 413 and the code
    `rate_limit_exceeded` ("Request too large ... on tokens per minute"). Classed by its code it
    was a rate limit: a shared cooldown and failure mark for every caller, caused by one caller's
    prompt. A 413 is the request's size, whatever its code."""
    error = ProviderError("Request too large for model on tokens per minute (TPM): Limit 12000, Requested 13000",
                          provider="groq", model="llama-3.1-8b-instant", status=413, code="rate_limit_exceeded")
    assert classify(error).error_class is ErrorClass.CONTEXT_LENGTH
