"""OpenAI Chat Completions, and the base for every provider that speaks its dialect.

A provider that merely speaks OpenAI's format is data, not code: a `Dialect` (paths, renamed or
dropped parameters, where stream usage comes from, what the request-limit headers count).
Groq and the generic OpenAI-compatible adapter are such data; Mistral overrides two methods.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from llm_gateway.api.schemas import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Usage,
)
from llm_gateway.providers.base import (
    CHAT,
    TRANSCRIPTION,
    HttpRequestSpec,
    MultipartFile,
    ProviderConfig,
    ProviderError,
    RateLimitInfo,
    SSEEvent,
    StreamState,
)
from llm_gateway.providers.headers import header, header_int, parse_duration, parse_retry_after
from llm_gateway.providers.registry import ProviderSpec
from llm_gateway.selection.catalog import AudioTraits

if TYPE_CHECKING:
    from llm_gateway.providers.transcription import TranscriptionCall
    from llm_gateway.transcription.transcript import Transcript

_FINISH_REASONS = {"stop", "length", "tool_calls", "content_filter", "function_call"}
_FINISH_ALIASES = {"model_length": "length", "eos": "stop", "end_turn": "stop", "tool_use": "tool_calls"}


@dataclass(frozen=True)
class Dialect:
    """How one OpenAI-speaking provider differs from OpenAI itself."""

    chat_path: str = "/chat/completions"
    models_path: str = "/models"
    max_tokens_field: str = "max_completion_tokens"
    drop_params: frozenset[str] = frozenset()
    stream_usage: str = "stream_options"  # or "x_groq" / "always" (provider sends it unasked)
    requests_window_s: int = 60
    extra_headers: Mapping[str, str] = field(default_factory=dict)


OPENAI_DIALECT = Dialect()


def normalize_finish_reason(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).lower()
    text = _FINISH_ALIASES.get(text, text)
    return text if text in _FINISH_REASONS else "stop"


def dump_messages(request: ChatCompletionRequest) -> list[dict[str, Any]]:
    """Each message by its own serializer (built on a class's first dump). Dumping through the
    request's serializer instead builds none, about 11 M instructions less at a cold start (3.11), but
    costs 17-23 k more on every request (its field filtering): it pays back only after ~500 requests."""
    return [message.model_dump(exclude_none=True, by_alias=True) for message in request.messages]


class OpenAIAdapter:
    """Adapter for OpenAI's wire format; `dialect` carries the per-provider differences."""

    dialect: Dialect = OPENAI_DIALECT

    def __init__(self, config: ProviderConfig, dialect: Dialect | None = None) -> None:
        self.config = config
        if dialect is not None:
            self.dialect = dialect

    @property
    def name(self) -> str:
        return self.config.name

    # --- requests ---------------------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.config.api_key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            **self.dialect.extra_headers,
        }

    def _url(self, path: str) -> str:
        return self.config.base_url.rstrip("/") + path

    def build_body(self, request: ChatCompletionRequest, model: str, *, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"model": model, "messages": dump_messages(request)}
        if request.tools:
            body["tools"] = [tool.model_dump(exclude_none=True, by_alias=True) for tool in request.tools]
        if request.tool_choice is not None:
            choice = request.tool_choice
            body["tool_choice"] = choice if isinstance(choice, str) else choice.model_dump(exclude_none=True)
        if request.parallel_tool_calls is not None and request.tools:
            body["parallel_tool_calls"] = request.parallel_tool_calls
        if request.response_format is not None:
            body["response_format"] = request.response_format.model_dump(exclude_none=True, by_alias=True)
        # logprobs, top_logprobs, logit_bias, reasoning_effort: selection sends them only to models
        # whose catalog entry lists them (`capabilities.params`).
        for name in ("temperature", "top_p", "seed", "user", "presence_penalty", "frequency_penalty",
                     "logprobs", "top_logprobs", "logit_bias", "reasoning_effort"):
            value = getattr(request, name)
            if value is not None:
                body[name] = value
        if request.output_limit is not None:
            body[self.dialect.max_tokens_field] = request.output_limit
        if request.stop is not None:
            body["stop"] = request.stop
        if stream:
            body["stream"] = True
            if self.dialect.stream_usage == "stream_options":
                body["stream_options"] = {"include_usage": True}
        for name in self.dialect.drop_params:
            body.pop(name, None)
        return body

    def build_request(self, request: ChatCompletionRequest, model: str, *, stream: bool) -> HttpRequestSpec:
        headers = self._headers()
        if stream:
            headers["Accept"] = "text/event-stream"
        return HttpRequestSpec("POST", self._url(self.dialect.chat_path), headers, self.build_body(request, model, stream=stream))

    def models_request(self) -> HttpRequestSpec:
        return HttpRequestSpec("GET", self._url(self.dialect.models_path), self._headers())

    # --- responses --------------------------------------------------------------------------------
    def parse_response(self, body: Any, model: str) -> ChatCompletion:
        choices = []
        for choice in body["choices"]:
            message = dict(choice.get("message") or {})
            message["role"] = "assistant"
            choices.append(
                {**choice, "message": message, "finish_reason": normalize_finish_reason(choice.get("finish_reason"))}
            )
        usage = body.get("usage")
        return ChatCompletion.model_validate(
            {
                **body,
                "id": body.get("id") or "chatcmpl-unknown",
                "model": body.get("model") or model,
                "choices": choices,
                "usage": self.usage_fields(usage) if usage else None,  # validated inside the completion
            }
        )

    def usage_fields(self, usage: Mapping[str, Any]) -> dict[str, Any]:
        """The `Usage` an OpenAI usage object makes (what `Usage.of` sets), as fields to validate."""
        prompt = int(usage.get("prompt_tokens") or 0)
        completion = int(usage.get("completion_tokens") or 0)
        fields: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion,
                                  "total_tokens": prompt + completion}
        cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
        if cached is not None:
            fields["prompt_tokens_details"] = {"cached_tokens": cached}
        reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens")
        if reasoning is not None:
            fields["completion_tokens_details"] = {"reasoning_tokens": reasoning}
        return fields

    def parse_usage(self, usage: Mapping[str, Any]) -> Usage:
        return Usage.model_validate(self.usage_fields(usage))

    def parse_stream_event(self, event: SSEEvent, state: StreamState) -> list[ChatCompletionChunk]:
        data = event.data.strip()
        if data == "[DONE]":
            state.done = True
            return []
        return self.stream_chunks(json.loads(data), state)

    def stream_chunks(self, payload: Any, state: StreamState) -> list[ChatCompletionChunk]:
        """The chunks of one stream event's parsed JSON (an adapter that rewrites the payload
        first hands it on here, rather than writing it out as JSON to be read again). The payload
        is this event's own, just parsed: it is made into the chunk's fields in place, not copied."""
        if isinstance(payload, dict) and "error" in payload:
            raise self._stream_error(payload, state.model)
        groq = payload.pop("x_groq", None) or {}
        if groq.get("error"):  # Groq reports a failure inside an otherwise normal chunk
            raise self._stream_error({"error": groq["error"]}, state.model)
        usage = payload.pop("usage", None) or groq.get("usage")
        choices = payload.get("choices") or []
        for choice in choices:
            choice["finish_reason"] = normalize_finish_reason(choice.get("finish_reason"))
        payload["id"] = payload.get("id") or state.response_id
        payload["model"] = payload.get("model") or state.model
        payload["choices"] = choices
        payload["usage"] = self.usage_fields(usage) if usage else None  # validated inside the chunk
        return [ChatCompletionChunk.model_validate(payload)]

    # --- errors and limits ---------------------------------------------------------------------------
    def parse_error(
        self, status: int, headers: Mapping[str, str], body: bytes, model: str | None
    ) -> ProviderError:
        code, provider_message = _error_fields(body)
        return ProviderError(
            f"{self.name} returned HTTP {status}" + (f" ({code})" if code else ""),
            provider=self.name, model=model, status=status, code=code,
            rate_limit=self.parse_rate_limits(headers), provider_message=provider_message,
        )

    def _stream_error(self, payload: Mapping[str, Any], model: str) -> ProviderError:
        """An error event inside a stream: no HTTP status, so OpenAI's `type` stands in for one
        where it names the caller's request (`invalid_request_error`: a 400), or a caller's bad
        tool call or schema (Groq's `tool_use_failed`) would count as the provider failing."""
        error = payload.get("error") or {}
        code = error.get("code") or error.get("type") if isinstance(error, dict) else None
        status = error.get("status") if isinstance(error, dict) and isinstance(error.get("status"), int) else None
        if status is None and isinstance(error, dict) and error.get("type") == "invalid_request_error":
            status = 400
        return ProviderError(
            f"{self.name} reported an error mid-stream" + (f" ({code})" if code else ""),
            provider=self.name, model=model, status=status, code=str(code) if code else None,
            provider_message=str(error.get("message")) if isinstance(error, dict) else None,
        )

    def parse_rate_limits(self, headers: Mapping[str, str]) -> RateLimitInfo | None:
        info = RateLimitInfo(
            limit_requests=header_int(headers, "x-ratelimit-limit-requests"),
            remaining_requests=header_int(headers, "x-ratelimit-remaining-requests"),
            reset_requests_s=parse_duration(header(headers, "x-ratelimit-reset-requests")),
            limit_tokens=header_int(headers, "x-ratelimit-limit-tokens"),
            remaining_tokens=header_int(headers, "x-ratelimit-remaining-tokens"),
            reset_tokens_s=parse_duration(header(headers, "x-ratelimit-reset-tokens")),
            retry_after_s=parse_retry_after(headers),
            requests_window_s=self.dialect.requests_window_s,
        )
        return None if info.is_empty else info

    def parse_models(self, body: Any) -> list[str]:
        return [str(item["id"]) for item in body.get("data", []) if isinstance(item, dict) and "id" in item]


def _error_fields(body: bytes) -> tuple[str | None, str | None]:
    """(code, message) from `{"error": {...}}`, `{"message": ...}` or `{"detail": ...}` bodies."""
    try:
        payload = json.loads(body) if body else {}
    except ValueError:
        return None, None
    if not isinstance(payload, dict):
        return None, None
    error = payload.get("error", payload)
    if isinstance(error, str):
        return None, error
    if not isinstance(error, dict):
        return None, None
    code = error.get("code") or error.get("type")
    message = error.get("message") or error.get("detail")
    return (str(code) if code is not None else None), (str(message) if message is not None else None)



@dataclass(frozen=True)
class AudioDialect:
    """Where a provider speaking OpenAI's audio API differs: paths, and the form field that
    takes a URL instead of the file (None: the file must be uploaded)."""

    transcription_path: str = "/audio/transcriptions"
    translation_path: str = "/audio/translations"
    url_field: str | None = None


class OpenAITranscriptionAdapter(OpenAIAdapter):
    """OpenAI's `/audio/transcriptions` and `/audio/translations` (multipart).

    Asks for `verbose_json` with segment (and, when wanted, word) timestamps from models that
    have them, and plain `json` from those that do not (gpt-4o-*-transcribe): the gateway renders
    the caller's format from the one answer, so srt/vtt are not tied to the one provider that
    renders them itself."""

    def __init__(self, config: ProviderConfig, dialect: Dialect | None = None,
                 audio: AudioDialect | None = None) -> None:
        super().__init__(config, dialect)
        self.audio = audio or AudioDialect()

    def build_transcription(self, call: TranscriptionCall, model: str, traits: AudioTraits,
                            budget_s: float) -> HttpRequestSpec:
        fields: dict[str, str | list[str]] = {"model": model}
        if traits.timing != "none":
            fields["response_format"] = "verbose_json"
            fields["timestamp_granularities[]"] = (
                ["segment", "word"] if call.words and traits.timing == "word" else ["segment"])
        else:
            fields["response_format"] = "json"
        if call.language and not call.translate:
            fields["language"] = call.language
        if call.prompt and traits.prompt:
            fields["prompt"] = call.prompt
        if call.temperature is not None:
            fields["temperature"] = repr(call.temperature)
        from llm_gateway.providers.transcripts import inline  # see parse_transcription

        files: dict[str, MultipartFile]
        if inline(call, traits.max_upload_bytes) or self.audio.url_field is None:
            files = {"file": (call.filename, call.audio, call.mime_type)}
        else:
            assert call.url is not None
            files = {self.audio.url_field: (None, call.url.encode())}
        path = self.audio.translation_path if call.translate else self.audio.transcription_path
        headers = {name: value for name, value in self._headers().items() if name != "Content-Type"}
        return HttpRequestSpec("POST", self._url(path), headers, data=fields, files=files)

    def parse_transcription(self, body: bytes, headers: Mapping[str, str], call: TranscriptionCall,
                            model: str) -> Transcript:
        # Imported here, not with the module: chat containers (which import this module for
        # OpenAIAdapter) then never load the transcript types, three dataclasses and their helpers.
        from llm_gateway.providers.transcripts import openai_transcript

        return openai_transcript(json.loads(body))


SPEC = ProviderSpec(
    kind="openai",
    default_base_url="https://api.openai.com/v1",
    key_env="OPENAI_API_KEY",
    adapters={CHAT: OpenAIAdapter, TRANSCRIPTION: OpenAITranscriptionAdapter},
)
