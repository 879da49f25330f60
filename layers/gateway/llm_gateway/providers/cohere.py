"""Cohere v2 chat (`POST /v2/chat`): messages, tools and a named-event SSE stream.

Wire facts encoded here (providers.md §6): v2 messages and tool declarations are OpenAI-shaped,
but `tool_choice` is only REQUIRED/NONE (auto = omitted; a named choice is expressed by sending
only that tool with REQUIRED), top-p is `p`, the stream is a sequence of typed events ending at
`message-end`, `finish_reason` ERROR/TIMEOUT is a failure with no OpenAI equivalent (raised), and
errors are `{"id","message"}` with no documented rate-limit headers. The assistant's `tool_plan`
(the text it says before calling tools) is mapped to and from OpenAI assistant `content`, so a
history replayed through the gateway round-trips without loss.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from llm_gateway.api.schemas import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    SystemMessage,
    ToolMessage,
    Usage,
)
from llm_gateway.providers.base import (
    CHAT,
    HttpRequestSpec,
    ProviderConfig,
    ProviderError,
    RateLimitInfo,
    SSEEvent,
    StreamState,
)
from llm_gateway.providers.content import text_of
from llm_gateway.providers.headers import header_int, parse_retry_after
from llm_gateway.providers.registry import ProviderSpec

_FINISH = {"COMPLETE": "stop", "STOP_SEQUENCE": "stop", "MAX_TOKENS": "length", "TOOL_CALL": "tool_calls"}
_FAILED = {"ERROR", "TIMEOUT", "ERROR_TOXIC", "ERROR_LIMIT", "USER_CANCEL"}
_STATUS_CODES = {
    400: "bad_request", 401: "unauthorized", 402: "payment_required", 403: "forbidden", 404: "not_found",
    422: "unprocessable_entity", 429: "too_many_requests", 498: "invalid_token", 499: "client_closed_request",
    500: "internal_server_error", 501: "not_implemented", 502: "bad_gateway", 503: "service_unavailable",
    504: "gateway_timeout",
}
# Anchored at the start: only Cohere's own sentence, never a phrase echoed from the request.
_CONTEXT_LENGTH = re.compile(r"^too many tokens:", re.I)


def usage_of(usage: Mapping[str, Any] | None) -> Usage | None:
    """`usage.tokens` (what the model processed), falling back to `billed_units` (what is charged)."""
    if not usage:
        return None
    counts = usage.get("tokens") or usage.get("billed_units") or {}
    cached = usage.get("cached_tokens")
    return Usage.of(
        int(counts.get("input_tokens") or 0), int(counts.get("output_tokens") or 0),
        cached=int(cached) if cached else None,
    )


class CohereAdapter:
    """Translates OpenAI chat requests to Cohere v2 and Cohere replies and events back."""

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config

    @property
    def name(self) -> str:
        return self.config.name

    # --- requests ---------------------------------------------------------------------------------
    def _url(self, path: str) -> str:
        return self.config.base_url.rstrip("/") + path

    def _headers(self, accept: str = "application/json") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.config.api_key}", "Content-Type": "application/json", "Accept": accept}

    def build_request(self, request: ChatCompletionRequest, model: str, *, stream: bool) -> HttpRequestSpec:
        body = self.build_body(request, model)
        if stream:
            body["stream"] = True
        return HttpRequestSpec(
            "POST", self._url("/v2/chat"), self._headers("text/event-stream" if stream else "application/json"), body
        )

    def build_body(self, request: ChatCompletionRequest, model: str) -> dict[str, Any]:
        body: dict[str, Any] = {"model": model, "messages": [_message(m) for m in request.messages]}
        if request.tools and request.tool_choice != "none":
            tools = request.tools
            choice = request.tool_choice
            if choice is not None and not isinstance(choice, str):  # named: only that tool, REQUIRED
                tools = [t for t in tools if t.function.name == choice.function.name]
            body["tools"] = [_tool(t.function) for t in tools]
            if any(t.function.strict for t in tools):
                body["strict_tools"] = True
            if choice is not None and choice != "auto":
                body["tool_choice"] = "REQUIRED"
        elif request.tools:
            body["tools"] = [_tool(t.function) for t in request.tools]
            body["tool_choice"] = "NONE"
        fmt = request.response_format
        if fmt is not None and fmt.type != "text":
            body["response_format"] = {"type": "json_object"}
            schema = getattr(getattr(fmt, "json_schema", None), "schema_", None)
            if schema:
                body["response_format"]["json_schema"] = schema
        for ours, theirs in (("temperature", "temperature"), ("top_p", "p"), ("seed", "seed"),
                             ("presence_penalty", "presence_penalty"), ("frequency_penalty", "frequency_penalty")):
            if getattr(request, ours) is not None:
                body[theirs] = getattr(request, ours)
        if request.output_limit is not None:
            body["max_tokens"] = request.output_limit
        if request.stop_list:
            body["stop_sequences"] = request.stop_list
        return body

    def models_request(self) -> HttpRequestSpec:
        return HttpRequestSpec(
            "GET", self._url("/v1/models"), self._headers(), params={"endpoint": "chat", "page_size": "1000"}
        )

    # --- responses --------------------------------------------------------------------------------
    def parse_response(self, body: Any, model: str) -> ChatCompletion:
        message = body.get("message") or {}
        raw_finish = body.get("finish_reason")
        if raw_finish in _FAILED:
            raise self._generation_failed(raw_finish, None, model)
        text = "".join(item.get("text") or "" for item in message.get("content") or [] if item.get("type") == "text")
        calls = [_tool_call(call) for call in message.get("tool_calls") or []]
        content = text or message.get("tool_plan") or (None if calls else "")
        return ChatCompletion.model_validate({
            "id": body.get("id") or "chatcmpl-cohere",
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content, "tool_calls": calls or None},
                         "finish_reason": _FINISH.get(str(raw_finish), "tool_calls" if calls else "stop")}],
            "usage": usage_of(body.get("usage")),
        })

    def parse_stream_event(self, event: SSEEvent, state: StreamState) -> list[ChatCompletionChunk]:
        if event.data.strip() == "[DONE]":
            state.done = True
            return []
        payload = json.loads(event.data)
        kind = payload.get("type") or event.event
        delta = payload.get("delta") or {}
        message = delta.get("message") or {}
        if kind == "message-start":
            state.response_id = payload.get("id") or state.response_id
            return [self._chunk(state, {"role": "assistant", "content": ""})]
        if kind == "content-delta" or kind == "content-start":
            text = (message.get("content") or {}).get("text")
            return [self._chunk(state, {"content": text})] if text else []
        if kind == "tool-plan-delta":
            plan = message.get("tool_plan")
            return [self._chunk(state, {"content": plan})] if plan else []
        if kind in ("tool-call-start", "tool-call-delta"):
            return [self._chunk(state, {"tool_calls": [_tool_call_delta(payload, message, kind)]})]
        if kind == "message-end":
            return self._message_end(delta, state)
        return []  # content-end, tool-call-end, citation-*, debug: nothing an OpenAI client sees

    def _message_end(self, delta: Mapping[str, Any], state: StreamState) -> list[ChatCompletionChunk]:
        state.done = True
        raw_finish = delta.get("finish_reason")
        if raw_finish in _FAILED or delta.get("error"):
            raise self._generation_failed(str(raw_finish or "ERROR"), delta.get("error"), state.model)
        chunk = self._chunk(state, {}, finish=_FINISH.get(str(raw_finish), "stop"))
        chunk.usage = usage_of(delta.get("usage"))
        return [chunk]

    @staticmethod
    def _chunk(state: StreamState, delta: dict[str, Any], finish: str | None = None) -> ChatCompletionChunk:
        return ChatCompletionChunk.model_validate({
            "id": state.response_id, "created": state.created, "model": state.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        })

    def parse_models(self, body: Any) -> list[str]:
        return [str(item["name"]) for item in body.get("models") or [] if isinstance(item, dict) and "name" in item]

    # --- errors and limits ---------------------------------------------------------------------------
    def _generation_failed(self, reason: str, detail: Any, model: str | None) -> ProviderError:
        """finish_reason ERROR/TIMEOUT: the call 'succeeded' at HTTP level but produced nothing usable."""
        return ProviderError(
            f"{self.name} generation ended with {reason}", provider=self.name, model=model,
            status=504 if reason == "TIMEOUT" else 500, code=reason.lower(),
            provider_message=str(detail) if detail else None,
        )

    def parse_error(self, status: int, headers: Mapping[str, str], body: bytes, model: str | None) -> ProviderError:
        try:
            payload = json.loads(body) if body else {}
        except ValueError:
            payload = {}
        raw = payload.get("message") if isinstance(payload, dict) else None
        message = str(raw) if raw is not None else None
        code = _STATUS_CODES.get(status, f"http_{status}")
        if status in (400, 422) and message and _CONTEXT_LENGTH.search(message):
            code = "context_length_exceeded"
        return ProviderError(
            f"{self.name} returned HTTP {status} ({code})", provider=self.name, model=model, status=status,
            code=code, rate_limit=self.parse_rate_limits(headers), provider_message=message,
        )

    def parse_rate_limits(self, headers: Mapping[str, str]) -> RateLimitInfo | None:
        """Only trial keys carry limit headers (observed, providers.md §6.5); production keys send none."""
        info = RateLimitInfo(
            limit_requests=header_int(headers, "x-trial-endpoint-call-limit"),
            remaining_requests=header_int(headers, "x-trial-endpoint-call-remaining"),
            retry_after_s=parse_retry_after(headers),
        )
        return None if info.is_empty else info


def _message(message: Any) -> dict[str, Any]:
    if isinstance(message, SystemMessage):
        return {"role": "system", "content": text_of(message.content)}
    if isinstance(message, ToolMessage):
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": text_of(message.content)}
    if isinstance(message, AssistantMessage):
        out: dict[str, Any] = {"role": "assistant"}
        text = text_of(message.content)
        if message.tool_calls:
            out["tool_calls"] = [call.model_dump() for call in message.tool_calls]
            if text:
                out["tool_plan"] = text
        else:
            out["content"] = text
        return out
    if isinstance(message.content, str):
        return {"role": "user", "content": message.content}
    parts: list[dict[str, Any]] = []
    for part in message.content:
        if part.type == "text":
            parts.append({"type": "text", "text": part.text})
        elif part.type == "image_url":
            parts.append({"type": "image_url", "image_url": part.image_url.model_dump(exclude_none=True)})
    return {"role": "user", "content": parts}


def _tool(function: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": function.name}
    if function.description:
        spec["description"] = function.description
    spec["parameters"] = function.parameters or {"type": "object", "properties": {}}
    return {"type": "function", "function": spec}


def _tool_call(call: Mapping[str, Any]) -> dict[str, Any]:
    function = call.get("function") or {}
    arguments = function.get("arguments")
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments or {})
    return {"id": call.get("id") or "", "type": "function", "function": {"name": function.get("name"), "arguments": arguments}}


def _tool_call_delta(payload: Mapping[str, Any], message: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """tool-call-start opens call `index` (id, name, first arguments); tool-call-delta appends arguments."""
    call = message.get("tool_calls") or {}
    if isinstance(call, list):  # the spec says one object; tolerate a one-item list
        call = call[0] if call else {}
    function = call.get("function") or {}
    out: dict[str, Any] = {"index": int(payload.get("index") or 0), "function": {"arguments": function.get("arguments") or ""}}
    if kind == "tool-call-start":
        out.update(id=call.get("id"), type="function")
        out["function"]["name"] = function.get("name")
    return out



SPEC = ProviderSpec(
    kind="cohere",
    default_base_url="https://api.cohere.com",
    key_env="COHERE_API_KEY",
    adapters={CHAT: CohereAdapter},
)
