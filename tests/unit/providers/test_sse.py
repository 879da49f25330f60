"""SSE framing (providers.md §2.3): what every streaming adapter receives."""

from __future__ import annotations

from llm_gateway.providers.base import SSEEvent
from llm_gateway.providers.sse import encode_sse, iter_sse


def events(text: str) -> list[SSEEvent]:
    return list(iter_sse(text.splitlines()))


def test_data_only_events_and_done() -> None:
    assert events('data: {"a":1}\n\ndata: [DONE]\n\n') == [SSEEvent('{"a":1}'), SSEEvent("[DONE]")]


def test_crlf_and_named_events() -> None:
    text = "event: message-start\r\ndata: {\"x\":1}\r\n\r\nevent: message-end\r\ndata: {}\r\n\r\n"
    assert events(text) == [SSEEvent('{"x":1}', "message-start"), SSEEvent("{}", "message-end")]


def test_multi_line_data_is_joined_with_newline() -> None:
    assert events("data: one\ndata: two\n\n") == [SSEEvent("one\ntwo")]


def test_comments_ids_and_retry_are_ignored() -> None:
    assert events(": keep-alive\nid: 7\nretry: 1000\ndata: x\n\n") == [SSEEvent("x")]


def test_data_without_space_and_blank_runs() -> None:
    assert events("\n\ndata:x\n\n\n\n") == [SSEEvent("x")]


def test_bare_json_error_lines_are_passed_on() -> None:
    text = 'data: {"ok":1}\n\n{\n  "error": {"code": 503}\n}\n'
    got = events(text)
    assert got[0] == SSEEvent('{"ok":1}')
    assert got[1].data == '{\n"error": {"code": 503}\n}'.replace('\n"', '\n  "')


def test_last_event_without_trailing_blank_line_is_flushed() -> None:
    assert events("data: tail") == [SSEEvent("tail")]


def test_encode_sse() -> None:
    assert encode_sse('{"a":1}') == 'data: {"a":1}\n\n'
