"""Fake OpenAI: the chat-completions wire format (also the base of the Groq and Mistral fakes).

SDK base URL: `OpenAI(base_url="http://127.0.0.1:P/v1")` — openai-python joins its paths
`/chat/completions`, `/models`, `/models/{model}` onto `base_url` (`openai/_client.py`,
`resources/chat/completions/completions.py`, `resources/models.py`). Served paths:
`POST /v1/chat/completions`, `GET /v1/models`, `GET /v1/models/{id}`.

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

from sandbox.fakes.content import ChatRequest, Reply, ToolSpec, text_of
from sandbox.fakes.limits import LimitSnapshot, WindowState
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
    "tpmonth": "tokens per month (TPMo)",
}  # fmt: skip


class OpenAIWire(Wire):
    name = "openai"
    sentinel = b"data: [DONE]\n\n"
    prefix = "/v1"
    base_path = "/v1"
    docs_url = "https://platform.openai.com/account/rate-limits"
    whole_tool_calls = False  # OpenAI streams tool-call arguments in fragments
    returns_logprobs = True  # `logprobs: true` gets `choices[].logprobs` (buffered replies)

    # --- routing and request ------------------------------------------------------------------

    def match(self, method: str, path: str) -> Route | None:
        if method == "POST" and path == f"{self.prefix}/chat/completions":
            return Route("chat")
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
        texts = [text_of(m.get("content")) for m in messages if isinstance(m, dict)]
        req.prompt_text = "\n".join(texts) + json.dumps(body.get("tools") or "")
        users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
        req.last_user_text = text_of(users[-1].get("content")) if users else ""
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
        top = int(req.raw.get("top_logprobs") or 0)

        def entry(token: str, logprob: float) -> dict[str, Any]:
            return {"token": token, "logprob": logprob, "bytes": list(token.encode())}

        content = [
            {**entry(token, -0.01),
             "top_logprobs": [entry(token, -0.01), *(entry(f" alt{i}", -5.0 - i) for i in range(1, top))][:top]}
            for token in re.findall(r"\s*\S+", reply.text)
        ]  # fmt: skip
        return {"content": content, "refusal": None}

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
        for piece in reply.pieces():
            yield sse_data(self.chunk(req, ctx, {"content": piece})), True
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
