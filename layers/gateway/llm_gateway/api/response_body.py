"""A chat completion's response body, as `model_dump(exclude_none=True)` gives it, built directly.

The answer's dict is made once per served request; through pydantic's serializer it cost about
78,000 instructions (valgrind) for a one-choice answer, as much as the rest of the response
shaping together: its Python-level `model_dump` wrapper, the serializer's per-field work and
the `_KeepsRequiredNulls` wrap serializer, a Python call per choice and per message. Reading
the models' fields here costs a fraction of that.

It is the same dict, key for key and in the same order (so the same JSON, byte for byte):
declared fields in declaration order, then the extras a provider sent, in their order; a field
or extra that is None left out; then each `_required_nulls` field that was left out, as None.
Extras and `Any` fields are copied as pydantic copies them (dicts and lists anew, their None
values kept). Anything outside what this mirrors (a subclass, a value of another type than the
field's, an extra that is not plain JSON, a schema whose fields changed) takes pydantic's own
path, so the fast path can only ever be the same or not taken: `tests/unit/api/
test_response_body.py` holds the two equal across the providers' recorded answers and generated
ones, and fails if a schema change turns the fast path off.
"""

from __future__ import annotations

import json
import math
from typing import Any

from pydantic import BaseModel

from llm_gateway.api.schemas import (
    ChatCompletion,
    Choice,
    CompletionTokensDetails,
    FunctionCall,
    PromptTokensDetails,
    ResponseMessage,
    ToolCall,
    Usage,
)

# The fields each model is read for here, in the order it declares them: a schema that no longer
# matches turns the fast path off (`FAST`), and a test says so.
_FIELDS: dict[type[BaseModel], tuple[str, ...]] = {
    ChatCompletion: ("id", "object", "created", "model", "choices", "usage", "system_fingerprint"),
    Choice: ("index", "message", "finish_reason", "logprobs"),
    ResponseMessage: ("role", "content", "tool_calls", "refusal"),
    ToolCall: ("id", "type", "function"),
    FunctionCall: ("name", "arguments"),
    Usage: ("prompt_tokens", "completion_tokens", "total_tokens", "prompt_tokens_details",
            "completion_tokens_details"),
    PromptTokensDetails: ("cached_tokens",),
    CompletionTokensDetails: ("reasoning_tokens",),
}
FAST = all(tuple(model.model_fields) == fields and not any(f.serialization_alias or f.alias
                                                               for f in model.model_fields.values())
           for model, fields in _FIELDS.items())
_SCALARS = frozenset({str, int, float, bool})
_MESSAGE_NULLS = ResponseMessage._required_nulls
_CHOICE_NULLS = Choice._required_nulls


class _Unusual(Exception):
    """A value this module does not mirror: pydantic's serializer answers instead."""


def completion_body(completion: ChatCompletion) -> dict[str, Any]:
    """`completion.model_dump(exclude_none=True)`, the same dict (see the module docstring)."""
    if FAST:
        try:
            return _completion(completion)
        except (_Unusual, RecursionError):
            pass
    return completion.model_dump(exclude_none=True)


def json_text(body: Any) -> str:
    """`body` as JSON every client parses. A provider's `NaN` or `-Infinity` (an OpenAI-compatible
    server's logprob of a token it deems impossible) is read into a float that `json.dumps`
    writes back as that bare token, which JSON has not (`JSON.parse` throws on the whole answer);
    it is written null, as pydantic writes it in a stream chunk. The walk runs only for a body
    that holds one."""
    try:
        return json.dumps(body, allow_nan=False)
    except ValueError:
        return json.dumps(_finite(body))


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


# The functions below are written out field by field, without a helper call per field: a Python
# call costs more than the check it would hold, and these run on every served request.
def _completion(c: ChatCompletion) -> dict[str, Any]:
    if type(c) is not ChatCompletion:
        raise _Unusual
    d = c.__dict__
    ident, obj, created, model, choices = d["id"], d["object"], d["created"], d["model"], d["choices"]
    if not (type(ident) is str and type(obj) is str and type(created) is int and type(model) is str
            and type(choices) is list):
        raise _Unusual
    out: dict[str, Any] = {"id": ident, "object": obj, "created": created, "model": model,
                           "choices": [_choice(choice) for choice in choices]}
    usage = d["usage"]
    if usage is not None:
        out["usage"] = _usage(usage)
    fingerprint = d["system_fingerprint"]
    if fingerprint is not None:
        if type(fingerprint) is not str:
            raise _Unusual
        out["system_fingerprint"] = fingerprint
    extra = c.__pydantic_extra__
    if extra:
        _extras(out, extra)
    return out


def _choice(choice: Choice) -> dict[str, Any]:
    if type(choice) is not Choice:
        raise _Unusual
    d = choice.__dict__
    index, finish, logprobs = d["index"], d["finish_reason"], d["logprobs"]
    if type(index) is not int or (finish is not None and type(finish) is not str):
        raise _Unusual
    out: dict[str, Any] = {"index": index, "message": _message(d["message"])}
    if finish is not None:
        out["finish_reason"] = finish
    if logprobs is not None:
        out["logprobs"] = _plain(logprobs)
    extra = choice.__pydantic_extra__
    if extra:
        _extras(out, extra)
    for name in _CHOICE_NULLS:
        if name not in out:
            out[name] = None
    return out


def _message(message: ResponseMessage) -> dict[str, Any]:
    if type(message) is not ResponseMessage:
        raise _Unusual
    d = message.__dict__
    role, content, calls, refusal = d["role"], d["content"], d["tool_calls"], d["refusal"]
    if (type(role) is not str or (content is not None and type(content) is not str)
            or (refusal is not None and type(refusal) is not str)):
        raise _Unusual
    out: dict[str, Any] = {"role": role}
    if content is not None:
        out["content"] = content
    if calls is not None:
        if type(calls) is not list:
            raise _Unusual
        out["tool_calls"] = [_tool_call(call) for call in calls]
    if refusal is not None:
        out["refusal"] = refusal
    extra = message.__pydantic_extra__
    if extra:
        _extras(out, extra)
    for name in _MESSAGE_NULLS:
        if name not in out:
            out[name] = None
    return out


def _tool_call(call: ToolCall) -> dict[str, Any]:
    if type(call) is not ToolCall or call.__pydantic_extra__:
        raise _Unusual
    d = call.__dict__
    ident, kind, function = d["id"], d["type"], d["function"]
    if (type(ident) is not str or type(kind) is not str or type(function) is not FunctionCall
            or function.__pydantic_extra__):
        raise _Unusual
    f = function.__dict__
    name, arguments = f["name"], f["arguments"]
    if type(name) is not str or type(arguments) is not str:
        raise _Unusual
    return {"id": ident, "type": kind, "function": {"name": name, "arguments": arguments}}


def _usage(usage: Usage) -> dict[str, Any]:
    if type(usage) is not Usage:
        raise _Unusual
    d = usage.__dict__
    prompt, completion, total = d["prompt_tokens"], d["completion_tokens"], d["total_tokens"]
    if type(prompt) is not int or type(completion) is not int or type(total) is not int:
        raise _Unusual
    out: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total}
    details = d["prompt_tokens_details"]
    if details is not None:
        if type(details) is not PromptTokensDetails:
            raise _Unusual
        out["prompt_tokens_details"] = _details(details, "cached_tokens")
    details = d["completion_tokens_details"]
    if details is not None:
        if type(details) is not CompletionTokensDetails:
            raise _Unusual
        out["completion_tokens_details"] = _details(details, "reasoning_tokens")
    extra = usage.__pydantic_extra__
    if extra:
        _extras(out, extra)
    return out


def _details(details: PromptTokensDetails | CompletionTokensDetails, field: str) -> dict[str, Any]:
    """A usage details object: its one count (unless None), then its extras."""
    count = details.__dict__[field]
    out: dict[str, Any] = {}
    if count is not None:
        if type(count) is not int:
            raise _Unusual
        out[field] = count
    extra = details.__pydantic_extra__
    if extra:
        _extras(out, extra)
    return out


def _extras(out: dict[str, Any], extra: dict[str, Any]) -> None:
    """A model's extras after its fields, in their order, those that are None left out."""
    for name, value in extra.items():
        if value is not None:
            out[name] = _plain(value)


def _plain(value: Any) -> Any:
    """A JSON value as pydantic serializes an `Any`: scalars as they are, dicts and lists copied
    (None inside them kept)."""
    kind = type(value)
    if value is None or kind in _SCALARS:
        return value
    if kind is list:
        return [_plain(item) for item in value]
    if kind is dict:
        copy = {}
        for key, item in value.items():
            if type(key) is not str:
                raise _Unusual
            copy[key] = _plain(item)
        return copy
    raise _Unusual
