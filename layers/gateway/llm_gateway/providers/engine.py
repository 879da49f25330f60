"""The one place that talks HTTP to providers, on one pooled httpx client per container.

Adapters describe requests (`HttpRequestSpec`: JSON, multipart form data or raw bytes) and
parse bodies; the engine sends, and turns every transport or protocol failure into a
`ProviderError` raised `from` the original exception. `call` is the one path every capability
uses for a request/response exchange; `open_stream` adds chat's server-sent events.

A call's `timeout_s` is a wall-clock budget counted from the call's start, for the whole exchange
(connect, send, headers, body) and for a stream until its last event: httpx's own timeouts are
per operation, so a provider trickling bytes would outlive any of them. The exchange runs in a
`deadline_scope` and the client from `build_http_client` cuts every socket operation at that
deadline (`deadline_io.py`); streams also check the clock between events. A cut is a
`ProviderError(transport=timeout)`.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from http.cookiejar import Cookie, CookieJar
from typing import TYPE_CHECKING, Generic, TypeVar

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
    WireAdapter,
)
from llm_gateway.providers.deadline_io import deadline_scope, deadline_transport
from llm_gateway.providers.headers import FoldedHeaders
from llm_gateway.providers.sse import iter_sse, sse_lines
from llm_gateway.selection.catalog import AudioTraits

if TYPE_CHECKING:  # annotations only: a chat container never loads transcription's types
    from llm_gateway.providers.transcription import TranscriptionAdapter, TranscriptionCall
    from llm_gateway.transcription.transcript import Transcript

CONNECT_TIMEOUT_S = 3.0
CANCEL_TIMEOUT_S = 1.0  # canceling work given up on (a Replicate prediction): brief, before the failover
# The most of one answer read, after decoding. A chat answer is kilobytes and a transcript of the
# longest audio a provider takes a few megabytes; what is past this is a provider (or an endpoint
# an operator misconfigured) answering something else, and reading it would cost the container's
# memory. A stream's lines are not bounded here: its deadline bounds them.
MAX_ANSWER_BYTES = 16 * 1024 * 1024
_URLS_KEPT = 1024
# What parsing a body of the wrong shape raises: JSON that is not an object where one is expected
# (`[]`, `null`, a string: AttributeError on `.get`), a field of the wrong type, nesting deeper
# than the parser's recursion limit (RecursionError). Such an answer is malformed, the provider's.
_UNREADABLE = (KeyError, TypeError, ValueError, IndexError, OverflowError, AttributeError, RecursionError)


class _NoJar(CookieJar):
    """A jar nothing can be put in."""

    def set_cookie(self, cookie: Cookie) -> None:
        return None


class _NoCookies(httpx.Cookies):
    """Cookies that stay empty: what a response sets is not even read."""

    def __init__(self) -> None:
        super().__init__(_NoJar())

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


_NO_COOKIES = _NoCookies()


class _CookielessClient(httpx.Client):
    """An httpx client without a cookie jar. One client serves every caller of a container, so a
    cookie a provider set in one caller's answer (a sticky session, a bot-management cookie)
    would be sent with every later caller's request to that host; providers authenticate by
    key and need none back. Reading every answer's `Set-Cookie` was also about a sixth of the
    client's own work a call."""

    @property
    def cookies(self) -> httpx.Cookies:
        return _NO_COOKIES

    @cookies.setter
    def cookies(self, _cookies: object) -> None:
        return None


def build_http_client(transport: httpx.BaseTransport | None = None) -> httpx.Client:
    """Created once per container at cold start and reused by every request (keep-alive pool);
    its transport enforces the engine's wall-clock deadlines (see `deadline_io.py`); it keeps
    no cookies (`_CookielessClient`). `transport`: an in-process provider instead (benchmarks)."""
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=60)
    return _CookielessClient(
        transport=transport or deadline_transport(limits),
        timeout=httpx.Timeout(30.0, connect=CONNECT_TIMEOUT_S),
        follow_redirects=False,
        trust_env=False,
    )


T = TypeVar("T")
BodyParser = Callable[[bytes, Mapping[str, str]], T]  # (body, response headers) → value


@dataclass(frozen=True, slots=True)
class ProviderReply(Generic[T]):
    """A provider's parsed answer, with the rate limits its headers announced."""

    value: T
    rate_limits: RateLimitInfo | None


def _timeout(seconds: float) -> httpx.Timeout:
    seconds = max(0.05, seconds)
    return httpx.Timeout(seconds, connect=min(CONNECT_TIMEOUT_S, seconds))


class ProviderEngine:
    def __init__(self, client: httpx.Client, sleep: Callable[[float], None] = time.sleep) -> None:
        self._client = client
        self._sleep = sleep
        # Each endpoint's URL parsed once: parsing was about a tenth of the client's work a call.
        # The URLs come from the catalog's providers and models (and Replicate's prediction ids), not
        # from what callers send: a few dozen, and bounded.
        self._urls: dict[str, httpx.URL] = {}

    def _url(self, url: str) -> httpx.URL:
        parsed = self._urls.get(url)
        if parsed is None:
            if len(self._urls) >= _URLS_KEPT:
                self._urls.clear()
            parsed = self._urls[url] = httpx.URL(url)
        return parsed

    def _send(self, spec: HttpRequestSpec, timeout_s: float, *, stream: bool) -> httpx.Response:
        request = self._client.build_request(
            spec.method, self._url(spec.url), headers=dict(spec.headers), json=spec.json, params=spec.params,
            data=spec.data, files=spec.files, content=spec.content, timeout=_timeout(timeout_s),
        )
        return self._client.send(request, stream=stream)

    def call(
        self, adapter: WireAdapter, spec: HttpRequestSpec, model: str, timeout_s: float, parse: BodyParser[T]
    ) -> ProviderReply[T]:
        """Send one request and parse its answer, all within `timeout_s` of wall-clock time;
        every failure becomes a `ProviderError`."""
        at = time.monotonic() + max(0.0, timeout_s)
        with _translated(adapter.name, model), deadline_scope(at):
            response = self._send(spec, timeout_s, stream=True)
            # The headers before the body: an answer refused for its size still tells the
            # provider's remaining capacity, as any other failed answer does.
            try:
                headers = FoldedHeaders.of(response.headers)
                rate_limits = adapter.parse_rate_limits(headers)
            except BaseException:
                response.close()
                raise
            body = _read_bounded(response, adapter.name, model, rate_limits)
        if response.status_code >= 400:
            raise adapter.parse_error(response.status_code, headers, body, model)
        try:
            value = parse(body, headers)
        except _UNREADABLE as exc:
            raise ProviderError(
                f"{adapter.name} returned a response the gateway could not read",
                provider=adapter.name, model=model, status=response.status_code,
                transport=TRANSPORT_MALFORMED, rate_limit=rate_limits,
            ) from exc
        return ProviderReply(value, rate_limits)

    def complete(
        self, adapter: ChatAdapter, request: ChatCompletionRequest, model: str, timeout_s: float
    ) -> ProviderReply[ChatCompletion]:
        spec = adapter.build_request(request, model, stream=False)
        return self.call(adapter, spec, model, timeout_s, lambda body, _: adapter.parse_response(json.loads(body), model))

    def open_stream(
        self, adapter: ChatAdapter, request: ChatCompletionRequest, model: str, timeout_s: float
    ) -> ProviderStream:
        spec = adapter.build_request(request, model, stream=True)
        deadline = time.monotonic() + max(0.0, timeout_s)  # the stream's too, counted from now
        with _translated(adapter.name, model), deadline_scope(deadline):
            response = self._send(spec, timeout_s, stream=True)
        headers = FoldedHeaders.of(response.headers)
        rate_limits = adapter.parse_rate_limits(headers)
        if response.status_code >= 400:
            with _translated(adapter.name, model), deadline_scope(deadline):
                body = _read_bounded(response, adapter.name, model, rate_limits)
            raise adapter.parse_error(response.status_code, headers, body, model)
        return ProviderStream(adapter, model, response, rate_limits, deadline)

    def transcribe(
        self, adapter: TranscriptionAdapter, call: TranscriptionCall, model: str, traits: AudioTraits,
        timeout_s: float,
    ) -> ProviderReply[Transcript]:
        """One transcription within `timeout_s` of wall-clock time, polling while the provider
        answers "not ready yet" (Replicate); a poll that would outlive the budget is a timeout."""
        from llm_gateway.providers.transcription import Poll  # not with the module: see its docstring

        at = time.monotonic() + max(0.0, timeout_s)
        spec = adapter.build_transcription(call, model, traits, timeout_s)
        cancel: HttpRequestSpec | None = None
        try:
            while True:
                reply = self.call(adapter, spec, model, at - time.monotonic(),
                                  lambda body, headers: adapter.parse_transcription(body, headers, call, model))
                value = reply.value
                if not isinstance(value, Poll):
                    return ProviderReply(value, reply.rate_limits)
                cancel = value.cancel
                if time.monotonic() + value.after_s >= at:
                    raise ProviderError(f"{adapter.name} had not finished within the attempt's time budget",
                                        provider=adapter.name, model=model, transport=TRANSPORT_TIMEOUT)
                self._sleep(value.after_s)
                spec = value.spec
        except ProviderError as error:
            if cancel is not None and not error.work_ended:  # given up on (or lost track of) work still billed
                self._cancel(adapter, cancel, model)
            raise

    def _cancel(self, adapter: WireAdapter, spec: HttpRequestSpec, model: str) -> None:
        """Best effort, briefly: the failover that follows must not wait on it, nor fail for it."""
        with contextlib.suppress(ProviderError):
            self.call(adapter, spec, model, CANCEL_TIMEOUT_S, lambda body, headers: None)

    def list_models(self, adapter: ChatAdapter, timeout_s: float = 5.0) -> list[str]:
        return self.call(adapter, adapter.models_request(), "", timeout_s,
                         lambda body, _: adapter.parse_models(json.loads(body))).value


def _read_bounded(response: httpx.Response, provider: str, model: str,
                  rate_limits: RateLimitInfo | None = None) -> bytes:
    """The answer's body (decoded) up to `MAX_ANSWER_BYTES`, the response closed either way. An
    error answer past the bound is cut there (its text is only a reason); any other is refused
    as malformed, as soon as its length says so or its bytes pass the bound, the refusal carrying
    `rate_limits` (what the answer's headers said)."""
    limit = MAX_ANSWER_BYTES
    try:
        declared = response.headers.get("content-length")
        if response.status_code < 400 and declared is not None and declared.isdigit() and int(declared) > limit:
            raise _too_large(provider, model, response.status_code, rate_limits)
        parts: list[bytes] = []
        size = 0
        for part in response.iter_bytes():
            parts.append(part)
            size += len(part)
            if size > limit:
                if response.status_code >= 400:
                    return b"".join(parts)[:limit]
                raise _too_large(provider, model, response.status_code, rate_limits)
        return b"".join(parts)
    finally:
        response.close()


def _too_large(provider: str, model: str, status: int, rate_limits: RateLimitInfo | None) -> ProviderError:
    return ProviderError(f"{provider} sent an answer larger than the gateway reads ({MAX_ANSWER_BYTES} bytes)",
                         provider=provider, model=model, status=status, transport=TRANSPORT_MALFORMED,
                         rate_limit=rate_limits)


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
        self.state = StreamState(model=model, created=int(time.time()))  # its id drawn if a chunk needs one

    def __enter__(self) -> ProviderStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._response.close()

    def _texts(self) -> Iterator[str]:
        """The body's text as it arrives, each piece pulled inside the stream's deadline scope
        (whichever thread iterates), so a provider trickling bytes is cut at the deadline, not
        after it. Pieces, not lines: only a pull that may read the socket needs the scope, and a
        piece holds several of a stream's lines (`sse_lines` splits them)."""
        texts = self._response.iter_text()
        while True:
            with deadline_scope(self._deadline):
                try:
                    text = next(texts)
                except StopIteration:
                    return
            yield text

    def __iter__(self) -> Iterator[ChatCompletionChunk]:
        name, model = self.adapter.name, self.model
        # A connection that dies once the body has started is a cut stream, not a failed connect.
        with _translated(name, model, broken=TRANSPORT_STREAM_CUT):
            for event in iter_sse(sse_lines(self._texts())):
                if time.monotonic() > self._deadline:
                    raise ProviderError(
                        f"{name} stream exceeded its time budget", provider=name, model=model,
                        transport=TRANSPORT_TIMEOUT,
                    )
                try:
                    chunks = self.adapter.parse_stream_event(event, self.state)
                except ProviderError:
                    raise
                except _UNREADABLE as exc:
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
        elif isinstance(exc, httpx.DecodingError):  # a RequestError, not a TransportError: a body that says
            kind, what = TRANSPORT_MALFORMED, "sent a body that could not be decoded"  # gzip and is not
        else:
            return
        raise ProviderError(
            f"{self.provider} {what} ({type(exc).__name__})", provider=self.provider, model=self.model,
            transport=kind,
        ) from exc
