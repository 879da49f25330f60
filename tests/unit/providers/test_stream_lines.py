"""A provider stream's lines end at CRLF, LF or CR alone, as server-sent events define them, and
nowhere else. JSON leaves U+2028, U+2029 and U+0085 unescaped inside strings, and a provider that
writes UTF-8 as it is (`ensure_ascii=False`) sends them raw in an answer's text; the engine read
lines with httpx's `iter_lines`, which also breaks at those (`str.splitlines`), so such an event
came as two broken lines and the stream failed as malformed."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from llm_gateway.providers.engine import ProviderEngine
from llm_gateway.providers.sse import sse_lines
from tests.unit.providers.helpers import adapter, request


class Pieces(httpx.SyncByteStream):
    """A body sent in the pieces given (a line, or a CRLF, may be cut anywhere)."""

    def __init__(self, *pieces: bytes) -> None:
        self.pieces = pieces

    def __iter__(self) -> Iterator[bytes]:
        yield from self.pieces


def _event(content: str, finish: str | None = None) -> str:
    chunk = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini",
             "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish}]}
    return "data: " + json.dumps(chunk, ensure_ascii=False) + "\n\n"


@pytest.mark.parametrize("odd", ["\u2028", "\u2029", "\x85"])
def test_a_raw_line_separator_inside_a_json_string_does_not_cut_the_event(odd: str) -> None:
    body = (_event(f"one{odd}two") + _event("", "stop") + "data: [DONE]\n\n").encode()
    answer = httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=Pieces(body))
    engine = ProviderEngine(httpx.Client(transport=httpx.MockTransport(lambda _request: answer)))
    with engine.open_stream(adapter("openai"), request("plain"), "gpt-4o-mini", 5.0) as stream:
        texts = [choice.delta.content for chunk in stream for choice in chunk.choices if choice.delta.content]
    assert texts == [f"one{odd}two"]


@pytest.mark.parametrize("pieces", [
    ["data: a\r\n\r\ndata: b\n\ndata: c\r\rdata: d"],
    ["data: a\r", "\n\r\ndata: b\n", "\ndata: c\r", "\rdata: d"],
    ["d", "ata: a\r\n", "\r", "\n", "data: b\n\nda", "ta: c\r\r", "data: d", ""],
], ids=["whole", "cut-in-crlf", "cut-anywhere"])
def test_lines_end_at_crlf_lf_or_cr_however_the_text_is_cut(pieces: list[str]) -> None:
    assert list(sse_lines(pieces)) == ["data: a", "", "data: b", "", "data: c", "", "data: d"]


def test_a_trailing_cr_ends_the_last_line_and_blank_lines_are_kept() -> None:
    assert list(sse_lines(["data: x\r"])) == ["data: x"]
    assert list(sse_lines(["\n\ndata: x\n\n\n"])) == ["", "", "data: x", "", ""]
    assert list(sse_lines([])) == []


def test_a_long_line_cut_into_many_pieces_is_joined_once() -> None:
    """A line is joined once it ends, not again with every piece of it: each piece was joined onto
    the whole unfinished line and the lot split again, quadratic in the line's length (a 4 MB
    `data:` line, such as an event carrying a base64 image, read in 1 KB pieces took over 5 s of
    CPU; httpx's own line decoder about 0.02 s). The bound is loose: linear is far below it."""
    import time

    line = "data: " + "A" * 4_000_000
    pieces = [line[i:i + 1024] for i in range(0, len(line), 1024)] + ["\r", "\n\n"]
    started = time.process_time()
    assert list(sse_lines(pieces)) == [line, ""]
    assert time.process_time() - started < 1.0


@pytest.mark.parametrize("cut", [1, 2, 3, 5, 7])
def test_lines_come_out_the_same_however_the_text_is_cut(cut: int) -> None:
    """Every line ending (CRLF, LF, CR alone, a CR ending a piece) at every cut."""
    text = "data: a\r\n\r\ndata: bb\n\ndata: c\rdata: d\r\rdata: \u2028e\r\n\ntail"
    expected = ["data: a", "", "data: bb", "", "data: c", "data: d", "", "data: \u2028e", "", "tail"]
    assert list(sse_lines([text])) == expected
    assert list(sse_lines([text[i:i + cut] for i in range(0, len(text), cut)])) == expected
