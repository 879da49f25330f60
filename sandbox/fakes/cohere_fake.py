"""Fake Cohere v2 chat.

SDK base URL: `cohere.ClientV2(api_key=..., base_url="http://127.0.0.1:P")` — cohere-python joins
`v2/chat` (`cohere/v2/raw_client.py`, streaming and not) and `v1/models` (`cohere/models/raw_client.py`)
onto `base_url`. Served: `POST /v2/chat` (`"stream": true|false`), `GET /v1/models`,
`GET /v1/models/{model}`, `POST /v1/check-api-key`.

Auth `Authorization: Bearer`. Streams are SSE with `event: <type>` + `data: {"type": <type>, ...}`:
message-start, content-start/-delta/-end, or tool-plan-delta + tool-call-start/-delta/-end,
then message-end with `finish_reason` and usage `{billed_units, tokens}`; no `[DONE]` (the SDK
accepts either). Finish reasons COMPLETE, MAX_TOKENS, TOOL_CALL. Every error body is
`{"id", "message"}`; never a retry-after. Production keys get no rate-limit headers. A trial key
(1,000 API calls per calendar month; configured as `rpmonth`, usually in `org_limits`) gets the
headers observed on trial keys (providers.md §6.5): `x-endpoint-monthly-call-limit`,
`x-trial-endpoint-call-limit` and `x-trial-endpoint-call-remaining` (per minute).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from sandbox.fakes.content import ChatRequest, Reply, ToolSpec, text_of
from sandbox.fakes.limits import LimitSnapshot
from sandbox.fakes.wire import BadRequest, Ctx, ErrorInfo, Event, Route, Wire, match_path, sse_event

_FINISH = {"stop": "COMPLETE", "length": "MAX_TOKENS", "tool_calls": "TOOL_CALL"}
_TEMPLATE_TOKENS = 64  # `tokens.input_tokens` includes the prompt template; `billed_units` does not
_TRIAL_MONTH = ("You are using a Trial key, which is limited to {limit} API calls / month. You can continue to "
                "use the Trial key for free or upgrade to a Production key with higher rate limits at "
                "'https://dashboard.cohere.com/api-keys'. Contact us on 'https://discord.gg/XW44jPfYJu' or "
                "email us at support@cohere.com with any questions")  # fmt: skip
_PER_MINUTE = "You are past the per minute request limit, please wait and try again later."


def _uuid(ctx: Ctx, salt: str = "") -> str:
    h = ctx.hex_id(salt, 32)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class CohereWire(Wire):
    name = "cohere"
    sentinel = None

    def match(self, method: str, path: str) -> Route | None:
        if method == "POST" and path == "/v2/chat":
            return Route("chat")
        if method == "POST" and path == "/v1/check-api-key":
            return Route("models", model="check-api-key")
        if method == "GET" and path == "/v1/models":
            return Route("models")
        found = match_path(r"/v1/models/(?P<model>.+)", path) if method == "GET" else None
        return Route("model", model=found["model"]) if found else None

    def parse_chat(self, body: dict[str, Any], route: Route) -> ChatRequest:
        messages = body.get("messages")
        if not body.get("model"):
            raise BadRequest("invalid request: model must be specified")
        if not isinstance(messages, list) or not messages:
            raise BadRequest("invalid request: messages cannot be empty")
        req = ChatRequest(model=str(body["model"]), stream=bool(body.get("stream")), raw=body)
        turns = [m for m in messages if isinstance(m, dict)]
        texts = [text_of(m.get("content")) for m in turns]
        req.prompt_text = "\n".join(texts) + json.dumps(body.get("tools") or "")
        users = [text for m, text in zip(turns, texts, strict=True) if m.get("role") == "user"]
        req.last_user_text = users[-1] if users else ""  # its text read once (a prompt may be long)
        if isinstance(messages[-1], dict) and messages[-1].get("role") == "tool":
            req.tool_result = text_of(messages[-1].get("content"))
        req.tools = [
            ToolSpec(t["function"]["name"], t["function"].get("parameters") or {})
            for t in body.get("tools") or []
            if isinstance(t, dict) and isinstance(t.get("function"), dict)
        ]
        choice = str(body.get("tool_choice") or "").upper()
        req.tool_choice = {"REQUIRED": "required", "NONE": "none"}.get(choice, "auto")
        fmt = body.get("response_format") or {}
        if isinstance(fmt, dict) and fmt.get("type") == "json_object":
            req.json_mode, req.json_schema = True, fmt.get("json_schema")
        req.max_tokens = int(body["max_tokens"]) if body.get("max_tokens") is not None else None
        return req

    def call_id(self, ctx: Ctx, name: str, index: int) -> str:
        return f"{name}_{ctx.alnum_id(f'tool{index}', 12).lower()}"

    # --- responses ----------------------------------------------------------------------------

    def usage(self, reply: Reply) -> dict[str, Any]:
        return {
            "billed_units": {"input_tokens": reply.prompt_tokens, "output_tokens": reply.completion_tokens},
            "tokens": {"input_tokens": reply.prompt_tokens + _TEMPLATE_TOKENS,
                       "output_tokens": reply.completion_tokens},
            "cached_tokens": 0,
        }  # fmt: skip

    @staticmethod
    def tool_plan(reply: Reply) -> str:
        names = ", ".join(c.name for c in reply.tool_calls)
        return f"I will call {names} to answer the request."

    @staticmethod
    def _calls(reply: Reply) -> list[dict[str, Any]]:
        return [{"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in reply.tool_calls]  # fmt: skip

    def completion(self, req: ChatRequest, reply: Reply, ctx: Ctx) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant"}
        if reply.tool_calls:
            message["tool_plan"] = self.tool_plan(reply)
            message["tool_calls"] = self._calls(reply)
        else:
            message["content"] = [{"type": "text", "text": reply.text or ""}]
        return {"id": _uuid(ctx), "message": message, "finish_reason": _FINISH[reply.finish],
                "usage": self.usage(reply)}  # fmt: skip

    def stream(self, req: ChatRequest, reply: Reply, ctx: Ctx) -> Iterator[Event]:
        start = {"type": "message-start", "id": _uuid(ctx), "delta": {"message": {"role": "assistant"}}}
        yield sse_event("message-start", start), False
        if reply.tool_calls:
            yield from self._tool_events(reply)
        else:
            yield from self._text_events(reply)
        end = {
            "type": "message-end",
            "delta": {"finish_reason": _FINISH[reply.finish], "usage": self.usage(reply)},
        }
        yield sse_event("message-end", end), False

    @staticmethod
    def _text_events(reply: Reply) -> Iterator[Event]:
        begin = {"type": "content-start", "index": 0,
                 "delta": {"message": {"content": {"type": "text", "text": ""}}}}  # fmt: skip
        yield sse_event("content-start", begin), False
        for piece in reply.pieces():
            delta = {"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": piece}}}}
            yield sse_event("content-delta", delta), True
        yield sse_event("content-end", {"type": "content-end", "index": 0}), False

    def _tool_events(self, reply: Reply) -> Iterator[Event]:
        for word in self.tool_plan(reply).split(" "):
            plan = {"type": "tool-plan-delta", "delta": {"message": {"tool_plan": word + " "}}}
            yield sse_event("tool-plan-delta", plan), True
        for index, call in enumerate(reply.tool_calls):
            head = {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": ""}}
            start = {"type": "tool-call-start", "index": index, "delta": {"message": {"tool_calls": head}}}
            yield sse_event("tool-call-start", start), True
            args = call.arguments
            for part in (args[: len(args) // 2], args[len(args) // 2 :]):
                body = {"function": {"arguments": part}}
                delta = {
                    "type": "tool-call-delta",
                    "index": index,
                    "delta": {"message": {"tool_calls": body}},
                }
                yield sse_event("tool-call-delta", delta), True
            yield sse_event("tool-call-end", {"type": "tool-call-end", "index": index}), False

    def broken_event(self, ctx: Ctx) -> bytes:
        return b'event: content-delta\ndata: {"type": "content-delta", "index": 0, "delta": {"message": \n\n'

    # --- errors -------------------------------------------------------------------------------

    def error(self, info: ErrorInfo, ctx: Ctx) -> tuple[int, dict[str, Any], dict[str, str]]:
        if info.kind == "rate_limited" and info.snap is not None:
            body = {"id": _uuid(ctx, "error"), "message": self._limit_message(info.snap)}
            return 429, body, self.limit_headers(info.snap)
        table: dict[str, tuple[int, str]] = {
            "auth_missing": (401, "no api key supplied"),
            "auth_invalid": (401, "invalid api token"),
            "auth_fault": (401, "invalid api token"),
            "model_not_found": (404, f"model '{info.model}' not found, make sure the correct model ID was used "
                                "and that you have access to the model."),
            "path_not_found": (404, info.message),
            "bad_request": (400, info.message),
            "rate_limited": (429, _PER_MINUTE),
            "server_500": (500, f"internal server error, this has been reported to our developers. id {_uuid(ctx, 'e')}"),
            "server_503": (503, "service unavailable, please try again later"),
        }  # fmt: skip
        status, message = table.get(info.kind, table["server_500"])
        return status, {"id": _uuid(ctx, "error"), "message": message}, {}

    @staticmethod
    def _limit_message(snap: LimitSnapshot) -> str:
        over = snap.exceeded
        if over is None:
            return _PER_MINUTE
        if over.dimension.key == "rpmonth":
            return _TRIAL_MONTH.format(limit=over.limit)
        if over.dimension.unit == "tokens":
            return f"trial token rate limit exceeded, limit is {over.limit} tokens per {over.dimension.period}"
        return _PER_MINUTE

    def limit_headers(self, snap: LimitSnapshot) -> dict[str, str]:
        month = snap.get("rpmonth")
        if month is None:  # a production key: no rate-limit headers at all
            return {}
        headers = {"x-endpoint-monthly-call-limit": str(month.limit)}
        minute = snap.get("rpm")
        if minute is not None:
            headers["x-trial-endpoint-call-limit"] = str(minute.limit)
            headers["x-trial-endpoint-call-remaining"] = str(minute.remaining)
        return headers

    def response_headers(self, ctx: Ctx) -> dict[str, str]:
        return {"x-debug-trace-id": ctx.hex_id("trace", 32)}

    # --- models -------------------------------------------------------------------------------

    def model_body(self, model: str, ctx: Ctx) -> dict[str, Any]:
        return {
            "name": model, "endpoints": ["generate", "chat", "summarize"], "finetuned": False,
            "context_length": 128000.0, "tokenizer_url": f"https://storage.googleapis.com/cohere-public/tokenizers/{model}.json",
            "default_endpoints": [], "features": ["tools", "json_mode", "json_schema", "strict_tools"],
            "is_deprecated": False,
        }  # fmt: skip

    def models_body(self, models: list[str], ctx: Ctx) -> dict[str, Any]:
        if ctx.route.model == "check-api-key":
            return {"valid": True, "organization_id": "org-fake", "owner_id": "owner-fake"}
        return {"models": [self.model_body(m, ctx) for m in models]}


WIRE = CohereWire()
