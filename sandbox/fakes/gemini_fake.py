"""Fake Google Gemini (Generative Language API, `generateContent`).

SDK base URL: `genai.Client(api_key=..., http_options={"base_url": "http://127.0.0.1:P",
"api_version": "v1beta"})`. python-genai joins `{base_url}/{api_version}/models/{model}:generateContent`
and `...:streamGenerateContent?alt=sse`, and `models` for listing (`google/genai/_api_client.py`
`_build_request`, `models.py`); it sends the key as `x-goog-api-key`. Note: google-genai 3.x
defaults `api_version` to `v1` when none is given, so the fake serves `/v1beta/...` **and**
`/v1/...` (and `/v1alpha/...`) identically.

Served: `POST /{ver}/models/{model}:generateContent`, `POST /{ver}/models/{model}:streamGenerateContent`
(always SSE, as with `alt=sse`: `data:` lines, no `[DONE]`, end = EOF), `GET /{ver}/models`,
`GET /{ver}/models/{model}`. Auth: `x-goog-api-key` header or `?key=`. Requests are accepted in
lowerCamelCase and snake_case. Errors are google.rpc.Status bodies; as in the real API a missing
key is 403 PERMISSION_DENIED and an invalid key is **400** INVALID_ARGUMENT with
ErrorInfo `API_KEY_INVALID` (the injected "401" fault gives 401 UNAUTHENTICATED). Strict mode
(`gemini_strict.py`) answers 400 INVALID_ARGUMENT, as the real API does, to broken turn order
(function calls/responses) and to OBJECT schemas without properties in function parameters. No rate-limit
headers; 429 is RESOURCE_EXHAUSTED with QuotaFailure, Help and RetryInfo (`retryDelay: "34s"`).

Audio (speech to text, providers.md 5.7): a user part `inlineData`/`inline_data` with an audio
`mimeType` (audio/wav, audio/x-wav, audio/mp3, audio/mpeg, audio/aiff, audio/aac, audio/ogg,
audio/flac; another audio type is a 400 INVALID_ARGUMENT "Unsupported MIME type") or
`fileData.fileUri` (an http(s) or data: URL, fetched) makes the reply the synthesized transcript
of that audio (`transcription.py`; JSON mode: `{"transcript": ...}` or the schema's example).
`usageMetadata.promptTokenCount` counts 32 tokens per second of audio, and `promptTokensDetails`
splits it by modality (AUDIO, TEXT).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

from sandbox.fakes import gemini_strict
from sandbox.fakes.content import ChatRequest, Reply, ToolSpec, text_of
from sandbox.fakes.gemini_strict import proto_field as _get
from sandbox.fakes.limits import MODEL
from sandbox.fakes.transcription import decode_base64, fetch_audio, heard, synthesize
from sandbox.fakes.wire import BadRequest, Ctx, ErrorInfo, Event, Route, Wire, match_path, sse_data

_FINISH = {"stop": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP"}
_RPC = "type.googleapis.com/google.rpc."
AUDIO_MIME = ("audio/wav", "audio/x-wav", "audio/wave", "audio/mp3", "audio/mpeg", "audio/aiff", "audio/aac",
              "audio/ogg", "audio/flac")  # fmt: skip
AUDIO_TOKENS_PER_S = 32
_METRICS = {"requests": "generate_content_free_tier_requests",
            "tokens": "generate_content_free_tier_input_token_count"}  # fmt: skip


def quota_id(unit: str, period: str, per_model: bool) -> str:
    """The QuotaFailure `quotaId` Gemini reports, e.g. GenerateRequestsPerMinutePerProjectPerModel-FreeTier
    or GenerateContentInputTokensPerModelPerMinute-FreeTier (providers.md §5.5); without `PerModel`
    for a project-wide limit."""
    period = period.capitalize()
    if unit == "tokens":
        return f"GenerateContentInputTokens{'PerModel' if per_model else ''}Per{period}-FreeTier"
    return f"GenerateRequestsPer{period}PerProject{'PerModel' if per_model else ''}-FreeTier"


class GeminiWire(Wire):
    name = "gemini"
    sentinel = None

    def match(self, method: str, path: str) -> Route | None:
        ver = r"/(?P<ver>v1beta|v1|v1alpha)/models"
        call = match_path(ver + r"/(?P<model>[^:]+):(?P<method>generateContent|streamGenerateContent)", path)
        if method == "POST" and call:
            stream = call["method"] == "streamGenerateContent"
            return Route(
                "chat", model=call["model"].removeprefix("models/"), stream=stream, api_version=call["ver"]
            )
        if method != "GET":
            return None
        if found := match_path(ver, path):
            return Route("models", api_version=found["ver"])
        if found := match_path(ver + r"/(?P<model>[^:]+)", path):
            return Route("model", model=found["model"], api_version=found["ver"])
        return None

    def api_key(self, headers: dict[str, str], query: dict[str, str]) -> str | None:
        return headers.get("x-goog-api-key") or query.get("key") or None

    def check_strict(self, body: dict[str, Any], route: Route) -> None:
        empty = gemini_strict.empty_object_paths(_get(body, "tools") or [])
        if empty:
            raise BadRequest("".join(f"* {path}: should be non-empty for OBJECT type\n" for path in empty))
        contents = _get(body, "contents")
        problem = gemini_strict.turn_order_error(contents) if isinstance(contents, list) else None
        if problem:
            raise BadRequest(problem)
        if isinstance(contents, list) and gemini_strict.has_empty_text(contents):
            raise BadRequest("Unable to submit request because it has an empty text parameter. Add a value to the "
                             "parameter and try again.")

    def parse_chat(self, body: dict[str, Any], route: Route) -> ChatRequest:
        contents = _get(body, "contents")
        if not isinstance(contents, list) or not contents:
            raise BadRequest("* GenerateContentRequest.contents: contents is not specified")
        req = ChatRequest(model=route.model or "", raw=body)
        system = _get(body, "systemInstruction") or {}
        texts = [text_of(p) for p in _get(system, "parts", []) or []] if isinstance(system, dict) else []
        transcripts: list[str] = []
        for content in contents:
            for part in content.get("parts") or []:
                if not isinstance(part, dict):
                    continue
                audio = self._audio(part)
                if audio is not None:
                    info = heard(audio)
                    req.audio_tokens += math.ceil(info.duration_s * AUDIO_TOKENS_PER_S)
                    transcripts.append(synthesize(info).text)
                else:
                    texts.append(part["text"] if isinstance(part.get("text"), str) else json.dumps(part))
        if transcripts:
            req.transcript = " ".join(transcripts)
        req.prompt_text = "\n".join(texts) + json.dumps(_get(body, "tools") or "")
        users = [text for c in contents if c.get("role", "user") == "user" and (text := self._text(c))]
        req.last_user_text = users[-1] if users else ""  # each turn's text read once (a prompt may be long)
        responses = [
            _get(p, "functionResponse") for p in contents[-1].get("parts") or [] if isinstance(p, dict)
        ]
        responses = [r for r in responses if r]
        if responses:
            req.tool_result = " ".join(json.dumps(_get(r, "response", {})) for r in responses)
        self._tools(req, body)
        self._generation(req, _get(body, "generationConfig") or {})
        return req

    @staticmethod
    def _audio(part: dict[str, Any]) -> bytes | None:
        """The audio bytes of an inline or file part with an audio MIME type (else None)."""
        inline, file = _get(part, "inlineData"), _get(part, "fileData")
        blob = inline if isinstance(inline, dict) else file if isinstance(file, dict) else None
        if blob is None:
            return None
        mime = str(_get(blob, "mimeType") or "").lower()
        if not mime.startswith("audio/"):
            return None
        if mime not in AUDIO_MIME:
            raise BadRequest(f"Unsupported MIME type: {mime}")
        if blob is inline:
            return decode_base64(str(_get(blob, "data") or ""))
        uri = str(_get(blob, "fileUri") or "")
        if not uri.startswith(("http://", "https://", "data:")):
            raise BadRequest(f"Cannot fetch content from the provided URL: {uri}")
        return fetch_audio(uri)

    @staticmethod
    def _text(content: dict[str, Any]) -> str:
        parts = content.get("parts") or []
        return " ".join(p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str))

    @staticmethod
    def _tools(req: ChatRequest, body: dict[str, Any]) -> None:
        for tool in _get(body, "tools") or []:
            for decl in _get(tool, "functionDeclarations") or []:
                schema = _get(decl, "parameters") or _get(decl, "parametersJsonSchema") or {}
                req.tools.append(ToolSpec(decl["name"], schema))
        config = _get(_get(body, "toolConfig") or {}, "functionCallingConfig") or {}
        mode = str(_get(config, "mode") or "AUTO").upper()
        allowed = _get(config, "allowedFunctionNames") or []
        if mode == "ANY":
            req.tool_choice = "required"
            req.forced_tool = allowed[0] if allowed else None
        elif mode == "NONE":
            req.tool_choice = "none"

    @staticmethod
    def _generation(req: ChatRequest, config: dict[str, Any]) -> None:
        if str(_get(config, "responseMimeType") or "").lower() == "application/json":
            req.json_mode = True
            req.json_schema = _get(config, "responseSchema") or _get(config, "responseJsonSchema")
        limit = _get(config, "maxOutputTokens")
        req.max_tokens = int(limit) if limit is not None else None

    # --- responses ----------------------------------------------------------------------------

    def usage(self, reply: Reply, final: bool = True) -> dict[str, Any]:
        usage: dict[str, Any] = {"promptTokenCount": reply.prompt_tokens}
        if final:
            usage["candidatesTokenCount"] = reply.completion_tokens
        usage["totalTokenCount"] = reply.total_tokens if final else reply.prompt_tokens
        text_tokens = reply.prompt_tokens - reply.audio_tokens
        usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": text_tokens}]
        if reply.audio_tokens:
            usage["promptTokensDetails"].append({"modality": "AUDIO", "tokenCount": reply.audio_tokens})
        return usage

    def _chunk(self, parts: list[dict[str, Any]], reply: Reply, ctx: Ctx, final: bool) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
        if final:
            candidate["finishReason"] = _FINISH.get(reply.finish, "STOP")
        return {"candidates": [candidate], "usageMetadata": self.usage(reply, final),
                "modelVersion": ctx.model, "responseId": ctx.alnum_id("resp", 22)}  # fmt: skip

    @staticmethod
    def _call_parts(reply: Reply) -> list[dict[str, Any]]:
        return [{"functionCall": {"name": c.name, "args": c.args}} for c in reply.tool_calls]

    def completion(self, req: ChatRequest, reply: Reply, ctx: Ctx) -> dict[str, Any]:
        parts = self._call_parts(reply) if reply.tool_calls else [{"text": reply.text or ""}]
        return self._chunk(parts, reply, ctx, final=True)

    def stream(self, req: ChatRequest, reply: Reply, ctx: Ctx) -> Iterator[Event]:
        if reply.tool_calls:
            yield sse_data(self._chunk(self._call_parts(reply), reply, ctx, final=True)), True
            return
        pieces = reply.pieces() or [""]
        for i, piece in enumerate(pieces):
            yield sse_data(self._chunk([{"text": piece}], reply, ctx, final=i == len(pieces) - 1)), True

    def broken_event(self, ctx: Ctx) -> bytes:
        return b'data: {"candidates": [{"content": {"parts": [{"text": "br\n\n'

    # --- errors -------------------------------------------------------------------------------

    @staticmethod
    def status_body(
        code: int, status: str, message: str, details: list[dict] | None = None
    ) -> dict[str, Any]:
        error: dict[str, Any] = {"code": code, "message": message, "status": status}
        if details:
            error["details"] = details
        return {"error": error}

    def error(self, info: ErrorInfo, ctx: Ctx) -> tuple[int, dict[str, Any], dict[str, str]]:
        if info.kind == "rate_limited":
            return 429, self._quota_body(info, ctx), {}
        if info.kind == "auth_invalid":
            reason = {"@type": _RPC + "ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com",
                      "metadata": {"service": "generativelanguage.googleapis.com"}}  # fmt: skip
            localized = {"@type": _RPC + "LocalizedMessage", "locale": "en-US",
                         "message": "API key not valid. Please pass a valid API key."}  # fmt: skip
            body = self.status_body(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.",
                                    [reason, localized])  # fmt: skip
            return 400, body, {}
        ver = ctx.route.api_version or "v1beta"
        table: dict[str, tuple[int, str, str]] = {
            "auth_missing": (403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers (callers "
                             "without established identity). Please use API Key or other form of API consumer "
                             "identity to call this API."),
            "auth_fault": (401, "UNAUTHENTICATED", "Request had invalid authentication credentials. Expected "
                           "OAuth 2 access token, login cookie or other valid authentication credential."),
            "model_not_found": (404, "NOT_FOUND", f"models/{info.model} is not found for API version {ver}, or "
                                "is not supported for generateContent. Call ListModels to see the list of "
                                "available models and their supported methods."),
            "path_not_found": (404, "NOT_FOUND", info.message),
            "bad_request": (400, "INVALID_ARGUMENT", info.message),
            "bad_audio": (400, "INVALID_ARGUMENT", f"Request contains an invalid argument. {info.message}"),
            "too_large": (413, "INVALID_ARGUMENT", "Request payload size exceeds the limit."),
            "server_500": (500, "INTERNAL", "An internal error has occurred. Please retry or report in "
                           "https://developers.generativeai.google/guide/troubleshooting"),
            "server_503": (503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
        }  # fmt: skip
        code, status, message = table.get(info.kind, table["server_500"])
        return code, self.status_body(code, status, message), {}

    def _quota_body(self, info: ErrorInfo, ctx: Ctx) -> dict[str, Any]:
        over = info.snap.exceeded if info.snap else None
        wait = info.retry_after if info.retry_after is not None else (over.retry_after if over else 34.0)
        unit, period = (over.dimension.unit, over.dimension.period) if over else ("requests", "minute")
        per_model = over is None or over.scope == MODEL
        dimensions = {"location": "global", **({"model": ctx.model} if per_model else {})}
        violation = {"quotaMetric": f"generativelanguage.googleapis.com/{_METRICS.get(unit, unit)}",
                     "quotaId": quota_id(unit, period, per_model), "quotaDimensions": dimensions,
                     "quotaValue": str(over.limit if over else 0)}  # fmt: skip
        details = [
            {"@type": _RPC + "QuotaFailure", "violations": [violation]},
            {"@type": _RPC + "Help", "links": [{"description": "Learn more about Gemini API quotas",
                                                "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]},
            {"@type": _RPC + "RetryInfo", "retryDelay": f"{max(1, math.ceil(wait))}s"},
        ]  # fmt: skip
        message = ("You exceeded your current quota, please check your plan and billing details. For more "
                   "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits. "
                   f"Please retry in {wait:.2f}s.")  # fmt: skip
        return self.status_body(429, "RESOURCE_EXHAUSTED", message, details)

    # --- models -------------------------------------------------------------------------------

    def model_body(self, model: str, ctx: Ctx) -> dict[str, Any]:
        return {
            "name": f"models/{model}", "version": "001", "displayName": model.replace("-", " ").title(),
            "description": f"Fake {model}", "inputTokenLimit": 1048576, "outputTokenLimit": 65536,
            "supportedGenerationMethods": ["generateContent", "countTokens"],
            "temperature": 1.0, "topP": 0.95, "topK": 64, "maxTemperature": 2.0, "thinking": True,
        }  # fmt: skip

    def models_body(self, models: list[str], ctx: Ctx) -> dict[str, Any]:
        return {"models": [self.model_body(m, ctx) for m in models]}


WIRE = GeminiWire()
