"""`llm-gateway serve` takes a burst: many clients connecting at the same instant are all answered
at once.

Python's default listen backlog is 5: in a burst of 50 connections the rest overflowed the accept
queue, and the kernel dropped (or reset) them; dropped ones were retried by the client's TCP stack
a full second later. So the test asserts both: every request answered, and no connection waited
for a SYN retransmission (the first one comes after 1 s).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from urllib.parse import urlsplit

BURST = 64
RETRANSMIT_S = 1.0


def _request(host: str, path: str, body: bytes | None) -> bytes:
    method = "POST" if body is not None else "GET"
    head = (f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer local-dev-key\r\n"
            "Content-Type: application/json\r\nConnection: close\r\n")
    payload = body or b""
    return f"{head}Content-Length: {len(payload)}\r\n\r\n".encode() + payload


def _call(host: str, port: int, raw: bytes, start: threading.Barrier) -> tuple[str, float]:
    """Connect when every client is ready; return the status line and how long connecting took."""
    start.wait()
    began = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=30) as sock:
            connected = time.monotonic() - began
            sock.sendall(raw)
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
    except OSError as exc:
        return f"error: {type(exc).__name__}", time.monotonic() - began
    return data.split(b"\r\n", 1)[0].decode(errors="replace"), connected


def test_a_burst_of_simultaneous_connections_is_all_answered_without_waiting_to_connect(gateway_url):
    url = urlsplit(gateway_url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    chat = json.dumps({"model": "auto", "messages": [{"role": "user", "content": "hi"}]}).encode()
    raws = [_request(host, "/v1/chat/completions", chat) if i % 2 else _request(host, "/v1/models", None)
            for i in range(BURST)]
    start = threading.Barrier(BURST)
    results: list[tuple[str, float]] = [("", 0.0)] * BURST

    def client(i: int) -> None:
        results[i] = _call(host, port, raws[i], start)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(BURST)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    failed = [status for status, _ in results if not status.startswith("HTTP/1.1 200")]
    assert not failed, f"{len(failed)} of {BURST} failed: {sorted(set(failed))}"
    slowest = max(connected for _, connected in results)
    assert slowest < RETRANSMIT_S * 0.9, f"a connection waited {slowest:.2f}s: the accept queue overflowed"
