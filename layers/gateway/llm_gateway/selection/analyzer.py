"""Request classification: which kind of model a request needs, decided by fixed, documented rules.

Deterministic on purpose: the same request always lands in the same category, so operators can
explain a routing decision (`llm-gateway plan`) and tests need no model. The rules, in order;
the first that matches decides the category:

1. **Alias.** `model: "auto:small" | "auto:large" | "auto:reasoning"` sets the category outright.
2. **Reasoning cue.** The last user message contains a reasoning cue (whole words, case-insensitive):
   "step by step", "step-by-step", "prove", "proof", "derive", "derivation", "theorem", "lemma",
   "reason through", "think carefully", "think hard", "chain of thought", "logic puzzle",
   "solve for" → `reasoning`.
3. **Size and structure.** `large` when any of: the prompt has at least 4,000 tokens
   (`LARGE_PROMPT_TOKENS`); the caller allows at least 4,000 output tokens (`LARGE_OUTPUT_TOKENS`);
   the request declares 3 or more tools; it asks for a JSON schema; the conversation has 12 or more
   messages (`LARGE_CONVERSATION`).
4. Otherwise `small`.

Needs (hard requirements; a model lacking one is never chosen):
- **tools**: the request declares tools (and `tool_choice` is not `"none"`), or its history
  holds tool calls or tool results (providers reject those on models without tool support).
- **vision**: any user message carries an `image_url` part.
- **audio input**: any user message carries an `input_audio` part.
- **file input**: any user message carries a `file` part.
- **json**: `response_format` is `json_object` or `json_schema`.

`auto` (or any non-alias model name) goes through rules 2-4; for a pinned model the category is
informational only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from llm_gateway.api.schemas import (
    AssistantMessage,
    AudioPart,
    ChatCompletionRequest,
    FilePart,
    ImagePart,
    TextPart,
    ToolMessage,
    UserMessage,
)

AUTO = "auto"
ALIASES: dict[str, str] = {"auto:small": "small", "auto:large": "large", "auto:reasoning": "reasoning"}
AUTO_ALIASES: tuple[str, ...] = (AUTO, *ALIASES)  # every model name that is not a pin (GET /v1/models lists them)
LARGE_PROMPT_TOKENS = 4_000
LARGE_OUTPUT_TOKENS = 4_000
LARGE_TOOL_COUNT = 3
LARGE_CONVERSATION = 12
REASONING_CUES: tuple[str, ...] = (
    "step by step",
    "step-by-step",
    "prove",
    "proof",
    "derive",
    "derivation",
    "theorem",
    "lemma",
    "reason through",
    "think carefully",
    "think hard",
    "chain of thought",
    "logic puzzle",
    "solve for",
)
_CUE_ALTERNATION = "|".join(re.escape(cue) for cue in REASONING_CUES)
_CUE_RE = re.compile(r"\b(" + _CUE_ALTERNATION + r")\b", re.IGNORECASE)
_LOWER_CUE_RE = re.compile(r"\b(" + _CUE_ALTERNATION + r")\b")  # for ASCII text already lowercased


def find_cue(text: str) -> str | None:
    """The first reasoning cue in `text` (lowercase), exactly as `_CUE_RE` finds it, faster.

    A case-insensitive search costs about 90 ns a character in Python's `re` (16 ms for a
    30,000-token prompt, on every request). ASCII text (nearly all of it) is lowercased once,
    ruled out by a substring test per cue when it holds none, and otherwise searched
    case-sensitively: for ASCII, lowercasing changes neither what matches nor a word boundary.
    """
    if text.isascii():
        lowered = text.lower()
        if not any(map(lowered.__contains__, REASONING_CUES)):  # no generator frame per cue
            return None
        found = _LOWER_CUE_RE.search(lowered)
    else:
        found = _CUE_RE.search(text)
    return found.group(1).lower() if found else None


@dataclass(slots=True, unsafe_hash=True)  # a value, never changed; not frozen: see FAST_VALUES in metering.py
class Analysis:
    """What a request asks for: its category, the capabilities it needs, and the rule that decided."""

    category: str
    needs_tools: bool
    needs_vision: bool
    needs_json: bool
    rule: str  # which rule decided the category, for `llm-gateway plan`
    alias: str | None = None  # "auto" / "auto:small" ... when the model field was an alias
    needs_audio: bool = False  # an `input_audio` part
    needs_file: bool = False  # a `file` part


def is_alias(model: str) -> bool:
    return model in AUTO_ALIASES


def _text_of(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(part.text for part in content if isinstance(part, TextPart))
    return ""


def _needs_tools(request: ChatCompletionRequest) -> bool:
    if request.tools and request.tool_choice != "none":
        return True
    for message in request.messages:
        if isinstance(message, ToolMessage):
            return True
        if isinstance(message, AssistantMessage) and message.tool_calls:
            return True
    return False


def _part_kinds(request: ChatCompletionRequest) -> tuple[bool, bool, bool]:
    """Whether any user message carries an image, an audio and a file part (in that order)."""
    image = audio = file = False
    for message in request.messages:
        content = message.content if isinstance(message, UserMessage) else None
        if isinstance(content, list):
            for part in content:
                if isinstance(part, ImagePart):
                    image = True
                elif isinstance(part, AudioPart):
                    audio = True
                elif isinstance(part, FilePart):
                    file = True
    return image, audio, file


def _last_user_text(request: ChatCompletionRequest) -> str:
    for message in reversed(request.messages):
        if isinstance(message, UserMessage):
            return _text_of(message.content)
    return ""


def _category(request: ChatCompletionRequest, prompt_tokens: int) -> tuple[str, str]:
    """Rules 2-4 of the module docstring; returns (category, rule that decided)."""
    cue = find_cue(_last_user_text(request))
    if cue:
        return "reasoning", f"reasoning cue {cue!r}"
    if prompt_tokens >= LARGE_PROMPT_TOKENS:
        return "large", f"prompt of {prompt_tokens} tokens >= {LARGE_PROMPT_TOKENS}"
    output = request.output_limit or 0
    if output >= LARGE_OUTPUT_TOKENS:
        return "large", f"max output {output} >= {LARGE_OUTPUT_TOKENS}"
    if request.tools and len(request.tools) >= LARGE_TOOL_COUNT:
        return "large", f"{len(request.tools)} tools >= {LARGE_TOOL_COUNT}"
    if request.response_format is not None and request.response_format.type == "json_schema":
        return "large", "json_schema response format"
    if len(request.messages) >= LARGE_CONVERSATION:
        return "large", f"{len(request.messages)} messages >= {LARGE_CONVERSATION}"
    return "small", "short, simple request"


def analyze(request: ChatCompletionRequest, prompt_tokens: int) -> Analysis:
    """Classify a request; `prompt_tokens` is the estimate from `tokens.py` (cl100k)."""
    fmt = request.response_format.type if request.response_format is not None else None
    image, audio, file = _part_kinds(request)
    tools, json_ = _needs_tools(request), fmt in ("json_object", "json_schema")  # no `**needs` dict to unpack
    model = request.model
    if model in ALIASES:
        return Analysis(ALIASES[model], needs_tools=tools, needs_vision=image, needs_json=json_, rule=f"alias {model}",
                        alias=model, needs_audio=audio, needs_file=file)
    category, rule = _category(request, prompt_tokens)
    return Analysis(category, needs_tools=tools, needs_vision=image, needs_json=json_, rule=rule,
                    alias=AUTO if model == AUTO else None, needs_audio=audio, needs_file=file)
