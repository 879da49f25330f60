"""Deterministic "model" behaviour shared by every fake provider.

The provider modules translate their wire format into a `ChatRequest`; `make_reply` decides what
the fake model answers (text, a tool call or JSON) and how many tokens that costs. Nothing here
knows about HTTP or about any provider's spelling.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ECHO_CHARS = 60
TOOL_RESULT_CHARS = 400


@dataclass
class ToolSpec:
    name: str
    schema: dict[str, Any]


@dataclass
class ChatRequest:
    """A provider request reduced to what the fake model needs to answer it."""

    model: str
    stream: bool = False
    last_user_text: str = ""
    tool_result: str | None = None  # set when the last message is a tool result
    prompt_text: str = ""
    tools: list[ToolSpec] = field(default_factory=list)
    tool_choice: str = "auto"  # "auto" | "none" | "required"
    forced_tool: str | None = None  # a named function (or the only allowed one)
    json_mode: bool = False
    json_schema: dict[str, Any] | None = None
    include_usage: bool = False
    max_tokens: int | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    transcript: str | None = None  # audio in the prompt (Gemini): the reply is its transcript
    audio_tokens: int = 0  # counted into the prompt tokens


@dataclass
class ToolCall:
    id: str
    name: str
    args: dict[str, Any]

    @property
    def arguments(self) -> str:
        return json.dumps(self.args, separators=(",", ":"))


@dataclass
class Reply:
    text: str | None
    tool_calls: list[ToolCall]
    prompt_tokens: int
    completion_tokens: int
    finish: str  # "stop" | "length" | "tool_calls" (normalized; wires map to their own words)
    audio_tokens: int = 0  # of prompt_tokens, those for audio
    # Words per stream delta; 0 streams the text as one delta. The simulator asks for two
    # (`sandbox/simulate/streams.py`): its answers' text is a few dozen characters whatever their
    # token count, so deltas model only when the first content comes (at the first token) and
    # when the rest does (at the end), and no simulated figure depends on how many there are.
    piece_words: int = 2

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def pieces(self, words_per_piece: int | None = None) -> list[str]:
        """The text split into a few stream deltas that concatenate back to the text."""
        if not self.text:
            return []
        words_per_piece = self.piece_words if words_per_piece is None else words_per_piece
        if words_per_piece <= 0:
            return [self.text]
        words = self.text.split(" ")
        out = []
        for i in range(0, len(words), words_per_piece):
            piece = " ".join(words[i : i + words_per_piece])
            out.append(piece if i == 0 else " " + piece)
        return out


def estimate_tokens(text: str) -> int:
    """About four characters per token, never zero: deterministic and plausible."""
    return max(1, math.ceil(len(text) / 4))


def text_of(content: Any) -> str:
    """Text of a message content in any of the usual shapes (str, list of parts, dict)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(t for t in (text_of(p) for p in content) if t)
    if isinstance(content, dict):
        for key in ("text", "content", "data", "document"):
            if key in content:
                value = content[key]
                return value if isinstance(value, str) else json.dumps(value)
        return json.dumps(content)
    return str(content)


def choose_tool(req: ChatRequest) -> ToolSpec | None:
    """Which tool the fake model calls, if any."""
    if not req.tools or req.tool_result is not None or req.tool_choice == "none":
        return None
    if req.forced_tool:
        return next((t for t in req.tools if t.name == req.forced_tool), req.tools[0])
    if req.tool_choice == "required":
        return req.tools[0]
    said = req.last_user_text.lower()
    return next((t for t in req.tools if t.name.lower() in said), None)


def make_reply(provider: str, req: ChatRequest, call_id: Callable[[str, int], str]) -> Reply:
    prompt_tokens = estimate_tokens(req.prompt_text) + 3 + req.audio_tokens
    tool = choose_tool(req)
    if tool is not None:
        call = ToolCall(call_id(tool.name, 0), tool.name, example_for(tool.schema))
        return Reply(None, [call], prompt_tokens, estimate_tokens(call.arguments) + 5, "tool_calls", req.audio_tokens)
    text = reply_text(provider, req)
    finish = "stop"
    if req.max_tokens is not None and estimate_tokens(text) > req.max_tokens > 0 and not req.json_mode:
        text, finish = text[: req.max_tokens * 4], "length"
    return Reply(text, [], prompt_tokens, estimate_tokens(text), finish, req.audio_tokens)


def reply_text(provider: str, req: ChatRequest) -> str:
    if req.json_mode:
        if req.json_schema:
            return json.dumps(example_for(req.json_schema))
        if req.transcript is not None:
            return json.dumps({"transcript": req.transcript})
        return json.dumps({"answer": _canned(provider, req)})
    if req.transcript is not None:
        return req.transcript
    return _canned(provider, req)


def _canned(provider: str, req: ChatRequest) -> str:
    if req.tool_result is not None:
        result = req.tool_result[:TOOL_RESULT_CHARS]
        return f"Hello from fake-{provider} {req.model}. The tool returned: {result}"
    return f"Hello from fake-{provider} {req.model}. You said: {_echo(req.last_user_text)}"


def _echo(text: str) -> str:
    """The first ECHO_CHARS characters of `text` with its whitespace runs collapsed. Collapsing a
    prefix gives a prefix of the collapsed whole, so a long text (a simulated prompt is up to
    180,000 characters) is collapsed only as far as needed: a prefix twice as long as the echo
    first (it almost always has enough words), eight times longer each time it has not."""
    size = ECHO_CHARS * 2
    while True:
        head = " ".join(text[:size].split())
        if len(head) >= ECHO_CHARS or len(text) <= size:
            return head[:ECHO_CHARS]
        size *= 8


# --- JSON schema → example value ---------------------------------------------------------------

_MAX_DEPTH = 8


def example_for(schema: dict[str, Any] | None, name: str = "value") -> Any:
    """An example value that satisfies `schema` (JSON Schema or Gemini's OpenAPI subset)."""
    return _example(schema or {}, name, schema or {}, 0)


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return schema
    node: Any = root
    for part in ref[2:].split("/"):
        node = node.get(part, {}) if isinstance(node, dict) else {}
    return node if isinstance(node, dict) else {}


def _type_of(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if str(k).lower() != "null"), "null")
    if kind:
        return str(kind).lower()
    if "properties" in schema:
        return "object"
    if "items" in schema:
        return "array"
    return "string"


def _example(schema: dict[str, Any], name: str, root: dict[str, Any], depth: int) -> Any:
    schema = _resolve(schema, root)
    if depth > _MAX_DEPTH:
        return None
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        options = [o for o in schema.get(key) or [] if _type_of(_resolve(o, root)) != "null"]
        if options:
            return _example(options[0], name, root, depth + 1)
    if schema.get("allOf"):
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            part = _resolve(part, root)
            merged.setdefault("properties", {}).update(part.get("properties", {}))
            merged.setdefault("required", []).extend(part.get("required", []))
        return _example(merged, name, root, depth + 1)
    return _scalar_or_container(schema, name, root, depth)


def _scalar_or_container(schema: dict[str, Any], name: str, root: dict[str, Any], depth: int) -> Any:
    kind = _type_of(schema)
    if kind == "object":
        props = schema.get("properties") or {}
        return {key: _example(sub, key, root, depth + 1) for key, sub in props.items()}
    if kind == "array":
        count = max(1, int(schema.get("minItems", 1)))
        items = schema.get("items") or {}
        return [_example(items, name, root, depth + 1) for _ in range(count)]
    if kind in ("integer", "number"):
        return _number(schema, kind)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return _string(schema, name)


def _number(schema: dict[str, Any], kind: str) -> int | float:
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    value: float = 1
    if low is not None:
        value = float(low) + (1 if "exclusiveMinimum" in schema and "minimum" not in schema else 0)
    if high is not None and value > float(high):
        value = float(high)
    return int(value) if kind == "integer" else float(value)


_FORMATS = {
    "date": "2024-01-01",
    "date-time": "2024-01-01T00:00:00Z",
    "time": "00:00:00",
    "email": "user@example.com",
    "uri": "https://example.com",
    "url": "https://example.com",
    "uuid": "00000000-0000-4000-8000-000000000000",
}


def _string(schema: dict[str, Any], name: str) -> str:
    fmt = schema.get("format")
    text = _FORMATS.get(str(fmt).lower(), f"example {name}") if fmt else f"example {name}"
    min_len = int(schema.get("minLength", 0))
    max_len = schema.get("maxLength")
    if len(text) < min_len:
        text = text + "x" * (min_len - len(text))
    if max_len is not None:
        text = text[: int(max_len)]
    return text
