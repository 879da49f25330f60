"""Routes one request to a provider and model (walking-skeleton version).

Picks the first configured provider that serves the requested model and tries the next one on
a provider failure. Selection on shared state, breakers and deadline-aware retries replace the
internals in their own issues; the public shapes here (`Router.complete`, `Router.stream`,
`RoutedCompletion`, `RoutedStream`, `AttemptRecord`) are the seam the gateway relies on.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from llm_gateway.api.errors import AllProvidersFailed, GatewayError, InvalidRequest, ModelNotFound
from llm_gateway.api.schemas import ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, Usage
from llm_gateway.providers.base import ChatAdapter, ProviderError
from llm_gateway.providers.engine import ProviderEngine

AUTO_ALIASES = ("auto", "auto:small", "auto:large", "auto:reasoning")


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    provider: str
    model: str
    error_class: str | None = None
    status: int | None = None
    latency_ms: float = 0.0

    def public(self) -> dict[str, object]:
        return {"provider": self.provider, "model": self.model, "error": self.error_class, "status": self.status}


@dataclass
class RoutedCompletion:
    completion: ChatCompletion
    provider: str
    model: str
    attempts: list[AttemptRecord]
    cost_usd: float = 0.0
    free: bool = False
    cost_estimated: bool = False


@dataclass
class RoutedStream:
    """A stream that has produced its first chunk; the rest arrives as the caller iterates.

    `usage`, `cost_usd` and `free` are final only once `chunks` is exhausted.
    """

    provider: str
    model: str
    attempts: list[AttemptRecord]
    chunks: Iterator[ChatCompletionChunk]
    usage: Usage | None = None
    cost_usd: float = 0.0
    free: bool = False
    cost_estimated: bool = False
    extra: dict[str, object] = field(default_factory=dict)


def split_pinned(model: str, providers: Mapping[str, object]) -> tuple[str | None, str]:
    """`groq/llama-3.1-8b-instant` → ("groq", "llama-3.1-8b-instant"); a bare id → (None, id).

    Only a configured provider name counts as a prefix, because model ids contain slashes too
    (`openai/gpt-oss-120b` on Groq).
    """
    prefix, sep, rest = model.partition("/")
    if sep and prefix in providers and rest:
        return prefix, rest
    return None, model


class Router:
    def __init__(
        self,
        adapters: Mapping[str, ChatAdapter],
        engine: ProviderEngine,
        *,
        max_attempts: int = 3,
        attempt_timeout_s: float = 20.0,
    ) -> None:
        self._adapters = dict(adapters)
        self._engine = engine
        self._max_attempts = max_attempts
        self._attempt_timeout_s = attempt_timeout_s

    def candidates(self, model: str) -> list[tuple[str, str]]:
        pinned, name = split_pinned(model, self._adapters)
        if pinned is not None:
            return [(pinned, name)]
        if model in AUTO_ALIASES:
            return [(p, a.config.models[0]) for p, a in self._adapters.items() if a.config.models]
        found = [(p, name) for p, a in self._adapters.items() if name in a.config.models]
        if not found:
            raise ModelNotFound(model, "Use 'auto', a listed model id, or 'provider/model'.")
        return found

    def _timeout(self, deadline: float) -> float:
        left = deadline - time.monotonic()
        if left <= 0.05:
            raise AllProvidersFailed("The request ran out of time before a provider answered.", status=504)
        return min(self._attempt_timeout_s, left)

    def complete(self, request: ChatCompletionRequest, deadline: float) -> RoutedCompletion:
        attempts: list[AttemptRecord] = []
        for provider, model in self.candidates(request.model)[: self._max_attempts]:
            started = time.monotonic()
            try:
                reply = self._engine.complete(self._adapters[provider], request, model, self._timeout(deadline))
            except ProviderError as exc:
                attempts.append(_failed(provider, model, exc, started))
                _raise_if_callers_fault(exc)
                continue
            attempts.append(AttemptRecord(provider, model, latency_ms=(time.monotonic() - started) * 1000))
            return RoutedCompletion(reply.completion, provider, model, attempts)
        raise _aggregate(attempts)

    def stream(self, request: ChatCompletionRequest, deadline: float) -> RoutedStream:
        attempts: list[AttemptRecord] = []
        for provider, model in self.candidates(request.model)[: self._max_attempts]:
            started = time.monotonic()
            try:
                opened = self._engine.open_stream(self._adapters[provider], request, model, self._timeout(deadline))
                chunks = iter(opened)
                first = next(chunks)
            except StopIteration:
                attempts.append(AttemptRecord(provider, model, "empty_stream", None))
                continue
            except ProviderError as exc:
                attempts.append(_failed(provider, model, exc, started))
                _raise_if_callers_fault(exc)
                continue
            attempts.append(AttemptRecord(provider, model, latency_ms=(time.monotonic() - started) * 1000))
            routed = RoutedStream(provider, model, attempts, iter(()))
            routed.chunks = _tracking_usage(first, chunks, routed, opened)
            return routed
        raise _aggregate(attempts)


def _tracking_usage(
    first: ChatCompletionChunk, rest: Iterator[ChatCompletionChunk], routed: RoutedStream, opened: object
) -> Iterator[ChatCompletionChunk]:
    try:
        for chunk in _chain(first, rest):
            if chunk.usage is not None:
                routed.usage = chunk.usage
            yield chunk
    finally:
        close = getattr(opened, "close", None)
        if close is not None:
            close()


def _chain(first: ChatCompletionChunk, rest: Iterator[ChatCompletionChunk]) -> Iterator[ChatCompletionChunk]:
    yield first
    yield from rest


def _failed(provider: str, model: str, exc: ProviderError, started: float) -> AttemptRecord:
    kind = exc.transport or (exc.code or f"http_{exc.status}")
    return AttemptRecord(provider, model, kind, exc.status, (time.monotonic() - started) * 1000)


def _raise_if_callers_fault(exc: ProviderError) -> None:
    if exc.status in (400, 413, 422):
        raise InvalidRequest(
            f"The provider rejected the request ({exc.code or exc.status}).", code=exc.code or "invalid_request"
        ) from exc


def _aggregate(attempts: list[AttemptRecord]) -> GatewayError:
    rate_limited = bool(attempts) and all(a.status == 429 for a in attempts)
    return AllProvidersFailed(
        "Every provider attempt failed." if attempts else "No provider could take the request.",
        status=429 if rate_limited else 503,
        error_type="rate_limit_error" if rate_limited else "server_error",
        code="all_providers_failed",
        extra={"attempts": [a.public() for a in attempts]},
    )
