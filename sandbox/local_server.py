"""The local API: the Lambda handler behind an HTTP server, as API Gateway would call it.

Each request becomes a REST proxy event (`sandbox.apigw.make_event`) and is handed to a
container through a dispatcher: in this process (`start_server`, what tests use) or in container
host processes (`llm-gateway serve`, see `sandbox.serve_cli`). The server answers with the
handler's result, or with API Gateway's own 502/504 when there is none.

Besides the API it serves `GET /_sandbox/stats`: requests open now and at their peak, handler
invocations executing now and at their peak, and where the stand-ins run.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from llm_gateway.api.live import LiveResponse
from llm_gateway.api.lwa import send_live
from sandbox.apigw import make_event
from sandbox.dispatch import Dispatcher, InProcessDispatcher, InvokeFailed
from sandbox.gauge import Gauge
from sandbox.request_log import request_line

ROUTES = {"/v1/chat/completions": "chat", "/v1/models": "chat", "/v1/status": "chat"}
AUDIO_PREFIX = "/v1/audio/"  # transcriptions, translations, uploads, jobs: the transcribe function


def function_for(path: str) -> str:
    """Which function API Gateway would route `path` to (template.yaml's Events)."""
    path = path.rstrip("/")
    if path.startswith(AUDIO_PREFIX):
        return "transcribe"
    return ROUTES.get(path, "chat")
STATS_PATH = "/_sandbox/stats"
STREAMING_FUNCTIONS = {"chat"}  # template.yaml: ResponseTransferMode RESPONSE_STREAM on its events


class LocalGatewayServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # Python's default listen backlog is 5: a burst of clients overflowed the accept queue and
    # was dropped or reset. The kernel caps this at net.core.somaxconn (4096 on current Linux).
    request_queue_size = 1024

    def __init__(self, port: int, dispatcher: Dispatcher, log: Callable[[str], None] | None = None,
                 host: str = "127.0.0.1") -> None:
        self.dispatcher = dispatcher
        self.log = log
        self.in_flight = Gauge()
        self.draining = False
        self.extras: dict[str, Any] = {}
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up before its answer was written is normal; anything else is printed."""
        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            super().handle_error(request, client_address)

    def stats(self) -> dict[str, Any]:
        return {"in_flight": self.in_flight.snapshot(), "executing": self.dispatcher.executing.snapshot(),
                **self.dispatcher.describe(), **self.extras}

    def drain(self, timeout_s: float) -> bool:
        """Stop accepting, let every request in flight finish; False if some were still open at timeout.

        Call from a thread other than the one running `serve_forever`."""
        self.draining = True
        self.shutdown()
        self.socket.close()  # new connections are refused from here on
        return self.in_flight.wait_idle(timeout_s)


_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")


class _Handler(BaseHTTPRequestHandler):
    server: LocalGatewayServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # one line per request is written below
        return

    def _handle(self) -> None:
        body = self._body()
        if body is None:
            error = {"message": "The body's length (Content-Length, or a chunk's size) is not a byte count.",
                     "type": "invalid_request_error",
                     "param": None, "code": "invalid_content_length"}
            self.close_connection = True  # where the body ends is unknown: nothing more can be read
            self._send(400, {"content-type": "application/json"}, json.dumps({"error": error}).encode())
            return
        path = self.path.partition("?")[0]
        if path == STATS_PATH and self.command == "GET":  # about the API; not one of its requests
            self._send(200, {"content-type": "application/json"}, json.dumps(self.server.stats()).encode())
        else:
            with self.server.in_flight.track():
                self._serve(path, body)
        if self.server.draining:
            self.close_connection = True

    def _body(self) -> bytes | None:
        """The request body: chunked (as httpx sends a generator), or `Content-Length` bytes; None
        when the length (or a chunk's size) is not a count."""
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            parts: list[bytes] = []
            while True:
                size = _CHUNK_SIZE.fullmatch(self.rfile.readline().split(b";")[0].strip())
                if size is None:  # blank, negative or not hexadecimal: where the body ends is unknown
                    return None
                if int(size[0], 16) == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers, then the blank line
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(int(size[0], 16)))
                self.rfile.readline()
        text = (self.headers.get("content-length") or "0").strip()
        if not (text.isascii() and text.isdigit()):
            return None
        length = int(text)
        return self.rfile.read(length) if length else b""

    def _serve(self, path: str, body: bytes) -> None:
        began = time.monotonic()
        headers = {k.lower(): v for k, v in self.headers.items()}
        event = make_event(self.command, self.path, headers, body, self.client_address[0])
        function = function_for(path)
        try:
            # Every chat route goes through the streaming invocation, as API Gateway's STREAM
            # integration sends them on AWS (template.yaml); only an SSE body is sent as it comes.
            # Other functions are invoked buffered, as their (default) integrations do.
            if function in STREAMING_FUNCTIONS:
                live = self.server.dispatcher.invoke_stream(function, event)
            else:
                live = LiveResponse.from_proxy(self.server.dispatcher.invoke(function, event), [])
            status, out_headers = live.status, live.headers
            if out_headers.get("content-type", out_headers.get("Content-Type", "")).startswith("text/event-stream"):
                self._send_live(live)
                payload = None
            else:
                try:
                    payload = b"".join(live.body)
                finally:
                    live.close()
        except InvokeFailed as failed:  # no handler result: what API Gateway answers then
            status, out_headers = failed.status, {"content-type": "application/json"}
            payload = json.dumps({"message": failed.message}).encode()
        except ConnectionError:  # the container host went away before the body was whole
            status, out_headers = 502, {"content-type": "application/json"}
            payload = json.dumps({"message": "Internal server error"}).encode()
        if payload is not None:
            self._send(status, out_headers, payload)
        if self.server.log is not None:
            request_id = event["requestContext"]["requestId"]
            self.server.log(request_line(self.command, path, status, out_headers, time.monotonic() - began, request_id))

    def _send(self, status: int, headers: dict[str, str], payload: bytes) -> None:
        self.send_response(status)
        for key, value in headers.items():
            if key.lower() not in {"content-length", "connection", "transfer-encoding"}:
                self.send_header(key, value)
        self.send_header("content-length", str(len(payload)))
        if self.server.draining:
            self.send_header("connection", "close")
        self.end_headers()
        if self.command != "HEAD":  # a HEAD answer is a GET's headers without its body
            self.wfile.write(payload)

    def _send_live(self, live: LiveResponse) -> None:
        """Chunked, each chunk as soon as the container sends it. If the client has gone, the
        write fails and the body is closed: that reaches the handler, which stops its provider."""
        if not send_live(self, live):
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _handle


def start_server(port: int = 0, containers: int = 4) -> tuple[LocalGatewayServer, threading.Thread]:
    """The local API in this process, its containers too (for tests: nothing else to start)."""
    server = LocalGatewayServer(port, InProcessDispatcher(containers))
    thread = threading.Thread(target=server.serve_forever, name="local-gateway", daemon=True)
    thread.start()
    return server, thread

