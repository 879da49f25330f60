"""Fake Mistral (La Plateforme): OpenAI-like chat completions with Mistral's differences.

SDK base URL: `Mistral(api_key=..., server_url="http://127.0.0.1:P")` — mistralai (3.x,
`mistralai/client/chat.py`) requests `path="/v1/chat/completions"` (streams too, with
`Accept: text/event-stream`) and `/v1/models`, `/v1/models/{model_id}` (`models_.py`) relative to
`server_url`, so the server URL has no `/v1`. An OpenAI client would use `base_url=".../v1"`.

Differences from OpenAI: tool_choice also accepts `"any"`; tool-call ids are 9 alphanumerics;
streamed tool calls arrive whole in the final chunk; usage rides on the final chunk (the one with
`finish_reason`) with no request flag; errors are `{"object":"error","message","type","param",
"code"}` with numeric-string codes; an unknown model is a **400** `invalid_model` (code 1500);
401 is the gateway's `{"message":"Unauthorized","request_id"}`. Strict mode (`mistral_strict.py`):
unknown top-level fields → 422 `{"object":"error","message":{"detail":[...extra_forbidden...]},
"type":"invalid_request_error","param":null,"code":null}`; replayed tool-call ids that are not
nine alphanumerics → 400 `invalid_function_call` (code 3280). Rate-limit headers (observed):
`x-ratelimit-{limit,remaining}-req-minute`, `x-ratelimit-{limit,remaining}-tokens-minute`,
`x-ratelimit-tokens-query-cost`, and `x-ratelimit-{limit,remaining}-tokens-month` when a monthly
token limit is set; no reset header and no retry-after. Limits are per organisation at Mistral
(the free tier: 1 request per second for all models): `org_limits: {rps: 1}`.

Speech to text (wave2.md 2): `POST /v1/audio/transcriptions` (multipart, as mistralai 3.x
`audio.transcriptions.complete` sends it), voxtral-mini-latest and voxtral-mini-2507; exactly one
of `file` or `file_url` (data: or http(s), fetched; `file_id` needs the Files API, which the fake
does not have: 400); `timestamp_granularities` `segment` only (`word` → 400), and not with
`language` (400, as Mistral: "not compatible"); answer
`{"model","text","language","segments":[{"text","start","end","type":"transcription_segment"}],
"usage":{"prompt_audio_seconds","prompt_tokens","completion_tokens","total_tokens"}}` (segments
only with `timestamp_granularities=segment`, else `[]`). No translations. The organisation's
limits (`org_limits`, e.g. the free tier's 1 request/s) count transcriptions like chat.
"""

from __future__ import annotations

import math
from typing import Any

from sandbox.fakes import mistral_strict
from sandbox.fakes.content import ChatRequest, Reply, estimate_tokens
from sandbox.fakes.limits import LimitSnapshot
from sandbox.fakes.openai_fake import OpenAIWire
from sandbox.fakes.transcription import AudioReply, Form, fetch_audio, heard, synthesize
from sandbox.fakes.wire import BadRequest, Ctx, ErrorInfo, Route

AUDIO_TOKENS_PER_S = 12.5  # Voxtral encodes 80 ms of audio per token (an approximation)


class MistralWire(OpenAIWire):
    name = "mistral"
    prefix = "/v1"
    base_path = ""
    whole_tool_calls = True
    audio_models = {"voxtral-mini-latest": ("json",), "voxtral-mini-2507": ("json",)}
    translate_models = ()
    audio_tasks = ("transcribe",)

    def transcribe(self, form: Form, route: Route, ctx: Ctx) -> AudioReply:
        model = str(form.get("model") or "")
        if model not in self.audio_models:
            raise BadRequest(f"Invalid model: {model} does not support audio transcription", kind="model_not_found")
        upload, url, file_id = form.files.get("file"), form.get("file_url"), form.get("file_id")
        given = [name for name, value in (("file", upload), ("file_url", url), ("file_id", file_id)) if value]
        if len(given) != 1:
            raise BadRequest(f"Exactly one of file, file_url or file_id must be provided (got {given or 'none'})")
        if file_id:
            raise BadRequest("file_id: the fake has no Files API; send file or file_url")
        granularities = form.getlist("timestamp_granularities")
        if "word" in granularities:
            raise BadRequest("Word-level timestamps are not supported; use timestamp_granularities=segment")
        if any(g != "segment" for g in granularities):
            raise BadRequest(f"Invalid timestamp_granularities: {granularities}")
        if granularities and form.get("language"):
            raise BadRequest("timestamp_granularities cannot be combined with language; choose one of the two")
        data = upload.data if upload is not None else fetch_audio(str(url))
        info = heard(data)
        language = form.get("language")
        t = synthesize(info, language=language)
        seconds = math.ceil(t.duration)
        prompt_tokens = math.ceil(t.duration * AUDIO_TOKENS_PER_S)
        completion = estimate_tokens(t.text)
        segments = [{"text": s.text, "start": s.start, "end": s.end, "type": "transcription_segment"}
                    for s in t.segments] if granularities else []  # fmt: skip
        body = {"model": model, "text": t.text, "language": language, "segments": segments,
                "usage": {"prompt_audio_seconds": seconds, "prompt_tokens": prompt_tokens,
                          "completion_tokens": completion, "total_tokens": prompt_tokens + completion}}  # fmt: skip
        return AudioReply(body, billed_seconds=t.duration)

    def call_id(self, ctx: Ctx, name: str, index: int) -> str:
        return ctx.alnum_id(f"tool{index}", 9)

    def usage(self, reply: Reply) -> dict[str, Any]:
        return {"prompt_tokens": reply.prompt_tokens, "total_tokens": reply.total_tokens,
                "completion_tokens": reply.completion_tokens}  # fmt: skip

    def message(self, reply: Reply) -> dict[str, Any]:
        calls = [{**c, "index": i} for i, c in enumerate(self.tool_calls(reply))] or None
        return {"role": "assistant", "tool_calls": calls, "content": reply.text or ""}

    def completion(self, req: ChatRequest, reply: Reply, ctx: Ctx) -> dict[str, Any]:
        return {
            "id": ctx.hex_id(length=32),
            "object": "chat.completion",
            "created": ctx.created,
            "model": ctx.model,
            "choices": [{"index": 0, "message": self.message(reply), "finish_reason": reply.finish,
                         "logprobs": None}],
            "usage": self.usage(reply),
        }  # fmt: skip

    def chunk(self, req: ChatRequest, ctx: Ctx, delta: dict[str, Any], finish: str | None = None) -> dict:
        return {
            "id": ctx.hex_id(length=32),
            "object": "chat.completion.chunk",
            "created": ctx.created,
            "model": ctx.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
        }

    def first_delta(self) -> dict[str, Any]:
        return {"role": "assistant", "content": ""}

    def final_chunk(self, req: ChatRequest, reply: Reply, ctx: Ctx) -> dict[str, Any]:
        delta: dict[str, Any] = {"content": ""}
        if reply.tool_calls:
            delta["tool_calls"] = self.message(reply)["tool_calls"]
        chunk = self.chunk(req, ctx, delta, reply.finish)
        chunk["usage"] = self.usage(reply)
        return chunk

    def stream(self, req: ChatRequest, reply: Reply, ctx: Ctx):  # type: ignore[override]
        req.include_usage = False  # Mistral has no stream_options; usage is always on the final chunk
        return super().stream(req, reply, ctx)

    def check_strict(self, body: dict[str, Any], route: Route) -> None:
        detail = mistral_strict.validation_errors(body)
        if detail:
            raise BadRequest("request body failed validation", kind="validation", detail=detail)
        bad_id = mistral_strict.invalid_tool_call_id(body.get("messages"))
        if bad_id is not None:
            raise BadRequest(
                f"Tool call id was {bad_id} but must be a-z, A-Z, 0-9, with a length of 9.",
                kind="invalid_tool_call_id",
            )

    def parse_chat(self, body: dict[str, Any], route: Any) -> ChatRequest:
        req = super().parse_chat(body, route)
        req.max_tokens = int(body["max_tokens"]) if body.get("max_tokens") is not None else None
        return req

    def error_body(self, message: str, type_: str, code: str | None, param: str | None = None) -> dict:
        return {"object": "error", "message": message, "type": type_, "param": param, "code": code}

    def error(self, info: ErrorInfo, ctx: Ctx) -> tuple[int, dict[str, Any], dict[str, str]]:
        if info.kind in ("auth_invalid", "auth_fault", "auth_missing"):
            return 401, {"message": "Unauthorized", "request_id": ctx.hex_id("auth", 32)}, {}
        if info.kind == "rate_limited":
            body = self.error_body("Rate limit exceeded", "rate_limited", "1300")
            body["raw_status_code"] = 429
            headers = self.limit_headers(info.snap) if info.snap is not None else {}
            return 429, body, headers
        if info.kind == "validation":
            body = self.error_body("", "invalid_request_error", None)
            body["message"] = {"detail": info.detail}
            return 422, body, {}
        table: dict[str, tuple[int, str, str, str]] = {
            "model_not_found": (400, f"Invalid model: {info.model}", "invalid_model", "1500"),
            "bad_request": (400, info.message, "invalid_request_error", "3000"),
            "bad_audio": (400, info.message, "invalid_request_error", "3000"),
            "too_large": (413, "Request Entity Too Large", "invalid_request_error", "3000"),
            "invalid_tool_call_id": (400, info.message, "invalid_function_call", "3280"),
            "path_not_found": (404, "Not Found", "not_found", "1000"),
            "server_500": (500, "Internal server error", "internal_server_error", "1000"),
            "server_503": (503, "Service unavailable, please retry later.", "service_unavailable", "1000"),
        }
        status, message, type_, code = table.get(info.kind, table["server_500"])
        return status, self.error_body(message, type_, code), {}

    def limit_headers(self, snap: LimitSnapshot) -> dict[str, str]:
        headers: dict[str, str] = {}
        for key, name in (("rpm", "req-minute"), ("tpm", "tokens-minute"), ("tpmonth", "tokens-month")):
            state = snap.get(key)
            if state is not None:
                headers[f"x-ratelimit-limit-{name}"] = str(state.limit)
                headers[f"x-ratelimit-remaining-{name}"] = str(state.remaining)
        headers["x-ratelimit-tokens-query-cost"] = str(snap.cost)
        return headers

    def response_headers(self, ctx: Ctx) -> dict[str, str]:
        return {"mistral-correlation-id": ctx.hex_id("corr", 32), "x-kong-request-id": ctx.hex_id("kong", 24)}

    def model_body(self, model: str, ctx: Ctx) -> dict[str, Any]:
        return {
            "id": model, "object": "model", "created": 1700000000, "owned_by": "mistralai",
            "capabilities": {"completion_chat": True, "completion_fim": False, "function_calling": True,
                             "fine_tuning": False, "vision": False, "classification": False},
            "name": model, "description": f"Fake {model}", "max_context_length": 131072, "aliases": [],
            "deprecation": None, "default_model_temperature": 0.3, "type": "base",
        }  # fmt: skip


WIRE = MistralWire()
