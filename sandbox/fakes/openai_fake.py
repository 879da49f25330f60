"""Fake OpenAI: the chat-completions wire format (also the base of the Groq and Mistral fakes).

SDK base URL: `OpenAI(base_url="http://127.0.0.1:P/v1")` — openai-python joins its paths
`/chat/completions`, `/models`, `/models/{model}`, `/audio/transcriptions`, `/audio/translations`
onto `base_url` (`openai/_client.py`, `resources/chat/completions/completions.py`,
`resources/models.py`, `resources/audio/*.py`). Served paths: `POST /v1/chat/completions`,
`GET /v1/models`, `GET /v1/models/{id}`, `POST /v1/audio/{transcriptions,translations}`.

Speech to text (multipart, providers.md 3.7): whisper-1 answers json, text, srt, vtt and
verbose_json (`timestamp_granularities[]` word/segment only with verbose_json) and translates;
gpt-4o-transcribe and gpt-4o-mini-transcribe answer json and text only. json carries `usage`:
`{"type":"duration","seconds"}` (whisper-1) or token usage (gpt-4o*); translations carry none.
Uploads over 25 MB: 413. Transcripts are synthesized (`transcription.py`).

Auth `Authorization: Bearer <key>`. Streams are data-only SSE ending in `data: [DONE]`; a usage
chunk (`choices: []`) is added only with `stream_options.include_usage`. Rate-limit headers
`x-ratelimit-{limit,remaining,reset}-{requests,tokens}` (per minute, Go-duration resets; the
binding one of the model's and the organisation's limits) and `retry-after` (integer seconds) on 429.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from typing import Any

from sandbox.fakes.content import ChatRequest, Reply, ToolSpec, estimate_tokens, text_of
from sandbox.fakes.limits import LimitSnapshot, WindowState
from sandbox.fakes.transcription import (
    MAX_UPLOAD,
    AudioReply,
    Form,
    Transcript,
    heard,
    language_name,
    render_srt,
    render_vtt,
    synthesize,
    whisper_segments,
)
from sandbox.fakes.wire import (
    BadRequest,
    Ctx,
    ErrorInfo,
    Event,
    Route,
    Wire,
    go_duration,
    match_path,
    sse_data,
)

_LIMIT_WORDS = {  # as in OpenAI's and Groq's 429 messages; `type` is the dimension's unit
    "rps": "requests per sec (RPS)", "rpm": "requests per min (RPM)", "rpd": "requests per day (RPD)",
    "rpmonth": "requests per month (RPMo)", "tpm": "tokens per min (TPM)", "tpd": "tokens per day (TPD)",
    "tpmonth": "tokens per month (TPMo)", "ash": "seconds of audio per hour (ASH)",
    "asd": "seconds of audio per day (ASD)",
}  # fmt: skip
WHISPER_FORMATS = ("json", "text", "srt", "verbose_json", "vtt")
TEXT_TYPE = "text/plain; charset=utf-8"
AUDIO_TOKENS_PER_S = 10  # gpt-4o(-mini)-transcribe input audio tokens (an approximation)


class OpenAIWire(Wire):
    name = "openai"
    sentinel = b"data: [DONE]\n\n"
    prefix = "/v1"
    base_path = "/v1"
    docs_url = "https://platform.openai.com/account/rate-limits"
    whole_tool_calls = False  # OpenAI streams tool-call arguments in fragments
    returns_logprobs = True  # `logprobs: true` gets `choices[].logprobs` (buffered replies)

    # --- routing and request ------------------------------------------------------------------

    # speech to text: model → the response formats it answers; the models that translate
    audio_models: dict[str, tuple[str, ...]] = {
        "whisper-1": WHISPER_FORMATS, "gpt-4o-transcribe": ("json", "text"),
        "gpt-4o-mini-transcribe": ("json", "text"),
    }  # fmt: skip
    translate_models: tuple[str, ...] = ("whisper-1",)
    audio_tasks: tuple[str, ...] = ("transcribe", "translate")
    upload_limit = MAX_UPLOAD

    def match(self, method: str, path: str) -> Route | None:
        if method == "POST" and path == f"{self.prefix}/chat/completions":
            return Route("chat")
        for task, name in (("transcribe", "transcriptions"), ("translate", "translations")):
            if method == "POST" and path == f"{self.prefix}/audio/{name}" and task in self.audio_tasks:
                return Route("audio", task=task)
        if method == "GET" and path == f"{self.prefix}/models":
            return Route("models")
        found = match_path(rf"{self.prefix}/models/(?P<model>.+)", path) if method == "GET" else None
        return Route("model", model=found["model"]) if found else None

    def parse_chat(self, body: dict[str, Any], route: Route) -> ChatRequest:
        messages = body.get("messages")
        if not body.get("model"):
            raise BadRequest("you must provide a model parameter")
        if not isinstance(messages, list) or not messages:
            raise BadRequest("[] is too short - 'messages'")
        req = ChatRequest(model=str(body["model"]), stream=bool(body.get("stream")), raw=body)
        turns = [m for m in messages if isinstance(m, dict)]
        texts = [text_of(m.get("content")) for m in turns]
        req.prompt_text = "\n".join(texts) + json.dumps(body.get("tools") or "")
        users = [text for m, text in zip(turns, texts, strict=True) if m.get("role") == "user"]
        req.last_user_text = users[-1] if users else ""  # its text read once (a prompt may be long)
        last = messages[-1] if isinstance(messages[-1], dict) else {}
        if last.get("role") in ("tool", "function"):
            req.tool_result = text_of(last.get("content"))
        req.tools = [
            ToolSpec(t["function"]["name"], t["function"].get("parameters") or {})
            for t in body.get("tools") or []
            if isinstance(t, dict) and isinstance(t.get("function"), dict)
        ]
        self._tool_choice(req, body.get("tool_choice"))
        self._response_format(req, body.get("response_format"))
        req.include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        limit = body.get("max_completion_tokens", body.get("max_tokens"))
        req.max_tokens = int(limit) if limit is not None else None
        return req

    @staticmethod
    def _tool_choice(req: ChatRequest, choice: Any) -> None:
        if isinstance(choice, dict):
            req.tool_choice = "required"
            req.forced_tool = (choice.get("function") or {}).get("name")
        elif choice in ("required", "any"):
            req.tool_choice = "required"
        elif choice == "none":
            req.tool_choice = "none"

    @staticmethod
    def _response_format(req: ChatRequest, fmt: Any) -> None:
        if not isinstance(fmt, dict):
            return
        if fmt.get("type") == "json_object":
            req.json_mode = True
        elif fmt.get("type") == "json_schema":
            req.json_mode = True
            req.json_schema = (fmt.get("json_schema") or {}).get("schema") or {}

    # --- responses ----------------------------------------------------------------------------

    def usage(self, reply: Reply) -> dict[str, Any]:
        return {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.total_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0, "audio_tokens": 0,
                "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0,
            },
        }  # fmt: skip

    def finish_reason(self, reply: Reply) -> str:
        return reply.finish

    def tool_calls(self, reply: Reply) -> list[dict[str, Any]]:
        return [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in reply.tool_calls
        ]

    def message(self, reply: Reply) -> dict[str, Any]:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": reply.text,
            "refusal": None,
            "annotations": [],
        }
        if reply.tool_calls:
            message["tool_calls"] = self.tool_calls(reply)
        return message

    def completion(self, req: ChatRequest, reply: Reply, ctx: Ctx) -> dict[str, Any]:
        return {
            "id": f"chatcmpl-{ctx.hex_id()}",
            "object": "chat.completion",
            "created": ctx.created,
            "model": ctx.model,
            "choices": [
                {"index": 0, "message": self.message(reply), "logprobs": self.logprobs(req, reply),
                 "finish_reason": self.finish_reason(reply)}
            ],
            "usage": self.usage(reply),
            "service_tier": "default",
            "system_fingerprint": "fp_fake0001",
        }  # fmt: skip

    def logprobs(self, req: ChatRequest, reply: Reply) -> dict[str, Any] | None:
        """OpenAI's `ChatCompletionTokenLogprob` list when asked: one entry per word of the text,
        with `top_logprobs` alternatives (the token itself first); fixed values, as the fake model
        is deterministic."""
        if not (self.returns_logprobs and req.raw.get("logprobs") is True and reply.text):
            return None
        return {"content": _token_logprobs(reply.text, int(req.raw.get("top_logprobs") or 0)), "refusal": None}

    # --- streaming ----------------------------------------------------------------------------

    def chunk(self, req: ChatRequest, ctx: Ctx, delta: dict[str, Any], finish: str | None = None) -> dict:
        chunk: dict[str, Any] = {
            "id": f"chatcmpl-{ctx.hex_id()}",
            "object": "chat.completion.chunk",
            "created": ctx.created,
            "model": ctx.model,
            "system_fingerprint": "fp_fake0001",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if req.include_usage:
            chunk["usage"] = None
        return chunk

    def first_delta(self) -> dict[str, Any]:
        return {"role": "assistant", "content": "", "refusal": None}

    def stream(self, req: ChatRequest, reply: Reply, ctx: Ctx) -> Iterator[Event]:
        yield sse_data(self.chunk(req, ctx, self.first_delta())), False
        asked = self.returns_logprobs and req.raw.get("logprobs") is True
        for piece in reply.pieces():
            chunk = self.chunk(req, ctx, {"content": piece})
            if asked:  # streamed too: each chunk's own tokens, as OpenAI sends them
                chunk["choices"][0]["logprobs"] = {
                    "content": _token_logprobs(piece, int(req.raw.get("top_logprobs") or 0)), "refusal": None}
            yield sse_data(chunk), True
        if not self.whole_tool_calls:
            yield from self._tool_fragments(req, reply, ctx)
        yield sse_data(self.final_chunk(req, reply, ctx)), bool(self.whole_tool_calls and reply.tool_calls)
        if req.include_usage:
            usage_chunk = self.chunk(req, ctx, {})
            usage_chunk["choices"], usage_chunk["usage"] = [], self.usage(reply)
            yield sse_data(usage_chunk), False

    def _tool_fragments(self, req: ChatRequest, reply: Reply, ctx: Ctx) -> Iterator[Event]:
        for index, call in enumerate(reply.tool_calls):
            head = {"index": index, "id": call.id, "type": "function",
                    "function": {"name": call.name, "arguments": ""}}  # fmt: skip
            yield sse_data(self.chunk(req, ctx, {"tool_calls": [head]})), True
            args = call.arguments
            half = len(args) // 2
            for part in (args[:half], args[half:]):
                delta = {"tool_calls": [{"index": index, "function": {"arguments": part}}]}
                yield sse_data(self.chunk(req, ctx, delta)), True

    def final_chunk(self, req: ChatRequest, reply: Reply, ctx: Ctx) -> dict[str, Any]:
        return self.chunk(req, ctx, {}, self.finish_reason(reply))

    # --- speech to text -----------------------------------------------------------------------

    def audio_bytes(self, form: Form) -> bytes:
        upload = form.files.get("file")
        if upload is None:
            raise BadRequest("1 validation error for Request\nbody -> file\n  field required (type=value_error.missing)")
        return upload.data

    def check_audio_model(self, model: str, route: Route) -> None:
        if model not in self.audio_models:
            raise BadRequest(f"Invalid model {model}: this model does not support {route.task}.")
        if route.task == "translate" and model not in self.translate_models:
            raise BadRequest(f"The model `{model}` does not support translations.")

    def transcribe(self, form: Form, route: Route, ctx: Ctx) -> AudioReply:
        model = form.get("model")
        if not model:
            raise BadRequest("you must provide a model parameter")
        self.check_audio_model(model, route)
        data = self.audio_bytes(form)
        if len(data) > self.upload_limit:
            raise BadRequest(f"Maximum content size limit ({self.upload_limit}) exceeded ({len(data)} bytes read)",
                             kind="too_large")  # fmt: skip
        fmt = form.get("response_format") or "json"
        formats = self.audio_models[model]
        if fmt not in formats:
            raise BadRequest(f"response_format '{fmt}' is not compatible with model '{model}'. "
                             f"Use {' or '.join(repr(f) for f in formats)}.")  # fmt: skip
        granularities = form.getlist("timestamp_granularities")
        if any(g not in ("word", "segment") for g in granularities):
            raise BadRequest(f"Invalid timestamp_granularities: {granularities}; expected 'word' or 'segment'.")
        if granularities and fmt != "verbose_json":
            raise BadRequest("timestamp_granularities are only supported with response_format=verbose_json")
        info = heard(data)
        translate = route.task == "translate"
        transcript = synthesize(info, translate=translate, language=None if translate else form.get("language"))
        billed = self.billed_seconds(info.duration_s)
        if fmt == "text":
            return AudioReply(transcript.text + "\n", TEXT_TYPE, billed)
        if fmt == "srt":
            return AudioReply(render_srt(transcript), TEXT_TYPE, billed)
        if fmt == "vtt":
            return AudioReply(render_vtt(transcript), TEXT_TYPE, billed)
        if fmt == "verbose_json":
            return AudioReply(self.verbose_json(transcript, granularities, route, ctx), billed_seconds=billed)
        return AudioReply(self.json_transcript(model, transcript, form, route, ctx), billed_seconds=billed)

    def billed_seconds(self, duration: float) -> float:
        return duration

    def json_transcript(self, model: str, t: Transcript, form: Form, route: Route, ctx: Ctx) -> dict[str, Any]:
        if route.task == "translate":
            return {"text": t.text}
        if model == "whisper-1":
            return {"text": t.text, "usage": {"type": "duration", "seconds": math.ceil(t.duration)}}
        audio_tokens = math.ceil(t.duration * AUDIO_TOKENS_PER_S)
        text_tokens = estimate_tokens(form.get("prompt") or "")
        output_tokens = estimate_tokens(t.text)
        usage = {"type": "tokens", "input_tokens": audio_tokens + text_tokens,
                 "input_token_details": {"text_tokens": text_tokens, "audio_tokens": audio_tokens},
                 "output_tokens": output_tokens, "total_tokens": audio_tokens + text_tokens + output_tokens}  # fmt: skip
        return {"text": t.text, "usage": usage}

    def verbose_json(self, t: Transcript, granularities: list[str], route: Route, ctx: Ctx) -> dict[str, Any]:
        body: dict[str, Any] = {"task": "translate" if route.task == "translate" else "transcribe",
                                "language": language_name(t.language), "duration": t.duration, "text": t.text}  # fmt: skip
        if not granularities or "segment" in granularities:
            body["segments"] = whisper_segments(t)
        if "word" in granularities:
            body["words"] = [{"word": w.word, "start": w.start, "end": w.end} for w in t.words]
        if route.task != "translate":
            body["usage"] = {"type": "duration", "seconds": math.ceil(t.duration)}
        return body

    # --- errors and headers -------------------------------------------------------------------

    def error_body(self, message: str, type_: str, code: str | None, param: str | None = None) -> dict:
        return {"error": {"message": message, "type": type_, "param": param, "code": code}}

    def error(self, info: ErrorInfo, ctx: Ctx) -> tuple[int, dict[str, Any], dict[str, str]]:
        if info.kind == "rate_limited":
            return self.rate_limited(info, ctx)
        table: dict[str, tuple[int, str, str, str | None]] = {
            "auth_missing": (401, "You didn't provide an API key. You need to provide your API key in an "
                             "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                             "invalid_request_error", None),
            "auth_invalid": (401, "Incorrect API key provided: invalid***. You can find your API key at "
                             "https://platform.openai.com/account/api-keys.", "invalid_request_error",
                             "invalid_api_key"),
            "model_not_found": (404, f"The model `{info.model}` does not exist or you do not have access to it.",
                                "invalid_request_error", "model_not_found"),
            "path_not_found": (404, info.message, "invalid_request_error", None),
            "bad_request": (400, info.message, "invalid_request_error", None),
            "bad_audio": (400, info.message or "Audio file might be corrupted or unsupported",
                          "invalid_request_error", "invalid_value"),
            "too_large": (413, info.message, "server_error", None),
            "server_500": (500, "The server had an error while processing your request. Sorry about that!",
                           "server_error", None),
            "server_503": (503, "The server is overloaded or not ready yet.", "server_error", None),
        }  # fmt: skip
        status, message, type_, code = table.get(info.kind, table["auth_invalid"])
        return status, self.error_body(message, type_, code), {}

    def rate_limited(self, info: ErrorInfo, ctx: Ctx) -> tuple[int, dict[str, Any], dict[str, str]]:
        snap = info.snap
        assert snap is not None and snap.exceeded is not None
        over = snap.exceeded
        wait = info.retry_after if info.retry_after is not None else over.retry_after
        message = (
            f"Rate limit reached for {ctx.model} in organization org-fake on {_LIMIT_WORDS[over.dimension.key]}: "
            f"Limit {over.limit}, Used {over.used}, Requested {over.requested}. Please try again in "
            f"{go_duration(wait)}. Visit {self.docs_url} to learn more."
        )
        headers = self.limit_headers(snap)
        headers["retry-after"] = str(max(1, math.ceil(wait)))
        return 429, self.error_body(message, over.dimension.unit, "rate_limit_exceeded"), headers

    def limit_headers(self, snap: LimitSnapshot) -> dict[str, str]:
        return _openai_style_headers(snap.get("rpm"), snap.get("tpm"))

    def response_headers(self, ctx: Ctx) -> dict[str, str]:
        return {"x-request-id": f"req_{ctx.hex_id('req', 32)}", "openai-version": "2020-10-01",
                "openai-processing-ms": "1", "openai-organization": "org-fake"}  # fmt: skip

    # --- models -------------------------------------------------------------------------------

    def model_body(self, model: str, ctx: Ctx) -> dict[str, Any]:
        return {"id": model, "object": "model", "created": 1700000000, "owned_by": "system"}

    def models_body(self, models: list[str], ctx: Ctx) -> dict[str, Any]:
        return {"object": "list", "data": [self.model_body(m, ctx) for m in models]}


def _openai_style_headers(requests: WindowState | None, tokens: WindowState | None) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, state in (("requests", requests), ("tokens", tokens)):
        if state is not None:
            headers[f"x-ratelimit-limit-{name}"] = str(state.limit)
            headers[f"x-ratelimit-remaining-{name}"] = str(state.remaining)
            headers[f"x-ratelimit-reset-{name}"] = go_duration(state.reset_s)
    return headers


WIRE = OpenAIWire()


def _token_logprobs(text: str, top: int) -> list[dict[str, Any]]:
    """OpenAI's `ChatCompletionTokenLogprob` list: one entry per word of `text`, with `top`
    alternatives (the token itself first); fixed values, as the fake model is deterministic."""

    def entry(token: str, logprob: float) -> dict[str, Any]:
        return {"token": token, "logprob": logprob, "bytes": list(token.encode())}

    return [
        {**entry(token, -0.01),
         "top_logprobs": [entry(token, -0.01), *(entry(f" alt{i}", -5.0 - i) for i in range(1, top))][:top]}
        for token in re.findall(r"\s*\S+", text)
    ]  # fmt: skip
