"""The one place that talks HTTP to providers, on one pooled httpx client per container.

Adapters describe requests and parse bodies; the engine sends, times, and turns every transport
or protocol failure into a `ProviderError` raised `from` the original exception.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from llm_gateway.api.schemas import ChatCompletion, ChatCompletionChunk, ChatCompletionRequest
from llm_gateway.providers.base import (
    TRANSPORT_CONNECTION,
    TRANSPORT_MALFORMED,
    TRANSPORT_STREAM_CUT,
    TRANSPORT_TIMEOUT,
    ChatAdapter,
    HttpRequestSpec,
    ProviderError,
    RateLimitInfo,
    StreamState,
)
from llm_gateway.providers.sse import iter_sse

CONNECT_TIMEOUT_S = 3.0


def build_http_client() -> httpx.Client:
    """Created once per container at cold start and reused by every request (keep-alive pool)."""
    return httpx.Client(
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=60),
        timeout=httpx.Timeout(30.0, connect=CONNECT_TIMEOUT_S),
        follow_redirects=False,
        trust_env=False,
    )


@dataclass(frozen=True, slots=True)
class ProviderReply:
    completion: ChatCompletion
    rate_limits: RateLimitInfo | None
    latency_s: float


def _timeout(seconds: float) -> httpx.Timeout:
    seconds = max(0.05, seconds)
    return httpx.Timeout(seconds, connect=min(CONNECT_TIMEOUT_S, seconds))


class ProviderEngine:
    def __init__(self, client: httpx.Client) -> None:
        self._client = client

    def _send(self, spec: HttpRequestSpec, timeout_s: float, *, stream: bool) -> httpx.Response:
        request = self._client.build_request(
            spec.method, spec.url, headers=dict(spec.headers), json=spec.json, params=spec.params,
            timeout=_timeout(timeout_s),
        )
        return self._client.send(request, stream=stream)

    def complete(
        self, adapter: ChatAdapter, request: ChatCompletionRequest, model: str, timeout_s: float
    ) -> ProviderReply:
        spec = adapter.build_request(request, model, stream=False)
        started = time.monotonic()
        with _translated(adapter.name, model):
            response = self._send(spec, timeout_s, stream=False)
        rate_limits = adapter.parse_rate_limits(response.headers)
        if response.status_code >= 400:
            raise adapter.parse_error(response.status_code, response.headers, response.content, model)
        body = _json_body(response.content, adapter.name, model, rate_limits)
        try:
            completion = adapter.parse_response(body, model)
        except (KeyError, TypeError, ValueError, IndexError, OverflowError) as exc:
            raise ProviderError(
                f"{adapter.name} returned a response the gateway could not read",
                provider=adapter.name, model=model, status=response.status_code,
                transport=TRANSPORT_MALFORMED, rate_limit=rate_limits,
            ) from exc
        return ProviderReply(completion, rate_limits, time.monotonic() - started)

    def open_stream(
        self, adapter: ChatAdapter, request: ChatCompletionRequest, model: str, timeout_s: float
    ) -> ProviderStream:
        spec = adapter.build_request(request, model, stream=True)
        with _translated(adapter.name, model):
            response = self._send(spec, timeout_s, stream=True)
        rate_limits = adapter.parse_rate_limits(response.headers)
        if response.status_code >= 400:
            try:
                with _translated(adapter.name, model):
                    body = response.read()
            finally:
                response.close()
            raise adapter.parse_error(response.status_code, response.headers, body, model)
        deadline = time.monotonic() + timeout_s
        return ProviderStream(adapter, model, response, rate_limits, deadline)

    def list_models(self, adapter: ChatAdapter, timeout_s: float = 5.0) -> list[str]:
        spec = adapter.models_request()
        with _translated(adapter.name, None):
            response = self._send(spec, timeout_s, stream=False)
        if response.status_code >= 400:
            raise adapter.parse_error(response.status_code, response.headers, response.content, None)
        return adapter.parse_models(_json_body(response.content, adapter.name, None, None))


class ProviderStream:
    """An open provider stream: iterate for normalized chunks; always close (context manager)."""

    def __init__(
        self,
        adapter: ChatAdapter,
        model: str,
        response: httpx.Response,
        rate_limits: RateLimitInfo | None,
        deadline: float,
    ) -> None:
        self.adapter = adapter
        self.model = model
        self.rate_limits = rate_limits
        self._response = response
        self._deadline = deadline
        self.state = StreamState(model=model, response_id=f"chatcmpl-{uuid.uuid4().hex[:24]}", created=int(time.time()))

    def __enter__(self) -> ProviderStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._response.close()

    def __iter__(self) -> Iterator[ChatCompletionChunk]:
        name, model = self.adapter.name, self.model
        # A connection that dies once the body has started is a cut stream, not a failed connect.
        with _translated(name, model, broken=TRANSPORT_STREAM_CUT):
            for event in iter_sse(self._response.iter_lines()):
                if time.monotonic() > self._deadline:
                    raise ProviderError(
                        f"{name} stream exceeded its time budget", provider=name, model=model,
                        transport=TRANSPORT_TIMEOUT,
                    )
                try:
                    chunks = self.adapter.parse_stream_event(event, self.state)
                except ProviderError:
                    raise
                except (KeyError, TypeError, ValueError, IndexError, OverflowError) as exc:
                    raise ProviderError(
                        f"{name} sent a stream event the gateway could not read", provider=name,
                        model=model, transport=TRANSPORT_MALFORMED,
                    ) from exc
                yield from chunks
                if self.state.done:
                    return
        if not self.state.done:
            raise ProviderError(
                f"{name} closed the stream before it finished", provider=name, model=model,
                transport=TRANSPORT_STREAM_CUT,
            )


def _json_body(content: bytes, provider: str, model: str | None, rate_limits: RateLimitInfo | None) -> Any:
    try:
        return json.loads(content)
    except ValueError as exc:
        raise ProviderError(
            f"{provider} returned a body that is not JSON", provider=provider, model=model,
            transport=TRANSPORT_MALFORMED, rate_limit=rate_limits,
        ) from exc


class _translated:
    """Context manager mapping httpx transport exceptions to `ProviderError`."""

    def __init__(self, provider: str, model: str | None, broken: str = TRANSPORT_CONNECTION) -> None:
        self.provider = provider
        self.model = model
        self.broken = broken

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc is None or isinstance(exc, ProviderError):
            return
        if isinstance(exc, httpx.TimeoutException):
            kind, what = TRANSPORT_TIMEOUT, "timed out"
        elif isinstance(exc, httpx.TransportError | httpx.StreamError):
            kind, what = self.broken, "connection failed" if self.broken == TRANSPORT_CONNECTION else "stream was cut"
        else:
            return
        raise ProviderError(
            f"{self.provider} {what} ({type(exc).__name__})", provider=self.provider, model=self.model,
            transport=kind,
        ) from exc
