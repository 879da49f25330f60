"""Fake Groq: OpenAI's chat format under /openai/v1 with Groq's extras.

SDK base URL: `Groq(base_url="http://127.0.0.1:P")` — groq-python appends the full paths
`/openai/v1/chat/completions`, `/openai/v1/models`, `/openai/v1/models/{model}`
(`groq/resources/chat/completions.py`, `groq/resources/models.py`). An OpenAI client would use
`base_url="http://127.0.0.1:P/openai/v1"`.

Differences from OpenAI: error bodies have no `param`; non-stream `usage` carries queue/prompt/
completion/total times and the body a top-level `x_groq: {id}`; streamed tool calls arrive whole in
one delta; the final chunk (the one with `finish_reason`) carries `x_groq.usage` without any
request flag (a top-level usage chunk is added only with `stream_options.include_usage`).
`x-ratelimit-*-requests` count requests **per day** (rpd), `*-tokens` tokens per minute;
`retry-after` (seconds) only on 429.

Speech to text (providers.md 4.7, wave2.md 2): `POST /openai/v1/audio/{transcriptions,translations}`
(multipart), whisper-large-v3 and whisper-large-v3-turbo (turbo does not translate); exactly one
of `file` (≤ 25 MB, else 413) or `url` (fetched: data: URLs, or http(s), ≤ 40 MB); formats json
(`{"text","x_groq":{"id"}}`, no usage), verbose_json (language, duration, segments, words,
x_groq) and text — srt/vtt are a 400. Audio is billed at 10 s at least; the free tier's limits
per model are 20 RPM, 2,000 RPD, 7,200 audio seconds per hour (`ash`) and 28,800 per day (`asd`),
counted in billed seconds (registry defaults). Groq sends no audio-seconds header.
"""

from __future__ import annotations

from typing import Any

from sandbox.fakes.content import ChatRequest, Reply
from sandbox.fakes.limits import LimitSnapshot
from sandbox.fakes.openai_fake import OpenAIWire, _openai_style_headers
from sandbox.fakes.transcription import Form, Transcript, fetch_audio
from sandbox.fakes.wire import BadRequest, Ctx, ErrorInfo, Route

URL_LIMIT = 40 * 1024 * 1024  # free tier, audio passed by `url`
MIN_BILLED_S = 10.0


class GroqWire(OpenAIWire):
    name = "groq"
    returns_logprobs = False  # Groq documents logprobs as not yet supported by any model
    prefix = "/openai/v1"
    base_path = ""
    docs_url = "https://console.groq.com/docs/rate-limits"
    whole_tool_calls = True
    audio_models = {"whisper-large-v3": ("json", "verbose_json", "text"),
                    "whisper-large-v3-turbo": ("json", "verbose_json", "text")}  # fmt: skip
    translate_models = ("whisper-large-v3",)

    def audio_bytes(self, form: Form) -> bytes:
        upload, url = form.files.get("file"), form.get("url")
        if (upload is None) == (not url):
            raise BadRequest("either file or url must be provided, but not both" if upload else
                             "file or url must be provided")  # fmt: skip
        if upload is not None:
            return upload.data
        return fetch_audio(str(url), URL_LIMIT)

    def billed_seconds(self, duration: float) -> float:
        return max(MIN_BILLED_S, duration)

    def json_transcript(self, model: str, t: Transcript, form: Form, route: Route, ctx: Ctx) -> dict[str, Any]:
        return {"text": " " + t.text, "x_groq": {"id": self._req_id(ctx)}}

    def verbose_json(self, t: Transcript, granularities: list[str], route: Route, ctx: Ctx) -> dict[str, Any]:
        body = super().verbose_json(t, granularities, route, ctx)
        body.pop("usage", None)
        body["x_groq"] = {"id": self._req_id(ctx)}
        return body

    def usage(self, reply: Reply) -> dict[str, Any]:
        completion_time = round(reply.completion_tokens / 1000, 6)
        return {
            "queue_time": 0.001, "prompt_tokens": reply.prompt_tokens, "prompt_time": 0.0002,
            "completion_tokens": reply.completion_tokens, "completion_time": completion_time,
            "total_tokens": reply.total_tokens, "total_time": round(0.0002 + completion_time, 6),
        }  # fmt: skip

    def message(self, reply: Reply) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": reply.text}
        if reply.tool_calls:
            message["tool_calls"] = self.tool_calls(reply)
        return message

    def completion(self, req: ChatRequest, reply: Reply, ctx: Ctx) -> dict[str, Any]:
        body = super().completion(req, reply, ctx)
        body.pop("service_tier", None)
        body["usage_breakdown"] = None
        body["x_groq"] = {"id": self._req_id(ctx)}
        return body

    def first_delta(self) -> dict[str, Any]:
        return {"role": "assistant", "content": ""}

    def final_chunk(self, req: ChatRequest, reply: Reply, ctx: Ctx) -> dict[str, Any]:
        delta: dict[str, Any] = {}
        if reply.tool_calls:
            delta["tool_calls"] = [{"index": i, **c} for i, c in enumerate(self.tool_calls(reply))]
        chunk = self.chunk(req, ctx, delta, self.finish_reason(reply))
        chunk["x_groq"] = {"id": self._req_id(ctx), "usage": self.usage(reply)}
        return chunk

    @staticmethod
    def _req_id(ctx: Ctx) -> str:
        return f"req_{ctx.alnum_id('groq', 26).lower()}"

    def error_body(self, message: str, type_: str, code: str | None, param: str | None = None) -> dict:
        error: dict[str, Any] = {"message": message, "type": type_}
        if code is not None:
            error["code"] = code
        return {"error": error}

    def error(self, info: ErrorInfo, ctx: Ctx) -> tuple[int, dict[str, Any], dict[str, str]]:
        if info.kind in ("auth_invalid", "auth_fault", "auth_missing"):
            return 401, self.error_body("Invalid API Key", "invalid_request_error", "invalid_api_key"), {}
        if info.kind == "server_500":
            return 500, self.error_body("Internal Server Error", "internal_server_error", None), {}
        if info.kind == "server_503":
            body = self.error_body("Service Unavailable", "internal_server_error", "service_unavailable")
            return 503, body, {}
        if info.kind == "too_large":
            return 413, self.error_body("Request Entity Too Large", "invalid_request_error", "request_too_large"), {}
        if info.kind == "path_not_found":
            return 404, self.error_body("Unknown request URL. Please check the URL for typos, or see the docs at "
                                        "https://console.groq.com/docs/", "invalid_request_error",
                                        "unknown_url"), {}  # fmt: skip
        return super().error(info, ctx)

    def limit_headers(self, snap: LimitSnapshot) -> dict[str, str]:
        return _openai_style_headers(snap.get("rpd") or snap.get("rpm"), snap.get("tpm"))

    def response_headers(self, ctx: Ctx) -> dict[str, str]:
        return {"x-request-id": self._req_id(ctx), "x-groq-region": "fake"}

    def model_body(self, model: str, ctx: Ctx) -> dict[str, Any]:
        owner = model.split("/")[0] if "/" in model else "Meta"
        return {"id": model, "object": "model", "created": 1700000000, "owned_by": owner, "active": True,
                "context_window": 131072, "public_apps": None, "max_completion_tokens": 32768}  # fmt: skip


WIRE = GroqWire()
