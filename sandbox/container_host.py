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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sandbox.child import announce, child_parser, hold_until_parent_stops
from sandbox.containers import ContainerPool
from sandbox.line_stdout import LineAtomicWriter

FUNCTIONS = ("chat", "health", "transcribe")


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
        function = self.path.removeprefix("/invoke/")
        length = int(self.headers.get("content-length") or 0)
        event = json.loads(self.rfile.read(length) or b"{}")
        pool = self.server.pools.get(function)
        if pool is None:
            self._send(404, {"errorMessage": f"no function {function!r} here"})
            return
        try:
            result = pool.invoke(event)
        except Exception as exc:  # an unhandled error in the handler: Lambda reports it, so do we
            print(f"handler {function} raised {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            self._send(502, {"errorType": type(exc).__name__, "errorMessage": str(exc)})
            return
        self._send(200, result)

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


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
