"""The attempt loop: at most N attempts, all inside one deadline, on tenacity.

API Gateway cuts a buffered response at 29 s, so a request answered by a buffered invocation gets
a budget below that (`deadline_s`); on a streaming invocation the bound is the stream's
(`chat_deadline`). Every attempt gets `min(attempt_timeout_s, remaining - safety_margin_s)`. An attempt that could
not get at least `min_attempt_s` is never started: a call doomed to be cut off only burns a
provider's quota and the caller's patience. Waiting (backoff) happens only when the attempt
function asks to retry the same model; switching models goes straight to the next attempt.

The attempt function owns the "which model next" logic (the router's plan cursor); this module
only knows attempts, waits and time. Clock and sleep are injected so tests run instantly.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple, TypeVar

from llm_gateway.retry.backoff import BackoffPolicy

if TYPE_CHECKING:
    from tenacity import RetryCallState

T = TypeVar("T")
Clock = Callable[[], float]
Sleep = Callable[[float], None]

# Kept back from the Lambda's remaining time: writing the response, and the state writes after the
# last attempt (each bounded by the DynamoDB client's 1 s timeouts; after one failure the store
# degrades and the rest are local). Lambda ends an invocation at its timeout, whatever it is doing.
LAMBDA_MARGIN_S = 2.0


def request_budget(deadline_s: float, remaining_s: float | None, margin_s: float = LAMBDA_MARGIN_S) -> float:
    """The request's budget: the configured deadline, cut to what the Lambda has left less a
    margin (a cold start, or a function timeout shorter than the setting, leaves less)."""
    if remaining_s is None:
        return deadline_s
    return max(0.0, min(deadline_s, remaining_s - margin_s))


# API Gateway (REST, streaming integration, Regional endpoint) ends a response after this long with
# no byte sent (https://docs.aws.amazon.com/apigateway/latest/developerguide/response-transfer-mode.html):
# an answer sent whole sends nothing until it is complete. The template raises the integration
# timeout to the 15 minutes streaming allows (it is 29 s otherwise).
API_GATEWAY_STREAM_IDLE_S = 300.0
IDLE_MARGIN_S = 15.0  # kept back from the idle timeout: the state writes and the response itself


def chat_deadline(deadline_s: float, stream_deadline_s: float, *, live: bool, stream: bool) -> float:
    """How long a chat request may take, by how its answer is sent.

    A buffered invocation (API Gateway's default integration) is cut at 29 s: `deadline_s`. On a
    streaming invocation (production's chat routes all stream) the bound is the stream's, not the
    29 s: a `stream: true` answer is sent as it comes within `stream_deadline_s`; an answer sent
    whole is read from the provider as a stream too (`routing/whole_answer.py`) and sends nothing
    until it is complete, so it is also held inside API Gateway's idle timeout. Either way the
    first chunk must come within the usual attempt timeout, so a hanging provider costs seconds."""
    if not live:
        return deadline_s
    return stream_deadline_s if stream else min(stream_deadline_s, API_GATEWAY_STREAM_IDLE_S - IDLE_MARGIN_S)


@dataclass(frozen=True, slots=True)
class RetrySettings:
    """Retry tunables (from `config.Settings`: deadline_s, max_attempts, attempt_timeout_s)."""

    max_attempts: int = 3
    deadline_s: float = 25.0
    attempt_timeout_s: float = 20.0
    safety_margin_s: float = 0.25  # kept back to reconcile state and write the response
    min_attempt_s: float = 0.5  # an attempt with less time than this is not started
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)


class Deadline:
    """An absolute point on an injected monotonic clock."""

    def __init__(self, budget_s: float, clock: Clock) -> None:
        self._clock = clock
        self.at = clock() + max(0.0, budget_s)

    def remaining(self) -> float:
        return self.at - self._clock()


class AttemptContext(NamedTuple):
    """What an attempt function is told: its number, its timeout and the request's deadline
    (immutable; a NamedTuple rather than a frozen dataclass, made for every attempt in half the
    instructions)."""

    number: int  # 1-based
    timeout_s: float
    deadline: Deadline


class AttemptFailed(Exception):
    """Raised by an attempt function: `retry` says whether another attempt makes sense at all,
    `wait_s` how long to wait first (non-zero only when retrying the same model)."""

    def __init__(self, cause: BaseException, *, retry: bool, wait_s: float = 0.0) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.retry = retry
        self.wait_s = max(0.0, wait_s)


class DeadlineExhausted(Exception):
    """Not enough of the deadline is left to start another attempt."""


class RetryHandler:
    def __init__(self, settings: RetrySettings, *, clock: Clock = time.monotonic, sleep: Sleep = time.sleep) -> None:
        self.settings = settings
        self.clock = clock
        self._sleep = sleep

    def deadline(self, budget_s: float | None = None) -> Deadline:
        return Deadline(self.settings.deadline_s if budget_s is None else budget_s, self.clock)

    def _usable(self, deadline: Deadline) -> float:
        """What is left of the deadline for calls: the rest is kept back to answer (the one
        place the safety margin is subtracted)."""
        return deadline.remaining() - self.settings.safety_margin_s

    def attempt_timeout(self, deadline: Deadline) -> float | None:
        """The timeout for an attempt starting now, or None if one should not start."""
        usable = self._usable(deadline)
        if usable < self.settings.min_attempt_s:
            return None
        return min(self.settings.attempt_timeout_s, usable)

    def wait_budget(self, deadline: Deadline) -> float:
        """How much of the deadline a wait may use and still leave room for an attempt after it."""
        return self._usable(deadline) - self.settings.min_attempt_s

    def run(self, attempt_fn: Callable[[AttemptContext], T], deadline: Deadline) -> T:
        """Call `attempt_fn` until it returns, asks not to retry, or attempts/time run out.

        Raises the last `AttemptFailed` when giving up, or `DeadlineExhausted` when no attempt
        at all could start.
        """
        # The first attempt runs without tenacity: most requests end there, and building the
        # retry machinery cost a fifth of what the gateway adds to a request. If it asks to
        # retry, tenacity takes over with that failure replayed as its first attempt, so
        # attempt numbers, stop and wait decisions are exactly what they were.
        timeout = self.attempt_timeout(deadline)
        if timeout is None:
            raise DeadlineExhausted("no time left for another attempt")
        try:
            return attempt_fn(AttemptContext(1, timeout, deadline))
        except AttemptFailed as failed:
            if not failed.retry:
                raise
            first = failed
        from tenacity import Retrying, retry_if_exception  # imported by the first retry, not at cold start

        retrying = Retrying(
            stop=lambda state: self._should_stop(state, deadline),
            wait=self._wait,
            retry=retry_if_exception(lambda exc: isinstance(exc, AttemptFailed) and exc.retry),
            sleep=self._pause,
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                if attempt.retry_state.attempt_number == 1:
                    raise first
                timeout = self.attempt_timeout(deadline)
                if timeout is None:
                    raise DeadlineExhausted("no time left for another attempt")
                context = AttemptContext(attempt.retry_state.attempt_number, timeout, deadline)
                return attempt_fn(context)
        raise DeadlineExhausted("retry loop ended without an attempt")  # pragma: no cover

    def _pause(self, seconds: float) -> None:
        if seconds > 0:  # tenacity sleeps 0 between model switches; skip the syscall
            self._sleep(seconds)

    @staticmethod
    def _wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        return exc.wait_s if isinstance(exc, AttemptFailed) else 0.0

    def _should_stop(self, state: RetryCallState, deadline: Deadline) -> bool:
        if state.attempt_number >= self.settings.max_attempts:
            return True
        return (state.upcoming_sleep or 0.0) > self.wait_budget(deadline)
