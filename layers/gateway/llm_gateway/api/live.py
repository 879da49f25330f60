"""Streamed responses: what a streaming invocation of a handler returns, and how it is framed.

A handler module serves two kinds of invocation with the same routes and the same code:

- `lambda_handler(event, context) -> dict`: a buffered invocation (API Gateway's default
  integration, `llm-gateway invoke`); a `stream: true` chat answer is one whole SSE body.
- `stream_handler(event, context) -> LiveResponse`: a streaming invocation (on AWS, API Gateway's
  `responseTransferMode: STREAM` integration through the Lambda Web Adapter, see `api/lwa.py`;
  locally, `make dev`). It runs `lambda_handler` inside `streaming()`, so a route may hand over
  a body to send as it is produced (`hand_over`) instead of a whole one.

The streaming framing Lambda hands API Gateway (and `make dev`'s container hosts hand their
front) is a JSON prelude `{"statusCode", "headers", ...}`, then 8 NUL bytes, then the raw body:
https://docs.aws.amazon.com/apigateway/latest/developerguide/response-transfer-mode-lambda.html
(on AWS the Lambda Web Adapter writes it; `prelude` and `read_prelude` are the local stand-in).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Generator, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

DELIMITER = b"\0" * 8  # between the prelude and the body
MAX_PRELUDE_BYTES = 16 * 1024  # API Gateway needs the metadata within the first 16 KB

_SLOT: ContextVar[list[Generator[bytes, None, None]] | None] = ContextVar("llm_gateway_live_body", default=None)


@contextmanager
def streaming() -> Iterator[list[Generator[bytes, None, None]]]:
    """Within this block (this thread), routes may hand over a body to stream; the list holds it."""
    holder: list[Generator[bytes, None, None]] = []
    token = _SLOT.set(holder)
    try:
        yield holder
    finally:
        _SLOT.reset(token)


def is_streaming() -> bool:
    """True when the current invocation can send a body as it is produced."""
    return _SLOT.get() is not None


def hand_over(body: Generator[bytes, None, None]) -> None:
    holder = _SLOT.get()
    if holder is None:
        raise RuntimeError("hand_over outside a streaming invocation")
    holder.append(body)


@dataclass
class LiveResponse:
    """A response whose body is sent chunk by chunk; `close()` stops it early (caller gone)."""

    status: int
    headers: dict[str, str]
    body: Iterable[bytes] = field(default_factory=tuple)

    @classmethod
    def from_proxy(cls, result: dict[str, Any], live: list[Generator[bytes, None, None]]) -> LiveResponse:
        """The handler's proxy result, with the body handed over during it (if any) as the body."""
        headers = {str(k): str(v) for k, v in (result.get("headers") or {}).items()}
        for key, values in (result.get("multiValueHeaders") or {}).items():
            if values:
                headers[str(key)] = ", ".join(str(v) for v in values)
        status = int(result.get("statusCode", 500))
        if live:
            for extra in live[1:]:
                extra.close()
            return cls(status, headers, live[0])
        body = result.get("body") or ""
        data = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
        return cls(status, headers, (data,))

    def close(self) -> None:
        close = getattr(self.body, "close", None)
        if close is not None:
            close()


def prelude(status: int, headers: dict[str, str]) -> bytes:
    """The metadata a streamed Lambda response starts with, delimiter included."""
    data = json.dumps({"statusCode": status, "headers": headers}).encode()
    if len(data) > MAX_PRELUDE_BYTES:
        raise ValueError("response metadata over 16 KB")
    return data + DELIMITER


def read_prelude(chunks: Iterator[bytes]) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, the body bytes that came with the prelude) from a framed stream."""
    buffer = b""
    while DELIMITER not in buffer:
        if len(buffer) > MAX_PRELUDE_BYTES:
            raise ValueError("no prelude delimiter within 16 KB")
        chunk = next(chunks, None)
        if chunk is None:
            raise ValueError("the stream ended before its prelude")
        buffer += chunk
    meta, _, rest = buffer.partition(DELIMITER)
    parsed = json.loads(meta)
    return int(parsed.get("statusCode", 200)), {str(k): str(v) for k, v in (parsed.get("headers") or {}).items()}, rest
