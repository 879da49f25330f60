"""Conversation keys for affinity: which requests are turns of one conversation. Pure.

Chat requests carry the whole history and no conversation id, so a conversation is recognised by
its history. A turn's key is the SHA-256 of the messages *before* its latest user/tool turn (the
trailing user and tool messages), as canonical JSON; that prefix ends with the assistant message
that answered the previous turn. After answering, the gateway records the model under the key
the next turn will compute: this request's messages plus the answer (`next_turn_key`). A tool
call and its follow-up (the same messages + the assistant's tool call + the tool results) thus
meet under one key, and so do a reply and the user message after it.

Canonical form, so that what an SDK echoes back matches what the gateway answered: each message
as the request schema parsed it (unknown keys such as `annotations` already gone), nulls left
out, text-only content joined into one string, and empty assistant content dropped (an answer
with tool calls comes back as `null`, `""` or absent depending on the client). A client that
rewrites the history (other argument spacing, trimmed turns) simply gets no affinity.

Only the hash is stored, never the conversation.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from llm_gateway.api.schemas import AssistantMessage, Message, ToolCall, ToolMessage, UserMessage

_LATEST_TURN = (UserMessage, ToolMessage)


def turn_key(messages: Sequence[Message]) -> str | None:
    """The key of the conversation this request continues, or None when it continues none (no
    assistant turn before its latest user/tool turn: a first turn, whatever its system prompt)."""
    end = len(messages)
    while end and isinstance(messages[end - 1], _LATEST_TURN):
        end -= 1
    if not end:  # only user and tool turns: a first turn (the usual one-shot request)
        return None
    prefix = messages[:end]
    if not any(isinstance(message, AssistantMessage) for message in prefix):
        return None
    return _digest([_canonical(message.model_dump(mode="json", exclude_none=True, by_alias=True))
                    for message in prefix])


def next_turn_key(messages: Sequence[Message], content: str | None, tool_calls: Sequence[ToolCall] | None) -> str:
    """The key the next turn of this conversation will compute, once the answer is in its history."""
    answer: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        answer["tool_calls"] = [call.model_dump(mode="json", exclude_none=True) for call in tool_calls]
    dumped = [message.model_dump(mode="json", exclude_none=True, by_alias=True) for message in messages]
    return _digest([_canonical(message) for message in [*dumped, answer]])


def _canonical(message: dict[str, Any]) -> dict[str, Any]:
    out = {name: value for name, value in message.items() if value is not None}
    content = out.get("content")
    if isinstance(content, list) and all(isinstance(p, dict) and p.get("type") == "text" for p in content):
        out["content"] = "".join(str(p.get("text", "")) for p in content)
    if out.get("role") == "assistant":
        if out.get("content") in ("", []):
            del out["content"]
        if not out.get("tool_calls"):
            out.pop("tool_calls", None)
    return out


def _digest(messages: list[dict[str, Any]]) -> str:
    return hashlib.sha256(_json(messages).encode("utf-8", "surrogatepass")).hexdigest()


def _json(messages: list[dict[str, Any]]) -> str:
    """The canonical JSON text: `json.dumps(..., ensure_ascii=False)`, written faster when it is ASCII.

    CPython's encoder for `ensure_ascii=False` costs about 6.5 ns a character, its ASCII one 2.5:
    a conversation's whole history is written on every turn (twice: `turn_key`, `next_turn_key`).
    The two write every character below DEL (0x7f) the same way and every other one differently,
    the ASCII one always as a `\\uXXXX` escape; so where its text holds no `\\u` at all, the
    other's is the same text. Tried first when the messages' own strings are ASCII (checked in
    constant time each); a `\\u` (or a backslash written before a `u`) means writing it again.
    """
    if all(value.isascii() for message in messages for value in message.values() if isinstance(value, str)):
        text = json.dumps(messages, sort_keys=True, separators=(",", ":"))
        if "\\u" not in text:
            return text
    return json.dumps(messages, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
