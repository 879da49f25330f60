"""What Mistral's chat endpoint rejects that a lenient reading would accept (strict mode).

Mistral validates request bodies with pydantic models that forbid extra fields: an unknown
top-level field (`stream_options`, `user`, `seed`, `max_completion_tokens`, ...) is a 422 whose
`message.detail` is pydantic's own error list, e.g. `{"type": "extra_forbidden", "loc": ["body",
"user"], "msg": "Extra inputs are not permitted", "input": "u1"}` (providers.md §7.2, §7.5).
The same library builds that list here, so the shape is the real one, not an imitation.

Replayed tool-call ids (assistant `tool_calls[].id`, tool `tool_call_id`) must be exactly nine
characters of [a-zA-Z0-9], else 400 `invalid_function_call` (code 3280) — the reason adapters
remap OpenAI's `call_...` ids.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ConfigDict, ValidationError, create_model

# `ChatCompletionRequest` of mistralai/client-python 3.x (`mistralai/client/models/`): the fields
# the API knows. The official SDK sends only these, so SDK clients pass strict mode.
REQUEST_FIELDS = (
    "model", "messages", "temperature", "top_p", "max_tokens", "stream", "stop", "random_seed",
    "metadata", "response_format", "tools", "tool_choice", "presence_penalty", "frequency_penalty",
    "min_tokens", "repetition_penalty", "top_k", "logprobs", "top_logprobs", "prompt_logprobs",
    "top_prompt_logprobs", "n", "prediction", "parallel_tool_calls", "reasoning_effort", "prompt_mode",
    "guardrails", "prompt_cache_key", "service_tier", "safe_prompt",
)  # fmt: skip
_REQUIRED = ("model", "messages")
_KNOWN = frozenset(REQUEST_FIELDS)
_TOOL_CALL_ID = re.compile(r"[a-zA-Z0-9]{9}")

_ChatRequestModel = create_model(  # type: ignore[call-overload]
    "ChatCompletionRequest",
    __config__=ConfigDict(extra="forbid"),
    **{name: (Any, ...) if name in _REQUIRED else (Any, None) for name in REQUEST_FIELDS},
)


def validation_errors(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Pydantic's errors for the body (unknown or missing top-level fields), located in `body`.
    The fields take any value, so a body with both required fields and no unknown one has none:
    pydantic is asked only for a body that has some (to phrase them), not for every request."""
    if isinstance(body, dict) and body.keys() <= _KNOWN and all(name in body for name in _REQUIRED):
        return []
    try:
        _ChatRequestModel.model_validate(body)
    except ValidationError as exc:
        return [
            {"type": e["type"], "loc": ["body", *e["loc"]], "msg": e["msg"], "input": e["input"]}
            for e in exc.errors(include_url=False)
        ]
    return []


def invalid_tool_call_id(messages: Any) -> str | None:
    """The first replayed tool-call id that is not nine alphanumerics, if any."""
    for message in messages if isinstance(messages, list) else []:
        if not isinstance(message, dict):
            continue
        if message.get("role") == "tool":
            ids = [message.get("tool_call_id")]
        else:
            ids = [call.get("id") for call in message.get("tool_calls") or [] if isinstance(call, dict)]
        for call_id in ids:
            if isinstance(call_id, str) and not _TOOL_CALL_ID.fullmatch(call_id):
                return call_id
    return None
