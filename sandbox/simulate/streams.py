"""A simulated stream in time: its first delta of content at the first token, the rest at the end.

A provider streaming an answer sends its first content once the model has written its first token
(`first_token_s`), and its last event once the whole answer is written. The gateway holds a live
stream's first chunk to the attempt's timeout and learns that chunk's latency apart from whole
answers' (`AdaptiveTimeouts`), so a simulator that sent a stream whole at the end taught it whole
answers' times as first chunks. Here the events up to and including the first that carries
content (the wires flag them: `sandbox.fakes.wire.Event`) come at the first token, the rest at
the answer's total latency, where the stream ends as before.

The simulated answers' text is a few dozen characters whatever their token count, so it is sent
as two deltas (`two_deltas`): with one, the first content delta would be the whole text and, at
Gemini, the last event too. The wires' shapes, split after their first content delta:
OpenAI, Groq and Mistral: role chunk, first delta | second delta, finish chunk (usage on it at
Groq and Mistral), OpenAI's usage chunk, `[DONE]`; a tool call's head | its arguments (Groq sends
tool calls whole on the finish chunk: | the usage chunk and `[DONE]`). Cohere: message-start,
content-start, first delta | second delta, content-end, message-end (tools: first tool-plan word
| the rest). Gemini: one chunk per delta, the last with the finish reason; its tool calls come in
one event with the finish reason, so that stream ends with its first content and is sent whole at
the end, as an answer not streamed is (`split` returns no tail).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator

import httpx

from sandbox.fakes.wire import Event


def two_deltas(text: str | None) -> int:
    """`Reply.piece_words` that sends `text` as two deltas (one if it is a single word)."""
    words = len(text.split(" ")) if text else 0
    return max(1, math.ceil(words / 2))


def split(events: Iterable[Event], sentinel: bytes | None) -> tuple[bytes, bytes]:
    """(head, tail): the framed events up to and including the first that carries content, and
    the rest with the wire's sentinel. A stream whose first content ends it (nothing after), or
    that has none, is all head and no tail: the caller sends it whole at the end."""
    framed = list(events)
    first = next((i for i, (_, content) in enumerate(framed) if content), None)
    whole = b"".join(data for data, _ in framed) + (sentinel or b"")
    if first is None:
        return whole, b""
    head = b"".join(data for data, _ in framed[: first + 1])
    return head, whole[len(head):]


class PacedBody(httpx.SyncByteStream):
    """A stream's body on the virtual clock: `head` at once (the response comes at the first
    token), then `tail` after `rest_s`. With `cut` (the answer outlasts the time the gateway gave
    the whole stream), a read timeout comes after `rest_s` instead, as a socket read past its
    deadline does: the stream has started, so this is a cut the gateway does not fail over."""

    def __init__(self, head: bytes, tail: bytes, *, sleep: Callable[[float], None], rest_s: float,
                 cut: httpx.Request | None = None) -> None:
        self._head, self._tail = head, tail
        self._sleep, self._rest_s, self._cut = sleep, rest_s, cut

    def __iter__(self) -> Iterator[bytes]:
        yield self._head
        self._sleep(self._rest_s)
        if self._cut is not None:
            raise httpx.ReadTimeout(f"the stream did not end within {self._rest_s:.1f} s more", request=self._cut)
        yield self._tail
