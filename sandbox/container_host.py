"""A worker process of `llm-gateway serve` that hosts handler containers.

    python -m sandbox.container_host --announce-fd FD --containers K [--name w1]

It plays the part of the Lambda service behind API Gateway: `POST /invoke/<function>` with an
API Gateway event as the body runs that event through one of its K containers (`ContainerPool`)
and answers with the handler's result, as JSON. The local server's front sends each event to a
host with a free container. One host per CPU lets the handlers run in parallel instead of taking
turns on one GIL.

The handler's own output (Powertools JSON logs, EMF metric lines) goes to this process's stdout,
which is the terminal `make dev` runs in, line by line.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from llm_gateway.api.live import LiveResponse, prelude
from llm_gateway.api.lwa import send_live
from sandbox.child import announce, child_parser, hold_until_parent_stops
from sandbox.containers import ContainerPool
from sandbox.line_stdout import LineAtomicWriter

FUNCTIONS = ("chat", "health", "transcribe")
STREAM_PREFIX = "/invoke-stream/"  # a streaming invocation (InvokeWithResponseStream's part)


class HostServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024

    def __init__(self, pools: dict[str, ContainerPool]) -> None:
        self.pools = pools
        super().__init__(("127.0.0.1", 0), _InvokeHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _InvokeHandler(BaseHTTPRequestHandler):
    server: HostServer
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # the front logs each request
        return

    def do_POST(self) -> None:
        streamed = self.path.startswith(STREAM_PREFIX)
        function = self.path.removeprefix(STREAM_PREFIX if streamed else "/invoke/")
        length = int(self.headers.get("content-length") or 0)
        event = json.loads(self.rfile.read(length) or b"{}")
        pool = self.server.pools.get(function)
        if pool is None:
            self._send(404, {"errorMessage": f"no function {function!r} here"})
            return
        if streamed:
            self._invoke_stream(function, pool, event)
            return
        try:
            result = pool.invoke(event)
        except Exception as exc:  # an unhandled error in the handler: Lambda reports it, so do we
            print(f"handler {function} raised {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            self._send(502, {"errorType": type(exc).__name__, "errorMessage": str(exc)})
            return
        self._send(200, result)

    def _invoke_stream(self, function: str, pool: ContainerPool, event: dict[str, Any]) -> None:
        """`stream_handler`'s response framed as Lambda streams it to API Gateway (a JSON prelude,
        8 NUL bytes, then the body as it is produced), in chunked encoding. When the front goes
        away a write fails and the body is closed: the handler stops its provider call."""
        try:
            response = pool.invoke_stream(event)
        except Exception as exc:
            print(f"handler {function} raised {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            self._send(502, {"errorType": type(exc).__name__, "errorMessage": str(exc)})
            return
        framed = LiveResponse(200, {"content-type": "application/vnd.awslambda.http-integration-response"},
                              _framed(response))
        try:
            send_live(self, framed)
        finally:
            response.close()  # also when the framing generator never started

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _framed(response: LiveResponse) -> Iterator[bytes]:
    """The prelude, then the body; closing this closes the body (the container is freed)."""
    try:
        yield prelude(response.status, response.headers)
        yield from response.body
    finally:
        response.close()


def main(argv: list[str]) -> int:
    parser = child_parser("python -m sandbox.container_host", "host handler containers until the parent stops")
    parser.add_argument("--containers", type=int, required=True, help="containers per function in this host")
    parser.add_argument("--name", default="w1", help="prefix of this host's container names")
    args = parser.parse_args(argv)
    sys.stdout = LineAtomicWriter(sys.stdout)  # whole lines, at once, whichever container prints
    pools = {f: ContainerPool(f, args.containers, prefix=f"{args.name}_") for f in FUNCTIONS}
    try:
        # Every chat container starts now: a handler that cannot start fails here, before any
        # request, and a burst does not pay its cold starts on the CPU the fakes and the embedded
        # DynamoDB need at that moment (on AWS they do not share it).
        pools["chat"].prewarm(args.containers)
    except Exception as exc:
        print(f"{args.name}: the chat handler failed to start: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return 1
    server = HostServer(pools)
    thread = threading.Thread(target=server.serve_forever, name="container-host", daemon=True)
    thread.start()
    try:
        announce(args.announce_fd, {"url": server.url, "containers": args.containers})
        hold_until_parent_stops()
    finally:
        server.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
