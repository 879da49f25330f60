"""A provider answer is read up to a bound (`engine.MAX_ANSWER_BYTES`), counted after decoding:
one provider (or an OpenAI-compatible endpoint an operator points at the wrong thing) answering
gigabytes, or a small gzip body that decompresses to them, must cost one failed attempt, not the
container's memory (found by the security audit: the engine read every answer whole)."""

from __future__ import annotations

import gzip

import httpx
import pytest

from llm_gateway.providers import engine as engine_module
from llm_gateway.providers.base import TRANSPORT_MALFORMED, ProviderError
from llm_gateway.providers.engine import ProviderEngine
from tests.unit.providers.helpers import adapter, request

CAP = 64 * 1024


class Counted(httpx.SyncByteStream):
    """A body in 4 KiB chunks that counts how many were read."""

    def __init__(self, data: bytes) -> None:
        self.data, self.read_bytes = data, 0

    def __iter__(self):  # type: ignore[no-untyped-def]
        for at in range(0, len(self.data), 4096):
            self.read_bytes += len(self.data[at:at + 4096])
            yield self.data[at:at + 4096]


def _engine(answer: httpx.Response) -> ProviderEngine:
    return ProviderEngine(httpx.Client(transport=httpx.MockTransport(lambda _request: answer)))


@pytest.fixture(autouse=True)
def small_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_module, "MAX_ANSWER_BYTES", CAP)


def _oversized(declared: bool, headers: dict[str, str]) -> tuple[ProviderError, Counted]:
    """A 200 whose JSON body is eight times the bound (its length declared or chunked): the
    error it is refused with, and how much of it was read."""
    body = Counted(b'{"id": "' + b"x" * (CAP * 8) + b'"}')
    headers = {"content-type": "application/json", **headers}
    if declared:
        headers["content-length"] = str(len(body.data))
    with pytest.raises(ProviderError) as caught:
        _engine(httpx.Response(200, headers=headers, stream=body)).complete(adapter("openai"), request("plain"),
                                                                               "gpt-4o-mini", 5.0)
    assert caught.value.transport == TRANSPORT_MALFORMED and "larger than" in str(caught.value)
    return caught.value, body


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_an_answer_past_the_bound_is_a_malformed_answer_read_no_further(declared: bool) -> None:
    _, body = _oversized(declared, {})
    assert body.read_bytes <= (0 if declared else CAP + 4096)


def test_a_small_gzip_body_that_decompresses_past_the_bound_is_refused() -> None:
    bomb = Counted(gzip.compress(b"0" * (CAP * 64)))
    assert len(bomb.data) < CAP  # what is sent is small
    answer = httpx.Response(200, headers={"content-type": "application/json", "content-encoding": "gzip"}, stream=bomb)
    with pytest.raises(ProviderError) as caught:
        _engine(answer).complete(adapter("openai"), request("plain"), "gpt-4o-mini", 5.0)
    # refused for its size, not for the zeros being no JSON (which would be malformed too)
    assert caught.value.transport == TRANSPORT_MALFORMED and "larger than" in str(caught.value)


def test_an_error_answer_past_the_bound_is_cut_too() -> None:
    body = Counted(b"e" * (CAP * 8))
    with pytest.raises(ProviderError) as caught:
        _engine(httpx.Response(500, stream=body)).complete(adapter("openai"), request("plain"), "gpt-4o-mini", 5.0)
    assert caught.value.status == 500 and body.read_bytes <= CAP + 4096


def test_an_answer_within_the_bound_is_read_as_before() -> None:
    completion = (b'{"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",'
                  b' "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},'
                  b' "finish_reason": "stop"}], "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}')
    answer = httpx.Response(200, headers={"content-type": "application/json", "content-encoding": "gzip"},
                            content=gzip.compress(completion))
    reply = _engine(answer).complete(adapter("openai"), request("plain"), "gpt-4o-mini", 5.0)
    assert reply.value.choices[0].message.content == "hi"


RATE_HEADERS = {"x-ratelimit-limit-requests": "500", "x-ratelimit-remaining-requests": "3",
                "x-ratelimit-reset-requests": "20s", "x-ratelimit-limit-tokens": "200000",
                "x-ratelimit-remaining-tokens": "150", "x-ratelimit-reset-tokens": "6s"}


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_an_answer_past_the_bound_still_tells_its_rate_limits(declared: bool) -> None:
    """The answer is refused as before, but the provider's remaining capacity in its headers is
    kept on the error, as for any other failed answer: the bound was checked first and the
    headers never read, so the container learnt nothing from a 200 that said 3 requests remain."""
    told = _oversized(declared, RATE_HEADERS)[0].rate_limit
    assert told is not None and (told.remaining_requests, told.remaining_tokens) == (3, 150), told
    assert (told.reset_requests_s, told.reset_tokens_s) == (20.0, 6.0)


def test_an_error_answer_past_the_bound_tells_its_rate_limits_too() -> None:
    answer = httpx.Response(429, headers={**RATE_HEADERS, "retry-after": "7"}, stream=Counted(b"e" * (CAP * 8)))
    with pytest.raises(ProviderError) as caught:
        _engine(answer).complete(adapter("openai"), request("plain"), "gpt-4o-mini", 5.0)
    assert caught.value.status == 429 and caught.value.rate_limit is not None
    assert caught.value.rate_limit.remaining_requests == 3
