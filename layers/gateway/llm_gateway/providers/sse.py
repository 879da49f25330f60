"""Server-sent events framing shared by every streaming provider (providers.md §2.3)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from llm_gateway.providers.base import SSEEvent

_END_OF_LINE = re.compile("\r\n|\r|\n")


def sse_lines(texts: Iterable[str]) -> Iterator[str]:
    """The lines of a stream's text, however it comes cut into pieces. A line ends at CRLF, LF or
    CR alone, as server-sent events define it, and nowhere else: httpx's `iter_lines` also ends one
    at what `str.splitlines` does (U+2028, U+2029, U+0085...), which JSON carries unescaped inside
    a string, so an event whose text held one came as two broken lines. A CR that ends a piece
    waits for the next: it may be the first half of a CRLF. The pieces of an unfinished line are
    kept apart and joined once it ends (joined with every piece, a long line cost its length
    times its pieces)."""
    pending: list[str] = []
    for text in texts:
        if "\n" not in text and "\r" not in text and not (pending and pending[-1].endswith("\r")):
            pending.append(text)  # no line ends in it (nor at a CR held before it)
            continue
        buffer = "".join(pending) + text if pending else text
        whole = len(buffer) - 1 if buffer.endswith("\r") else len(buffer)
        lines = buffer[:whole].split("\n") if "\r" not in buffer else _END_OF_LINE.split(buffer[:whole])
        rest = lines.pop() + buffer[whole:]
        pending = [rest] if rest else []
        yield from lines
    if pending:
        lines = _END_OF_LINE.split("".join(pending))
        last = lines.pop()
        yield from lines
        if last:
            yield last


def iter_sse(lines: Iterable[str]) -> Iterator[SSEEvent]:
    """Group `data:`/`event:` lines into events at blank lines.

    A bare JSON line outside `data:` (how Gemini reports an error mid-stream) is passed on as
    data, so the adapter sees it instead of it being silently dropped.
    """
    data: list[str] = []
    event: str | None = None
    for raw in lines:
        line = raw.rstrip("\r")
        if not line:
            if data:
                yield SSEEvent(data="\n".join(data), event=event)
            data, event = [], None
            continue
        if line.startswith("data: "):  # most lines of every stream: what the general case makes of it
            data.append(line[6:])
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
        elif name in {"id", "retry"}:
            continue
        else:
            data.append(line)
    if data:
        yield SSEEvent(data="\n".join(data), event=event)


def encode_sse(payload: str) -> str:
    """One `data:` event as the gateway sends it to its own callers."""
    return f"data: {payload}\n\n"
