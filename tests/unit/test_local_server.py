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
