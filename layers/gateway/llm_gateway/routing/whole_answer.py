"""An answer sent whole, read from the provider as a stream: the chunks folded into one completion.

On the streaming invocation (production's chat routes) an answer sent whole is not bound by API
Gateway's 29 s, only by the stream's idle timeout (`retry.handler.chat_deadline`), so a long
answer without `max_tokens` may take a minute, as it does at OpenAI. Asked of the provider as a
stream, its first chunk shows within the attempt's timeout (learned per provider) that the
provider is answering: a hanging provider is left in seconds, and a long answer is not cut by a
timeout sized for short ones, as a non-streamed provider call was (its first byte is its last).

The caller still gets one `chat.completion`, folded as OpenAI's SDKs fold a stream: content and
refusal concatenated, tool calls assembled by index, the last finish reason and logprobs
concatenated; a provider's extra text fields on the delta (Groq's `reasoning`) are concatenated
too, and the usage is the router's final chunk's. Pure: chunks in, a completion out.
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
    extras: dict[str, Any] = {}
    calls = _Calls()
    finish: FinishReason | None = None
    logprobs: list[Any] | None = None
    usage: Usage | None = None
    head: ChatCompletionChunk | None = None
    for chunk in chunks:
        head = head or chunk
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices[:1]:
            delta = choice.delta
            if delta.content:
                content.append(delta.content)
            if delta.refusal:
                refusal.append(delta.refusal)
            for name, value in (delta.model_extra or {}).items():
                extras[name] = extras.get(name, "") + value if isinstance(value, str) else value
            for call in delta.tool_calls or []:
                function = call.function
                calls.add(call.index, call.id, function.name if function else None,
                          function.arguments if function else None)
            finish = choice.finish_reason or finish
            if isinstance(choice.logprobs, dict) and isinstance(choice.logprobs.get("content"), list):
                logprobs = (logprobs or []) + choice.logprobs["content"]
    if head is None:  # the router never hands over a stream without a first chunk
        raise ValueError("a stream with no chunk")
    message = ResponseMessage(content="".join(content) if content else None, tool_calls=calls.done(),
                              refusal="".join(refusal) if refusal else None, **extras)
    answer = Choice(index=0, message=message, finish_reason=finish or "stop",
                    logprobs={"content": logprobs, "refusal": None} if logprobs is not None else None)
    return ChatCompletion(id=head.id, created=head.created, model=head.model, choices=[answer], usage=usage,
                          system_fingerprint=head.system_fingerprint)
