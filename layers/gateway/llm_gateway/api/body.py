"""The request body, from raw text to a JSON object the models can validate, refusing what would
hurt later.

`json.loads` accepts things that crash code far from the edge: a body nested 100,000 levels
deep raises RecursionError (in the decoder, or later in whatever recurses over it), a lone
surrogate escape ("\\ud800") becomes a `str` that no UTF-8 encoder accepts (the provider call
fails with UnicodeEncodeError), and `NaN`, `Infinity` or `1e999` become floats that are not
JSON at all. Each is the caller's error, so each is a 400 here, before validation, naming the
place when there is one. The walk is iterative: checking depth must not itself recurse.
"""

from __future__ import annotations

import json
import math
from typing import Any

from llm_gateway.api.errors import InvalidRequest, PayloadTooLarge

MAX_JSON_DEPTH = 100  # a tool schema 45 objects deep still fits; nothing legitimate comes close


def parse_json_body(raw: str, max_bytes: int) -> dict[str, Any]:
    """A JSON object from the request body, or the OpenAI-style error that explains why not."""
    size = len(raw.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise PayloadTooLarge(f"Request body exceeds {max_bytes} bytes.", code="body_too_large")
    try:
        body = json.loads(raw, parse_constant=_no_constant, parse_float=_finite_float)
    except RecursionError:
        raise _too_deep("body") from None
    except _NotFinite as exc:
        raise InvalidRequest(f"The request body holds a number JSON cannot carry ({exc}).",
                             code="invalid_json") from None
    except ValueError as exc:  # also: integers longer than Python's 4300-digit limit
        raise InvalidRequest("The request body is not valid JSON.", code="invalid_json") from exc
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_json")
    check_tree(body)
    return body


def loads_embedded(text: str) -> Any:
    """JSON a caller wrote inside a string (tool-call arguments, a tool's result), for a provider
    that takes it as JSON: read as the body is, so what the body would refuse cannot reach the
    provider call through a string. ValueError for text that is not such JSON."""
    try:
        value = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
        check_tree(value)
    except (RecursionError, InvalidRequest) as exc:
        raise ValueError(str(exc)) from None
    return value


_Place = tuple[Any, str | int] | None  # (the parent's place, this node's key or index); None: the root


def check_tree(value: Any, root: str = "") -> None:
    """Depth at most `MAX_JSON_DEPTH`, and every string and key encodable as UTF-8.

    A node's place is kept as (its parent's place, its key or index) and spelt out only for a
    node refused: each name repeats its parent's, so names made for every node cost the body's
    size times its keys' length (a 100 KB key over 5,000 zeros: 500 MB)."""
    stack: list[tuple[Any, _Place, int]] = [(value, None, 1)]
    while stack:
        node, place, depth = stack.pop()
        if isinstance(node, str):
            _check_text(node, place, root)
            continue
        if not isinstance(node, dict | list):
            continue
        if depth > MAX_JSON_DEPTH:
            raise _too_deep(_path(place, root) or "body")
        if isinstance(node, dict):
            for key, child in node.items():
                _check_text(key, place, root, at_root="body")  # a key is reported at its object
                stack.append((child, (place, key), depth + 1))
        else:
            stack.extend((child, (place, i), depth + 1) for i, child in enumerate(node))


def _path(place: _Place, root: str) -> str:
    """`metadata.tags[3]` for a place."""
    parts: list[str | int] = []
    while place is not None:
        place, part = place
        parts.append(part)
    path = root
    for part in reversed(parts):
        path = f"{path}[{part}]" if isinstance(part, int) else f"{path}.{part}" if path else part
    return path


def _check_text(text: str, place: _Place, root: str, at_root: str = "") -> None:
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        path = _path(place, root) or at_root
        raise InvalidRequest(
            f"Invalid value for '{path}': a string holds a lone UTF-16 surrogate (\\ud800-\\udfff), which is not text.",
            param=path or None, code="invalid_unicode",
        ) from None


def _too_deep(path: str) -> InvalidRequest:
    return InvalidRequest(f"The request body is nested more than {MAX_JSON_DEPTH} levels deep (at '{path}').",
                          param=path, code="too_deep")


class _NotFinite(ValueError):
    pass


def _no_constant(name: str) -> float:
    raise _NotFinite(name)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotFinite(text if len(text) <= 20 else text[:20] + "…")
    return value
