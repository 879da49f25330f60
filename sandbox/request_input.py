"""Read a chat completion request for the CLI: a request body file, an API Gateway event file, or stdin.

`llm-gateway plan` should take what a person already has at hand: the bodies in
`sandbox/requests/`, the events in `events/` (what `llm-gateway invoke` takes), or a body piped in.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any

CHAT_PATH = "/v1/chat/completions"


class RequestInputError(ValueError):
    """The input is not a chat completion request; the message says what it is instead."""


def read_request(source: str) -> dict[str, Any]:
    """The request body as a dict; `source` is a file path or `-` for stdin."""
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise RequestInputError(f"cannot read {source}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:  # a JSON file is UTF-8 text
        raise RequestInputError(f"{source} is not UTF-8 text, so not a JSON request: {exc.reason}") from exc
    data = _json(text, source)
    if _is_event(data):
        data = _body_of_event(data, source)
    if not isinstance(data, dict):
        raise RequestInputError(f"{source} holds JSON {type(data).__name__}; a chat completion request is an object")
    return data


def _is_event(data: object) -> bool:
    return isinstance(data, dict) and "httpMethod" in data and "requestContext" in data


def _body_of_event(event: dict[str, Any], source: str) -> Any:
    method, path = event.get("httpMethod"), str(event.get("path") or "")
    if method != "POST" or path.rstrip("/") != CHAT_PATH:
        raise RequestInputError(
            f"{source} is an API Gateway event for {method} {path}; plan needs a chat completion request "
            f"(a POST {CHAT_PATH} event or a request body, e.g. sandbox/requests/hello.json)"
        )
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        body = base64.b64decode(body).decode("utf-8", errors="replace")
    return _json(body, f"the body of {source}")


def _json(text: str, source: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise RequestInputError(f"{source} is not valid JSON: {exc}") from exc
