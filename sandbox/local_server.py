"""`llm-gateway serve`: the Lambda handler behind a local HTTP server, as API Gateway would call it.

Each request becomes a REST proxy event and is handled by one of N independently imported
copies of `functions/chat/app.py`. Like Lambda containers, each copy serves one request at a
time and keeps its own in-container caches, while all of them share the state store.
"""

from __future__ import annotations

import argparse
import queue
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType
from typing import Any

from sandbox.apigw import LocalContext, load_handler_module, make_event, response_body, response_headers
from sandbox.local_env import prepare_local_env

ROUTES = {"/v1/chat/completions": "chat", "/v1/models": "chat", "/v1/status": "chat"}


class ContainerPool:
    """Imports a handler module per 'container' on first need; at most `size` at once."""

    def __init__(self, function: str, size: int) -> None:
        self._function = function
        self._idle: queue.LifoQueue[ModuleType] = queue.LifoQueue()
        self._slots = threading.Semaphore(size)
        self._created = 0
        self._lock = threading.Lock()

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        with self._slots:
            module = self._take()
            try:
                return module.lambda_handler(event, LocalContext(function_name=self._function))
            finally:
                self._idle.put(module)

    def _take(self) -> ModuleType:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            with self._lock:
                self._created += 1
                instance = str(self._created)
            return load_handler_module(self._function, instance)


class LocalGatewayServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # Python's default listen backlog is 5: a burst of clients overflowed the accept queue and
    # was dropped or reset. The kernel caps this at net.core.somaxconn (4096 on current Linux).
    request_queue_size = 1024

    def __init__(self, port: int, containers: int = 4) -> None:
        self.pools: dict[str, ContainerPool] = {}
        self.containers = containers
        super().__init__(("127.0.0.1", port), _Handler)

    def pool(self, function: str) -> ContainerPool:
        if function not in self.pools:
            self.pools[function] = ContainerPool(function, self.containers)
        return self.pools[function]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: LocalGatewayServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # the handler logs as JSON already
        return

    def _handle(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        event = make_event(self.command, self.path, headers, body, self.client_address[0])
        function = ROUTES.get(self.path.partition("?")[0].rstrip("/"), "chat")
        response = self.server.pool(function).invoke(event)
        payload = response_body(response)
        self.send_response(int(response.get("statusCode", 500)))
        for key, value in response_headers(response).items():
            if key.lower() not in {"content-length", "connection", "transfer-encoding"}:
                self.send_header(key, value)
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle


def start_server(port: int = 0, containers: int = 4) -> tuple[LocalGatewayServer, threading.Thread]:
    server = LocalGatewayServer(port, containers)
    thread = threading.Thread(target=server.serve_forever, name="local-gateway", daemon=True)
    thread.start()
    return server, thread


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="llm-gateway serve")
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument("--containers", type=int, default=4, help="handler copies serving in parallel")
    parser.add_argument("--state", choices=["dynamodb", "memory"], default="dynamodb")
    args = parser.parse_args(argv)
    local = prepare_local_env(state=args.state)
    server = LocalGatewayServer(args.port, args.containers)
    for note in local.notes:
        print(note, flush=True)
    print(f"LLM gateway listening on {server.url}/v1 (Ctrl-C to stop)", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        local.stop()
    print("stopped", file=sys.stderr)
    return 0
