"""Server-sent events framing shared by every streaming provider (providers.md §2.3)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from llm_gateway.providers.base import SSEEvent


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
