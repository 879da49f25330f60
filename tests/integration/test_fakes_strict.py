# ruff: noqa: F811  (pytest fixtures imported by name, then requested as parameters)
"""Strict mode (the default): the fakes reject what the real Mistral and Gemini APIs reject, in
their words, so an adapter that would fail in production fails against the fakes too."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from sandbox.fakes import FakeFleet, FakeProvider, start_fakes
from tests.fakes_fixtures import fake_fleet, fakes  # noqa: F401

HI = [{"role": "user", "content": "Hi there"}]


def mistral(fake: FakeProvider, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(fake.root_url + "/v1/chat/completions", json={"model": "mistral-small-latest", **body},
                      headers={"Authorization": "Bearer k"}, timeout=5)  # fmt: skip


def gemini(fake: FakeProvider, body: dict[str, Any]) -> httpx.Response:
    url = fake.root_url + "/v1beta/models/gemini-2.5-flash:generateContent"
    return httpx.post(url, json=body, headers={"x-goog-api-key": "k"}, timeout=5)


def tool_turns(call_id: str, answer_id: str | None = None) -> list[dict[str, Any]]:
    call = {"id": call_id, "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    return [*HI, {"role": "assistant", "content": "", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": answer_id or call_id, "content": "21C"}]  # fmt: skip


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "parts": [{"text": text}]}


def calls(*names: str) -> dict[str, Any]:
    return {"role": "model", "parts": [{"functionCall": {"name": n, "args": {}}} for n in names]}


def answers(*names: str) -> dict[str, Any]:
    return {"role": "user", "parts": [{"functionResponse": {"name": n, "response": {"ok": 1}}} for n in names]}


def declaring(parameters: dict[str, Any], key: str = "parameters") -> dict[str, Any]:
    return {"contents": [user("hi")], "tools": [{"functionDeclarations": [{"name": "f", key: parameters}]}]}


# --- Mistral ------------------------------------------------------------------------------------------


def test_mistral_unknown_top_level_fields_are_422_extra_forbidden(fakes: FakeFleet) -> None:
    resp = mistral(fakes["mistral"], {"messages": HI, "user": "u1", "stream_options": {"include_usage": True}})
    assert resp.status_code == 422
    assert resp.json() == {
        "object": "error", "type": "invalid_request_error", "param": None, "code": None,
        "message": {"detail": [
            {"type": "extra_forbidden", "loc": ["body", "user"], "msg": "Extra inputs are not permitted",
             "input": "u1"},
            {"type": "extra_forbidden", "loc": ["body", "stream_options"], "msg": "Extra inputs are not permitted",
             "input": {"include_usage": True}},
        ]},
    }  # fmt: skip
    assert fakes["mistral"].stats()["by_status"] == {"422": 1}


def test_mistral_accepts_every_field_of_its_own_request_schema(fakes: FakeFleet) -> None:
    body = {"messages": HI, "temperature": 0.2, "top_p": 0.9, "max_tokens": 20, "stream": False, "stop": ["\n"],
            "random_seed": 7, "safe_prompt": False, "tool_choice": "auto", "n": 1, "presence_penalty": 0,
            "frequency_penalty": 0, "parallel_tool_calls": True, "response_format": {"type": "text"}}  # fmt: skip
    assert mistral(fakes["mistral"], body).status_code == 200


@pytest.mark.parametrize("call_id, answer_id", [("call_0fypS1hVX", None), ("abcdefghi", "abc"), ("abcd-fghi", None)])
def test_mistral_tool_call_ids_must_be_nine_alphanumerics(
    fakes: FakeFleet, call_id: str, answer_id: str | None
) -> None:
    resp = mistral(fakes["mistral"], {"messages": tool_turns(call_id, answer_id)})
    assert resp.status_code == 400
    bad = call_id if call_id != "abcdefghi" else answer_id
    assert resp.json() == {
        "object": "error", "type": "invalid_function_call", "param": None, "code": "3280",
        "message": f"Tool call id was {bad} but must be a-z, A-Z, 0-9, with a length of 9.",
    }  # fmt: skip


def test_mistral_valid_tool_call_ids_pass(fakes: FakeFleet) -> None:
    resp = mistral(fakes["mistral"], {"messages": tool_turns("aB3dE6gH9")})
    assert resp.status_code == 200
    assert "The tool returned: 21C" in resp.json()["choices"][0]["message"]["content"]


# --- Gemini -------------------------------------------------------------------------------------------

CALL_AFTER_USER = ("Please ensure that function call turn comes immediately after a user turn or after a "
                   "function response turn.")  # fmt: skip
RESPONSE_AFTER_CALL = "Please ensure that function response turn comes immediately after a function call turn."
RESPONSE_COUNT = ("Please ensure that the number of function response parts is equal to the number of "
                  "function call parts of the function call turn.")  # fmt: skip


@pytest.mark.parametrize("contents, message", [
    ([calls("f"), answers("f")], CALL_AFTER_USER),
    ([user("a"), {"role": "model", "parts": [{"text": "b"}]}, calls("f"), answers("f")], CALL_AFTER_USER),
    ([user("a"), answers("f")], RESPONSE_AFTER_CALL),
    ([user("a"), calls("f", "g"), answers("f"), answers("g")], RESPONSE_COUNT),
    ([user("a"), calls("f"), answers("f", "g")], RESPONSE_COUNT),
    ([user("a"), {"role": "assistant", "parts": [{"text": "b"}]}, user("c")], "Please use a valid role: user, model."),
], ids=["starts-with-call", "call-after-model", "orphan-response", "parallel-split", "extra-response", "role"])  # fmt: skip
def test_gemini_turn_order_is_enforced(fakes: FakeFleet, contents: list[dict[str, Any]], message: str) -> None:
    resp = gemini(fakes["gemini"], {"contents": contents})
    assert resp.status_code == 400
    assert resp.json() == {"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}}


@pytest.mark.parametrize("contents", [
    [user("a"), calls("f", "g"), answers("f", "g")],
    [user("a"), calls("f"), answers("f"), calls("g"), answers("g")],
    [user("a"), user("b"), {"role": "model", "parts": [{"text": "c"}]}, {"parts": [{"text": "d"}]}],
    [{"role": "user", "parts": [{"text": "a"}]}, {"role": "model", "parts": [{"function_call": {"name": "f"}}]},
     {"role": "user", "parts": [{"function_response": {"name": "f", "response": {}}}]}],
], ids=["parallel", "sequential", "plain-repeats", "snake-case"])  # fmt: skip
def test_gemini_valid_turn_orders_pass(fakes: FakeFleet, contents: list[dict[str, Any]]) -> None:
    assert gemini(fakes["gemini"], {"contents": contents}).status_code == 200


def test_gemini_object_schemas_need_properties_at_any_depth(fakes: FakeFleet) -> None:
    parameters = {"type": "OBJECT", "properties": {
        "op": {"type": "STRING"},
        "params": {"type": "OBJECT"},
        "rows": {"type": "ARRAY", "items": {"type": "object", "properties": {}}},
        "either": {"anyOf": [{"type": "STRING"}, {"type": "OBJECT"}]},
    }}  # fmt: skip
    resp = gemini(fakes["gemini"], declaring(parameters))
    assert resp.status_code == 400
    prefix = "* GenerateContentRequest.tools[0].function_declarations[0].parameters"
    assert resp.json()["error"] == {"code": 400, "status": "INVALID_ARGUMENT", "message": (
        f"{prefix}.properties[params].properties: should be non-empty for OBJECT type\n"
        f"{prefix}.properties[rows].items.properties: should be non-empty for OBJECT type\n"
        f"{prefix}.properties[either].any_of[1].properties: should be non-empty for OBJECT type\n")}  # fmt: skip
    top = gemini(fakes["gemini"], declaring({"type": "OBJECT", "properties": {}}))
    assert top.json()["error"]["message"] == f"{prefix}.properties: should be non-empty for OBJECT type\n"


def test_gemini_json_schema_parameters_may_be_open_objects(fakes: FakeFleet) -> None:
    open_object = {"type": "object", "properties": {"params": {"type": "object"}}}
    assert gemini(fakes["gemini"], declaring(open_object, key="parametersJsonSchema")).status_code == 200
    no_args = {"contents": [user("hi")], "tools": [{"functionDeclarations": [{"name": "ping"}]}]}
    assert gemini(fakes["gemini"], no_args).status_code == 200


# --- lenient mode -------------------------------------------------------------------------------------


def test_strict_false_accepts_what_strict_mode_rejects() -> None:
    config = {"strict": False, "providers": {"mistral": {}, "gemini": {"strict": False}, "cohere": {"strict": True}}}
    with start_fakes(config) as fleet:
        assert [fleet[name].config.strict for name in ("mistral", "gemini", "cohere")] == [False, False, True]
        assert mistral(fleet["mistral"], {"messages": tool_turns("call_x"), "user": "u1"}).status_code == 200
        assert gemini(fleet["gemini"], {"contents": [user("a"), answers("f")]}).status_code == 200
        assert gemini(fleet["gemini"], declaring({"type": "OBJECT"})).status_code == 200
    with pytest.raises(ValueError, match="strict"):
        start_fakes({"providers": {"mistral": {"strict": "no"}}})


def test_gemini_refuses_an_empty_text_part(fakes: FakeFleet) -> None:
    resp = gemini(fakes["gemini"], {"contents": [user("")]})
    assert resp.status_code == 400
    assert "empty text parameter" in resp.text
    assert gemini(fakes["gemini"], {"contents": [user(" ")]}).status_code == 200
