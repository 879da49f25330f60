"""The local API's HTTP front, with a stand-in dispatcher (no handler, no fakes)."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

from llm_gateway.api.live import LiveResponse
from sandbox.gauge import Gauge
from sandbox.local_server import LocalGatewayServer


class SlowDispatcher:
    """Answers every event with a 200 after `delay_s`, like a container busy with a provider."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.executing = Gauge()

    def invoke(self, function: str, event: dict[str, Any]) -> dict[str, Any]:
        with self.executing.track():
            time.sleep(self.delay_s)
            return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": "{}"}

    def invoke_stream(self, function: str, event: dict[str, Any]) -> LiveResponse:
        """Chat routes go through the streaming invocation (as API Gateway's STREAM integration does)."""
        return LiveResponse.from_proxy(self.invoke(function, event), [])

    def describe(self) -> dict[str, Any]:
        return {"containers": 1, "hosts": 0}


def test_a_client_that_leaves_before_its_answer_is_not_a_traceback(capsys):
    server = LocalGatewayServer(0, SlowDispatcher(0.3))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with socket.create_connection(("127.0.0.1", server.server_address[1])) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST on close
            sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n")
        deadline = time.monotonic() + 5
        while server.in_flight.snapshot()["total"] < 1 or server.in_flight.current:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.1)
    finally:
        server.shutdown()
        server.server_close()
    assert "Traceback" not in capsys.readouterr().err


class EchoDispatcher(SlowDispatcher):
    """Answers with the body it was given, so a test sees what the front read."""

    def __init__(self) -> None:
        super().__init__(0.0)

    def invoke(self, function: str, event: dict[str, Any]) -> dict[str, Any]:
        import base64
        import json

        raw = event.get("body") or ""
        body = base64.b64decode(raw).decode() if event.get("isBase64Encoded") else raw
        return {"statusCode": 200, "headers": {"content-type": "application/json"},
                "body": json.dumps({"method": event["httpMethod"], "body": body})}


def _raw(server: LocalGatewayServer, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=5) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while data := sock.recv(65536):
            chunks.append(data)
    return b"".join(chunks)


def test_the_front_reads_chunked_bodies_refuses_bad_lengths_and_answers_every_method():
    """Found by exploratory testing: a chunked body (httpx with a generator) arrived empty, a
    `Content-Length` that is not a count closed the connection with a traceback, and OPTIONS or
    HEAD got the standard library's 501 HTML page."""
    import json

    server = LocalGatewayServer(0, EchoDispatcher())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        chunked = _raw(server, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                               b"Transfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n3\r\n 1}\r\n0\r\n\r\n")
        assert chunked.startswith(b"HTTP/1.1 200")
        assert json.loads(chunked.split(b"\r\n\r\n", 1)[1])["body"] == '{"a": 1}'
        for length in (b"abc", b"-5", "\u00b2".encode()):
            bad = _raw(server, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                               b"Content-Length: " + length + b"\r\n\r\n{}")
            assert bad.startswith(b"HTTP/1.1 400")
            error = json.loads(bad.split(b"\r\n\r\n", 1)[1])["error"]
            assert error["type"] == "invalid_request_error" and error["code"] == "invalid_content_length"
        for size in (b"-1", b"", b"zz"):  # a chunk size that is no count: 400, never a hang or a second request
            bad = _raw(server, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                               + size + b"\r\n{}\r\n0\r\n\r\n")
            assert bad.startswith(b"HTTP/1.1 400") and bad.count(b"HTTP/1.1") == 1, bad
        options = _raw(server, b"OPTIONS /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert options.startswith(b"HTTP/1.1 200") and b'"OPTIONS"' in options
        head = _raw(server, b"HEAD /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and head.endswith(b"\r\n\r\n")  # headers, no body
    finally:
        server.shutdown()
        server.server_close()
