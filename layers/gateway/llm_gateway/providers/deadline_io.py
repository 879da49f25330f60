"""Wall-clock deadlines for provider calls, enforced below httpx, on every socket operation.

httpx's timeouts bound each network operation, not the call: a read timeout of 20 s bounds every
single read, so a provider that sends one byte a second keeps a call going for as long as it
likes (measured: an attempt with a 1 s budget took 2.8 s, the production 20 s about a minute).
The engine therefore runs each exchange inside `deadline_scope(at)`, and the client built by
`build_http_client` uses `DeadlineBackend`, whose connects, reads and writes each get
`min(their own timeout, time left until at)` and fail at once with httpcore's timeout when none
is left. httpx maps those to `httpx.TimeoutException`, which the engine turns into
`ProviderError(transport=timeout)`, and the connection is discarded, not pooled.

The scope is thread-local and set around each blocking step (the send, then each pull from a
stream), so the thread that reads is the thread whose deadline applies, and one pooled backend
serves every request of the container without sharing anyone's deadline.
"""

from __future__ import annotations

import threading
import time
import typing
from collections.abc import Iterable

import httpcore
import httpx

_SCOPE = threading.local()


class deadline_scope:  # lower case: used as the function it replaced, `with deadline_scope(at):`
    """Every socket operation in this block (this thread) ends by `at` (time.monotonic).

    A class, not a `@contextmanager` generator: a stream pulls each line inside a scope, and the
    generator's machinery cost three times what setting the deadline does."""

    __slots__ = ("_at", "_previous")

    def __init__(self, at: float) -> None:
        self._at = at
        self._previous: float | None = None

    def __enter__(self) -> None:
        previous: float | None = getattr(_SCOPE, "at", None)
        self._previous = previous
        _SCOPE.at = self._at if previous is None else min(self._at, previous)

    def __exit__(self, *exc: object) -> None:
        _SCOPE.at = self._previous


def _clamp(timeout: float | None, error: type[Exception]) -> float | None:
    """The operation's timeout cut to what is left of the scope's deadline; raises `error` when
    nothing is left (an operation never starts past the deadline)."""
    at: float | None = getattr(_SCOPE, "at", None)
    if at is None:
        return timeout
    left = at - time.monotonic()
    if left <= 0:
        raise error("the call's wall-clock deadline has passed")
    return left if timeout is None else min(timeout, left)


class DeadlineStream(httpcore.NetworkStream):
    """A network stream whose every read and write honours the current deadline scope."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _clamp(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _clamp(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: typing.Any, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        return DeadlineStream(self._inner.start_tls(ssl_context, server_hostname,
                                                    _clamp(timeout, httpcore.ConnectTimeout)))

    def get_extra_info(self, info: str) -> typing.Any:
        return self._inner.get_extra_info(info)


class DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's sync backend, with `DeadlineStream`s and connects bounded by the deadline."""

    def __init__(self, inner: httpcore.NetworkBackend | None = None) -> None:
        self._inner = inner or httpcore.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[typing.Any] | None = None) -> httpcore.NetworkStream:
        stream = self._inner.connect_tcp(host, port, _clamp(timeout, httpcore.ConnectTimeout), local_address,
                                         socket_options)
        return DeadlineStream(stream)

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[typing.Any] | None = None) -> httpcore.NetworkStream:
        stream = self._inner.connect_unix_socket(path, _clamp(timeout, httpcore.ConnectTimeout), socket_options)
        return DeadlineStream(stream)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def deadline_transport(limits: httpx.Limits) -> httpx.HTTPTransport:
    """An httpx transport whose connection pool talks through `DeadlineBackend`.

    httpx offers no public way to choose the pool's network backend, so the pool it builds is
    given ours; this fails at cold start (not silently at request time) if httpx changes that.
    """
    from llm_gateway.tls import tls_context

    transport = httpx.HTTPTransport(limits=limits, trust_env=False, verify=tls_context())
    pool = getattr(transport, "_pool", None)
    if not isinstance(pool, httpcore.ConnectionPool) or not hasattr(pool, "_network_backend"):
        raise RuntimeError("httpx's transport changed: cannot install the wall-clock deadline backend")
    pool._network_backend = DeadlineBackend(pool._network_backend)
    return transport


def has_deadline_backend(client: httpx.Client) -> bool:
    """Whether `client`'s default transport enforces wall-clock deadlines (tests, diagnostics)."""
    pool = getattr(getattr(client, "_transport", None), "_pool", None)
    return isinstance(getattr(pool, "_network_backend", None), DeadlineBackend)
