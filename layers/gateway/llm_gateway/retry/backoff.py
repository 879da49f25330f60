"""How long to wait before retrying the same model, and how long to leave a model alone.

Two different questions, deliberately kept apart:
- `retry_delay`: the wait before a retry of the *same* model (capped exponential backoff with
  full jitter, AWS Architecture Blog 2015). It honours a provider's retry hint, and answers None
  ("do not wait; switch models") when the hint exceeds the cap or the wait would not leave
  enough of the deadline for the retry itself. Switching to another model never waits.
- `cooldown_s`: how long a rate-limited model is skipped by every container (its reset time,
  Retry-After, or Gemini's RetryInfo delay; a conservative default when the provider said nothing).

Pure: randomness is injected as a `rand() -> [0, 1)` callable so tests are deterministic.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from llm_gateway.providers.base import ProviderError
from llm_gateway.providers.headers import parse_duration
from llm_gateway.retry.classifier import ErrorClass

# "Please try again in 18.642s." (OpenAI/Groq) / "Please retry in 34.07s." (Gemini) / "~30s".
_MESSAGE_DELAY = re.compile(r"(?:try again|retry) in ~?\s*((?:\d+(?:\.\d+)?(?:ms|h|m|s))+)", re.I)


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """Backoff tunables. `cap_s` bounds any same-model wait; longer hints mean "switch models"."""

    base_s: float = 0.2
    cap_s: float = 2.0
    default_rate_limit_cooldown_s: float = 20.0
    quota_cooldown_s: float = 3600.0
    max_cooldown_s: float = 86_400.0


def full_jitter(attempt: int, policy: BackoffPolicy, rand: Callable[[], float]) -> float:
    """`uniform(0, min(cap, base * 2**attempt))`; attempt counts from 0."""
    exponent = min(max(attempt, 0), 32)  # 2**32 * base is already far beyond any cap
    ceiling = min(policy.cap_s, policy.base_s * (2.0**exponent))
    return max(0.0, min(ceiling, rand() * ceiling))


def retry_delay(
    attempt: int,
    *,
    policy: BackoffPolicy,
    remaining_s: float,
    hint_s: float | None = None,
    rand: Callable[[], float],
) -> float | None:
    """The wait before retrying the same model, or None when it should not be retried.

    `remaining_s` is the part of the deadline the wait may use (the caller has already subtracted
    the minimum time an attempt needs). The result is always within [0, min(cap, remaining)] and
    at least `hint_s` when a hint is given.
    """
    if remaining_s <= 0:
        return None
    delay = full_jitter(attempt, policy, rand)
    if hint_s is not None and hint_s > 0:
        if hint_s > policy.cap_s:
            return None  # the provider wants a long pause: spend it on another model instead
        delay = max(delay, hint_s)
    if delay > remaining_s:
        return None
    return delay


def parse_retry_delay(text: str | None) -> float | None:
    """A protobuf Duration (`"34s"`, `"34.074824224s"`, `"900ms"`) or Go duration → seconds."""
    if not text:
        return None
    return parse_duration(text.strip())


def retry_hint_s(error: ProviderError) -> float | None:
    """The provider's own idea of when to come back: headers first, then the message text."""
    hinted = error.retry_after_s
    if hinted is not None and hinted > 0:
        return hinted
    message = error.provider_message or ""
    match = _MESSAGE_DELAY.search(message)
    if match:
        return parse_retry_delay(match.group(1))
    return None


def cooldown_s(error: ProviderError, error_class: ErrorClass, policy: BackoffPolicy) -> float | None:
    """How long every container should skip this model, or None when no cooldown applies."""
    if error_class is ErrorClass.QUOTA_EXHAUSTED:
        hint = retry_hint_s(error)
        return min(policy.max_cooldown_s, max(hint or 0.0, policy.quota_cooldown_s))
    if error_class is not ErrorClass.RATE_LIMITED:
        return None
    hint = retry_hint_s(error)
    if hint is None:
        return policy.default_rate_limit_cooldown_s
    return min(policy.max_cooldown_s, hint)
