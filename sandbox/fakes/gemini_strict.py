"""What Gemini's `generateContent` rejects that a lenient reading would accept (strict mode).

Every rule answers 400 INVALID_ARGUMENT with the real API's message (collected from public
error reports; providers.md §5.2 has the turn model, not these messages):

- Turn order. Roles are `user` or `model` (else "Please use a valid role: user, model."). A turn
  with `functionCall` parts must come right after a user turn (plain or function response); a
  turn with `functionResponse` parts right after a function-call turn, with as many responses as
  that turn had calls — so parallel tool results belong in ONE turn, not one turn each. Plain
  consecutive user (or model) text turns are accepted: current models no longer enforce strict
  alternation for them (google/adk-go#1302), only the function-call rules above.
- Function declarations. An OBJECT schema anywhere in `parameters` (the OpenAPI-subset Schema)
  with no `properties` is refused, one line per offending path:
  `* GenerateContentRequest.tools[0].function_declarations[0].parameters.properties[params].properties:
  should be non-empty for OBJECT type`. `parametersJsonSchema` (full JSON Schema) has no such rule.

Requests are proto3 JSON, so every field may come in lowerCamelCase or snake_case (`proto_field`).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import Any

VALID_ROLE = "Please use a valid role: user, model."
CALL_AFTER_USER = (
    "Please ensure that function call turn comes immediately after a user turn or after a function "
    "response turn."
)
RESPONSE_AFTER_CALL = "Please ensure that function response turn comes immediately after a function call turn."
RESPONSE_COUNT = (
    "Please ensure that the number of function response parts is equal to the number of function call "
    "parts of the function call turn."
)


def proto_field(obj: dict[str, Any], camel: str, default: Any = None) -> Any:
    """A request field in lowerCamelCase or its snake_case proto name."""
    if camel in obj:
        return obj[camel]
    return obj.get(_snake(camel), default)


@lru_cache(maxsize=64)
def _snake(camel: str) -> str:
    """`functionCall` → `function_call`. The names asked are this module's and the fake's own
    (a few): each converted once, not for every part of every turn of every request."""
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in camel)


def turn_order_error(contents: list[Any]) -> str | None:
    """The real API's message for the first turn-order rule `contents` breaks, or None."""
    previous_role: str | None = None
    previous_calls = 0
    for content in contents:
        if not isinstance(content, dict):
            continue
        role = content.get("role") or "user"
        if role not in ("user", "model"):
            return VALID_ROLE
        parts = [p for p in content.get("parts") or [] if isinstance(p, dict)]
        calls = sum(1 for p in parts if proto_field(p, "functionCall"))
        responses = sum(1 for p in parts if proto_field(p, "functionResponse"))
        if calls and previous_role != "user":
            return CALL_AFTER_USER
        if responses and not previous_calls:
            return RESPONSE_AFTER_CALL
        if responses and responses != previous_calls:
            return RESPONSE_COUNT
        previous_role, previous_calls = role, calls
    return None


def empty_object_paths(tools: list[Any]) -> list[str]:
    """Paths (as the API names them) of OBJECT schemas without properties in function parameters."""
    paths: list[str] = []
    for t, tool in enumerate(tools):
        declarations = proto_field(tool, "functionDeclarations") if isinstance(tool, dict) else None
        for d, declaration in enumerate(declarations or []):
            if isinstance(declaration, dict) and "parameters" in declaration:
                where = f"GenerateContentRequest.tools[{t}].function_declarations[{d}].parameters"
                paths.extend(_empty_objects(declaration["parameters"], where))
    return paths


def _empty_objects(schema: Any, path: str) -> Iterator[str]:
    if not isinstance(schema, dict):
        return
    properties = schema.get("properties")
    if str(schema.get("type", "")).upper() == "OBJECT" and not properties:
        yield f"{path}.properties"
    for name, sub in (properties or {}).items() if isinstance(properties, dict) else ():
        yield from _empty_objects(sub, f"{path}.properties[{name}]")
    yield from _empty_objects(schema.get("items"), f"{path}.items")
    for index, branch in enumerate(proto_field(schema, "anyOf") or []):
        yield from _empty_objects(branch, f"{path}.any_of[{index}]")


def has_empty_text(contents: list[Any]) -> bool:
    """Whether a turn holds a text part with no text: Gemini refuses it ("Unable to submit request
    because it has an empty text parameter", reported by several OpenAI-to-Gemini proxies)."""
    return any(isinstance(part, dict) and part.get("text") == ""
               for turn in contents if isinstance(turn, dict)
               for part in (turn.get("parts") or []))
