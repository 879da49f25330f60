"""One taxonomy for every provider failure, and what the router does about each.

Adapters already turned every failure into a `ProviderError` (HTTP status, the provider's own
`code`, or a `transport` kind). This module is the single place that decides, from those values
alone, whether to retry the same model, move on to another model, or hand the error back to the
caller, and whether the failure says something about the provider's health (counts against a
circuit breaker) or only about this request (never counts). Pure: no clock, no I/O.

Provider-specific spellings (OpenAI/Groq codes, Gemini `google.rpc` status strings, Mistral's
numeric codes, Cohere's statuses) are data in the tables below, not `if provider` branches: see
reference/providers.md §3.5, §4.5, §5.5, §6.5, §7.5.

The caller's mistakes stay the caller's: a 4xx other than 401/403/429 is classified by its status
and the provider's documented code only (key, quota, context-length, model codes), never by its
message, because providers echo the request's own text in those messages. Only a 429 or a
401/403 may be sharpened by wording, on anchored patterns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from llm_gateway.providers.base import (
    TRANSPORT_CONNECTION,
    TRANSPORT_MALFORMED,
    TRANSPORT_STREAM_CUT,
    TRANSPORT_TIMEOUT,
    ProviderError,
)


class ErrorClass(StrEnum):
    RATE_LIMITED = "rate_limited"
    QUOTA_EXHAUSTED = "quota_exhausted"
    OVERLOADED = "overloaded"
    SERVER_ERROR = "server_error"
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    AUTH = "auth"
    BAD_REQUEST = "bad_request"
    CONTEXT_LENGTH = "context_length"
    CONTENT_FILTER = "content_filter"
    MODEL_NOT_FOUND = "model_not_found"

    def __str__(self) -> str:
        return self.value


class Action(StrEnum):
    RETRY_SAME = "retry_same"
    NEXT_MODEL = "next_model"
    RETURN = "return"


class Scope(StrEnum):
    PROVIDER = "provider"
    MODEL = "model"


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do about one failed attempt: its class, the action, which breaker it counts for, and
    whether it was the request's own doing (held against no provider: not its circuit, its health
    or its standing)."""

    error_class: ErrorClass
    action: Action
    counts_for_circuit: bool
    circuit_scope: Scope
    caller_caused: bool = False


# Per class: (action, counts against a breaker, breaker scope, the request's own doing). Why each:
# - rate limits and exhausted quotas are capacity, not health: cool the model down instead;
# - 5xx, overload, timeouts and broken streams say the model is unhealthy right now;
# - a dropped connection or a rejected key concerns the whole provider;
# - the caller's own mistakes (bad request, content filter) would fail anywhere: return them;
# - a context overflow or unknown model may succeed on another model: move on, no penalty
#   for context (the request caused it), a penalty for a model the catalog wrongly lists.
# The request's own doing: the caller's mistakes and a context overflow; any other class can be
# too, for one request (`ProviderError.request_caused`: its deadline; `.repeated`: a repeat of its
# failure on a model that answers others).
_POLICY: dict[ErrorClass, tuple[Action, bool, Scope, bool]] = {
    ErrorClass.RATE_LIMITED: (Action.NEXT_MODEL, False, Scope.MODEL, False),
    ErrorClass.QUOTA_EXHAUSTED: (Action.NEXT_MODEL, False, Scope.MODEL, False),
    ErrorClass.OVERLOADED: (Action.NEXT_MODEL, True, Scope.MODEL, False),
    ErrorClass.SERVER_ERROR: (Action.NEXT_MODEL, True, Scope.MODEL, False),
    ErrorClass.TIMEOUT: (Action.NEXT_MODEL, True, Scope.MODEL, False),
    ErrorClass.CONNECTION: (Action.RETRY_SAME, True, Scope.PROVIDER, False),
    ErrorClass.AUTH: (Action.NEXT_MODEL, True, Scope.PROVIDER, False),
    ErrorClass.BAD_REQUEST: (Action.RETURN, False, Scope.MODEL, True),
    ErrorClass.CONTEXT_LENGTH: (Action.NEXT_MODEL, False, Scope.MODEL, True),
    ErrorClass.CONTENT_FILTER: (Action.RETURN, False, Scope.MODEL, True),
    ErrorClass.MODEL_NOT_FOUND: (Action.NEXT_MODEL, True, Scope.MODEL, False),
}

# Provider codes (lower-cased) → class. OpenAI/Groq/Mistral `code`/`type`, Gemini `status`,
# Mistral numeric codes. Checked before the HTTP status because they are more specific.
_CODES: dict[str, ErrorClass] = {
    "rate_limit_exceeded": ErrorClass.RATE_LIMITED,
    "rate_limited": ErrorClass.RATE_LIMITED,
    "requests": ErrorClass.RATE_LIMITED,
    "tokens": ErrorClass.RATE_LIMITED,
    "1300": ErrorClass.RATE_LIMITED,
    "resource_exhausted": ErrorClass.RATE_LIMITED,
    "insufficient_quota": ErrorClass.QUOTA_EXHAUSTED,
    "billing_hard_limit_reached": ErrorClass.QUOTA_EXHAUSTED,
    "capacity_exceeded": ErrorClass.OVERLOADED,
    "service_tier_capacity_exceeded": ErrorClass.OVERLOADED,
    "3505": ErrorClass.OVERLOADED,
    "overloaded": ErrorClass.OVERLOADED,
    "overloaded_error": ErrorClass.OVERLOADED,
    "unavailable": ErrorClass.OVERLOADED,
    "server_error": ErrorClass.SERVER_ERROR,
    "internal": ErrorClass.SERVER_ERROR,
    "internal_error": ErrorClass.SERVER_ERROR,
    "deadline_exceeded": ErrorClass.TIMEOUT,
    "invalid_api_key": ErrorClass.AUTH,
    "api_key_invalid": ErrorClass.AUTH,
    "unauthenticated": ErrorClass.AUTH,
    "permission_denied": ErrorClass.AUTH,
    "failed_precondition": ErrorClass.AUTH,
    "authentication_error": ErrorClass.AUTH,
    "context_length_exceeded": ErrorClass.CONTEXT_LENGTH,
    "string_above_max_length": ErrorClass.CONTEXT_LENGTH,
    "request_too_large": ErrorClass.CONTEXT_LENGTH,
    "content_filter": ErrorClass.CONTENT_FILTER,
    "content_policy_violation": ErrorClass.CONTENT_FILTER,
    "safety": ErrorClass.CONTENT_FILTER,
    "model_not_found": ErrorClass.MODEL_NOT_FOUND,
    "invalid_model": ErrorClass.MODEL_NOT_FOUND,
    "model_decommissioned": ErrorClass.MODEL_NOT_FOUND,
    "1500": ErrorClass.MODEL_NOT_FOUND,
    "not_found": ErrorClass.MODEL_NOT_FOUND,
    "invalid_argument": ErrorClass.BAD_REQUEST,
    "invalid_request_error": ErrorClass.BAD_REQUEST,
}

_STATUS: dict[int, ErrorClass] = {
    400: ErrorClass.BAD_REQUEST,
    401: ErrorClass.AUTH,
    402: ErrorClass.QUOTA_EXHAUSTED,
    403: ErrorClass.AUTH,
    404: ErrorClass.MODEL_NOT_FOUND,
    408: ErrorClass.TIMEOUT,
    409: ErrorClass.OVERLOADED,
    413: ErrorClass.CONTEXT_LENGTH,
    422: ErrorClass.BAD_REQUEST,
    424: ErrorClass.SERVER_ERROR,
    429: ErrorClass.RATE_LIMITED,
    498: ErrorClass.AUTH,  # Cohere: invalid token; Groq sends `capacity_exceeded` (a code) instead
    499: ErrorClass.SERVER_ERROR,
    500: ErrorClass.SERVER_ERROR,
    502: ErrorClass.SERVER_ERROR,
    503: ErrorClass.OVERLOADED,
    504: ErrorClass.TIMEOUT,
    529: ErrorClass.OVERLOADED,
}

_TRANSPORT: dict[str, ErrorClass] = {
    TRANSPORT_TIMEOUT: ErrorClass.TIMEOUT,
    TRANSPORT_CONNECTION: ErrorClass.CONNECTION,
    TRANSPORT_MALFORMED: ErrorClass.SERVER_ERROR,
    TRANSPORT_STREAM_CUT: ErrorClass.SERVER_ERROR,
}

# Message hints. Providers echo request text in their errors ("Invalid schema for function
# 'get_daily_report'"), so a hint may only sharpen a status that the request's text cannot
# produce on its own, and only on anchored wording (whole words, fixed phrases, start of the
# message): a 429 may become an exhausted quota, a 401/403 about a resource the request named
# (a file or URL) becomes the caller's error. Every other 4xx is decided by status and code
# alone: a caller's 400 is the caller's, whatever words it carries.
_QUOTA_HINTS: tuple[re.Pattern[str], ...] = (
    re.compile(r"\b(?:per[ -]day|daily (?:limit|quota)|exceeded your current quota|billing details)\b", re.I),
    re.compile(r"\((?:TPD|RPD)\)"),  # Groq/OpenAI: "on tokens per day (TPD)"
    re.compile(r"\b[A-Za-z]*PerDay[A-Za-z]*\b"),  # Gemini quota ids: GenerateRequestsPerDayPerProjectPerModel
)
_CALLER_RESOURCE_HINTS: tuple[re.Pattern[str], ...] = (
    # Gemini, for a `fileData` URI the key cannot read (made up, expired, another project's)
    re.compile(r"^You do not have permission to access (?:the )?File\b"),
)
_HINTED_STATUSES = frozenset({401, 403, 429})


def _base_class(error: ProviderError) -> ErrorClass:
    if error.transport in _TRANSPORT and error.status is None:
        return _TRANSPORT[error.transport]
    if error.status == 413:  # the request's size, whatever its code (Groq: 413 `rate_limit_exceeded`)
        return ErrorClass.CONTEXT_LENGTH
    code = (error.code or "").strip().lower()
    if code.startswith("api_key_"):  # Gemini ErrorInfo reasons: API_KEY_INVALID, API_KEY_EXPIRED, ...
        code = "api_key_invalid"
    if code in _CODES:
        by_code = _CODES[code]
        # a 5xx is the provider's failure whatever its body claims: never blame the request
        if not (error.status is not None and error.status >= 500 and _POLICY[by_code][0] is Action.RETURN):
            return by_code
    if error.transport in _TRANSPORT:
        return _TRANSPORT[error.transport]
    status = error.status
    if status is None:
        return ErrorClass.SERVER_ERROR
    if status in _STATUS:
        return _STATUS[status]
    return ErrorClass.SERVER_ERROR if status >= 500 else ErrorClass.BAD_REQUEST


def _refine(error_class: ErrorClass, error: ProviderError) -> ErrorClass:
    """Sharpen a 429 (to a spent quota) or a 401/403 (to the caller's resource); nothing else."""
    message = error.provider_message
    if not message or (error.status is not None and error.status not in _HINTED_STATUSES):
        return error_class
    if error_class is ErrorClass.RATE_LIMITED:
        if any(p.search(message) for p in _QUOTA_HINTS) and not _short_wait(error):
            return ErrorClass.QUOTA_EXHAUSTED  # Gemini says "exceeded your current quota" per minute too
        return error_class
    resource = any(p.search(message) for p in _CALLER_RESOURCE_HINTS)
    if error_class is ErrorClass.AUTH and error.status in (401, 403) and resource:
        return ErrorClass.BAD_REQUEST
    return error_class


def _short_wait(error: ProviderError) -> bool:
    """The provider's own hint says this limit frees up within the hour: a rate limit, not a quota."""
    info = error.rate_limit
    if info is None:
        return False
    if info.retry_after_s is not None and 0 < info.retry_after_s <= 3600:
        return True
    return (info.limit_requests is not None and info.requests_window_s <= 3600) or (
        info.limit_tokens is not None and info.tokens_window_s <= 3600
    )


def classify_class(error: ProviderError) -> ErrorClass:
    """The error class alone (for metrics, status and the aggregated error body)."""
    return _refine(_base_class(error), error)


def classify(error: ProviderError) -> Decision:
    """Decide what a failure means for this request and for the provider's circuit."""
    error_class = classify_class(error)
    action, counts, scope, caller_caused = _POLICY[error_class]
    if error.request_caused or error.repeated:  # the request caused it (its deadline, its content), not the provider
        counts, caller_caused = False, True
    return Decision(error_class, action, counts, scope, caller_caused)

