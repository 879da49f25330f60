"""The provider client keeps no cookies: one pooled client serves every caller in a container, so a
cookie a provider set while answering one caller's request (a load balancer's sticky session, a
bot-management cookie) would otherwise ride along on every later caller's request to that host.
Providers authenticate by key; nothing of theirs needs a cookie back."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from llm_gateway.providers.engine import build_http_client


class _SetsCookies(BaseHTTPRequestHandler):
    seen: list[str | None] = []

    def do_GET(self) -> None:
        type(self).seen.append(self.headers.get("Cookie"))
        body = b"{}"
        self.send_response(200)
        self.send_header("Set-Cookie", "__cf_bm=first-caller; Path=/")
        self.send_header("Set-Cookie", "session=sticky; Path=/; HttpOnly")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def provider() -> Iterator[str]:
    _SetsCookies.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SetsCookies)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1/chat/completions"
    server.shutdown()
    server.server_close()


def test_a_cookie_one_answer_set_is_not_sent_on_the_next_request(provider: str) -> None:
    client = build_http_client()
    try:
        first = client.get(provider)
        assert "session=sticky" in first.headers.get_list("set-cookie")[1]  # the provider did set them
        client.get(provider)
        client.get(provider)
    finally:
        client.close()
    assert _SetsCookies.seen == [None, None, None]
    assert not client.cookies


def test_nothing_can_put_a_cookie_in_the_client(provider: str) -> None:
    client = build_http_client()
    try:
        client.cookies.set("planted", "by-someone")
        client.cookies = {"planted": "again"}  # type: ignore[assignment]
        client.get(provider, cookies=None)
    finally:
        client.close()
    assert _SetsCookies.seen == [None]
