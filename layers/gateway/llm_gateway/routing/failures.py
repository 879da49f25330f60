"""Learning from failures at once: recent provider failures, and timeouts that fit the provider.

`FailureMemory`: a provider that just failed (5xx, timeout, reset, 429) is ranked behind every
provider without a recent failure, immediately for every request in this container (the plan
cursor asks before each attempt) and, through a `fail#{provider}` item in the state load, after
one read in every other container. This acts long before a breaker's threshold is reached.
Once a request has failed, its next attempt also prefers a provider that has just *answered*
over one not heard from lately: a provider that hangs has no failure on record until its
timeout, and a request should not spend its last attempt finding that out.

`AdaptiveTimeouts`: the timeout of an attempt follows the provider's observed latency, as TCP's
retransmission timer does (RFC 6298: smoothed latency plus four deviations), between a floor and
the configured attempt timeout. A provider never seen yet borrows the estimate of all providers,
so one hanging provider costs a few seconds, not the whole attempt budget, before failover.
Attempts that end at the answer's first chunk and attempts that end with the whole answer are
learned apart (a first chunk says nothing of how long a whole answer takes).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from llm_gateway.retry.classifier import ErrorClass
from llm_gateway.state.items import ANSWERED, FAILURE_MEMORY_S, STREAK_GRACE_S, FailureMark, standing_mark
from llm_gateway.state.metering import AUDIO_SECONDS, TOKENS, Amounts

# What counts as "the provider just failed": capacity and health failures, not the caller's.
FAILURE_CLASSES = frozenset({
    ErrorClass.RATE_LIMITED, ErrorClass.QUOTA_EXHAUSTED, ErrorClass.OVERLOADED, ErrorClass.SERVER_ERROR,
    ErrorClass.TIMEOUT, ErrorClass.CONNECTION,
})
SHARE_EVERY_S = 5.0  # one shared write per provider per this many seconds is enough
# Failures the request itself may provoke (a prompt a provider chokes on, one it cannot finish in
# time): the same request failing again, while the provider answers others, is the request's doing.
PAYLOAD_PROVOKED = frozenset({ErrorClass.SERVER_ERROR, ErrorClass.TIMEOUT})
REPEAT_MEMORY_S = 600.0  # a request its caller sends again within this long is known again
_REPEATS_KEPT = 4096


class FailureMemory:
    """This container's recent failures per provider, merged with what other containers saw."""

    def __init__(self) -> None:
        self._marks: dict[str, FailureMark] = {}
        self._answered: dict[str, float] = {}  # provider → last success, this container
        self._shared: Mapping[str, FailureMark] = {}  # other containers' marks, as last read
        # Per (provider, model): when it last answered, and each failed request's fingerprint → when
        # its failure there counted, with the newest of those (the map is dropped once that is old).
        self._model_answered: dict[tuple[str, str], float] = {}
        self._failed_requests: dict[tuple[str, str], tuple[float, dict[str, float]]] = {}
        self._lock = threading.Lock()

    def repeated(self, provider: str, model: str, request: str, now: float) -> bool:
        """Whether a failure of the request fingerprinted `request` on this model repeats one
        already counted, after which the *model* has answered other requests: most likely the
        request's doing (a caller, or its SDK, or another caller sending the very same request,
        retrying a prompt the model chokes on), to be held against neither the model's circuit
        nor the provider's standing. Otherwise the failure is remembered and counts: a first
        failure looks like any outage, and so does one repeated while the model answers no one
        (an outage failing a canary's fixed prompt, even while the provider's other models answer)."""
        key = (provider, model)
        with self._lock:
            newest, failed = self._failed_requests.get(key, (now, {}))
            counted = failed.get(request)
            if (counted is not None and now - counted < REPEAT_MEMORY_S
                    and self._model_answered.get(key, -math.inf) >= counted):
                return True
            failed[request] = now
            self._failed_requests[key] = (max(newest, now), failed)
            if sum(len(requests) for _, requests in self._failed_requests.values()) > _REPEATS_KEPT:
                self._forget_failed_before(now - REPEAT_MEMORY_S)
            return False

    def answered(self, provider: str, model: str, now: float, request: Callable[[], str] | None) -> None:
        """The model answered the request (its fingerprint asked only while the model has failed
        requests on record from the last `REPEAT_MEMORY_S`): a failure of that request there
        earlier was not its own doing after all."""
        key = (provider, model)
        self._model_answered[key] = now  # a plain dict store: atomic under the GIL
        found = self._failed_requests.get(key)
        if found is None or not found[1]:  # no failed request on record (or all answered since)
            return
        if now - found[0] >= REPEAT_MEMORY_S:  # all too old to be known again: nothing to ask
            with self._lock:
                if self._failed_requests.get(key) is found:
                    del self._failed_requests[key]
            return
        if request is None:
            return
        fingerprint = request()
        with self._lock:
            current = self._failed_requests.get(key)
            if current is not None:
                current[1].pop(fingerprint, None)
                if not current[1]:
                    del self._failed_requests[key]

    def _forget_failed_before(self, moment: float) -> None:
        """Drop requests too old to be known again; all of them, if a flood of distinct failing
        requests left nothing that old (the memory stays bounded either way)."""
        kept = {key: (newest, {r: at for r, at in requests.items() if at >= moment})
                for key, (newest, requests) in self._failed_requests.items() if newest >= moment}
        if sum(len(requests) for _, requests in kept.values()) > _REPEATS_KEPT:
            kept = {}
        self._failed_requests = {key: found for key, found in kept.items() if found[1]}

    def succeeded(self, provider: str, now: float) -> FailureMark | None:
        """Remember an answer; a mark saying so when it ends a streak other containers know of
        (two failures or more): one write per recovery, so no container goes on ranking a
        provider that is back behind the others for minutes."""
        self._answered[provider] = now  # a plain dict store: atomic under the GIL, no lock needed
        latest = self.latest(provider)
        if latest is None or latest.answered or latest.streak < 2 or latest.at >= now:
            return None
        with self._lock:
            mark = self._marks[provider] = FailureMark(provider, now, ANSWERED, 0)
        return mark

    def standing(self, provider: str, now: float) -> int:
        """0: answered lately and not failed since; 1: not heard from lately; 2: failed lately."""
        if self.recent(provider, now):
            return 2
        answered = self._answered.get(provider)
        return 0 if answered is not None and now - answered < FAILURE_MEMORY_S else 1

    def record(self, provider: str, kind: str, now: float, started: float) -> FailureMark | None:
        """Remember a failure of a call begun at `started`; the mark when it is news worth sharing
        with other containers.

        A call begun after the provider's last mark ran out (within `STREAK_GRACE_S`) that fails,
        with no answer from the provider since, means the outage (or the 429 storm) goes on: the
        streak grows and the provider stays behind the others twice as long (`FailureMark.until`),
        so a long outage takes a request every few minutes, not every 30 s. Calls begun while the
        mark held (a burst of concurrent calls, a fallback, a long answer still running) are the
        same incident and keep the streak."""
        with self._lock:
            previous = self.latest(provider)
            streak = 1
            if previous is not None and not previous.answered and self._answered.get(provider, -math.inf) < previous.at:
                if started < previous.until:
                    streak = previous.streak
                elif started < previous.until + STREAK_GRACE_S:
                    streak = previous.streak + 1
            mark = self._marks[provider] = FailureMark(provider, now, kind, streak)
        news = previous is None or previous.answered or now - previous.at >= SHARE_EVERY_S
        return mark if news else None

    def latest(self, provider: str) -> FailureMark | None:
        """The provider's standing mark, this container's or another's as last read (`standing_mark`):
        the one its ranking and its next failure's streak go by."""
        own, seen = self._marks.get(provider), self._shared.get(provider)
        if own is None or seen is None:
            return own or seen
        return standing_mark(own, seen)

    def merged(self, shared: Mapping[str, FailureMark]) -> dict[str, FailureMark]:
        """The mark that stands per provider (`standing_mark`), ours or another container's; the
        shared ones are kept, so a failure here continues another container's streak."""
        with self._lock:
            self._shared = shared
            out = dict(self._marks)
        for provider, mark in shared.items():
            own = out.get(provider)
            out[provider] = mark if own is None else standing_mark(own, mark)
        return out

    def recent(self, provider: str, now: float) -> bool:
        """Whether the provider failed lately, here or (as last read) in another container."""
        mark = self.latest(provider)
        return mark is not None and now < mark.until


@dataclass(frozen=True, slots=True)
class TimeoutPolicy:
    floor_s: float = 2.0  # below this, a slow but healthy answer would be cut off
    deviations: float = 4.0
    gain: float = 0.125  # RFC 6298's alpha; beta is twice it


@dataclass(slots=True)
class _Estimate:
    smoothed: float
    deviation: float

    def update(self, sample: float, gain: float) -> None:
        self.deviation += 2 * gain * (abs(self.smoothed - sample) - self.deviation)
        self.smoothed += gain * (sample - self.smoothed)


class _Estimates:
    """One kind of attempt's estimates: per provider, and of all providers together (what a
    provider never seen yet borrows)."""

    __slots__ = ("overall", "per_provider")

    def __init__(self) -> None:
        self.per_provider: dict[str, _Estimate] = {}
        self.overall: _Estimate | None = None

    def add(self, provider: str, sample: float, gain: float) -> None:
        for estimate, store in ((self.per_provider.get(provider), provider), (self.overall, None)):
            if estimate is None:
                fresh = _Estimate(sample, sample / 2)
                if store is None:
                    self.overall = fresh
                else:
                    self.per_provider[store] = fresh
            else:
                estimate.update(sample, gain)


class AdaptiveTimeouts:
    """Attempt timeouts learned from attempts of the same kind, under one policy. An attempt that
    returns at the answer's first chunk (a stream sent live, or an answer sent whole but read as
    one: `first_chunk`) is timed to that chunk; one that returns the whole answer, to its last
    byte. A provider serving many streams answers their first chunks in a fraction of a second,
    and a timeout learned from them cut its whole answers (paid for, then failed over): each kind
    learns apart. Whole answers also learn from streams once they end (`FailoverRunner.settle`),
    so they are judged by every whole answer the provider gave, streamed or not."""

    def __init__(self, policy: TimeoutPolicy | None = None) -> None:
        self.policy = policy or TimeoutPolicy()
        self._whole = _Estimates()
        self._first_chunk = _Estimates()
        self._lock = threading.Lock()

    def _kind(self, first_chunk: bool) -> _Estimates:
        return self._first_chunk if first_chunk else self._whole

    def observe(self, provider: str, seconds: float, size: float = 1.0, *, first_chunk: bool = False) -> None:
        """A successful attempt's duration, for a request of `size` (`work_size`): the estimate
        is of seconds per unit of size, so a long answer is not judged by short ones."""
        with self._lock:
            self._kind(first_chunk).add(provider, seconds / max(size, 1.0), self.policy.gain)

    def pace(self, provider: str) -> float | None:
        """How fast the provider writes: its whole answers' smoothed seconds per unit of work
        (None: no whole answer seen yet)."""
        estimate = self._whole.per_provider.get(provider)
        return estimate.smoothed if estimate is not None else None

    def timeout_for(self, provider: str, budget_s: float, size: float = 1.0, *, first_chunk: bool = False) -> float:
        """The attempt's timeout for a request of `size`: the provider's (or everyone's) estimate
        per unit of size for attempts of this kind, times the size, within [floor, budget]."""
        kind = self._kind(first_chunk)
        with self._lock:
            estimate = kind.per_provider.get(provider) or kind.overall
        if estimate is None:
            return budget_s
        wanted = (estimate.smoothed + self.policy.deviations * estimate.deviation) * max(size, 1.0)
        return min(budget_s, max(self.policy.floor_s, wanted))


TOKENS_PER_UNIT = 200  # tokens that take a provider about as long as answering at all (~0.3-1 s)
AUDIO_S_PER_UNIT = 60  # audio seconds that do


def work_size(amounts: Amounts) -> float:
    """How much work a call is, in units: 1 for the call itself, plus one per 200 tokens and per
    minute of audio. Latency grows with it (an answer of 3,000 tokens takes many times one of
    200), so the estimate is learned per unit of what calls really used, and a call's timeout is
    that times what it may use (its reservation): a long answer is not judged by short ones."""
    return 1.0 + amounts.get(TOKENS, 0) / TOKENS_PER_UNIT + amounts.get(AUDIO_SECONDS, 0) / AUDIO_S_PER_UNIT
