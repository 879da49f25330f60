"""How the local server's front reaches a container: in this process, or in container hosts.

`InProcessDispatcher` keeps the containers in the server's own process (tests use it: one
process, nothing to start). `ProcessDispatcher` sends each event to a container host process
(`sandbox.container_host`) with a free container, over keep-alive HTTP on loopback; that is
what `llm-gateway serve` runs, so handlers stop taking turns on one GIL.

Both queue an event until a container is free, as the Lambda service would if its concurrency
were this small, and both count the invocations executing at once (`executing`).
"""

from __future__ import annotations

import http.client
import json
import queue
from collections.abc import Callable, Iterator
from typing import Any, Protocol
from urllib.parse import urlsplit

from llm_gateway.api.live import LiveResponse, read_prelude
from sandbox.apigw import STREAM_TIMEOUT_MS
from sandbox.containers import ContainerPool
from sandbox.gauge import Gauge

INVOKE_TIMEOUT_S = 30.0  # API Gateway gives up after 29 s
STREAM_INVOKE_TIMEOUT_S = STREAM_TIMEOUT_MS / 1000  # a streamed response may run to the function timeout


class InvokeFailed(Exception):
    """No handler result: the status and body API Gateway answers with in that case."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Dispatcher(Protocol):
    executing: Gauge

    def invoke(self, function: str, event: dict[str, Any]) -> dict[str, Any]: ...

    def invoke_stream(self, function: str, event: dict[str, Any]) -> LiveResponse: ...

    def describe(self) -> dict[str, Any]: ...


class InProcessDispatcher:
    """`containers` copies of each handler module, imported into this process."""

    def __init__(self, containers: int) -> None:
        self.containers = containers
        self.executing = Gauge()
        self._pools: dict[str, ContainerPool] = {}

    def invoke(self, function: str, event: dict[str, Any]) -> dict[str, Any]:
        pool = self._pools.get(function)
        if pool is None:
            pool = self._pools.setdefault(function, ContainerPool(function, self.containers, executing=self.executing))
        try:
            return pool.invoke(event)
        except Exception as exc:
            raise InvokeFailed(502, "Internal server error") from exc

    def invoke_stream(self, function: str, event: dict[str, Any]) -> LiveResponse:
        try:
            return self._pool(function).invoke_stream(event)
        except Exception as exc:
            raise InvokeFailed(502, "Internal server error") from exc

    def _pool(self, function: str) -> ContainerPool:
        pool = self._pools.get(function)
        if pool is None:
            pool = self._pools.setdefault(function, ContainerPool(function, self.containers, executing=self.executing))
        return pool

    def describe(self) -> dict[str, Any]:
        return {"containers": self.containers, "hosts": 0}


class _Host:
    """One container host: its address and a pool of keep-alive connections to it."""

    def __init__(self, url: str, containers: int) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.containers = containers
        self._connections: queue.LifoQueue[http.client.HTTPConnection] = queue.LifoQueue()

    def post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            connection = self._connections.get_nowait()
        except queue.Empty:
            connection = http.client.HTTPConnection(self.host, self.port, timeout=INVOKE_TIMEOUT_S)
        data = json.dumps(payload).encode()
        try:
            connection.request("POST", path, body=data, headers={"content-type": "application/json"})
            response = connection.getresponse()
            body = response.read()
        except TimeoutError as exc:
            connection.close()
            raise InvokeFailed(504, "Endpoint request timed out") from exc
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            raise InvokeFailed(502, "Internal server error") from exc
        self._connections.put(connection)
        if response.status != 200:
            raise InvokeFailed(502, "Internal server error")
        return json.loads(body)

    def post_stream(self, path: str, payload: dict[str, Any], done: Callable[[], None]) -> LiveResponse:
        """A streaming invocation on a connection of its own: the response's status and headers
        from the prelude, its body as the host sends it. Closing the body drops the connection
        (the host then stops the handler); `done` runs once the body is over either way."""
        connection = http.client.HTTPConnection(self.host, self.port, timeout=STREAM_INVOKE_TIMEOUT_S)
        try:
            connection.request("POST", path, body=json.dumps(payload).encode(),
                               headers={"content-type": "application/json"})
            response = connection.getresponse()
            if response.status != 200:
                raise InvokeFailed(502, "Internal server error")
            chunks = _reads(response)
            status, headers, first = read_prelude(chunks)
        except TimeoutError as exc:
            connection.close()
            raise InvokeFailed(504, "Endpoint request timed out") from exc
        except (OSError, ValueError, http.client.HTTPException) as exc:
            connection.close()
            raise InvokeFailed(502, "Internal server error") from exc
        except InvokeFailed:
            connection.close()
            raise

        def body() -> Iterator[bytes]:
            if first:
                yield first
            yield from chunks

        return LiveResponse(status, headers, _Closing(body(), connection, done))


class ProcessDispatcher:
    """Sends each event to a host with a free container. Hosts are added once they have started;
    until then events wait, as they would for any busy container."""

    def __init__(self) -> None:
        self.executing = Gauge()
        self._hosts: list[_Host] = []
        self._free: queue.Queue[_Host] = queue.Queue()

    def add_hosts(self, hosts: list[tuple[str, int]]) -> None:
        """(url, containers) pairs. One free slot per container, hosts interleaved, so that a
        light load spreads over all of them."""
        added = [_Host(url, containers) for url, containers in hosts]
        self._hosts.extend(added)
        for slot in range(max((h.containers for h in added), default=0)):
            for host in added:
                if slot < host.containers:
                    self._free.put(host)

    def invoke(self, function: str, event: dict[str, Any]) -> dict[str, Any]:
        host = self._free.get()
        try:
            with self.executing.track():
                return host.post(f"/invoke/{function}", event)
        finally:
            self._free.put(host)

    def invoke_stream(self, function: str, event: dict[str, Any]) -> LiveResponse:
        """Like `invoke`, but the container (and the host's slot) stays taken while the body streams."""
        host = self._free.get()
        self.executing.enter()

        def done() -> None:
            self.executing.leave()
            self._free.put(host)

        try:
            return host.post_stream(f"/invoke-stream/{function}", event, done)
        except BaseException:
            done()
            raise

    def describe(self) -> dict[str, Any]:
        return {"containers": sum(h.containers for h in self._hosts), "hosts": len(self._hosts)}


def _reads(response: http.client.HTTPResponse) -> Iterator[bytes]:
    """What the host has sent so far, as it arrives (not waiting for a full buffer)."""
    while True:
        data = response.read1(65536)
        if not data:
            return
        yield data


class _Closing:
    """A streamed body that closes its connection and calls `done` once, when exhausted or closed."""

    def __init__(self, chunks: Iterator[bytes], connection: http.client.HTTPConnection,
                 done: Callable[[], None]) -> None:
        self._chunks = chunks
        self._connection = connection
        self._done: Callable[[], None] | None = done

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        try:
            return next(self._chunks)
        except (OSError, http.client.HTTPException) as exc:  # the host went away mid-stream
            self.close()
            raise ConnectionAbortedError("the container host went away mid-stream") from exc
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        done, self._done = self._done, None
        if done is None:
            return
        self._connection.close()
        done()
