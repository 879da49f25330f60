"""Mistral La Plateforme: OpenAI's wire format with a few sharp edges (providers.md §7).

Data differences live in `MISTRAL_DIALECT`; the overrides below are the ones data cannot say:
unknown fields are rejected (422 `extra_forbidden`), so `seed` is renamed `random_seed` and
`user`/`stream_options`/message `name` are dropped; `tool_choice: "required"` is spelled `"any"`;
replayed tool-call ids must be 9 alphanumerics, so other ids are remapped by a hash (the same id
always maps to the same value, in the assistant turn and in the tool result answering it);
`finish_reason: "error"` is a failure; reasoning models return content as a list of chunks; and
rate-limit headers have their own names (`x-ratelimit-*-req-minute`, `*-tokens-minute`, `*-month`).
"""

from __future__ import annotations

import hashlib
import json
import re
import string
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from llm_gateway.api.schemas import ChatCompletion, ChatCompletionChunk, ChatCompletionRequest
from llm_gateway.providers.base import (
    CHAT,
    TRANSCRIPTION,
    ChatAdapter,
    HttpRequestSpec,
    MultipartFile,
    ProviderConfig,
    ProviderError,
    RateLimitInfo,
    SSEEvent,
    StreamState,
)
from llm_gateway.providers.headers import header_int, parse_retry_after
from llm_gateway.providers.openai import Dialect, OpenAIAdapter, _error_fields
from llm_gateway.providers.registry import ProviderSpec
from llm_gateway.providers.transcripts import inline, openai_transcript
from llm_gateway.selection.catalog import AudioTraits
from llm_gateway.transcription.transcript import Transcript

if TYPE_CHECKING:  # annotations only: a chat container never builds transcription's types
    from llm_gateway.providers.transcription import TranscriptionAdapter, TranscriptionCall

MISTRAL_DIALECT = Dialect(
    chat_path="/v1/chat/completions",
    models_path="/v1/models",
    max_tokens_field="max_tokens",
    drop_params=frozenset({"stream_options", "user", "seed"}),
    stream_usage="always",
)
_ID_OK = re.compile(r"^[a-zA-Z0-9]{9}$")
_ALPHABET = string.ascii_letters + string.digits
# Anchored at the start: only Mistral's own sentence, never a phrase echoed from the request.
_CONTEXT_LENGTH = re.compile(r"^Prompt contains \d+ tokens\b.*\btoo large for model\b", re.I)
_MONTH_S = 30 * 86_400
_STATUS_CODES = {401: "unauthorized", 403: "forbidden", 404: "not_found", 429: "rate_limited"}


def mistral_tool_call_id(original: str) -> str:
    """A valid Mistral id (`[a-zA-Z0-9]{9}`) for any id: kept when already valid, else hashed."""
    if _ID_OK.match(original):
        return original
    number = int.from_bytes(hashlib.sha256(original.encode()).digest()[:8], "big")
    chars = []
    for _ in range(9):
        number, rem = divmod(number, len(_ALPHABET))
        chars.append(_ALPHABET[rem])
    return "".join(chars)


class MistralAdapter(OpenAIAdapter):
    dialect = MISTRAL_DIALECT

    def build_body(self, request: ChatCompletionRequest, model: str, *, stream: bool) -> dict[str, Any]:
        body = super().build_body(request, model, stream=stream)
        if request.seed is not None:
            body["random_seed"] = request.seed
        if body.get("tool_choice") == "required":
            body["tool_choice"] = "any"
        body["messages"] = [_remap_message(message) for message in body["messages"]]
        return body

    # --- responses --------------------------------------------------------------------------------
    def parse_response(self, body: Any, model: str) -> ChatCompletion:
        for choice in body.get("choices") or []:
            if choice.get("finish_reason") == "error":
                raise self._generation_failed(model)
            message = choice.get("message") or {}
            message["content"] = _flatten(message.get("content"))
            message["tool_calls"] = _fix_calls(message.get("tool_calls"))
        return super().parse_response(body, model)

    def parse_stream_event(self, event: SSEEvent, state: StreamState) -> list[ChatCompletionChunk]:
        if event.data.strip() != "[DONE]":
            return self.stream_chunks(_fix_stream_payload(event, state, self, state.model), state)
        return super().parse_stream_event(event, state)

    def _generation_failed(self, model: str | None) -> ProviderError:
        return ProviderError(
            f"{self.name} generation ended with finish_reason=error", provider=self.name, model=model,
            status=500, code="generation_error",
        )

    # --- errors and limits ---------------------------------------------------------------------------
    def parse_error(self, status: int, headers: Mapping[str, str], body: bytes, model: str | None) -> ProviderError:
        """`{"object":"error",message,type,code}`: `type` (`rate_limited`, `invalid_model`) is the code we
        keep, because Mistral's numeric `code` ("1300") means nothing outside Mistral."""
        code, message = _error_fields(body)
        try:
            payload = json.loads(body) if body else {}
        except ValueError:
            payload = {}
        if isinstance(payload, dict) and isinstance(payload.get("type"), str):
            code = payload["type"]
        if isinstance(payload, dict) and not isinstance(payload.get("message"), str | None):
            message = json.dumps(payload["message"])[:500]  # 422: {"detail": [...]} nested in message
        if status in (400, 422) and message and _CONTEXT_LENGTH.search(message):
            code = "context_length_exceeded"
        code = code or _STATUS_CODES.get(status)  # bare `{"message": ...}` bodies carry no type
        return ProviderError(
            f"{self.name} returned HTTP {status}" + (f" ({code})" if code else ""),
            provider=self.name, model=model, status=status, code=code,
            rate_limit=self.parse_rate_limits(headers), provider_message=message,
        )

    def parse_rate_limits(self, headers: Mapping[str, str]) -> RateLimitInfo | None:
        """Per-minute request and token budgets; the monthly token budget replaces the per-minute one
        when it is the one exhausted (it is the binding limit then, for weeks)."""
        tokens_limit = header_int(headers, "x-ratelimit-limit-tokens-minute")
        tokens_left = header_int(headers, "x-ratelimit-remaining-tokens-minute")
        tokens_window = 60
        month_left = header_int(headers, "x-ratelimit-remaining-tokens-month")
        if month_left is not None and (month_left <= 0 or tokens_left is None):
            tokens_limit = header_int(headers, "x-ratelimit-limit-tokens-month")
            tokens_left, tokens_window = month_left, _MONTH_S
        info = RateLimitInfo(
            limit_requests=header_int(headers, "x-ratelimit-limit-req-minute"),
            remaining_requests=header_int(headers, "x-ratelimit-remaining-req-minute"),
            limit_tokens=tokens_limit, remaining_tokens=tokens_left,
            retry_after_s=parse_retry_after(headers), tokens_window_s=tokens_window,
        )
        return None if info.is_empty else info


def _remap_message(message: dict[str, Any]) -> dict[str, Any]:
    message = {k: v for k, v in message.items() if k != "name"}
    if message.get("role") == "tool":
        message["tool_call_id"] = mistral_tool_call_id(message["tool_call_id"])
    for call in message.get("tool_calls") or []:
        call["id"] = mistral_tool_call_id(call["id"])
    return message


def _flatten(content: Any) -> Any:
    """Reasoning models send `[{"type":"thinking",...}, {"type":"text","text":...}]`: keep the text."""
    if not isinstance(content, list):
        return content
    return "".join(item.get("text") or "" for item in content if isinstance(item, dict) and item.get("type") == "text")


def _fix_calls(calls: Any, start: int = 0) -> Any:
    """Mistral may omit `type`/`index` and send `arguments` as an object; make them OpenAI-shaped."""
    if not calls:
        return calls
    fixed = []
    for offset, call in enumerate(calls):
        function = dict(call.get("function") or {})
        if not isinstance(function.get("arguments"), str):
            function["arguments"] = json.dumps(function.get("arguments") or {})
        fixed.append({**call, "type": "function", "index": start + offset, "function": function})
    return fixed


def _index_stream_calls(calls: list[dict[str, Any]], state: StreamState) -> list[dict[str, Any]]:
    """Mistral sends each call whole, often every one with `index: 0`; OpenAI clients merge deltas by
    index, so number them ourselves: a delta with an id opens the next call, one without continues it."""
    fixed = []
    for call in calls:
        opened = int(state.extra.get("mistral_calls", 0))
        if call.get("id"):
            state.extra["mistral_calls"] = opened + 1
            fixed.extend(_fix_calls([call], opened))
        else:
            function = dict(call.get("function") or {})
            fixed.append({**call, "index": max(opened - 1, 0), "function": function})
    return fixed


def _fix_stream_payload(event: SSEEvent, state: StreamState, adapter: MistralAdapter, model: str) -> Any:
    """The event's JSON with chunk content flattened and complete tool calls re-indexed across
    chunks; raises on finish_reason=error."""
    payload = json.loads(event.data)
    for choice in payload.get("choices") or [] if isinstance(payload, dict) else []:
        if choice.get("finish_reason") == "error":
            raise adapter._generation_failed(model)
        delta = choice.get("delta") or {}
        if "content" in delta:
            delta["content"] = _flatten(delta["content"])
        if delta.get("tool_calls"):
            delta["tool_calls"] = _index_stream_calls(delta["tool_calls"], state)
    return payload


class MistralTranscriptionAdapter(MistralAdapter):
    """Voxtral through `/v1/audio/transcriptions` (multipart): `file` or `file_url`, segment
    timestamps only (asking for words is a 400), no `prompt`, no `response_format`; the answer
    carries `usage.prompt_audio_seconds`. Unknown fields are refused, so only these are sent."""

    def build_transcription(self, call: TranscriptionCall, model: str, traits: AudioTraits,
                            budget_s: float) -> HttpRequestSpec:
        fields: dict[str, str | list[str]] = {"model": model}
        if call.temperature is not None:
            fields["temperature"] = repr(call.temperature)
        # Mistral refuses `language` with `timestamp_granularities` (a 400): the timestamps when
        # the answer's format needs them (Voxtral detects the language), else the language hint.
        if traits.timing != "none" and (call.timed or not call.language):
            fields["timestamp_granularities"] = ["segment"]
        elif call.language:
            fields["language"] = call.language
        files: dict[str, MultipartFile] = (
            {"file": (call.filename, call.audio, call.mime_type)} if inline(call, traits.max_upload_bytes)
            else {"file_url": (None, (call.url or "").encode())})
        headers = {name: value for name, value in self._headers().items() if name != "Content-Type"}
        return HttpRequestSpec("POST", self._url("/v1/audio/transcriptions"), headers, data=fields, files=files)

    def parse_transcription(self, body: bytes, headers: Mapping[str, str], call: TranscriptionCall,
                            model: str) -> Transcript:
        return openai_transcript(json.loads(body))


def make_chat_adapter(config: ProviderConfig) -> ChatAdapter:
    return MistralAdapter(config)


def make_transcription_adapter(config: ProviderConfig) -> TranscriptionAdapter:
    return MistralTranscriptionAdapter(config)


SPEC = ProviderSpec(
    kind="mistral",
    default_base_url="https://api.mistral.ai",
    key_env="MISTRAL_API_KEY",
    adapters={CHAT: make_chat_adapter, TRANSCRIPTION: make_transcription_adapter},
)
