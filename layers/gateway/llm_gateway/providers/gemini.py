"""Google Gemini (Generative Language API, v1beta): `generateContent` and its SSE stream.

Wire facts encoded here (providers.md §5): roles are only `user`/`model` and must alternate; the
system prompt is a top-level `systemInstruction`; tool calls carry no ids (we synthesize stable
ones and match results back by function name); the stream has no terminator (the chunk carrying
`finishReason` ends it); errors are `google.rpc.Status` bodies with the retry hint in
`details[RetryInfo].retryDelay`; there are no rate-limit headers.
Tools go as the translated OpenAPI-subset `parameters` (`jsonschema.py`), not `parametersJsonSchema`:
every Gemini model and API version accepts the subset, while `parametersJsonSchema` is newer,
v1beta-only and model-dependent, so one fallback model could reject what another took. Structured
output uses `responseSchema` for the same reason.
"""

from __future__ import annotations

import base64
import hashlib
import json
import mimetypes
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from llm_gateway.api.body import loads_embedded
from llm_gateway.api.schemas import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    SystemMessage,
    ToolMessage,
    Usage,
    UserMessage,
)
from llm_gateway.providers.base import (
    CHAT,
    TRANSCRIPTION,
    HttpRequestSpec,
    ProviderConfig,
    ProviderError,
    RateLimitInfo,
    SSEEvent,
    StreamState,
)
from llm_gateway.providers.content import parse_data_url, text_of
from llm_gateway.providers.headers import bounded_count, parse_duration, parse_retry_after
from llm_gateway.providers.jsonschema import is_empty_object, to_gemini_schema
from llm_gateway.providers.registry import ProviderSpec
from llm_gateway.providers.transcripts import inline
from llm_gateway.selection.catalog import AudioTraits
from llm_gateway.transcription.transcript import Transcript

if TYPE_CHECKING:  # annotations only: a chat container never builds transcription's types
    from llm_gateway.providers.transcription import TranscriptionCall

_FILTERED = ("SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY",
             "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION", "IMAGE_OTHER", "NO_IMAGE")
_SPECIAL_FINISH = {"MAX_TOKENS": "length", **dict.fromkeys(_FILTERED, "content_filter")}
# Anchored at the start: only Gemini's own sentence, never a phrase echoed from the request.
_CONTEXT_LENGTH = re.compile(r"^The input token count\b.*\bexceeds the maximum number of tokens allowed", re.I)
_RETRY_IN_MESSAGE = re.compile(r"retry in (\d+(?:\.\d+)?(?:ms|s))", re.I)
_TOOL_CHOICE = {"auto": "AUTO", "none": "NONE", "required": "ANY"}


def finish_reason(raw: str | None, has_tool_calls: bool) -> str | None:
    """Gemini `finishReason` → OpenAI, per providers.md §9.1 (STOP + functionCall = tool_calls)."""
    if raw is None:
        return None
    return _SPECIAL_FINISH.get(raw) or ("tool_calls" if has_tool_calls else "stop")


def tool_call_id(name: str, index: int, args: Any) -> str:
    """Stable id for an id-less Gemini function call: same call → same id, stream or not."""
    digest = hashlib.sha256(f"{name}\x00{index}\x00{json.dumps(args, sort_keys=True)}".encode()).hexdigest()
    return f"call_{digest[:24]}"


def usage_of(meta: Mapping[str, Any] | None) -> Usage | None:
    """`usageMetadata` → Usage; completion counts thinking tokens, which are billed as output."""
    if not meta:
        return None
    thoughts = int(meta.get("thoughtsTokenCount") or 0)
    completion = int(meta.get("candidatesTokenCount") or 0) + thoughts
    cached = meta.get("cachedContentTokenCount")
    return Usage.of(int(meta.get("promptTokenCount") or 0), completion, cached=int(cached) if cached is not None else None,
                    reasoning=thoughts if "thoughtsTokenCount" in meta else None)


class GeminiAdapter:
    """Translates OpenAI chat requests to `generateContent` and Gemini replies back."""

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        self.api_version = str(config.options.get("api_version", "v1beta"))

    @property
    def name(self) -> str:
        return self.config.name

    # --- requests ---------------------------------------------------------------------------------
    def _url(self, path: str) -> str:
        return f"{self.config.base_url.rstrip('/')}/{self.api_version}/{path}"

    def _headers(self, accept: str = "application/json") -> dict[str, str]:
        return {"x-goog-api-key": self.config.api_key, "Content-Type": "application/json", "Accept": accept}

    def build_request(self, request: ChatCompletionRequest, model: str, *, stream: bool) -> HttpRequestSpec:
        resource = model if model.startswith(("models/", "tunedModels/")) else f"models/{model}"
        if stream:
            return HttpRequestSpec(
                "POST", self._url(f"{resource}:streamGenerateContent"), self._headers("text/event-stream"),
                self.build_body(request), params={"alt": "sse"},
            )
        return HttpRequestSpec("POST", self._url(f"{resource}:generateContent"), self._headers(), self.build_body(request))

    def build_body(self, request: ChatCompletionRequest) -> dict[str, Any]:
        system = [m for m in request.messages if isinstance(m, SystemMessage)]
        others = [m for m in request.messages if isinstance(m, UserMessage | AssistantMessage | ToolMessage)]
        # Gemini refuses a request with no turn (`contents is not specified`) and empty text parts
        # alike, where OpenAI answers a system-only conversation or an empty user message: such a
        # conversation gets one user turn of a single space (what the OpenAI-to-Gemini proxies
        # send as the least valid content), its system text staying the instruction.
        body: dict[str, Any] = {"contents": contents_from_messages(others) or [{"role": "user", "parts": [{"text": " "}]}]}
        if system:
            body["systemInstruction"] = {"parts": [{"text": text_of(m.content)} for m in system]}
        if request.tools:
            body["tools"] = [{"functionDeclarations": [self._declaration(t.function) for t in request.tools]}]
            if request.tool_choice is not None:
                body["toolConfig"] = {"functionCallingConfig": _calling_config(request.tool_choice)}
        config = _generation_config(request)
        if config:
            body["generationConfig"] = config
        return body

    @staticmethod
    def _declaration(function: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"name": function.name}
        if function.description:
            out["description"] = function.description
        params = to_gemini_schema(function.parameters) if function.parameters else None
        if not is_empty_object(params):  # Gemini 400s on an OBJECT with no properties
            out["parameters"] = params
        return out

    def models_request(self) -> HttpRequestSpec:
        return HttpRequestSpec("GET", self._url("models"), self._headers(), params={"pageSize": "1000"})

    # --- responses --------------------------------------------------------------------------------
    def parse_response(self, body: Any, model: str) -> ChatCompletion:
        candidates = body.get("candidates") or []
        if not candidates:
            return self._blocked(body, model)
        candidate = candidates[0]
        parts = (candidate.get("content") or {}).get("parts") or []
        text = "".join(p["text"] for p in parts if "text" in p and not p.get("thought"))
        calls = _tool_calls(parts, start=0)
        message = {"role": "assistant", "content": text or (None if calls else ""), "tool_calls": calls or None}
        return ChatCompletion.model_validate({
            "id": body.get("responseId") or "chatcmpl-gemini",
            "model": body.get("modelVersion") or model,
            "choices": [{"index": 0, "message": message,
                         "finish_reason": finish_reason(candidate.get("finishReason") or "STOP", bool(calls))}],
            "usage": usage_of(body.get("usageMetadata")),
        })

    def _blocked(self, body: Mapping[str, Any], model: str) -> ChatCompletion:
        """A prompt blocked before generation has no candidates, only `promptFeedback.blockReason`."""
        if not (body.get("promptFeedback") or {}).get("blockReason"):
            raise ValueError("Gemini response has neither candidates nor promptFeedback.blockReason")
        return ChatCompletion.model_validate({
            "id": body.get("responseId") or "chatcmpl-gemini", "model": body.get("modelVersion") or model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": None},
                         "finish_reason": "content_filter"}],
            "usage": usage_of(body.get("usageMetadata")),
        })

    def parse_stream_event(self, event: SSEEvent, state: StreamState) -> list[ChatCompletionChunk]:
        payload = json.loads(event.data)
        if isinstance(payload, list):  # the non-SSE array form, or an error wrapped in a list
            payload = payload[0] if payload else {}
        if "error" in payload:
            raise self._error_from_payload(payload, None, state.model, mid_stream=True)
        candidate = (payload.get("candidates") or [{}])[0]
        parts = (candidate.get("content") or {}).get("parts") or []
        delta: dict[str, Any] = {}
        if not state.extra.get("started"):
            state.extra["started"] = True
            delta["role"] = "assistant"
        text = "".join(p["text"] for p in parts if "text" in p and not p.get("thought"))
        if text:
            delta["content"] = text
        calls = _tool_calls(parts, start=int(state.extra.get("calls", 0)))
        if calls:
            state.extra["calls"] = calls[-1]["index"] + 1
            delta["tool_calls"] = calls
        raw_finish = candidate.get("finishReason")
        if raw_finish is None and not candidate and (payload.get("promptFeedback") or {}).get("blockReason"):
            raw_finish = "SAFETY"
        finish = finish_reason(raw_finish, int(state.extra.get("calls", 0)) > 0)
        if finish is not None:
            state.done = True
        if not delta and finish is None:
            return []
        return [ChatCompletionChunk.model_validate({
            "id": state.response_id, "created": state.created, "model": payload.get("modelVersion") or state.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            "usage": usage_of(payload.get("usageMetadata")) if finish is not None else None,
        })]

    def parse_models(self, body: Any) -> list[str]:
        """Chat-capable model ids, without the `models/` prefix the API puts on every name."""
        return [str(item["name"]).removeprefix("models/") for item in body.get("models") or []
                if "generateContent" in (item.get("supportedGenerationMethods") or ["generateContent"])]

    # --- errors and limits ---------------------------------------------------------------------------
    def parse_error(self, status: int, headers: Mapping[str, str], body: bytes, model: str | None) -> ProviderError:
        try:
            payload = json.loads(body) if body else {}
        except ValueError:
            payload = {}
        if isinstance(payload, list):  # errors on the array-streaming form come wrapped in a list
            payload = payload[0] if payload else {}
        payload = payload if isinstance(payload, dict) else {}
        return self._error_from_payload(payload, status, model, headers=headers)

    def _error_from_payload(
        self, payload: Mapping[str, Any], status: int | None, model: str | None, *,
        headers: Mapping[str, str] | None = None, mid_stream: bool = False,
    ) -> ProviderError:
        raw_error = payload.get("error")
        error: Mapping[str, Any] = raw_error if isinstance(raw_error, dict) else {}
        message = str(error.get("message")) if error.get("message") is not None else None
        code = error.get("status") or None
        for detail in error.get("details") or []:  # a bad key is 400 INVALID_ARGUMENT + ErrorInfo.reason
            if isinstance(detail, dict) and str(detail.get("reason", "")).startswith("API_KEY_"):
                code = detail["reason"]
        if status is None and isinstance(error.get("code"), int):
            status = error["code"]
        if code == "INVALID_ARGUMENT" and message and _CONTEXT_LENGTH.search(message):
            code = "context_length_exceeded"
        limits = _limits_from_details(error.get("details") or [], message, headers or {})
        where = "mid-stream" if mid_stream else f"HTTP {status}"
        return ProviderError(
            f"{self.name} returned {where}" + (f" ({code})" if code else ""),
            provider=self.name, model=model, status=status, code=code,
            rate_limit=limits, provider_message=message,
        )

    def parse_rate_limits(self, headers: Mapping[str, str]) -> RateLimitInfo | None:
        """Gemini sends no rate-limit headers (python-genai#1721); honour a Retry-After if one appears."""
        retry = parse_retry_after(headers)
        return RateLimitInfo(retry_after_s=retry) if retry is not None else None


def contents_from_messages(messages: list[UserMessage | AssistantMessage | ToolMessage]) -> list[dict[str, Any]]:
    """OpenAI turns → Gemini `contents`: assistant → model, tool results → user `functionResponse`
    parts named after the call they answer, and consecutive same-role turns merged into one
    (Gemini wants user/model alternation, and parallel tool results belong in one turn)."""
    names: dict[str, str] = {}
    contents: list[dict[str, Any]] = []
    for message in messages:
        if isinstance(message, AssistantMessage):
            role, parts = "model", _assistant_parts(message, names)
        elif isinstance(message, ToolMessage):
            role, parts = "user", [_function_response(message, names)]
        else:
            role, parts = "user", _user_parts(message)
        if not parts:
            continue
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    return contents


def _assistant_parts(message: AssistantMessage, names: dict[str, str]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    text = text_of(message.content)
    if text:
        parts.append({"text": text})
    for call in message.tool_calls or []:
        names[call.id] = call.function.name
        try:
            args = loads_embedded(call.function.arguments or "{}")
        except ValueError:
            args = {"arguments": call.function.arguments}
        parts.append({"functionCall": {"name": call.function.name,
                                       "args": args if isinstance(args, dict) else {"value": args}}})
    return parts


def _function_response(message: ToolMessage, names: dict[str, str]) -> dict[str, Any]:
    """`response` must be a JSON object: a JSON-object result goes as is, anything else is wrapped."""
    text = text_of(message.content)
    try:
        value = loads_embedded(text)
    except ValueError:
        value = text
    response = value if isinstance(value, dict) else {"result": value}
    return {"functionResponse": {"name": names.get(message.tool_call_id, message.tool_call_id),
                                 "response": response}}


def _user_parts(message: UserMessage) -> list[dict[str, Any]]:
    if isinstance(message.content, str):
        return [{"text": message.content}] if message.content else []
    parts: list[dict[str, Any]] = []
    for part in message.content:
        if part.type == "text":
            if part.text:  # Gemini refuses an empty text part
                parts.append({"text": part.text})
        elif part.type == "image_url":
            parts.append(_media(part.image_url.url, "image/jpeg"))
        elif part.type == "input_audio":
            parts.append({"inlineData": {"mimeType": f"audio/{part.input_audio.format}",
                                         "data": part.input_audio.data}})
        elif part.type == "file" and part.file.file_data:
            parts.append(_media(part.file.file_data, "application/pdf"))
    return parts


def _media(url: str, default_mime: str) -> dict[str, Any]:
    """A `data:` URL becomes `inlineData`; anything else is a `fileData` URI Gemini fetches itself."""
    inline = parse_data_url(url)
    if inline is not None:
        return {"inlineData": {"mimeType": inline[0] or default_mime, "data": inline[1]}}
    guessed = mimetypes.guess_type(url.split("?", 1)[0])[0]
    return {"fileData": {"mimeType": guessed or default_mime, "fileUri": url}}


def _calling_config(choice: Any) -> dict[str, Any]:
    if isinstance(choice, str):
        return {"mode": _TOOL_CHOICE.get(choice, "AUTO")}
    return {"mode": "ANY", "allowedFunctionNames": [choice.function.name]}


def _generation_config(request: ChatCompletionRequest) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for ours, theirs in (("temperature", "temperature"), ("top_p", "topP"), ("seed", "seed"),
                         ("presence_penalty", "presencePenalty"), ("frequency_penalty", "frequencyPenalty"),
                         ("n", "candidateCount")):
        value = getattr(request, ours)
        if value is not None:
            config[theirs] = value
    if request.output_limit is not None:
        config["maxOutputTokens"] = request.output_limit
    if request.stop_list:
        config["stopSequences"] = request.stop_list
    fmt = request.response_format
    if fmt is not None and fmt.type in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
        schema = getattr(getattr(fmt, "json_schema", None), "schema_", None)
        if schema:
            config["responseSchema"] = to_gemini_schema(schema)
    return config


def _tool_calls(parts: list[Mapping[str, Any]], start: int) -> list[dict[str, Any]]:
    """`functionCall` parts → OpenAI tool calls; ids are Gemini's when it sends one, else synthesized."""
    calls: list[dict[str, Any]] = []
    for part in parts:
        call = part.get("functionCall")
        if not isinstance(call, dict):
            continue
        args = call.get("args") or {}
        index = start + len(calls)
        calls.append({
            "index": index, "id": call.get("id") or tool_call_id(call["name"], index, args), "type": "function",
            "function": {"name": call["name"], "arguments": json.dumps(args, separators=(",", ":"))},
        })
    return calls


def _limits_from_details(details: list[Any], message: str | None, headers: Mapping[str, str]) -> RateLimitInfo | None:
    """RetryInfo.retryDelay (or "Please retry in 34s." in the message) and QuotaFailure violations."""
    retry: float | None = parse_retry_after(headers)
    limit_requests = limit_tokens = remaining_requests = remaining_tokens = None
    window_requests = window_tokens = 60
    for detail in details:
        if not isinstance(detail, dict):
            continue
        kind = str(detail.get("@type", ""))
        if kind.endswith("RetryInfo"):
            retry = parse_duration(str(detail.get("retryDelay", ""))) or retry
        elif kind.endswith("QuotaFailure"):
            for violation in detail.get("violations") or []:
                quota_id = str(violation.get("quotaId", ""))
                raw_value = str(violation.get("quotaValue", ""))
                value = bounded_count(int(raw_value)) if raw_value.isdigit() and len(raw_value) <= 13 else None
                window = 86_400 if ("PerDay" in quota_id or "Daily" in quota_id) else 60
                if "Token" in quota_id:
                    limit_tokens, remaining_tokens, window_tokens = value, 0, window
                else:
                    limit_requests, remaining_requests, window_requests = value, 0, window
    if retry is None and message and (match := _RETRY_IN_MESSAGE.search(message)):
        retry = parse_duration(match.group(1))
    info = RateLimitInfo(
        limit_requests=limit_requests, remaining_requests=remaining_requests,
        limit_tokens=limit_tokens, remaining_tokens=remaining_tokens, retry_after_s=retry,
        requests_window_s=window_requests, tokens_window_s=window_tokens,
    )
    return None if info.is_empty else info


# Gemini's documented audio MIME types, by container (webm and m4a are not among them).
_AUDIO_MIME = {"wav": "audio/wav", "mp3": "audio/mp3", "flac": "audio/flac", "ogg": "audio/ogg"}
TRANSCRIBE_INSTRUCTION = (
    "Transcribe the speech in this audio verbatim. Answer with the transcript text only: no "
    "preamble, no timestamps, no speaker labels, no commentary.")


class GeminiTranscriptionAdapter(GeminiAdapter):
    """Speech to text through `generateContent`: the audio as inline data (or a signed URL as
    `fileData`) next to a transcription instruction. Text only (no timing); audio counts 32
    tokens a second in the usage, which prices the call."""

    def build_transcription(self, call: TranscriptionCall, model: str, traits: AudioTraits,
                            budget_s: float) -> HttpRequestSpec:
        mime = _AUDIO_MIME.get(call.container, call.mime_type)
        if inline(call, traits.max_upload_bytes):
            audio: dict[str, Any] = {"inlineData": {"mimeType": mime, "data": base64.b64encode(call.audio).decode()}}
        else:
            audio = {"fileData": {"mimeType": mime, "fileUri": call.url}}
        instruction = TRANSCRIBE_INSTRUCTION
        if call.translate:
            instruction += " Translate the transcript into English."
        elif call.language:
            instruction += f" The speech is in the language with ISO code '{call.language}'."
        if call.prompt:
            instruction += f" Context that may help with spelling: {call.prompt}"
        body: dict[str, Any] = {"contents": [{"role": "user", "parts": [{"text": instruction}, audio]}]}
        if call.temperature is not None:
            body["generationConfig"] = {"temperature": call.temperature}
        resource = model if model.startswith("models/") else f"models/{model}"
        return HttpRequestSpec("POST", self._url(f"{resource}:generateContent"), self._headers(), body)

    def parse_transcription(self, body: bytes, headers: Mapping[str, str], call: TranscriptionCall,
                            model: str) -> Transcript:
        payload = json.loads(body)
        candidates = payload.get("candidates") or []
        if not candidates:  # blocked for the audio's content: the caller's, so no mark on Gemini
            blocked = ProviderError(f"{self.name} returned no transcript (blocked or empty)", provider=self.name,
                                    model=model, status=502, code="no_candidates")
            blocked.request_caused = True
            raise blocked
        finish = candidates[0].get("finishReason")
        if finish not in _WHOLE:  # cut at the output limit or by a filter: part of a transcript is not one
            early = ProviderError(f"{self.name} ended the transcript early ({finish})", provider=self.name,
                                  model=model, status=502, code="transcript_incomplete", provider_message=str(finish))
            early.request_caused = True  # this audio's length or content, not Gemini's health
            raise early
        parts = (candidates[0].get("content") or {}).get("parts") or []
        text = "".join(p["text"] for p in parts if "text" in p and not p.get("thought")).strip()
        usage = payload.get("usageMetadata") or {}
        return Transcript(text=text, input_tokens=_count(usage.get("promptTokenCount")),
                          output_tokens=_count(usage.get("candidatesTokenCount")))


_WHOLE = frozenset({None, "STOP", "FINISH_REASON_UNSPECIFIED"})  # finish reasons of a transcript written to its end


def _count(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and value >= 0 else None


SPEC = ProviderSpec(
    kind="gemini",
    default_base_url="https://generativelanguage.googleapis.com",
    key_env="GEMINI_API_KEY",
    adapters={CHAT: GeminiAdapter, TRANSCRIPTION: GeminiTranscriptionAdapter},
)
