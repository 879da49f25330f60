"""An answer sent whole, read from the provider as a stream: the chunks folded into one completion.

On the streaming invocation (production's chat routes) an answer sent whole is not bound by API
Gateway's 29 s, only by the stream's idle timeout (`retry.handler.chat_deadline`), so a long
answer without `max_tokens` may take a minute, as it does at OpenAI. Asked of the provider as a
stream, its first chunk shows within the attempt's timeout (learned per provider) that the
provider is answering: a hanging provider is left in seconds, and a long answer is not cut by a
timeout sized for short ones, as a non-streamed provider call was (its first byte is its last).

The caller still gets one `chat.completion`, folded as OpenAI's SDKs fold a stream: content and
refusal concatenated, tool calls assembled by index, the last finish reason and logprobs
concatenated; a provider's extra fields are kept: on the delta (Groq's `reasoning`) text is
concatenated, a list extended, a null skipped, anything else the last value; on the choice and
the chunk, the last value (but `obfuscation`, which only a stream has, and a choice's `message` of
the provider's own, which the folded one replaces). An answer with no text is
`content: null` beside tool calls or a refusal and `""` without, as providers answer unstreamed. The usage is
the router's final chunk's. Pure: chunks in, a completion out.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from llm_gateway.api.schemas import (
    ChatCompletion,
    ChatCompletionChunk,
    Choice,
    FinishReason,
    FunctionCall,
    ResponseMessage,
    ToolCall,
    Usage,
)


class _Calls:
    """Tool calls assembled from their deltas, by index."""

    def __init__(self) -> None:
        self.by_index: dict[int, dict[str, str]] = {}

    def add(self, index: int, call_id: str | None, name: str | None, arguments: str | None) -> None:
        call = self.by_index.setdefault(index, {"id": "", "name": "", "arguments": ""})
        call["id"] = call_id or call["id"]
        call["name"] += name or ""
        call["arguments"] += arguments or ""

    def done(self) -> list[ToolCall] | None:
        return [ToolCall(id=c["id"], function=FunctionCall(name=c["name"], arguments=c["arguments"]))
                for _, c in sorted(self.by_index.items())] or None


def fold(chunks: Iterable[ChatCompletionChunk]) -> ChatCompletion:
    """The completion a stream amounts to (the gateway asks for one choice: `n` is at most 1)."""
    content: list[str] = []
    refusal: list[str] = []
    extras: dict[str, Any] = {}  # the delta's
    choice_extras: dict[str, Any] = {}
    top: dict[str, Any] = {}  # the chunk's
    calls = _Calls()
    finish: FinishReason | None = None
    logprobs: list[Any] | None = None
    usage: Usage | None = None
    head: ChatCompletionChunk | None = None
    for chunk in chunks:
        head = head or chunk
        if chunk.usage is not None:
            usage = chunk.usage
        _keep(top, chunk.model_extra, concatenate=False)
        for choice in chunk.choices[:1]:
            delta = choice.delta
            if delta.content:
                content.append(delta.content)
            if delta.refusal:
                refusal.append(delta.refusal)
            _keep(extras, delta.model_extra, concatenate=True)
            _keep(choice_extras, choice.model_extra, concatenate=False)
            for call in delta.tool_calls or []:
                function = call.function
                calls.add(call.index, call.id, function.name if function else None,
                          function.arguments if function else None)
            finish = choice.finish_reason or finish
            if isinstance(choice.logprobs, dict) and isinstance(choice.logprobs.get("content"), list):
                logprobs = (logprobs or []) + choice.logprobs["content"]
    if head is None:  # the router never hands over a stream without a first chunk
        raise ValueError("a stream with no chunk")
    tool_calls = calls.done()
    choice_extras.pop("message", None)  # a provider's own beside its deltas: the answer's is the folded one
    text = "".join(content) if content else (None if tool_calls or refusal else "")
    message = ResponseMessage(content=text, tool_calls=tool_calls, refusal="".join(refusal) if refusal else None,
                              **extras)
    answer = Choice(index=0, message=message, finish_reason=finish or "stop",
                    logprobs={"content": logprobs, "refusal": None} if logprobs is not None else None,
                    **choice_extras)
    top.pop("obfuscation", None)
    return ChatCompletion(id=head.id, created=head.created, model=head.model, choices=[answer], usage=usage,
                          system_fingerprint=head.system_fingerprint, **top)


def _keep(into: dict[str, Any], extra: dict[str, Any] | None, *, concatenate: bool) -> None:
    """A chunk's extra fields into what the answer keeps (see the module docstring)."""
    for name, value in (extra or {}).items():
        if value is None:
            continue
        held = into.get(name)
        joinable = (isinstance(held, str) and isinstance(value, str)) or (isinstance(held, list) and isinstance(value, list))
        into[name] = held + value if concatenate and joinable else value
