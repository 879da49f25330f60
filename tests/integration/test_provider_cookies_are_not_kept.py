"""The provider client keeps no cookies: one pooled client serves every caller in a container, so a
cookie a provider set while answering one caller's request (a load balancer's sticky session, a
bot-management cookie) would otherwise ride along on every later caller's request to that host.
Providers authenticate by key; nothing of theirs needs a cookie back."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from llm_gateway.providers.engine import build_http_client
from tests.loopback import QuietHandler, serving


class _SetsCookies(QuietHandler):
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


@pytest.fixture
def provider() -> Iterator[str]:
    _SetsCookies.seen = []
    with serving(_SetsCookies) as url:
        yield url + "/v1/chat/completions"


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
