"""Errors the gateway returns to callers, always in OpenAI's error shape.

Clients built on the OpenAI SDK map `status` + `error.type` to their exception classes, so every
failure (ours or a provider's) is rendered through `GatewayError.body()` and nothing else.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError


class GatewayError(Exception):
    """An error with an HTTP status that is safe to show the caller as it is."""

    status: int = 500
    error_type: str = "server_error"

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        status: int | None = None,
        error_type: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        if status is not None:
            self.status = status
        if error_type is not None:
            self.error_type = error_type
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {
            "message": self.message,
            "type": self.error_type,
            "param": self.param,
            "code": self.code,
        }
        error.update(self.extra)
        return {"error": error}


class InvalidRequest(GatewayError):
    status = 400
    error_type = "invalid_request_error"


class Unauthorized(GatewayError):
    status = 401
    error_type = "invalid_request_error"

    def __init__(self, message: str = "Missing or invalid API key. Send it as 'Authorization: Bearer <key>'.") -> None:
        super().__init__(message, code="invalid_api_key")


class PermissionDenied(GatewayError):
    """A known key that may not use this route (SDKs raise `PermissionDeniedError`)."""

    status = 403
    error_type = "permission_error"


class NotFound(GatewayError):
    status = 404
    error_type = "invalid_request_error"


class PayloadTooLarge(GatewayError):
    status = 413
    error_type = "invalid_request_error"


class ModelNotFound(GatewayError):
    """Raised for a `model` nobody configured serves.

    A 400 (not OpenAI's 404) because the request itself is what is wrong here, and SDK users
    expect `BadRequestError` for a request they must change before retrying.
    """

    status = 400
    error_type = "invalid_request_error"

    def __init__(self, model: str, hint: str = "", *, message: str | None = None) -> None:
        """`message`: instead of "does not exist", when the model exists but serves another endpoint."""
        message = message or f"The model '{model}' does not exist or no configured provider serves it."
        super().__init__(message + (f" {hint}" if hint else ""), param="model", code="model_not_found")


class CallerLimited(GatewayError):
    """The caller's own limit (`user_rate_limited`) or budget (`budget_exceeded`) refused the
    request: a 429 that says so, distinct from the capacity 429s (`all_providers_rate_limited`)."""

    status = 429
    error_type = "rate_limit_error"


class AllProvidersFailed(GatewayError):
    """Every attempt failed; the body lists them without secrets or raw provider bodies."""

    error_type = "server_error"


def _loc_to_param(loc: tuple[Any, ...]) -> str:
    """`('messages', 0, 'user', 'content')` → `messages[0].content` (union tags dropped)."""
    out = ""
    for i, part in enumerate(loc):
        if 0 < i < len(loc) - 1 and loc[i + 1] == part:
            continue  # a union's tag named like the field it holds (`[1].image_url.image_url.url`)
        if isinstance(part, int):
            out += f"[{part}]"
        elif i > 0 and isinstance(loc[i - 1], int) and part in {"system", "developer", "user", "assistant", "tool"}:
            continue  # a message's role tag (not the top-level field `user`)
        elif part in {"str", "list"} or "[" in str(part):
            continue  # union branch names carry no meaning for the caller
        else:
            out += f".{part}" if out else str(part)
    return out or "body"


def from_validation_error(exc: ValidationError) -> InvalidRequest:
    """Turn pydantic's report into one OpenAI-style 400 that names the first offending field."""
    errors = exc.errors(include_url=False, include_input=False)
    # The deepest location is the most specific: for a union (`content` as a string or a list of
    # parts) pydantic reports every branch, and the branch that got furthest names the real problem.
    first = max(errors, key=lambda e: len(e.get("loc", ()))) if errors else {"loc": (), "msg": "invalid request"}
    param = _loc_to_param(tuple(first.get("loc", ())))
    kind = str(first.get("type"))
    more = len(errors) - 1
    if kind in _EXPECTED:
        # A value of the wrong JSON type, worded as OpenAI words it. For a field that takes either
        # of two types (`content`: a string or an array) pydantic reports one error per branch.
        branches = [e for e in errors if e.get("type") in _EXPECTED and _loc_to_param(tuple(e.get("loc", ()))) == param]
        expected = " or ".join(dict.fromkeys(_EXPECTED[str(e["type"])] for e in branches))
        message, code = f"Invalid type for '{param}': expected {expected}.", "invalid_type"
        more -= len(branches) - 1
    else:
        template, code = _MESSAGES.get(kind, ("Invalid value for '{param}': {msg}", "invalid_value"))
        message = template.format(param=param, msg=first.get("msg", "invalid"))
    if more > 0:
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    return InvalidRequest(message, param=param, code=code)


# Pydantic's errors for a value of the wrong JSON type (request fields are strict, see
# `api/schemas.py`): OpenAI answers these `invalid_type`, saying what was expected.
_EXPECTED: dict[str, str] = {
    "bool_type": "a boolean",
    "int_type": "an integer",
    "float_type": "a number",
    "string_type": "a string",
    "list_type": "an array",
    "dict_type": "an object",
    "model_type": "an object",
}


# Error types with their own wording and `code`: our validators' (PydanticCustomError), and an
# unknown top-level field, worded as OpenAI words it.
_MESSAGES: dict[str, tuple[str, str]] = {
    "schema_too_large": ("Invalid value for '{param}': {msg}", "schema_too_large"),
    "invalid_schema": ("Invalid value for '{param}': {msg}", "invalid_schema"),
    "unsupported_parameter": ("Unsupported parameter '{param}': {msg}", "unsupported_parameter"),
    "extra_forbidden": ("Unrecognized request argument supplied: {param}", "unknown_parameter"),
}
